#!/usr/bin/env bash
# Pass-through of loop devices: refusal while mounted (naming the mount
# point), export over NBD with fio verification read back on the host,
# unaligned I/O on a 4096-byte-sector device, discard and zero reaching the
# device, and EROFS from a read-only device.
. "$TOP/tests/functions.sh"
requires_plugin
requires_root
requires losetup mkfs.ext4 mount nbdkit fio nbdsh
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin was not built"
LOOPS=()
cleanup() {
	mountpoint -q "$T/mnt" && umount "$T/mnt"
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
}
trap 'cleanup; rm -rf "$T"' EXIT
# attach VAR LOSETUP-ARGS...: sets VAR (no subshell, so cleanup sees LOOPS)
attach() {
	local var=$1 l; shift
	l=$(losetup -f --show "$@") || skip "cannot attach a loop device"
	LOOPS+=("$l"); printf -v "$var" %s "$l"
}

# 1. mounted: refused with the mount point named, by every entry point.
truncate -s 64M fs.img
attach L fs.img
mkfs.ext4 -q "$L"
mkdir -p mnt
mount "$L" mnt || skip "cannot mount ext4 here"
expect_fail "$VHDTOOL" read --length 512 "$L"
grep -q "mounted on $T/mnt" <<<"$ERR" || die "refusal does not name the mount point: $ERR"
expect_fail "$VHDTOOL" convert "$L" out.img
grep -q "mounted on" <<<"$ERR" || die "convert refusal: $ERR"
[ ! -e out.img ] || die "a refused convert left an output"
"$VHDTOOL" disks | grep -q "^$L .*no: .*mounted on $T/mnt" || die "disks does not explain: $("$VHDTOOL" disks)"
umount mnt
"$VHDTOOL" disks | grep -q "^$L .* yes" || die "unmounted device not shown usable"

# 2. exported over NBD, fio writes with verification, read back on the host.
truncate -s 64M data.img
attach L2 data.img
nbdkit -U - "$PLUGIN" device="$L2" --run "
	fio --name=pt --ioengine=nbd --uri=\"\$uri\" --rw=randwrite --bs=4k --iodepth=8 \
	    --size=32M --verify=crc32c --do_verify=1 --randrepeat=1 --output-format=terse >fio.out 2>&1
" || { cat fio.out; die "fio through the passed-through device failed"; }
losetup -d "$L2"; LOOPS=("${LOOPS[@]/$L2}")
# What fio wrote is on the device (the backing file): re-verify from it.
fio --name=pt --filename=data.img --rw=randwrite --bs=4k --size=32M --verify=crc32c \
    --verify_only=1 --randrepeat=1 --output-format=terse >fio2.out 2>&1 ||
	{ cat fio2.out; die "data written over NBD does not verify on the host"; }

# 3. 4096-byte sectors: unaligned writes and reads through the handle.
truncate -s 16M s4k.img
head -c 16M /dev/urandom > s4k.img
cp s4k.img mirror.img
attach L3 --sector-size 4096 s4k.img
"$VHDTOOL" disks | grep -q "^$L3 .* 4096  4096" || die "4K sector size not reported"
for spec in "1 100" "4095 2" "4096 4096" "5000 9000" "12287 70001"; do
	set -- $spec
	head -c "$2" /dev/urandom > piece
	"$VHDTOOL" write --offset "$1" "$L3" piece || die "write at $1 failed"
	dd if=piece of=mirror.img bs=1 seek="$1" conv=notrunc status=none
	cmp <("$VHDTOOL" read --offset "$1" --length "$2" "$L3") piece || die "read back at $1 differs"
done
cmp <("$VHDTOOL" read "$L3") mirror.img || die "device differs from the mirror after unaligned writes"

# 4. zero and trim reach the device (NBD zero -> BLKZEROOUT; trim -> BLKDISCARD).
# nbdsh: h.zero(COUNT, OFFSET).
nbdkit -U - "$PLUGIN" device="$L3" --run '
	nbdsh -u "$uri" -c "h.zero(4096, 1048576)" -c "h.zero(5000, 100)" -c "h.trim(8192, 2097152)"' ||
	die "zero/trim over NBD failed"
cmp -n 4096 <("$VHDTOOL" read --offset 1048576 --length 4096 "$L3") /dev/zero ||
	die "zeroed range does not read zeros"
cmp -n 5000 <("$VHDTOOL" read --offset 100 --length 5000 "$L3") /dev/zero || die "unaligned zero did not reach the device"
cmp -n 100 <("$VHDTOOL" read --offset 0 --length 100 "$L3") <(head -c 100 mirror.img) ||
	die "bytes next to an unaligned zero were damaged"

# 5. a read-only device refuses writes with EROFS.
truncate -s 8M ro.img
attach L4 -r ro.img
before=$(sum ro.img)
echo hello > small
expect_fail "$VHDTOOL" write "$L4" small
grep -qi "read-only" <<<"$ERR" || die "no read-only reason: $ERR"
out=$(nbdkit -U - "$PLUGIN" device="$L4" --run 'nbdsh -u "$uri" -c "print(h.is_read_only())"' 2>&1)
[ "$out" = "True" ] || die "read-only device not exported read-only: $out"
[ "$(sum ro.img)" = "$before" ] || die "read-only device changed"
echo "all pass-through checks passed"
