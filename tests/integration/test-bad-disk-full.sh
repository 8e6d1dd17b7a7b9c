#!/usr/bin/env bash
# test-bad-disk-full.sh -- a full filesystem (DESIGN "Bad input": disk full
# during a write or a convert -- the source is never touched; a partial
# output is removed or marked).
#  - A 4 MiB random source (raw, and dynamic VHD) converted into a 2 MiB tmpfs
#    as a dynamic VHD, a fixed VHD and a raw file: each fails with one line
#    naming the output, the cause (no space) and that the partial output was
#    removed; the output is gone and the source unchanged.
#  - A write into an image on a full filesystem fails with one line; the
#    image still checks clean and keeps the data written before.
#  - A file already at DST is never overwritten or removed.
# Needs root and a working `mount -t tmpfs`; skips otherwise.
. "$TOP/tests/functions.sh"
requires_root
requires mount umount

mkdir full
mount -t tmpfs -o size=2m vhdkit-test-full "$T/full" 2>mount.err ||
	skip "cannot mount a tmpfs here: $(cat mount.err)"
trap 'umount "$T/full" 2>/dev/null; rm -rf "$T"' EXIT

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1M count=4 status=none
$VHDTOOL convert -q -O vhd --block-size 512K src.raw src.vhd || die "convert failed"
raw_sum=$(sum src.raw) vhd_sum=$(sum src.vhd)
failed=()

for src in src.raw src.vhd; do
	for out in dyn.vhd:dynamic fixed.vhd:fixed flat.img:raw; do
		name=${out%%:*} kind=${out#*:}
		(
			case $kind in
			raw) opts="-O raw" ;;
			*) opts="-O vhd --type $kind" ;;
			esac
			expect_fail $VHDTOOL convert -q $opts "$src" "full/$name"
			echo "$ERR" | grep -q "full/$name" || die "$src -> $kind: message does not name the output: $ERR"
			echo "$ERR" | grep -qi "no space" || die "$src -> $kind: message lacks the cause: $ERR"
			echo "$ERR" | grep -qi "removed" || die "$src -> $kind: message does not say the output was removed: $ERR"
			[ ! -e "full/$name" ] || die "$src -> $kind: partial output full/$name left behind"
			[ -z "$(ls -A full)" ] || die "$src -> $kind: files left in the full filesystem: $(ls -A full)"
			[ "$(sum src.raw)" = "$raw_sum" ] && [ "$(sum src.vhd)" = "$vhd_sum" ] ||
				die "$src -> $kind: the source changed"
			echo "ok: $src -> $kind on a full disk"
		) || failed+=("$src -> $kind")
	done
done

# The same conversion fits once there is room: the failure was the space.
umount "$T/full"
mount -t tmpfs -o size=16m vhdkit-test-full "$T/full" || die "remount failed"
$VHDTOOL convert -q -O vhd --type fixed src.vhd full/fixed.vhd || die "convert with room failed"
$VHDTOOL convert -q full/fixed.vhd back.img && cmp src.raw back.img || die "converted data differs"

# A write that runs out of space: one line with the cause; the image stays
# consistent (opens, check finds no error) and keeps the data written before.
(
	$VHDTOOL create -q --size 16M --block-size 512K full/w.vhd || die "create failed"
	head -c 1M /dev/urandom >first.bin
	$VHDTOOL write full/w.vhd first.bin || die "first write failed"
	dd if=/dev/zero of=full/filler bs=1M count=13 status=none 2>/dev/null
	head -c 6M /dev/urandom >big.bin
	expect_fail $VHDTOOL write --offset 4M full/w.vhd big.bin
	echo "$ERR" | grep -q "full/w.vhd" && echo "$ERR" | grep -qi "no space" ||
		die "write on a full disk: message lacks the image or the cause: $ERR"
	rm -f full/filler
	$VHDTOOL check full/w.vhd >check.out 2>&1 || die "image after a failed write: check exit $?: $(cat check.out)"
	$VHDTOOL read --length 1M full/w.vhd | cmp -s - first.bin || die "data written before the failure is gone"
	echo "ok: write on a full disk"
) || failed+=("write on a full disk")

# DST exists: refused, and the existing file is neither changed nor removed.
cp src.vhd existing.vhd
(
	expect_fail $VHDTOOL convert -q src.raw existing.vhd
	echo "$ERR" | grep -qi "exists" || die "convert over an existing file: $ERR"
	expect_fail $VHDTOOL convert -q src.vhd src.vhd
	expect_fail $VHDTOOL snapshot -q src.vhd existing.vhd
	expect_fail $VHDTOOL create -q --size 1M existing.vhd
	[ "$(sum existing.vhd)" = "$vhd_sum" ] && [ "$(sum src.vhd)" = "$vhd_sum" ] ||
		die "an existing output was modified"
	echo "ok: existing outputs are left alone"
) || failed+=("existing output")

[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: ${failed[*]}"
echo "all cases passed"
