#!/usr/bin/env bash
# test-maint-resize-merge.sh -- resize and merge checked by other readers: a
# raw mirror resized with truncate is what the image must read (vhdtool
# compare, qemu-img compare -f vpc / -f vhdx), and vhdtool check and
# qemu-img check (VHDX) pass after each step: VHD grow within the BAT, grow
# past it (the BAT moves), forced shrink; VHDX grow and forced shrink; a
# merge of a three-layer chain into its base (VHD and VHDX).
. "$TOP/tests/functions.sh"
requires qemu-img

verify() {	# verify IMAGE MIRROR FMT
	local qf=$([ "$3" = vhd ] && echo vpc || echo vhdx)
	$VHDTOOL compare --strict "$2" "$1" >/dev/null || die "$1 differs from $2"
	qemu-img compare -q -f raw -F $qf "$2" "$1" || die "qemu-img compare $2 $1 failed"
	[ "$(qemu-img info -f $qf --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" = \
	  "$(stat -c %s "$2")" ] || die "qemu-img sees another size for $1"
	$VHDTOOL check -q "$1" || die "$1 not clean: $($VHDTOOL check "$1")"
	[ $qf = vpc ] || qemu-img check -q -f vhdx "$1" || die "qemu-img check $1 failed"
}

for fmt in vhd vhdx; do
	mkrandom m.$fmt.raw 8
	$VHDTOOL convert -q -O $fmt --block-size 1M m.$fmt.raw r.$fmt
	verify r.$fmt m.$fmt.raw $fmt
	for size in 12M 40M 5M 3M; do
		$VHDTOOL resize -q --force --size $size r.$fmt || die "resize $fmt to $size failed"
		truncate -s $size m.$fmt.raw
		verify r.$fmt m.$fmt.raw $fmt
		echo "ok: $fmt resized to $size"
	done
	# Written after the resizes, read back by qemu.
	$VHDTOOL write --offset 2M r.$fmt <(head -c 100000 /dev/urandom | tee w.bin) >/dev/null
	dd if=w.bin of=m.$fmt.raw bs=1K seek=2048 conv=notrunc status=none
	verify r.$fmt m.$fmt.raw $fmt

	# Merge base <- mid <- top into base.
	mkrandom base.$fmt.raw 6
	$VHDTOOL convert -q -O $fmt base.$fmt.raw base.$fmt
	$VHDTOOL snapshot base.$fmt mid.$fmt >/dev/null
	$VHDTOOL write --offset 1M mid.$fmt <(head -c 1500000 /dev/urandom) >/dev/null
	$VHDTOOL snapshot mid.$fmt top.$fmt >/dev/null
	$VHDTOOL write --offset 3M top.$fmt <(head -c 700000 /dev/urandom) >/dev/null
	$VHDTOOL read -o want.raw top.$fmt
	$VHDTOOL merge -q --into base.$fmt --delete top.$fmt || die "merge $fmt failed"
	verify base.$fmt want.raw $fmt
	echo "ok: $fmt merge"
done
echo "all resize and merge cases passed"
