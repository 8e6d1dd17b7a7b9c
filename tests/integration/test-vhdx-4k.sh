#!/usr/bin/env bash
# test-vhdx-4k.sh -- VHDX with 4096-byte logical sectors: writes whose offset
# and length are not multiples of 4096 (one byte, the last byte of a sector,
# across sectors, across 1 MiB blocks, whole blocks plus ragged edges, the
# last byte of the disk) through `vhdtool write`, in allocated and in
# unallocated blocks of dynamic and fixed disks, read back exactly: the whole
# disk (`vhdtool convert`) and each range (`vhdtool read`) equal a raw mirror
# kept with dd conv=notrunc.
#
# Then the same on a differencing child over a 4K-sector parent: a sub-sector
# write into a sector the child does not hold yet must merge with the
# parent's bytes of that sector (read-modify-write at 4 KiB, not 512 B), the
# parent must not change, and a grandchild stacks on top.  The sector bitmap
# counts 4 KiB sectors (chunk ratio 2^23 * 4096 / block size, vhd-facts 2):
# it is checked bit by bit against the sectors written, and, when FUSE is
# usable, libvhdi's vhdimount view of the chain is compared too (on a copy
# whose parent_linkage is lower-cased -- libvhdi 20210425 cannot parse the
# upper-case form, see test-vhdx-interop.sh).
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdxpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdxpatch is not built"

failed=()
finish() {
	[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: $(printf '[%s] ' "${failed[@]}")"
	echo "all cases passed"
}

M=$((1024 * 1024))
size=$((9 * M + 5 * 4096))	# 9 MiB + 20 KiB: 10 blocks of 1 MiB, the last partial

# The writes: "OFFSET LENGTH", none both 4 KiB-aligned in offset and length.
writes="
1 1
4095 1
4095 2
8191 4098
12000 3
$((M - 3)) 10
$((M + 4096 * 5 + 100)) $((4096 * 3))
$((2 * M - 4096 * 2 + 1)) $((M + 8192))
$((4 * M + 511)) 513
$((4 * M + 2048)) 4096
$((6 * M + 4096 - 1)) $((4096 + 2))
$((7 * M + 10)) $((M - 20))
$((size - 4096 - 7)) 7
$((size - 1)) 1
"

# apply IMG MIRROR: every write into IMG and MIRROR; each range read back.
apply() {
	local img=$1 mirror=$2 off len n=0
	while read -r off len; do
		[ -n "$off" ] || continue
		n=$((n + 1))
		head -c "$len" /dev/urandom >w.bin
		$VHDTOOL write --offset "$off" "$img" w.bin >/dev/null || die "$img: write $len bytes at $off: exit $?"
		dd if=w.bin of="$mirror" bs=1M seek="$off" oflag=seek_bytes conv=notrunc status=none ||
			die "dd into $mirror failed"
		# The range and one sector either side.
		local a=$((off > 4096 ? off - 4096 : 0)) b=$((off + len + 4096))
		[ $b -le $size ] || b=$size
		$VHDTOOL read --offset $a --length $((b - a)) "$img" >got.bin || die "$img: read at $a exit $?"
		dd if="$mirror" of=want.bin bs=1M skip=$a count=$((b - a)) iflag=skip_bytes,count_bytes status=none
		cmp got.bin want.bin || die "$img: write #$n ($len bytes at $off) reads back wrong"
	done <<<"$writes"
}

# whole IMG MIRROR: the whole disk equals the mirror; check is clean.
whole() {
	rm -f whole.img
	$VHDTOOL convert -q "$1" whole.img || die "$1: convert exit $?"
	cmp "$2" whole.img || die "$1: the disk differs from its raw mirror"
	$VHDTOOL check "$1" >check.out 2>&1 || die "$1: check exit $?: $(cat check.out)"
	rm -f whole.img
}

# Base content: data in blocks 0-2 and 8, blocks 3-7 and 9 empty.
truncate -s $size base.raw
dd if=/dev/urandom of=base.raw bs=1M count=3 conv=notrunc status=none
dd if=/dev/urandom of=base.raw bs=1M seek=8 count=1 conv=notrunc status=none

for type in dynamic fixed; do
	what="4K sectors, $type: unaligned writes"
	(
		rm -f $type.vhdx
		$VHDTOOL create -q --format vhdx --type $type --size $size --block-size 1M \
			--logical-sector 4096 --physical-sector 4096 $type.vhdx || die "create exit $?"
		[ "$("$PATCH" $type.vhdx meta logical_sector)" = 4096 ] || die "not a 4K-sector image"
		$VHDTOOL info $type.vhdx | grep -q '4096 logical' || die "vhdtool info does not show 4096-byte sectors"
		$VHDTOOL write $type.vhdx base.raw >/dev/null || die "writing the base content failed"
		cp base.raw $type.raw
		whole $type.vhdx $type.raw
		apply $type.vhdx $type.raw
		whole $type.vhdx $type.raw
		echo "ok: $what"
	) || failed+=("$what")
done

# ---- differencing over a 4K-sector parent ----
what="4K sectors, differencing child: sub-sector writes merge with the parent"
(
	$VHDTOOL create -q --format vhdx --type dynamic --size $size --block-size 1M \
		--logical-sector 4096 parent.vhdx || die "create parent exit $?"
	$VHDTOOL write parent.vhdx base.raw >/dev/null || die "writing the parent failed"
	psum=$(sum parent.vhdx)
	$VHDTOOL snapshot -q parent.vhdx child.vhdx || die "snapshot exit $?"
	[ "$("$PATCH" child.vhdx meta logical_sector)" = 4096 ] || die "the child does not have 4K sectors"
	cp base.raw child.raw
	apply child.vhdx child.raw
	whole child.vhdx child.raw
	[ "$(sum parent.vhdx)" = "$psum" ] || die "the parent changed"
	$VHDTOOL convert -q parent.vhdx p.img && cmp base.raw p.img || die "the parent reads differently"
	rm -f p.img

	# The sector bitmap holds exactly the 4 KiB sectors touched by a write.
	read -r chunk nblocks nsb nentries <<<"$("$PATCH" child.vhdx bat-geometry)"
	cbs=$("$PATCH" child.vhdx meta block_size)
	[ "$chunk" = $(((1 << 23) * 4096 / cbs)) ] || die "chunk ratio $chunk, want $(((1 << 23) * 4096 / cbs))"
	sb=$("$PATCH" child.vhdx bat "$chunk")
	[ "${sb%% *}" = 6 ] || die "sector bitmap entry $chunk is '$sb', want state 6 (present)"
	python3 - child.vhdx "${sb#* }" $size "$writes" <<'EOF' || die "sector bitmap check failed"
import sys
path, sb_off, size, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
want = set()
for line in writes.split("\n"):
    if not line.strip():
        continue
    off, ln = map(int, line.split())
    want.update(range(off // 4096, (off + ln - 1) // 4096 + 1))
nsec = (size + 4095) // 4096
with open(path, "rb") as f:
    f.seek(sb_off)
    bm = f.read((nsec + 7) // 8)
got = {i for i in range(nsec) if bm[i // 8] >> (i % 8) & 1}
if got != want:
    print("bitmap sectors: extra %s, missing %s" % (sorted(got - want)[:20], sorted(want - got)[:20]))
    sys.exit(1)
print("sector bitmap: %d sectors set, as written" % len(got))
EOF

	# A grandchild: the same writes again, on top of both.
	$VHDTOOL snapshot -q child.vhdx grand.vhdx || die "snapshot of the child exit $?"
	csum=$(sum child.vhdx)
	cp child.raw grand.raw
	apply grand.vhdx grand.raw
	whole grand.vhdx grand.raw
	[ "$(sum child.vhdx)" = "$csum" ] || die "the child changed under its own child"
	echo "ok: $what"
) || failed+=("$what")

# libvhdi's view of the 4K chain (independent reader of the sector bitmap).
what="4K differencing chain read by libvhdi"
(
	[ -f child.vhdx ] && [ -f child.raw ] || die "no chain from the previous case"
	if ! command -v vhdimount >/dev/null 2>&1 || ! command -v fusermount >/dev/null 2>&1 ||
	   [ ! -c /dev/fuse ] || ! : 2>/dev/null </dev/fuse; then
		echo "NOTE: vhdimount or FUSE not usable: $what skipped"
		exit 0
	fi
	mkdir -p mnt
	trap 'fusermount -u "$T/mnt" 2>/dev/null' EXIT
	cp child.vhdx lc.vhdx
	"$PATCH" lc.vhdx locator parent_linkage "$("$PATCH" lc.vhdx locator parent_linkage | tr 'A-F' 'a-f')" ||
		die "patching the linkage failed"
	if ! timeout 20 vhdimount lc.vhdx mnt >mount.log 2>&1; then
		echo "NOTE: vhdimount cannot mount here: $(tail -n1 mount.log); $what skipped"
		exit 0
	fi
	[ -f mnt/vhdi2 ] || die "vhdimount shows no child layer: $(ls mnt)"
	cmp mnt/vhdi1 base.raw || die "libvhdi's view of the 4K parent differs"
	cmp mnt/vhdi2 child.raw || die "libvhdi's view of the 4K child differs from the mirror"
	echo "ok: $what"
) || failed+=("$what")

finish
