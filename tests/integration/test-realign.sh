#!/usr/bin/env bash
# test-realign.sh -- the nbdkit plugin on a dynamic VHD made by qemu-img,
# whose block data starts one sector after each bitmap (off a 4 KiB page):
#  - by default a block taking a write below 64 KiB moves to a 4 KiB
#    aligned place; qemu-io writes (aligned, unaligned, across blocks, one
#    of 1 MiB), write-zeroes and discard through the plugin, then: qemu-img
#    compare with a raw mirror given the same writes, vhdtool check clean,
#    libvhdi's vhdiinfo opens it, every block that took a small write is
#    aligned, no other block moved, and the file allocates no more than
#    before (the old places were punched);
#  - fio random writes with crc32c verification across the whole disk
#    (many blocks moving while others are read and written), then a
#    verify-only pass in a new server and a clean check;
#  - realign=false changes no BAT entry;
#  - the FUSE mount moves the blocks written through it (the file reads as
#    a mirror given the same writes), and --keep-layout moves nothing.
. "$TOP/tests/functions.sh"
requires_plugin
requires qemu-img qemu-io fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built"

mkrandom src.raw 48
qemu-img convert -q -O vpc src.raw q.vhd || die "qemu-img convert to vpc failed"
cp --sparse=always q.vhd keep.vhd
cp --sparse=always q.vhd orig.vhd
N=$($PATCH q.vhd header max_table_entries) || die "vhdpatch cannot read q.vhd"

# entries IMAGE: "index entry aligned|misaligned|unused" per BAT entry
entries() {
	local i e
	for ((i = 0; i < N; i++)); do
		e=$($PATCH "$1" bat $i) || die "vhdpatch $1 bat $i failed"
		if [ "$e" = unused ] || [ "$e" = 4294967295 ]; then echo "$i - unused"
		elif (((e * 512 + 512) % 4096)); then echo "$i $e misaligned"
		else echo "$i $e aligned"; fi
	done
}
entries q.vhd >before.txt
mis=$(grep -c misaligned before.txt)
[ "$mis" -ge 8 ] || die "qemu-img's layout has only $mis misaligned blocks; the test needs them"

SIZE=$(nbdkit -U - "$PLUGIN" file=q.vhd readonly=true --run 'nbdinfo --size "$uri"') || die "nbdinfo failed"
cp src.raw mirror.raw
truncate -s "$SIZE" mirror.raw

M=$((1 << 20))
# Blocks 0, 1, 3, 4, 7, 8, 12 take writes below 64 KiB (blocks are 2 MiB),
# block 10 one of 1 MiB (too big to be worth a move); the rest take none.
WRITTEN="0 1 3 4 7 8 10 12" SMALL="0 1 3 4 7 8 12"
ops=(-c "write -P 0x11 4096 4096" -c "write -P 0x22 $((2 * M + 1000)) 3000"
     -c "write -P 0x33 $((8 * M - 50000)) 100000" -c "write -P 0x44 $((14 * M + 512)) 512"
     -c "write -z $((16 * M + 8192)) 60000" -c "write -P 0x66 $((20 * M + 4096)) $M"
     -c "discard $((24 * M)) $((2 * M))" -c "write -P 0x55 $((25 * M)) 4096")
nbdkit -U - "$PLUGIN" file=q.vhd --run "qemu-io -f raw \"\${uri}\" $(printf '%q ' "${ops[@]}")" >qemu-io.log 2>&1 ||
	die "qemu-io through the plugin failed: $(tail -3 qemu-io.log)"
qemu-io -f raw mirror.raw "${ops[@]}" >/dev/null 2>&1 || die "qemu-io on the mirror failed"

qemu-img compare -q -f vpc -F raw q.vhd mirror.raw 2>/dev/null ||
	qemu-img compare -f vpc -F raw q.vhd mirror.raw || die "qemu-img reads the moved image differently from the mirror"
$VHDTOOL check q.vhd >check.txt 2>&1 || die "vhdtool check after the moves: $(cat check.txt)"
$VHDTOOL compare q.vhd mirror.raw >/dev/null || die "vhdtool compare with the mirror failed"
if command -v vhdiinfo >/dev/null; then
	vhdiinfo q.vhd >vhdiinfo.txt 2>&1 || die "vhdiinfo cannot open the moved image: $(tail -3 vhdiinfo.txt)"
fi
entries q.vhd >after.txt
for b in $SMALL; do
	line=$(sed -n "$((b + 1))p" after.txt)
	case $line in *misaligned*) die "block $b took a small write but is still misaligned: $line";; esac
done
moved=0
while read -r i e state; do
	case " $SMALL " in *" $i "*) ;; *)
		[ "$(sed -n "$((i + 1))p" before.txt)" = "$i $e $state" ] ||
			die "block $i took no small write but its entry changed: $(sed -n "$((i + 1))p" before.txt) -> $i $e $state";;
	esac
	[ "$(sed -n "$((i + 1))p" before.txt)" != "$i $e $state" ] && moved=$((moved + 1))
done <after.txt
[ "$moved" -ge 4 ] || die "only $moved blocks moved"
a0=$(du -k keep.vhd | cut -f1); a1=$(du -k q.vhd | cut -f1)
[ "$a1" -le $((a0 + 1024)) ] || die "the image allocates $a1 KiB, $a0 KiB before: old places not punched"
echo "ok: $moved blocks moved and read back right (qemu-img, vhdtool, vhdiinfo); $a0 -> $a1 KiB allocated"

# fio: random writes with verification over the whole disk, 4 KiB to 64 KiB
# at depth 16, while blocks move under it.
cp --sparse=always keep.vhd fio.vhd
run_fio() {	# run_fio TAG PLUGIN_ARGS FIO_OPTIONS...
	local tag=$1 pargs=$2
	shift 2
	nbdkit -U - "$PLUGIN" file=fio.vhd $pargs --run "fio --name=$tag --ioengine=nbd --uri=\"\$uri\" \
		--rw=randwrite --bssplit=4k/50:64k/50 --iodepth=16 --size=$((40 * M)) \
		--verify=crc32c --randseed=99 $* >$tag.log 2>&1"
}
run_fio write "" --do_verify=1 || die "fio randwrite + verify failed: $(tail -20 write.log)"
run_fio verify readonly=true --verify_only=1 || die "fio verify-only in a new server failed: $(tail -20 verify.log)"
$VHDTOOL check fio.vhd >check.txt 2>&1 || die "vhdtool check after fio: $(cat check.txt)"
left=$(entries fio.vhd | awk '$1 < 20 && $3 == "misaligned"')
[ -z "$left" ] || die "fio wrote 4 KiB pieces into every block below 40 MiB, yet some stayed misaligned: $left"
echo "ok: fio verify across moving blocks; check clean"

# realign=false keeps qemu's layout.
nbdkit -U - "$PLUGIN" file=keep.vhd realign=false --run "qemu-io -f raw \"\${uri}\" $(printf '%q ' "${ops[@]}")" >qemu-io.log 2>&1 ||
	die "qemu-io through the plugin (realign=false) failed"
# (block 12 was discarded and written again: a new block, placed aligned)
entries keep.vhd | grep -v '^12 ' >keep.txt
grep -v '^12 ' before.txt | diff - keep.txt >/dev/null || die "realign=false moved blocks: $(grep -v '^12 ' before.txt | diff - keep.txt | head -4)"
qemu-img compare -q -f vpc -F raw keep.vhd mirror.raw || die "realign=false: content differs from the mirror"
echo "ok: realign=false moves nothing"

# The FUSE mount.
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null && command -v mountpoint >/dev/null; then
	MNT=$T/mnt
	mkdir -p "$MNT"
	trap 'mountpoint -q "$MNT" && { $VHDTOOL umount "$MNT" || fusermount3 -u "$MNT"; }; rm -rf "$T"' EXIT
	cp --sparse=always orig.vhd m.vhd
	cp --sparse=always orig.vhd mk.vhd
	cp src.raw mirror2.raw
	truncate -s "$SIZE" mirror2.raw
	b1=$(awk '$3 == "misaligned" { print $1; exit }' before.txt)
	b2=$(( (30 * M) / (2 * M) ))
	grep -q "^$b2 .* misaligned" before.txt || die "block $b2 is not misaligned in qemu's layout"
	head -c 4096 /dev/urandom >p1.bin
	head -c 70000 /dev/urandom >p2.bin
	for img in m.vhd mk.vhd; do
		opt=; [ $img = mk.vhd ] && opt=--keep-layout
		$VHDTOOL mount $opt "$img" "$MNT" || die "vhdtool mount $opt $img failed"
		dd if=p1.bin of="$MNT/disk" bs=4096 seek=$((b1 * 2 * M + 4096)) oflag=seek_bytes conv=notrunc,fsync status=none ||
			die "write through the mount failed"
		dd if=p2.bin of="$MNT/disk" bs=4096 seek=$((30 * M - 1000)) oflag=seek_bytes conv=notrunc,fsync status=none ||
			die "write through the mount failed"
		$VHDTOOL umount "$MNT" || die "vhdtool umount failed"
	done
	dd if=p1.bin of=mirror2.raw bs=4096 seek=$((b1 * 2 * M + 4096)) oflag=seek_bytes conv=notrunc status=none
	dd if=p2.bin of=mirror2.raw bs=4096 seek=$((30 * M - 1000)) oflag=seek_bytes conv=notrunc status=none
	for img in m.vhd mk.vhd; do
		qemu-img compare -q -f vpc -F raw "$img" mirror2.raw || die "$img differs from the mirror after the mount's writes"
		$VHDTOOL check "$img" >check.txt 2>&1 || die "vhdtool check $img: $(cat check.txt)"
	done
	entries m.vhd >m.txt
	for b in $b1 $b2; do
		case $(sed -n "$((b + 1))p" m.txt) in *misaligned*) die "block $b written through the mount is still misaligned";; esac
	done
	entries mk.vhd >mk.txt
	for b in $b1 $b2; do
		[ "$(sed -n "$((b + 1))p" mk.txt)" = "$(sed -n "$((b + 1))p" before.txt)" ] ||
			die "mount --keep-layout moved block $b"
	done
	echo "ok: the FUSE mount moves the blocks it writes; --keep-layout keeps them"
else
	echo "no FUSE here: mount part not run"
fi
