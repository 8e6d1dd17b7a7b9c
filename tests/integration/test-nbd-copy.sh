#!/usr/bin/env bash
# test-nbd-copy.sh -- whole-disk copies through the nbdkit vhd plugin:
#  - nbdcopy out of a differencing chain gives exactly the bytes written
#    (base data with the child's overlays), the same as `vhdtool convert`
#    flattening the chain;
#  - nbdcopy of a random raw file INTO a fresh dynamic VHD export (nbdcopy
#    uses several connections, writes and trimming zero requests): while
#    serving, qemu-img compare of the raw file against the NBD export says
#    identical; after the server stops, qemu's own vpc driver reads the
#    VHD as identical to the raw file, vhdtool check is clean, and only the
#    blocks holding data were allocated (the holes stayed holes).
. "$TOP/tests/functions.sh"
requires_plugin
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin is not built ($PLUGIN)"
requires nbdkit nbdcopy qemu-img

M=$((1 << 20))

info_field() {	# info_field IMAGE FIELD: a number from the top layer's info --json
	$VHDTOOL info --json "$1" | sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p" | head -n1
}

# overlay WANT IMAGE OFFSET LENGTH: random bytes written into IMAGE (vhdtool
# write) and into the raw mirror WANT at the same offset.
overlay() {
	head -c "$4" /dev/urandom >chunk.bin
	$VHDTOOL write --offset "$3" "$2" chunk.bin >/dev/null || die "vhdtool write $2 at $3 failed"
	dd if=chunk.bin of="$1" bs=1M seek="$3" oflag=seek_bytes conv=notrunc status=none ||
		die "dd into $1 failed"
}

# 1. Out of a chain.  Base: random 1 MiB chunks (every 3 MiB) in a 40 MiB
# disk, as a dynamic VHD with 512 KiB blocks; child: unaligned overlays.
mkrandom base.raw 40
$VHDTOOL convert -q -O vhd --block-size 512K base.raw base.vhd || die "convert base failed"
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
cp base.raw want.raw
overlay want.raw child.vhd 1000 5000			# inside base data, unaligned
overlay want.raw child.vhd $((4 * M + 12345)) $((M + 3))	# in a base hole, across blocks
overlay want.raw child.vhd $((40 * M - 700)) 700	# the last bytes
overlay want.raw child.vhd $((20 * M)) $((512 * 1024))	# one whole block
base_sum=$(sum base.vhd)

nbdkit -U - "$PLUGIN" file=child.vhd readonly=true --run 'nbdcopy "$uri" out.raw' ||
	die "nbdcopy out of the chain failed"
[ "$(stat -c %s out.raw)" -eq $((40 * M)) ] || die "nbdcopy wrote $(stat -c %s out.raw) bytes, want $((40 * M))"
cmp want.raw out.raw || die "nbdcopy of the chain differs from the written bytes"
$VHDTOOL convert -q child.vhd flat.img || die "vhdtool convert of the chain failed"
cmp flat.img out.raw || die "nbdcopy of the chain differs from vhdtool convert"
[ "$(sum base.vhd)" = "$base_sum" ] || die "serving the child changed the base file"
echo "ok: nbdcopy out of the chain = written bytes = vhdtool convert"

# 2. Into a fresh dynamic VHD (2 MiB blocks), 48 MiB + 1536 bytes: random
# 1 MiB chunks every 3 MiB, and random bytes in the partial last block.
SIZE=$((48 * M + 1536))
mkrandom src.raw 48
truncate -s "$SIZE" src.raw
head -c 1536 /dev/urandom | dd of=src.raw bs=512 seek=$((48 * 2048)) conv=notrunc status=none
# Blocks with data: the 2 MiB blocks the chunks fall in, plus the tail.
want_blocks=$( (seq 0 3 47 | awk '{ print int($1 / 2) }'; echo 24) | sort -un | wc -l)
$VHDTOOL create -q --size "$SIZE" fresh.vhd || die "create failed"

nbdkit -U - "$PLUGIN" file=fresh.vhd --run '
	nbdcopy src.raw "$uri" || { echo "nbdcopy into the export failed" >&2; exit 1; }
	qemu-img compare -f raw -F raw src.raw "$uri" >compare-live.out 2>&1 ||
		{ echo "qemu-img compare against the live export: exit $?: $(cat compare-live.out)" >&2; exit 2; }
	exit 0' || die "copy into the export failed (see above)"
echo "ok: qemu-img compare raw vs the live export: $(cat compare-live.out)"

qemu-img compare -f raw -F vpc src.raw fresh.vhd >compare.out 2>&1 ||
	die "after the server stopped, qemu-img compare raw vs the VHD: $(cat compare.out)"
$VHDTOOL check fresh.vhd >check.out 2>&1 || die "vhdtool check after the copy: $(cat check.out)"
got_blocks=$(info_field fresh.vhd blocks_allocated)
[ "$got_blocks" = "$want_blocks" ] ||
	die "the copy allocated $got_blocks blocks; the source has data in $want_blocks"
[ "$(info_field fresh.vhd virtual_size)" = "$SIZE" ] || die "the VHD's size changed"
echo "ok: nbdcopy into a dynamic VHD: identical for qemu's vpc driver, check clean, $got_blocks blocks"
