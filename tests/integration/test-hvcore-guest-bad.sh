#!/usr/bin/env bash
# test-hvcore-guest-bad.sh -- the test guest (tests/guests/, test=bad)
# puts malformed descriptor chains into disk 0's queue: a head index and a
# next index out of range, a two-descriptor loop, a loop through the whole
# ring, more than 4 GiB in one chain, buffers at 1 TiB, past and across the
# end of RAM, a status byte at 1 TiB, a short header; also (reported only)
# a legal chain as long as the queue and avail->idx 1000 entries ahead.
# Each must end in IOERR or NEEDS_RESET (hvcore-contract.md, "Request
# errors"), after which the device, reset, must serve a normal read; at the
# end every disk takes a normal write and read.
#
# The VMM must survive all of it: it exits 0 on the guest's i8042 reset,
# not by a signal or a timeout, and the guest reports PASS.  The images
# then hold exactly the guest's normal writes (nothing from the bad
# requests) and pass `vhdtool check`.
#
# Skips until hvcore/hvcore is built.  GUEST_VMM=qemu runs it under QEMU
# with lenient=1: QEMU is not bound by the contract (its DMA to addresses
# that are not RAM completes), so the guest reports those cases only.
. "$TOP/tests/functions.sh"
. "$TOP/tests/guests/vmm.sh"
guest_requires
trap 'guest_stop_nbdkit; rm -rf "$T"' EXIT

size=$((40 * 1024 * 1024))
seed=$((RANDOM + 1))
$VHDTOOL create -q --format vhd --type dynamic --block-size 2M --size $size bad.vhd || die "create exit $?"
truncate -s $size bad.raw
truncate -s $size zero.init

cmdline="test=bad seed=$seed disks=2 tsc_khz=$(guest_tsc_khz)"
[ "$GUEST_VMM" = qemu ] && cmdline="$cmdline lenient=1"
guest_run "$cmdline" console.txt 300 "$T/bad.vhd" "$T/bad.raw"
guest_verdict console.txt

ncases=$(tr -d '\r' <console.txt | grep -ac '^GUEST bad: .*: \(ok\|unexpected, reported only\)$')
[ "$ncases" -eq 12 ] || die "the guest reported $ncases of 12 bad-request cases"
tr -d '\r' <console.txt | grep -a '^GUEST bad: ' | grep -a 'UNEXPECTED' && die "unexpected outcomes (above)"
echo "ok: 12 bad-request cases reported, the device recovered after each"

i=0
for img in bad.vhd bad.raw; do
	guest_expect --bad console.txt $i zero.init want$i.raw
	$VHDTOOL read -o got$i.raw "$img" || die "$img: vhdtool read exit $?"
	cmp got$i.raw want$i.raw || die "$img: holds more (or less) than the guest's normal write"
	i=$((i + 1))
done
$VHDTOOL check bad.vhd >check.out 2>&1 || die "bad.vhd: check exit $?: $(cat check.out)"
echo "ok: the images hold exactly the normal writes; bad.vhd checks clean"
