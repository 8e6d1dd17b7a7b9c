#!/usr/bin/env bash
# test-maint-keep-chain.sh -- vhdtool convert --keep-chain: a VHD chain of
# three layers (data, zeros over parent data, a sub-sector write) converted
# layer by layer into VHDX (into a folder) and into VHD (with a prefix).
# Each output layer reads as its source layer (vhdtool compare, cmp of
# vhdtool read) and checks clean; the outputs form a chain of their format;
# the top read flat compares equal with qemu-img compare, and the VHDX base
# passes qemu-img check (qemu reads no differencing VHDX, and its vpc driver
# ignores VHD parents).  Bad inputs: one line, non-zero exit, no outputs.
. "$TOP/tests/functions.sh"
requires qemu-img

$VHDTOOL create -q --size 8M base.vhd
$VHDTOOL write --offset 0 base.vhd <(head -c 3M /dev/urandom) >/dev/null
$VHDTOOL snapshot base.vhd s1.vhd >/dev/null
$VHDTOOL write --offset 1M s1.vhd <(head -c 1000000 /dev/urandom) >/dev/null
$VHDTOOL write --offset 4096 s1.vhd <(head -c 8192 /dev/zero) >/dev/null
$VHDTOOL snapshot s1.vhd s2.vhd >/dev/null
$VHDTOOL write --offset 5M s2.vhd <(head -c 777 /dev/urandom) >/dev/null
for l in base s1 s2; do $VHDTOOL read -o $l.raw $l.vhd; done

mkdir out
$VHDTOOL convert --keep-chain -O vhdx s2.vhd out/ || die "convert --keep-chain to a folder failed"
$VHDTOOL convert --keep-chain s2.vhd pre- || die "convert --keep-chain with a prefix failed"
i=0
for l in base s1 s2; do
	for f in out/$l.vhdx pre-$i.vhd; do
		$VHDTOOL compare $l.raw $f >/dev/null || die "$f differs from layer $l"
		$VHDTOOL read -o got.raw $f && cmp -s got.raw $l.raw || die "$f reads differently from $l"
		$VHDTOOL check -q $f || die "$f not clean: $($VHDTOOL check $f)"
	done
	i=$((i + 1))
done
$VHDTOOL info --tree out/s2.vhdx | tee tree.out
[ "$(grep -c 'vhdx differencing' tree.out)" -eq 2 ] && grep -q 'vhdx dynamic' tree.out ||
	die "out/ is not a VHDX chain of three"
$VHDTOOL info --tree pre-2.vhd | grep -c 'vhd differencing' | grep -qx 2 || die "pre- is not a VHD chain"
qemu-img check -q -f vhdx out/base.vhdx || die "qemu-img check out/base.vhdx failed"
qemu-img compare -q -f raw -F vhdx base.raw out/base.vhdx || die "qemu-img compare of the base failed"
$VHDTOOL convert -q out/s2.vhdx flat.vhdx
qemu-img compare -q -f raw -F vhdx s2.raw flat.vhdx || die "qemu-img compare of the top (flattened) failed"
qemu-img compare -q -f raw -F vpc base.raw pre-0.vhd || die "qemu-img compare of the VHD base failed"

# Bad inputs.
expect_fail $VHDTOOL convert --keep-chain -O raw s2.vhd raw-
ls raw-* 2>/dev/null && die "a refused --keep-chain left outputs"
expect_fail $VHDTOOL convert --keep-chain -O vhdx s2.vhd out/
echo "$ERR" | grep -qF "out/base.vhdx" || die "existing output: message does not name it: $ERR"
$VHDTOOL check -q out/s2.vhdx || die "a refused --keep-chain damaged the existing outputs"
expect_fail $VHDTOOL convert --keep-chain s2.vhd nodir/x-
ls nodir 2>/dev/null && die "outputs in a missing folder"
echo "all keep-chain cases passed"
