#!/usr/bin/env bash
# test-nbd-info-map.sh -- what the nbdkit vhd plugin says about an export:
#  - nbdinfo --size is the virtual size vhdtool info --json reports (for a
#    size that is not a whole number of blocks);
#  - nbdinfo --map (base:allocation) over a dynamic VHD shows "data" exactly
#    on the blocks written into it and "hole,zero" everywhere else;
#  - over a differencing child of it, "data" exactly where either layer
#    holds data: the base's blocks plus the sector runs written into the
#    child (which are partial blocks: a differencing block is present
#    sector by sector), "hole,zero" elsewhere;
#  - qemu-img map over the same export (qemu asks with REQ_ONE, one extent
#    per request) finds the same data runs.
# The expected maps are built from the writes, not from any tool's answer.
. "$TOP/tests/functions.sh"
requires_plugin
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin is not built ($PLUGIN)"
requires nbdkit nbdinfo qemu-img

M=$((1 << 20))
BS=$((2 * M))
SIZE=$((100 * M + 7 * 512))	# 50 whole 2 MiB blocks and a 3.5 KiB tail block

# write_at IMAGE OFFSET LENGTH: random bytes into IMAGE with vhdtool write.
write_at() {
	head -c "$3" /dev/urandom >chunk.bin
	$VHDTOOL write --offset "$2" "$1" chunk.bin >/dev/null || die "vhdtool write $1 at $2 failed"
}

# merge_map: "START LENGTH TYPE ..." lines (nbdinfo --map) to maximal runs
# "START END TYPE" (adjacent extents of one type joined: a server may split
# its answer across requests or layers).
merge_map() {
	awk '{ s = $1; e = $1 + $2; t = $3
	       if (n && t == pt && s == pe) { pe = e; next }
	       if (n) print ps, pe, pt
	       ps = s; pe = e; pt = t; n = 1 }
	     END { if (n) print ps, pe, pt }'
}

# expected_map SIZE < "START LENGTH" data runs: the full map, data as type 0
# and everything else as 3 (hole,zero), in merge_map's form.
expected_map() {
	sort -n -k1,1 | awk -v size="$1" 'BEGIN { pos = 0 }
	{ s = $1; e = $1 + $2
	  if (n && s <= ce) { if (e > ce) ce = e; next }
	  if (n) { emit(cs, ce) }
	  cs = s; ce = e; n = 1 }
	function emit(a, b) { if (a > pos) print pos, a, 3; print a, b, 0; pos = b }
	END { if (n) emit(cs, ce); if (pos < size) print pos, size, 3 }'
}

# data_runs_qemu EXPORT_URI: qemu-img map's data runs as "START END", merged.
data_runs_qemu() {
	qemu-img map --output=json -f raw "$1" |
		sed -n 's/.*"start": \([0-9]*\), "length": \([0-9]*\),.*"data": true.*/\1 \2 0/p' |
		merge_map | awk '{ print $1, $2 }'
}

# The base: a dynamic VHD with whole blocks of data, among them the partial
# tail block (written whole: 3.5 KiB).
$VHDTOOL create -q --size "$SIZE" base.vhd || die "create base failed"
: >base.runs
for blk in 1 5 6 20 49; do
	write_at base.vhd $((blk * BS)) "$BS"
	echo "$((blk * BS)) $BS" >>base.runs
done
write_at base.vhd $((50 * BS)) $((SIZE - 50 * BS))
echo "$((50 * BS)) $((SIZE - 50 * BS))" >>base.runs

vsize=$($VHDTOOL info --json base.vhd | sed -n 's/.*"virtual_size": \([0-9]*\).*/\1/p' | head -n1)
[ "$vsize" = "$SIZE" ] || die "vhdtool info --json virtual_size is '$vsize', created with $SIZE"

# The child: sector-aligned runs that are not whole blocks -- in a block the
# base lacks, over base data, across a block boundary, one sector, a whole
# block -- so the child's own bitmaps decide.
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
cp base.runs child.runs
for run in "$((10 * M + 4096)) 65536" "$((2 * M + 512 * 1024)) 8192" \
	   "$((16 * M - 65536)) 131072" "$((30 * M + 512)) 512" \
	   "$((60 * M)) $BS" "$((99 * M + 4 * 512)) 1536"; do
	set -- $run
	write_at child.vhd "$1" "$2"
	echo "$1 $2" >>child.runs
done
$VHDTOOL check -q child.vhd || die "the chain is not clean before serving: $($VHDTOOL check child.vhd)"

for img in base child; do
	expected_map "$SIZE" <$img.runs >$img.want
	# Serve read-only: the map must not depend on a writer's state.
	nbdkit -U - "$PLUGIN" file=$img.vhd readonly=true --run '
		nbdinfo --size "$uri" >'$img'.size &&
		nbdinfo --map "$uri" >'$img'.map &&
		qemu-img map --output=json -f raw "$uri" >'$img'.qmap' ||
		die "serving $img.vhd: nbdkit or a client failed"
	[ "$(cat $img.size)" = "$SIZE" ] ||
		die "$img: nbdinfo --size says $(cat $img.size), vhdtool info says $SIZE"
	merge_map <$img.map >$img.got
	diff -u $img.want $img.got >$img.diff ||
		die "$img: nbdinfo --map differs from the written data (- want, + got):
$(cat $img.diff)
raw map:
$(cat $img.map)"
	# qemu-img map: the same data runs (its zero flags also cover
	# allocated zeros, so only the data runs are compared).
	awk '$3 == 0 { print $1, $2 }' $img.want >$img.qwant
	sed -n 's/.*"start": \([0-9]*\), "length": \([0-9]*\),.*"data": true.*/\1 \2 0/p' $img.qmap |
		merge_map | awk '{ print $1, $2 }' >$img.qgot
	diff -u $img.qwant $img.qgot >$img.qdiff ||
		die "$img: qemu-img map over NBD differs (- want, + got):
$(cat $img.qdiff)"
	echo "ok: $img map: $(grep -c ' 0$' $img.got) data runs as written"
done
echo "nbd size and maps as expected"
