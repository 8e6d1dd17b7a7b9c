#!/usr/bin/env bash
# test-hvcore-guest-rw.sh -- the test guest (tests/guests/, test=rw) drives
# eight virtio-blk disks in one VM through the real transport, and the host
# then checks every image byte for byte:
#   0 dynamic VHD (2 MiB blocks)      4 raw file
#   1 top of a 3-deep VHD chain       5 loop device (512-byte sectors)
#   2 dynamic VHDX (32 MiB blocks)    6 loop device (4096-byte sectors)
#   3 VHDX with 4096-byte sectors     7 read-only dynamic VHD (",ro")
# All start with data in places (so a stray write shows).  The guest writes
# patterned data unaligned to the image blocks and across them, in
# scatter-gather requests and several at once, reads each back, flushes,
# discards, writes zeroes, asks GET_ID, and expects IOERR for writes to the
# read-only disk and past the end.  Afterwards: the guest's plan applied on
# the host to a raw copy of each disk's initial content (blkexpect) must
# equal the image, read by `vhdtool read` and by `qemu-img compare` where
# qemu can open the format (dynamic VHD, 512-byte-sector VHDX, raw);
# `vhdtool check` is clean; the chain's parents and the read-only disk are
# unchanged; GET_ID gave the image's base name.
#
# The VMM is hvcore; the test skips until hvcore/hvcore is built.
# GUEST_VMM=qemu runs the same under QEMU (VHD/VHDX through nbdkit).
. "$TOP/tests/functions.sh"
. "$TOP/tests/guests/vmm.sh"
guest_requires
requires qemu-img
requires_root
requires losetup

LOOPS=()
cleanup() {
	guest_stop_nbdkit
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
}
trap 'cleanup; rm -rf "$T"' EXIT

M=$((1024 * 1024))
size=$((72 * M + 24 * 1024))	# past 64 MiB, not a whole number of blocks
seed=$((RANDOM + 1))

# mkinit FILE: SIZE bytes with random data in a few places, holes elsewhere.
mkinit() {
	truncate -s $size "$1"
	local mib
	for mib in 1 7 13 31 33 45 71; do
		dd if=/dev/urandom of="$1" bs=64K count=3 seek=$((mib * 16 + 1)) conv=notrunc status=none
	done
}

# vhd_from RAW IMAGE CREATE-OPTIONS...: a new image holding RAW.
vhd_from() {
	local raw=$1 img=$2
	shift 2
	$VHDTOOL create -q "$@" --size $size "$img" || die "create $img: exit $?"
	$VHDTOOL write "$img" "$raw" >/dev/null || die "write $raw into $img: exit $?"
}

mkinit dyn.init && vhd_from dyn.init dyn.vhd --format vhd --type dynamic --block-size 2M
# The chain: base <- mid <- top, each layer with its own data.
mkinit base.init && vhd_from base.init base.vhd --format vhd --type dynamic --block-size 2M
$VHDTOOL snapshot -q base.vhd mid.vhd || die "snapshot base exit $?"
head -c 3M /dev/urandom | $VHDTOOL write --offset $((2 * M - 4096)) mid.vhd - >/dev/null || die "write mid"
$VHDTOOL snapshot -q mid.vhd top.vhd || die "snapshot mid exit $?"
head -c 1M /dev/urandom | $VHDTOOL write --offset $((20 * M + 512)) top.vhd - >/dev/null || die "write top"
$VHDTOOL read -o chain.init top.vhd || die "read top exit $?"
mkinit def.init && vhd_from def.init def.vhdx --format vhdx --type dynamic
mkinit 4k.init && vhd_from 4k.init 4k.vhdx --format vhdx --type dynamic --logical-sector 4096
mkinit plain.raw && cp plain.raw plain.init
mkinit loop512.img && cp loop512.img loop512.init
mkinit loop4k.img && cp loop4k.img loop4k.init
mkinit ro.init && vhd_from ro.init ro.vhd --format vhd --type dynamic --block-size 2M

L512=$(losetup -f --show loop512.img) || skip "cannot attach a loop device"
LOOPS+=("$L512")
L4K=$(losetup -f --show --sector-size 4096 loop4k.img) || skip "cannot attach a 4K loop device"
LOOPS+=("$L4K")

declare -A before
for f in base.vhd mid.vhd ro.vhd; do before[$f]=$(sum $f); done

disks=("$T/dyn.vhd" "$T/top.vhd" "$T/def.vhdx" "$T/4k.vhdx,lbs=4096" "$T/plain.raw"
       "$L512" "$L4K,lbs=4096" "$T/ro.vhd,ro")
inits=(dyn.init chain.init def.init 4k.init plain.init loop512.init loop4k.init ro.init)
names=(dyn.vhd top.vhd def.vhdx 4k.vhdx plain.raw "$(basename "$L512")" "$(basename "$L4K")" ro.vhd)

guest_run "test=rw seed=$seed disks=${#disks[@]} tsc_khz=$(guest_tsc_khz)" console.txt 600 "${disks[@]}"
guest_verdict console.txt

# What the guest saw of each disk.
for i in "${!disks[@]}"; do
	line=$(guest_disk_line console.txt $i) || exit 1
	want_blk=512
	[[ ${disks[$i]} == *lbs=4096* ]] && want_blk=4096
	grep -q " sectors=$((size / 512)) blk=$want_blk " <<<"$line" ||
		die "disk $i (${names[$i]}): want $((size / 512)) sectors of $want_blk bytes: $line"
	[[ $line == *" id=${names[$i]:0:20}" ]] || die "disk $i: GET_ID is not '${names[$i]:0:20}': $line"
	[[ $i -eq 7 ]] && [[ $line != *" ro=1 "* ]] && die "disk 7 is not read-only to the guest: $line"
done
grep -aq "^GUEST disk7: read-only: reads, write refused with IOERR: ok" console.txt ||
	die "the guest did not report the read-only disk refusing a write"
echo "ok: the guest saw 8 disks with the right sizes, sector sizes and serials"

# Each image equals its initial content plus the guest's plan.  qemu-img
# reads the formats it knows: not differencing VHDs, and not VHDX with
# 4096-byte logical sectors (qemu 7.2: "Operation not supported").
declare -A qfmt=([dyn.vhd]=vpc [def.vhdx]=vhdx [plain.raw]=raw [ro.vhd]=vpc)
for i in "${!disks[@]}"; do
	img=${disks[$i]%%,*} name=${names[$i]}
	guest_expect console.txt $i "${inits[$i]}" want$i.raw
	$VHDTOOL read -o got$i.raw "$img" || die "$name: vhdtool read exit $?"
	cmp got$i.raw want$i.raw || die "$name: the image differs from what the guest wrote"
	case $img in
	*.vhd|*.vhdx)
		$VHDTOOL check "$img" >check$i.out 2>&1 || die "$name: check exit $?: $(cat check$i.out)" ;;
	esac
	if [ -n "${qfmt[$name]:-}" ]; then
		qemu-img compare -q -f raw -F "${qfmt[$name]}" want$i.raw "$img" ||
			die "$name: qemu-img compare: differs (exit $?)"
	fi
	echo "ok: disk $i ($name) holds exactly what the guest wrote"
	rm -f got$i.raw
done
# The loop devices' backing files, as qemu-img sees them.
qemu-img compare -q -f raw -F raw want5.raw loop512.img || die "loop512.img differs"
qemu-img compare -q -f raw -F raw want6.raw loop4k.img || die "loop4k.img differs"

for f in base.vhd mid.vhd ro.vhd; do
	[ "$(sum $f)" = "${before[$f]}" ] || die "$f changed (a parent or a read-only disk)"
done
echo "ok: the chain's parents and the read-only disk are unchanged"
echo "all checks passed"
