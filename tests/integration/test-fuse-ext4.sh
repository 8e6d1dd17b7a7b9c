#!/usr/bin/env bash
# test-fuse-ext4.sh -- a file system inside a VHD, through vhdtool mount:
#  - vhdtool mount (read-write) of a fresh 128 MiB dynamic VHD; a loop
#    device on MOUNTPOINT/disk; mkfs.ext4 (which also discards the whole
#    device: hole punching through FUSE); mount; files of several sizes
#    (1 byte to 24 MiB, random, in folders) with known checksums; unmount,
#    detach, vhdtool umount (waits for the final flush);
#  - vhdtool check of the image is clean, the image is sparse (fewer blocks
#    allocated than the disk has);
#  - a fresh vhdtool mount and loop device: e2fsck -fn finds the file
#    system clean, every file has its checksum; check still clean.
. "$TOP/tests/functions.sh"
requires_root
requires losetup mkfs.ext4 e2fsck fusermount3 mountpoint
[ -c /dev/fuse ] || skip "no /dev/fuse"

MNT=$T/vhd	# vhdtool mount point
FS=$T/fs	# the ext4 inside
LOOP=

cleanup() {
	mountpoint -q "$FS" && umount "$FS"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	mountpoint -q "$MNT" && { $VHDTOOL umount "$MNT" || fusermount3 -u "$MNT"; }
	return 0
}
trap 'cleanup; rm -rf "$T"' EXIT

# wait_for COND_CMD...: poll (up to 10 s) until the command succeeds.
wait_for() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
loop_gone() { [ -z "$(losetup -j "$MNT/disk" 2>/dev/null)" ]; }

# attach: vhdtool mount d.vhd and a loop device on its disk file.
attach() {
	$VHDTOOL mount d.vhd "$MNT" >mount.out 2>&1 || die "vhdtool mount failed: $(cat mount.out)"
	mountpoint -q "$MNT" || die "vhdtool mount returned, but $MNT is not a mount point"
	[ "$(stat -c %s "$MNT/disk")" -eq $((128 << 20)) ] || die "$MNT/disk has size $(stat -c %s "$MNT/disk")"
	LOOP=$(losetup -f --show "$MNT/disk") || die "losetup on the FUSE file failed"
}
# detach: loop device off, then vhdtool umount (which waits for the flush).
detach() {
	losetup -d "$LOOP" || die "losetup -d $LOOP failed"
	LOOP=
	wait_for loop_gone || die "the loop device still holds $MNT/disk"
	$VHDTOOL umount "$MNT" >umount.out 2>&1 || die "vhdtool umount failed: $(cat umount.out)"
	! mountpoint -q "$MNT" || die "$MNT is still mounted after vhdtool umount"
}

$VHDTOOL create -q --size 128M d.vhd || die "create failed"
mkdir -p "$MNT" "$FS"

attach
mkfs.ext4 -q -F "$LOOP" >mkfs.out 2>&1 || die "mkfs.ext4 through the FUSE file failed: $(cat mkfs.out)"
mount -t ext4 "$LOOP" "$FS" || die "mounting the new ext4 failed"
mkdir -p "$FS/a/b/c"
head -c 1 /dev/urandom >"$FS/one"
head -c 4097 /dev/urandom >"$FS/a/page-plus-one"
head -c $((3 << 20)) /dev/urandom >"$FS/a/b/three-mib"
head -c $((24 << 20)) /dev/urandom >"$FS/a/b/c/big"
for i in $(seq 1 50); do head -c $((i * 1000)) /dev/urandom >"$FS/a/small-$i"; done
(cd "$FS" && find . -type f | sort | xargs md5sum) >files.md5
[ "$(wc -l <files.md5)" -eq 54 ] || die "test bug: $(wc -l <files.md5) files"
umount "$FS" || die "unmounting the ext4 failed"
detach
echo "ok: mkfs.ext4, 54 files written, everything unmounted"

$VHDTOOL check d.vhd >check.out 2>&1 || die "vhdtool check after the first session: $(cat check.out)"
alloc=$($VHDTOOL info --json d.vhd | sed -n 's/.*"blocks_allocated": \([0-9]*\).*/\1/p' | head -n1)
[ -n "$alloc" ] && [ "$alloc" -gt 0 ] && [ "$alloc" -lt 64 ] ||
	die "blocks_allocated is '$alloc' of 64 after mkfs (discarded) and ~28 MiB of files"
echo "ok: check clean, $alloc of 64 blocks allocated"

attach
e2fsck -fn "$LOOP" >fsck.out 2>&1 || die "e2fsck -fn after a remount: exit $?: $(cat fsck.out)"
mount -t ext4 -o ro "$LOOP" "$FS" || die "mounting the ext4 again failed"
(cd "$FS" && md5sum -c --quiet "$T/files.md5") >md5.out 2>&1 || die "files changed: $(cat md5.out)"
umount "$FS" || die "unmounting the ext4 failed"
detach
$VHDTOOL check d.vhd >check.out 2>&1 || die "vhdtool check after the second session: $(cat check.out)"
echo "ext4 through vhdtool mount as expected"
