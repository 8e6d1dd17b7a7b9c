#!/usr/bin/env bash
# test-bad-locked.sh -- images in use by another process (libvhd locks every
# image with flock(2): shared for reading, exclusive for writing).  While
# another process holds an exclusive lock, info, convert and write are
# refused with one line naming the image and saying it is in use, check
# exits 2 (could not check: not damage), and nothing changes.  While it holds
# a shared lock (a reader), reading works and writing is refused.  A locked
# parent makes its child's chain unreadable with the same message.
. "$TOP/tests/functions.sh"
requires flock

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --block-size 512K src.raw img.vhd || die "convert failed"
$VHDTOOL snapshot -q img.vhd child.vhd || die "snapshot failed"
head -c 4096 /dev/urandom >data.bin
before=$(sum img.vhd)
failed=()

# hold MODE FILE: lock FILE (-x or -s) in a background process until unhold.
hold() {
	rm -f held
	flock "$1" "$2" sh -c 'touch held; while [ -e held ]; do sleep 0.05; done' &
	holder=$!
	for _ in $(seq 100); do [ -e held ] && return 0; sleep 0.05; done
	die "could not take the lock on $2"
}
unhold() { rm -f held; wait "$holder"; }
in_use() {	# in_use WHAT FILE: $ERR names FILE and says it is in use
	echo "$ERR" | grep -qF "$2" && echo "$ERR" | grep -qi "in use" ||
		die "$1: message does not say $2 is in use: $ERR"
}

hold -x img.vhd
(
	expect_fail $VHDTOOL info img.vhd; in_use info img.vhd
	expect_fail $VHDTOOL convert -q img.vhd out.img; in_use convert img.vhd
	[ ! -e out.img ] || die "failed convert left out.img"
	expect_fail $VHDTOOL write img.vhd data.bin; in_use write img.vhd
	expect_fail $VHDTOOL info child.vhd; in_use "info of the child" img.vhd
	$VHDTOOL check img.vhd >check.out 2>&1
	rc=$?
	[ "$rc" -eq 2 ] || die "check of a locked image: exit $rc, want 2: $(cat check.out)"
	echo "ok: exclusively locked image refused"
) || failed+=("exclusive lock")
unhold

hold -s img.vhd
(
	$VHDTOOL info img.vhd >/dev/null || die "info under a shared lock failed"
	$VHDTOOL convert -q img.vhd out.img && cmp src.raw out.img || die "convert under a shared lock failed"
	rm -f out.img
	expect_fail $VHDTOOL write img.vhd data.bin; in_use "write under a shared lock" img.vhd
	# The child is written, its locked parent only read: that works.
	$VHDTOOL write --offset 1M child.vhd data.bin || die "writing the child of a read-locked parent failed"
	echo "ok: shared lock lets readers in, keeps writers out"
) || failed+=("shared lock")
unhold

[ "$(sum img.vhd)" = "$before" ] || die "the locked image changed"
[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: ${failed[*]}"
echo "all cases passed"
