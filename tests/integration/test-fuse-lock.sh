#!/usr/bin/env bash
# test-fuse-lock.sh -- one writer per image, readers beside it, hole punching:
#  - while a read-write vhdtool mount holds an image, a second read-write
#    mount of it (at another mount point) fails with exactly one line on
#    stderr mentioning "in use", and mounts nothing; the first mount still
#    works;
#  - a --readonly mount beside the writer succeeds and reads the same bytes
#    (data from vhdtool write before the mount, and data written through
#    the writer's file and fsync'ed before the reader was mounted);
#  - fallocate --punch-hole on the writer's file (a partial range, and
#    whole blocks across a block boundary): the ranges read zeros at once,
#    the bytes around them are unchanged; after vhdtool umount the image
#    holds the same bytes (vhdtool read), the whole blocks punched are no
#    longer allocated, and check is clean;
#  - vhdtool umount returns only once the image is free: a writer right
#    after it gets the lock (up to 20 mount/umount cycles in quick
#    succession).
. "$TOP/tests/functions.sh"
requires_root
requires fallocate fusermount3 mountpoint
[ -c /dev/fuse ] || skip "no /dev/fuse"

M=$((1 << 20))
BS=$((2 * M))
SIZE=$((64 * M))
RW=$T/rw RW2=$T/rw2 RO=$T/ro

cleanup() {
	local m
	for m in "$RO" "$RW2" "$RW"; do
		mountpoint -q "$m" && { $VHDTOOL umount "$m" || fusermount3 -u "$m"; }
	done
	return 0
}
trap 'cleanup; rm -rf "$T"' EXIT

blocks_allocated() {
	$VHDTOOL info --json "$1" | sed -n 's/.*"blocks_allocated": \([0-9]*\).*/\1/p' | head -n1
}
# put FILE OFFSET SRC: SRC's bytes into FILE at OFFSET (no truncation).
put() { dd if="$3" of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc,fsync status=none; }

mkdir -p "$RW" "$RW2" "$RO"
$VHDTOOL create -q --size "$SIZE" d.vhd || die "create failed"
truncate -s "$SIZE" want.raw
head -c $((12 * M)) /dev/urandom >a.bin
$VHDTOOL write --offset "$M" d.vhd a.bin >/dev/null || die "vhdtool write failed"
put want.raw "$M" a.bin

# 1. The writer.
$VHDTOOL mount d.vhd "$RW" >mount.out 2>&1 || die "vhdtool mount failed: $(cat mount.out)"
mountpoint -q "$RW" || die "$RW is not a mount point"
cmp want.raw "$RW/disk" || die "the read-write mount does not show the image's data"

# 2. A second writer is refused, in one line, and mounts nothing.
img_sum=$(sum d.vhd)
expect_fail $VHDTOOL mount d.vhd "$RW2"
echo "$ERR" | grep -qi "in use" || die "the refusal does not say 'in use': $ERR"
! mountpoint -q "$RW2" || die "the refused mount left $RW2 mounted"
expect_fail $VHDTOOL mount d.vhd "$RW"
echo "$ERR" | grep -qi "in use" || die "mounting again over the writer: no 'in use': $ERR"
[ "$(sum d.vhd)" = "$img_sum" ] || die "the refused mounts changed the image"
cmp want.raw "$RW/disk" || die "the writer's mount changed after a refused second mount"
echo "ok: a second read-write mount is refused: $ERR"

# 3. Data through the writer, fsync'ed; then a reader beside it.
head -c $((3 * M + 4096)) /dev/urandom >b.bin
put "$RW/disk" $((30 * M - 4096)) b.bin || die "writing through the mount failed"
put want.raw $((30 * M - 4096)) b.bin
$VHDTOOL mount --readonly d.vhd "$RO" >mount.out 2>&1 ||
	die "a --readonly mount beside the writer failed: $(cat mount.out)"
mountpoint -q "$RO" || die "$RO is not a mount point"
cmp want.raw "$RO/disk" || die "the read-only mount beside the writer reads different data"
cmp "$RW/disk" "$RO/disk" || die "the two mounts read differently"
if dd if=/dev/zero of="$RO/disk" bs=4k count=1 conv=notrunc status=none 2>/dev/null; then
	die "writing to the read-only mount's file succeeded"
fi
$VHDTOOL umount "$RO" >umount.out 2>&1 || die "vhdtool umount of the reader failed: $(cat umount.out)"
echo "ok: a read-only mount beside the writer reads the same data"

# 4. Punch holes through the writer: a partial range inside a block, and
# [4 MiB - 8 KiB, 10 MiB + 512) which holds whole blocks 2, 3 and 4.
fallocate --punch-hole --offset $((M + 12345 - 12345 % 512)) --length 70000 "$RW/disk" ||
	die "fallocate --punch-hole (partial) failed"
head -c 70000 /dev/zero >z1.bin
put want.raw $((M + 12345 - 12345 % 512)) z1.bin
fallocate --punch-hole --offset $((4 * M - 8192)) --length $((6 * M + 8192 + 512)) "$RW/disk" ||
	die "fallocate --punch-hole (blocks) failed"
head -c $((6 * M + 8192 + 512)) /dev/zero >z2.bin
put want.raw $((4 * M - 8192)) z2.bin
cmp want.raw "$RW/disk" || die "after punching holes the mount does not read zeros there (or changed other bytes)"
$VHDTOOL umount "$RW" >umount.out 2>&1 || die "vhdtool umount failed: $(cat umount.out)"
$VHDTOOL read d.vhd >after.raw || die "vhdtool read failed"
cmp want.raw after.raw || die "after unmounting, the image does not hold the punched zeros"
# Written: blocks 0-6 (1-13 MiB) and 14-16 (30 MiB - 4 KiB .. 33 MiB);
# blocks 2, 3 and 4 lie wholly in the punched range: 7 remain.
after=$(blocks_allocated d.vhd)
[ "$after" = 7 ] || die "blocks_allocated is '$after' after punching 3 of 10 blocks, want 7"
$VHDTOOL check d.vhd >check.out 2>&1 || die "vhdtool check: $(cat check.out)"
echo "ok: punched ranges read zeros, 3 whole blocks deallocated"

# 5. vhdtool umount returns only when the daemon has let go of the image:
# right after it, a writer gets the lock -- also when umount follows mount
# at once (the window in which a just-started daemon is still settling).
head -c 512 /dev/urandom >s.bin
# The race is narrow (about 1 cycle in 8 here): up to 20 cycles, 30 s.
cycles=0
SECONDS=0
for i in $(seq 20); do
	[ "$SECONDS" -lt 30 ] || break
	cycles=$i
	$VHDTOOL mount d.vhd "$RW" >mount.out 2>&1 || die "cycle $i: vhdtool mount failed: $(cat mount.out)"
	$VHDTOOL umount "$RW" >umount.out 2>&1 || die "cycle $i: vhdtool umount failed: $(cat umount.out)"
	$VHDTOOL write --offset $((i * 512)) d.vhd s.bin >write.out 2>&1 ||
		die "cycle $i: right after vhdtool mount + vhdtool umount returned, a writer cannot open the image: $(cat write.out)"
done
$VHDTOOL check d.vhd >check.out 2>&1 || die "vhdtool check: $(cat check.out)"
echo "ok: the image is free as soon as vhdtool umount returns ($cycles cycles)"
echo "FUSE locking and hole punching as expected"
