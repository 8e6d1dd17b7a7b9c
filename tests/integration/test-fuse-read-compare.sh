#!/usr/bin/env bash
# test-fuse-read-compare.sh -- what a read-only vhdtool mount shows:
#  - for a dynamic and a fixed VHD (not differencing), MOUNTPOINT/disk is
#    byte for byte what qemu-img convert -f vpc -O raw makes of the image;
#  - for a chain (a base with data and a child with vhdtool write overlays),
#    it is what vhdtool convert flattens the chain to, and --snapshot 1
#    shows the base alone;
#  - SEEK_DATA/SEEK_HOLE on MOUNTPOINT/disk (tests/helpers/seekmap) list
#    exactly the allocated runs: the base's whole 512 KiB blocks, plus the
#    child's sector runs (a differencing block is present sector by
#    sector); the expected lists are built from the writes.
# Two read-only mounts of one chain are open at the same time.
. "$TOP/tests/functions.sh"
requires_root
requires qemu-img fusermount3 mountpoint
[ -c /dev/fuse ] || skip "no /dev/fuse"
SEEKMAP=$TOP/tests/helpers/seekmap
[ -x "$SEEKMAP" ] || skip "tests/helpers/seekmap is not built (make tests/helpers/seekmap)"

MNTS=()
cleanup() {
	local m
	for m in "${MNTS[@]}"; do
		mountpoint -q "$m" && { $VHDTOOL umount "$m" || fusermount3 -u "$m"; }
	done
	return 0
}
trap 'cleanup; rm -rf "$T"' EXIT

K=1024
M=$((1 << 20))
BS=$((512 * K))
SIZE=$((40 * M + 3 * 512))	# 80 whole blocks and a 1.5 KiB tail block

# mount_ro IMAGE MOUNTPOINT [OPTIONS...]
mount_ro() {
	local img=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	MNTS+=("$mnt")
	$VHDTOOL mount --readonly "$@" "$img" "$mnt" >mount.out 2>&1 ||
		die "vhdtool mount --readonly $* $img failed: $(cat mount.out)"
	mountpoint -q "$mnt" || die "$mnt is not a mount point after vhdtool mount"
}
umount_ok() {
	$VHDTOOL umount "$1" >umount.out 2>&1 || die "vhdtool umount $1 failed: $(cat umount.out)"
}
write_at() {	# write_at IMAGE OFFSET LENGTH: random bytes with vhdtool write
	head -c "$3" /dev/urandom >chunk.bin
	$VHDTOOL write --offset "$2" "$1" chunk.bin >/dev/null || die "vhdtool write $1 at $2 failed"
}
# data_runs < "START LENGTH" lines: merged, sorted "START LENGTH" runs.
data_runs() {
	sort -n -k1,1 | awk '{ s = $1; e = $1 + $2
		if (n && s <= ce) { if (e > ce) ce = e; next }
		if (n) print cs, ce - cs
		cs = s; ce = e; n = 1 }
		END { if (n) print cs, ce - cs }'
}
# seek_check FILE WANT_RUNS WHAT
seek_check() {
	"$SEEKMAP" "$1" >seek.got 2>seek.err || die "$3: seekmap failed: $(cat seek.err)"
	diff -u "$2" seek.got >seek.diff || die "$3: SEEK_DATA/SEEK_HOLE runs differ (- want, + got):
$(cat seek.diff)"
	echo "ok: $3: $(wc -l <seek.got) data runs by SEEK_DATA/SEEK_HOLE"
}

# Base: whole blocks of random data (the tail block too), then a fixed copy.
$VHDTOOL create -q --size "$SIZE" --block-size 512K base.vhd || die "create failed"
: >base.runs
for blk in 0 3 4 5 17 40 79; do
	write_at base.vhd $((blk * BS)) "$BS"
	echo "$((blk * BS)) $BS" >>base.runs
done
write_at base.vhd $((80 * BS)) 1536
echo "$((80 * BS)) 1536" >>base.runs
data_runs <base.runs >base.want
$VHDTOOL convert -q -O vhd --type fixed base.vhd fixed.vhd || die "convert to fixed failed"

# 1. Non-differencing images: the mount equals qemu's reading of them.
for img in base fixed; do
	qemu-img convert -f vpc -O raw $img.vhd $img.qemu.raw || die "qemu-img convert $img.vhd failed"
	[ "$(stat -c %s $img.qemu.raw)" -eq "$SIZE" ] || die "qemu sees $img.vhd as $(stat -c %s $img.qemu.raw) bytes"
	mount_ro $img.vhd "$T/m-$img"
	[ "$(stat -c %s "$T/m-$img/disk")" -eq "$SIZE" ] || die "the $img mount's disk is $(stat -c %s "$T/m-$img/disk") bytes"
	cmp $img.qemu.raw "$T/m-$img/disk" || die "the $img mount differs from qemu-img convert"
	echo "ok: $img.vhd mounted = qemu-img convert"
done
seek_check "$T/m-base/disk" base.want "dynamic base"
umount_ok "$T/m-base"
umount_ok "$T/m-fixed"

# 2. The chain: child overlays in a block the base lacks, over base data,
# across a block boundary, one sector, a whole block, in the tail block.
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
cp base.runs child.runs
for run in "$((10 * M + 4096)) 65536" "$((2 * M - 8192)) 8192" "$((8 * M - 65536)) 131072" \
	   "$((30 * M + 512)) 512" "$((25 * BS)) $BS" "$((40 * M + 512)) 512"; do
	set -- $run
	write_at child.vhd "$1" "$2"
	echo "$1 $2" >>child.runs
done
data_runs <child.runs >child.want
$VHDTOOL convert -q child.vhd child.flat.img || die "vhdtool convert of the chain failed"

mount_ro child.vhd "$T/m-child"
mount_ro child.vhd "$T/m-layer1" --snapshot 1
cmp child.flat.img "$T/m-child/disk" || die "the chain mount differs from vhdtool convert"
cmp base.qemu.raw "$T/m-layer1/disk" || die "the --snapshot 1 mount differs from the base"
! cmp -s child.flat.img base.qemu.raw || die "test bug: the child's overlays changed nothing"
echo "ok: chain mounted = vhdtool convert; --snapshot 1 = the base"
seek_check "$T/m-child/disk" child.want "chain"
seek_check "$T/m-layer1/disk" base.want "--snapshot 1"
umount_ok "$T/m-child"
umount_ok "$T/m-layer1"
echo "read-only mounts as expected"
