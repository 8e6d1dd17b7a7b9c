#!/usr/bin/env bash
# test-maint-compact.sh -- vhdtool compact against an independent model: a
# raw mirror written with the same data (dd), compared with vhdtool compare,
# cmp of vhdtool read, and qemu-img compare (-f vpc / -f vhdx); then vhdtool
# check and qemu-img check (VHDX; qemu's vpc driver has no check).  Dynamic
# and differencing VHD and VHDX: all-zero blocks dropped, blocks equal to
# the parent dropped, an all-zero block over parent data kept (VHD) or
# marked ZERO (VHDX), the file shrinks, a compacted parent keeps its child
# valid.  Bad inputs: one line naming the file, non-zero exit, unchanged.
. "$TOP/tests/functions.sh"
requires qemu-img

# put IMAGE MIRROR OFFSET_KIB FILE: the same bytes into the image and the mirror
put() {
	$VHDTOOL write --offset "$3K" "$1" "$4" >/dev/null || die "write $1 at $3K failed"
	dd if="$4" of="$2" bs=1K seek="$3" conv=notrunc status=none
}
same() {	# same IMAGE MIRROR QEMUFMT: every reader agrees with the mirror
	$VHDTOOL compare "$2" "$1" >/dev/null || die "$1 differs from $2 (vhdtool compare)"
	$VHDTOOL read -o "$1.read" "$1" && cmp -s "$1.read" "$2" || die "$1 reads differently from $2"
	rm -f "$1.read"
	[ -z "${3:-}" ] || qemu-img compare -q -f raw -F "$3" "$2" "$1" || die "qemu-img compare $2 $1 failed"
}
clean() {
	$VHDTOOL check -q "$1" || die "$1 does not check clean: $($VHDTOOL check "$1")"
	[ "${2:-}" != vhdx ] || qemu-img check -q -f vhdx "$1" || die "qemu-img check $1 failed"
}

head -c 1M /dev/urandom >data.bin
head -c 1M /dev/zero >zero.bin
head -c 300K /dev/urandom >small.bin

for fmt in vhd vhdx; do
	qf=$([ $fmt = vhd ] && echo vpc || echo vhdx)
	# Dynamic: data, zeros written (allocated all-zero blocks), data again.
	truncate -s 16M dyn.$fmt.raw
	$VHDTOOL create -q --format $fmt --size 16M --block-size 1M dyn.$fmt
	for k in 0 3 6 9; do put dyn.$fmt dyn.$fmt.raw $((k * 1024)) data.bin; done
	for k in 1 2 4 5 7 8 10 11; do put dyn.$fmt dyn.$fmt.raw $((k * 1024)) zero.bin; done
	put dyn.$fmt dyn.$fmt.raw $((14 * 1024 + 100)) small.bin
	same dyn.$fmt dyn.$fmt.raw $qf
	before=$(stat -c %s dyn.$fmt)
	$VHDTOOL compact --json dyn.$fmt >out.json || die "compact dyn.$fmt failed"
	cat out.json
	grep -q '"dropped": 8' out.json || die "dyn.$fmt: 8 all-zero blocks should be dropped"
	after=$(stat -c %s dyn.$fmt)
	[ "$after" -lt "$before" ] || die "dyn.$fmt did not shrink ($before -> $after)"
	same dyn.$fmt dyn.$fmt.raw $qf
	clean dyn.$fmt $fmt
	# Nothing left to do the second time.
	$VHDTOOL compact --json dyn.$fmt | grep -q '"dropped": 0, "zeroed": 0, "kept_zero": 0, "moved": 0' ||
		die "second compact of dyn.$fmt changed something"

	# Differencing: zeros over parent data, the parent's own bytes again,
	# new data, zeros over zeros.
	truncate -s 8M base.$fmt.raw
	$VHDTOOL create -q --format $fmt --size 8M --block-size 1M base.$fmt
	for k in 0 2 4; do put base.$fmt base.$fmt.raw $((k * 1024)) data.bin; done
	put base.$fmt base.$fmt.raw 5120 zero.bin	# for the parent's compact
	cp base.$fmt.raw top.$fmt.raw
	$VHDTOOL create -q --parent base.$fmt top.$fmt
	put top.$fmt top.$fmt.raw 0 zero.bin			# zeros over parent data
	dd if=base.$fmt.raw of=same.bin bs=1M skip=2 count=1 status=none
	put top.$fmt top.$fmt.raw 2048 same.bin			# the parent's bytes
	put top.$fmt top.$fmt.raw 3072 zero.bin			# zeros over zeros
	put top.$fmt top.$fmt.raw 6144 data.bin			# new data
	same top.$fmt top.$fmt.raw
	$VHDTOOL compact --json top.$fmt >out.json || die "compact top.$fmt failed"
	cat out.json
	grep -q '"dropped": [1-9]' out.json || die "top.$fmt: the block equal to the parent should go"
	if [ $fmt = vhd ]; then
		grep -q '"kept_zero": 1' out.json || die "top.vhd: the zero block over parent data must stay"
	else
		grep -q '"zeroed": 1' out.json || die "top.vhdx: the zero block over parent data must become ZERO"
	fi
	same top.$fmt top.$fmt.raw
	clean top.$fmt
	# Compacting the parent keeps the child linked (VHD UUID and VHDX
	# DataWriteGuid kept) and reading the same.
	$VHDTOOL compact --json base.$fmt >out.json || die "compact base.$fmt failed"
	grep -q '"dropped": 1' out.json || die "base.$fmt: its zero block should go: $(cat out.json)"
	same base.$fmt base.$fmt.raw $qf
	same top.$fmt top.$fmt.raw
	clean top.$fmt
done

# Bad inputs: one line naming the file, non-zero exit, nothing changed.
$VHDTOOL create -q --type fixed --size 4M fixed.vhd
$VHDTOOL create -q --format raw --size 4M disk.img
head -c 4M /dev/urandom >junk.vhd
cp dyn.vhd broken.vhd
printf 'XXXXXXXX' | dd of=broken.vhd bs=1 seek=$(( $(stat -c %s broken.vhd) - 512 )) conv=notrunc status=none
printf 'XXXXXXXX' | dd of=broken.vhd bs=1 seek=0 conv=notrunc status=none
for f in fixed.vhd disk.img junk.vhd broken.vhd; do
	s=$(sum $f)
	expect_fail $VHDTOOL compact $f
	echo "$ERR" | grep -qF "$f" || die "compact $f: message does not name the file: $ERR"
	[ "$(sum $f)" = "$s" ] || die "compact $f changed it"
done
expect_fail $VHDTOOL compact missing.vhd
echo "$ERR" | grep -qF missing.vhd || die "message does not name missing.vhd: $ERR"
# A differencing image without its parent (it decides what may drop).
mv base.vhd base.moved
s=$(sum top.vhd)
expect_fail $VHDTOOL compact top.vhd
echo "$ERR" | grep -q "top.vhd.*parent" || die "orphan: message does not say the parent is missing: $ERR"
[ "$(sum top.vhd)" = "$s" ] || die "compact changed an orphan"
echo "all compact cases passed"
