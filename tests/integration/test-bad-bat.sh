#!/usr/bin/env bash
# test-bad-bat.sh -- damaged dynamic-disk metadata (DESIGN "Bad input"): BAT
# entries inside the metadata (footer copy, dynamic header, BAT), overlapping
# another block, past EOF; max table entries too small for the size (and
# absurdly large); block size not a power of two and out of range; plus a
# dynamic header with a stale checksum or no cookie and a BAT placed over the
# header.  Each is refused with one line naming the file and the cause, check
# reports damage (exit 1), nothing changes.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"

. "$TOP/tests/bad_case.sh"

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=1k seek=3000 count=1096 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --type dynamic --block-size 512K src.raw dyn.vhd || die "convert failed"
$VHDTOOL check -q dyn.vhd || die "fresh image does not check clean"

mk() {	# mk NAME PATCH-ARGS...: a copy of dyn.vhd, patched
	local name=$1
	shift
	cp dyn.vhd "$name"
	"$PATCH" "$@" || die "vhdpatch $* failed"
}

e0=$("$PATCH" dyn.vhd bat 0)
e1=$("$PATCH" dyn.vhd bat 1)
[ "$e0" != 4294967295 ] && [ "$e1" != 4294967295 ] || die "blocks 0 and 1 should be allocated"
entries=$("$PATCH" dyn.vhd header max_table_entries)
[ "$entries" -eq 8 ] || die "4 MiB in 512 KiB blocks should need 8 entries, header has $entries"
fsectors=$(( $(stat -c %s dyn.vhd) / 512 ))

# BAT entries pointing into the metadata.
mk bat-footer.vhd bat-footer.vhd bat 0 0
bad_case "BAT entry on the footer copy" bat-footer.vhd 1 "overlaps" "overlaps"
mk bat-header.vhd bat-header.vhd bat 0 1
bad_case "BAT entry on the dynamic header" bat-header.vhd 1 "overlaps" "overlaps" "header"
mk bat-bat.vhd bat-bat.vhd bat 1 3
bad_case "BAT entry on the BAT" bat-bat.vhd 1 "overlaps" "overlaps" "BAT"
# Overlapping another block: block 1 one sector into block 0, and exactly on it.
mk bat-overlap.vhd bat-overlap.vhd bat 1 $((e0 + 1))
bad_case "BAT entry overlapping another block" bat-overlap.vhd 1 "overlaps" "overlaps" "block"
mk bat-same.vhd bat-same.vhd bat 1 "$e0"
bad_case "two BAT entries for one block" bat-same.vhd 1 "overlaps" "overlaps" "block"
# Past EOF: just past, and far past.
mk bat-past.vhd bat-past.vhd bat 2 "$fsectors"
bad_case "BAT entry just past EOF" bat-past.vhd 1 "past the end" "past the end"
mk bat-far.vhd bat-far.vhd bat 2 0xfffffff0
bad_case "BAT entry far past EOF" bat-far.vhd 1 "past the end" "past the end"

# max table entries.
mk mte-small.vhd mte-small.vhd header max_table_entries $((entries - 1))
bad_case "max table entries too small" mte-small.vhd 1 "too small" "max table entries" "too small"
mk mte-zero.vhd mte-zero.vhd header max_table_entries 0
bad_case "max table entries zero" mte-zero.vhd 1 "too small" "max table entries" "too small"
mk mte-huge.vhd mte-huge.vhd header max_table_entries 0xffffffff
bad_case "max table entries past the 2040 GiB limit" mte-huge.vhd 1 "max table entries" "max table entries"

# Block sizes.
mk bs-3m.vhd bs-3m.vhd header block_size $((3 << 20))
bad_case "block size not a power of two" bs-3m.vhd 1 "block size" "block size" "power of two"
mk bs-512m.vhd bs-512m.vhd header block_size $((512 << 20))
bad_case "block size too large" bs-512m.vhd 1 "block size" "block size" "256 MiB"
mk bs-2k.vhd bs-2k.vhd header block_size 2048
bad_case "block size too small" bs-2k.vhd 1 "block size" "block size" "4 KiB"
mk bs-0.vhd bs-0.vhd header block_size 0
bad_case "block size zero" bs-0.vhd 1 "block size" "block size"

# The dynamic header itself.
mk hdr-csum.vhd --keep-checksum hdr-csum.vhd header parent_timestamp 7
bad_case "dynamic header checksum mismatch" hdr-csum.vhd 1 "checksum" "header" "checksum"
mk hdr-cookie.vhd hdr-cookie.vhd header cookie cxsparsX
bad_case "dynamic header without its cookie" hdr-cookie.vhd 1 "header" "header"
mk hdr-bat-over-header.vhd hdr-bat-over-header.vhd header table_offset 1024
bad_case "BAT placed over the dynamic header" hdr-bat-over-header.vhd 1 "overlaps" "overlaps"
mk hdr-bat-past.vhd hdr-bat-past.vhd header table_offset $((fsectors * 512))
bad_case "BAT offset at EOF" hdr-bat-past.vhd 1 "BAT" "BAT" "past the end"

finish
