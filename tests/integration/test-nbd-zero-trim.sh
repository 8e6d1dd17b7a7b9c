#!/usr/bin/env bash
# test-nbd-zero-trim.sh -- NBD WRITE_ZEROES (with and without may-trim and
# fast-zero) and TRIM on a dynamic VHD (2 MiB blocks) served by the vhd
# plugin, blocks 0-15 full of 0xAA first:
#  - zero without may-trim (qemu-io write -z) of a partial range and of a
#    whole block: reads zeros, the blocks stay allocated;
#  - zero with may-trim (write -z -u) of whole blocks, and of an unaligned
#    range spanning blocks: reads zeros, the whole blocks inside are
#    deallocated (holes in nbdinfo --map), the partial ones stay;
#  - fast zero (write -z -n): with may-trim over a whole allocated block
#    succeeds by deallocating it; where it would need writes (no may-trim,
#    or a partial block) it fails with ENOTSUP ("Operation not supported")
#    and leaves the data as it was; over unallocated space it succeeds;
#  - trim of whole blocks: holes in the map, reads zeros; a partial trim is
#    advisory (not compared) and keeps its block;
#  - bytes outside all those ranges are unchanged; nbdinfo --map is exactly
#    the expected block list; after the server stops, vhdtool info --json
#    blocks_allocated dropped by the deallocated blocks and check is clean.
. "$TOP/tests/functions.sh"
requires_plugin
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin is not built ($PLUGIN)"
requires nbdkit nbdinfo nbdcopy qemu-io

M=$((1 << 20))
K=1024
BS=$((2 * M))
SIZE=$((64 * M))

blocks_allocated() {
	$VHDTOOL info --json "$1" | sed -n 's/.*"blocks_allocated": \([0-9]*\).*/\1/p' | head -n1
}
# zero_mirror OFFSET LENGTH: the same range zeroed in want.raw.
zero_mirror() {
	head -c "$2" /dev/zero | dd of=want.raw bs=64K seek="$1" oflag=seek_bytes conv=notrunc status=none
}

$VHDTOOL create -q --size "$SIZE" d.vhd || die "create failed"
truncate -s "$SIZE" want.raw
head -c $((16 * BS)) /dev/zero | tr '\0' '\252' | dd of=want.raw conv=notrunc status=none

# qemu-io steps, each "NAME|EXPECT|COMMAND" (EXPECT: ok or enotsup); one
# connection per step so a failing step cannot hide behind another.
cat >steps.txt <<EOF
fill|ok|write -P 0xaa 0 $((16 * BS))
zero-partial|ok|write -z $((M + 4 * K)) $((100 * K))
zero-trim-blocks-2-3|ok|write -z -u $((2 * BS)) $((2 * BS))
fast-trim-block-4|ok|write -z -u -n $((4 * BS)) $BS
fast-noholes-block-5|enotsup|write -z -n $((5 * BS)) $BS
fast-partial-block-6|enotsup|write -z -u -n $((6 * BS + 512 * K)) $M
fast-unallocated|ok|write -z -u -n $((20 * BS)) $((2 * BS))
fast-unallocated-nohole|ok|write -z -n $((24 * BS + 4 * K)) $((3 * BS))
trim-blocks-7-8|ok|discard $((7 * BS)) $((2 * BS))
trim-partial-block-9|ok|discard $((9 * BS + 64 * K)) $((128 * K))
zero-trim-span-10-12|ok|write -z -u $((10 * BS + M)) $((BS + 2 * M))
zero-block-13|ok|write -z $((13 * BS)) $BS
flush|ok|flush
EOF
cat >steps.sh <<'EOF'
uri=$1
while IFS='|' read -r name expect cmd; do
	if qemu-io -f raw "$uri" -c "$cmd" >"step-$name.out" 2>&1; then
		got=ok
	elif grep -q 'Operation not supported' "step-$name.out"; then
		got=enotsup
	else
		got="failed: $(cat "step-$name.out")"
	fi
	[ "$got" = "$expect" ] ||
		{ echo "step $name ($cmd): want $expect, got $got $(cat "step-$name.out")" >&2; exit 1; }
	echo "ok: $name -> $got"
	# Fills are not counted; the rest are checked below.
done <steps.txt
nbdinfo --map "$uri" >map.txt || exit 2
nbdcopy "$uri" got.raw || exit 3
EOF
nbdkit -U - "$PLUGIN" file=d.vhd --run 'bash steps.sh "$uri"' || die "a step failed (see above)"

# The mirror: zeroed ranges read zeros; ENOTSUP steps changed nothing.
zero_mirror $((M + 4 * K)) $((100 * K))
zero_mirror $((2 * BS)) $((2 * BS))
zero_mirror $((4 * BS)) $BS
zero_mirror $((7 * BS)) $((2 * BS))
zero_mirror $((10 * BS + M)) $((BS + 2 * M))
zero_mirror $((13 * BS)) $BS
# The partial trim's content is unspecified: blank it on both sides.
for f in want.raw got.raw; do
	head -c $((128 * K)) /dev/zero | dd of=$f bs=64K seek=$((9 * BS + 64 * K)) oflag=seek_bytes conv=notrunc status=none
done
[ "$(stat -c %s got.raw)" -eq "$SIZE" ] || die "nbdcopy read $(stat -c %s got.raw) bytes"
if ! cmp want.raw got.raw >cmp.out 2>&1; then
	die "the disk after zero/trim differs from the expected bytes: $(cat cmp.out)"
fi
echo "ok: zeroed ranges read zeros, ENOTSUP left data alone, the rest unchanged"

# Blocks left allocated: 0 1 5 6 9 10 12 13 14 15 (dropped: 2 3 4 7 8 11).
awk -v bs="$BS" 'BEGIN {
	n = split("0 1 5 6 9 10 12 13 14 15", b, " "); pos = 0
	for (i = 1; i <= n; i++) {
		s = b[i] * bs; e = s + bs
		if (i > 1 && s == pe) { pe = e; continue }
		if (i > 1) { if (ps > pos) print pos, ps, 3; print ps, pe, 0; pos = pe }
		ps = s; pe = e }
	if (ps > pos) print pos, ps, 3; print ps, pe, 0; pos = pe
	if (pos < '"$SIZE"') print pos, '"$SIZE"', 3 }' >map.want
awk '{ s = $1; e = $1 + $2; t = $3
       if (n && t == pt && s == pe) { pe = e; next }
       if (n) print ps, pe, pt
       ps = s; pe = e; pt = t; n = 1 }
     END { if (n) print ps, pe, pt }' map.txt >map.got
diff -u map.want map.got >map.diff ||
	die "nbdinfo --map after zero/trim (- want, + got):
$(cat map.diff)"
echo "ok: the map shows holes exactly where blocks were deallocated"

got=$(blocks_allocated d.vhd)
[ "$got" = 10 ] || die "blocks_allocated is '$got' after deallocating 6 of 16 blocks, want 10"
$VHDTOOL check d.vhd >check.out 2>&1 || die "vhdtool check: $(cat check.out)"
echo "NBD zero and trim as expected"
