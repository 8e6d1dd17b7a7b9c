#!/usr/bin/env bash
# test-nbd-multiconn.sh -- several NBD clients writing one export at once
# (the plugin advertises multi-conn and serves every connection from one
# libvhd handle):
#  - 4 qemu-io processes, each its own connection with many requests in
#    flight (aio_write), write disjoint interleaved 20000-byte stripes of
#    the first ~46 MiB of a differencing child, each with its own byte
#    pattern, then flush.  The writers share 2 MiB VHD blocks (allocating
#    them and setting bits in their bitmaps concurrently, over a base with
#    data) and, as 20000 is not a multiple of 512, even sectors: a partial
#    sector must be merged with the base's or the neighbour's bytes;
#  - while the server still runs, a fifth connection reads every stripe with
#    its writer's pattern (qemu-io read -P);
#  - after the server stops: the flattened chain is exactly the stripes
#    followed by the base's bytes, the base file is unchanged, vhdtool
#    check is clean.
. "$TOP/tests/functions.sh"
requires_plugin
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin is not built ($PLUGIN)"
requires nbdkit qemu-io nbdinfo

M=$((1 << 20))
STRIPE=20000
WRITERS=4
PERIOD=$((STRIPE * WRITERS))
ROUNDS=600			# stripes per writer
RANGE=$((PERIOD * ROUNDS))	# 48,000,000 bytes: not a whole number of blocks
SIZE=$((64 * M))

mkrandom base.raw 64
$VHDTOOL convert -q -O vhd base.raw base.vhd || die "convert base failed"
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
base_sum=$(sum base.vhd)

# Command files: writer i writes stripes k*WRITERS+i with bytes 'A'+i; the
# checker reads them all back.
for i in $(seq 0 $((WRITERS - 1))); do
	awk -v i="$i" -v w="$WRITERS" -v s="$STRIPE" -v n="$ROUNDS" 'BEGIN {
		for (k = 0; k < n; k++)
			printf "aio_write -q -P 0x%x %d %d\n", 65 + i, (k * w + i) * s, s
		print "aio_flush"; print "flush" }' >writer$i.cmds
done
awk -v w="$WRITERS" -v s="$STRIPE" -v n="$ROUNDS" 'BEGIN {
	for (j = 0; j < n * w; j++)
		printf "read -q -P 0x%x %d %d\n", 65 + j % w, j * s, s }' >check.cmds

# qemu-io reads commands from standard input when given none with -c.
cat >clients.sh <<'EOF'
uri=$1 writers=$2
nbdinfo --can multi-conn "$uri" || { echo "the export does not offer multi-conn" >&2; exit 1; }
pids=()
for i in $(seq 0 $((writers - 1))); do
	qemu-io -f raw "$uri" <writer$i.cmds >writer$i.out 2>&1 &
	pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || { echo "writer $i failed: $(grep -v '^qemu-io>' writer$i.out | head -n 5)" >&2; rc=1; }
done
[ "$rc" -eq 0 ] || exit 1
# A fresh connection sees every stripe.
qemu-io -f raw "$uri" <check.cmds >check.out 2>&1 || {
	echo "reading back over a new connection: $(grep -i 'fail' check.out | head -n 5)" >&2; exit 2; }
grep -qi 'fail' check.out && { echo "reading back: $(grep -i 'fail' check.out | head -n 5)" >&2; exit 3; }
exit 0
EOF
SECONDS=0; nbdkit -U - "$PLUGIN" file=child.vhd --run 'bash clients.sh "$uri" '$WRITERS ||
	die "concurrent writers or the read-back failed (see above)"
for i in $(seq 0 $((WRITERS - 1))); do
	! grep -qi 'fail\|error' writer$i.out || die "writer $i reported: $(grep -i 'fail\|error' writer$i.out | head -n 3)"
done
echo "ok: $WRITERS writers x $ROUNDS stripes, read back over a new connection (${SECONDS}s)"

# The expected disk: the stripe period repeated over RANGE, then the base.
for i in $(seq 0 $((WRITERS - 1))); do
	head -c "$STRIPE" /dev/zero | tr '\0' "\\$(printf '%03o' $((0x41 + i)))"
done >period.bin
[ "$(stat -c %s period.bin)" -eq "$PERIOD" ] || die "test bug: period is $(stat -c %s period.bin) bytes"
{ yes period.bin | head -n "$ROUNDS" | xargs cat; tail -c +$((RANGE + 1)) base.raw; } >want.raw
[ "$(stat -c %s want.raw)" -eq "$SIZE" ] || die "test bug: want.raw is $(stat -c %s want.raw) bytes"

$VHDTOOL convert -q child.vhd flat.img || die "flattening the child failed"
if ! cmp want.raw flat.img >cmp.out 2>&1; then
	first=$(awk '{ print $5 }' cmp.out | tr -d ,)
	die "after the server stopped, the disk differs from the stripes: $(cat cmp.out) (stripe $(((first - 1) / STRIPE)), writer $((((first - 1) / STRIPE) % WRITERS)))"
fi
[ "$(sum base.vhd)" = "$base_sum" ] || die "the base file changed"
$VHDTOOL check child.vhd >check.txt 2>&1 || die "vhdtool check: $(cat check.txt)"
echo "concurrent NBD writers as expected"
