#!/usr/bin/env bash
# test-bad-readonly.sh -- files vhdtool may not write or read (DESIGN "Bad
# input": read-only file opened for writing).  As root, file modes do not
# stop writes, so the read-only cases use what does stop root:
#  - `vhdtool write` into an image on a read-only filesystem (a tmpfs
#    remounted ro) and into an immutable file (chattr +i, where supported):
#    one line naming the image and saying it cannot be written, exit 1,
#    image unchanged and still readable;
#  - convert/create/snapshot whose output would be on the read-only
#    filesystem: one line naming the output and "read-only", nothing made;
#  - as user nobody (setpriv): `write` into a 0444 image nobody owns is
#    refused (permission / read-only), and an image nobody may not read is
#    refused by info while check exits 2 (could not check -- not damage).
# Parts this machine cannot do are skipped with a note; if none can run, the
# test skips.
. "$TOP/tests/functions.sh"
requires_root
failed=()
ran=0

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --block-size 512K src.raw src.vhd || die "convert failed"
head -c 4096 /dev/urandom >data.bin
raw_sum=$(sum src.raw) vhd_sum=$(sum src.vhd)

# refused_write WHAT IMAGE [RUNNER...]: write must fail, image unchanged.
refused_write() {
	local what=$1 img=$2 before
	shift 2
	(
		before=$(sum "$img")
		expect_fail "$@" $VHDTOOL write --offset 1M "$img" data.bin
		echo "$ERR" | grep -qF "$img" || die "$what: message does not name $img: $ERR"
		echo "$ERR" | grep -qiE 'read-only|permission|not permitted|for writing' ||
			die "$what: message does not say why it cannot write: $ERR"
		[ "$(sum "$img")" = "$before" ] || die "$what: $img changed"
		"$@" $VHDTOOL read --offset 1M --length 4096 "$img" >got.bin || die "$what: $img no longer reads"
		cmp -s got.bin data.bin && die "$what: the refused data is in $img"
		echo "ok: $what"
	) || failed+=("$what")
}

mkdir ro
if mount -t tmpfs -o size=16m vhdkit-test-ro "$T/ro" 2>mount.err; then
	trap 'umount "$T/ro" 2>/dev/null; rm -rf "$T"' EXIT
	cp src.vhd ro/img.vhd
	if mount -o remount,ro "$T/ro" 2>mount.err; then
		ran=1
		refused_write "write into an image on a read-only filesystem" ro/img.vhd
		for cmd in "convert -q -O vhd src.raw ro/out.vhd" "convert -q -O raw src.vhd ro/out.img" \
			   "create -q --size 1M ro/out.vhd" "snapshot -q src.vhd ro/out.vhd"; do
			(
				expect_fail $VHDTOOL $cmd
				echo "$ERR" | grep -q "ro/out" || die "$cmd: message does not name the output: $ERR"
				echo "$ERR" | grep -qi "read-only" || die "$cmd: message lacks 'read-only': $ERR"
				[ ! -e ro/out.vhd ] && [ ! -e ro/out.img ] || die "$cmd: created its output"
				[ "$(sum src.raw)" = "$raw_sum" ] && [ "$(sum src.vhd)" = "$vhd_sum" ] ||
					die "$cmd: source changed"
				echo "ok: $cmd refused"
			) || failed+=("$cmd")
		done
	else
		echo "NOTE: cannot remount a tmpfs read-only ($(cat mount.err)): read-only filesystem not tested"
	fi
	umount "$T/ro"
else
	echo "NOTE: cannot mount a tmpfs ($(cat mount.err)): read-only filesystem not tested"
fi

cp src.vhd immutable.vhd
if command -v chattr >/dev/null 2>&1 && chattr +i immutable.vhd 2>/dev/null; then
	ran=1
	refused_write "write into an immutable image" immutable.vhd
	chattr -i immutable.vhd
else
	echo "NOTE: chattr +i does not work here: immutable image not tested"
fi

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if command -v setpriv >/dev/null 2>&1 && as_nobody true 2>/dev/null &&
   chmod 755 "$T" && as_nobody test -x "$VHDTOOL" -a -r "$T/src.vhd"; then
	ran=1
	cp src.vhd ro-file.vhd
	chown 65534 ro-file.vhd
	chmod 444 ro-file.vhd
	refused_write "write into a 0444 image as its owner" ro-file.vhd as_nobody
	cp src.vhd secret.vhd
	chmod 600 secret.vhd
	(
		expect_fail as_nobody $VHDTOOL info secret.vhd
		echo "$ERR" | grep -q "secret.vhd" && echo "$ERR" | grep -qi "permission denied" ||
			die "unreadable image: $ERR"
		as_nobody $VHDTOOL check secret.vhd >check.out 2>&1
		rc=$?
		[ "$rc" -eq 2 ] || die "check of an unreadable image: exit $rc, want 2: $(cat check.out)"
		[ "$(sum secret.vhd)" = "$vhd_sum" ] || die "secret.vhd changed"
		echo "ok: unreadable image refused, check exit 2"
	) || failed+=("unreadable image")
else
	echo "NOTE: cannot run vhdtool as nobody here: permission cases not tested"
fi

[ "$ran" -eq 1 ] || skip "no way to make a read-only file for root here"
[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: ${failed[*]}"
echo "all cases passed"
