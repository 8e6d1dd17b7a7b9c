#!/usr/bin/env bash
# test-bad-truncated.sh -- truncated VHDs (DESIGN "Bad input": truncated file
# -- footer, header, BAT or block past EOF): a dynamic disk cut inside its EOF
# footer, its dynamic header, its BAT and in the middle of its last block; a
# fixed disk with data missing before its footer; a file shorter than a
# footer.  Each is refused with one line naming the file and the cause, check
# reports damage (exit 1), nothing changes.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"

. "$TOP/tests/bad_case.sh"

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=1k seek=3000 count=1096 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --type dynamic --block-size 512K src.raw dyn.vhd || die "convert to dynamic failed"
$VHDTOOL convert -q -O vhd --type fixed src.raw fixed.vhd || die "convert to fixed failed"

cut_at() {	# cut_at NAME SRC BYTES: NAME is SRC cut to BYTES
	cp "$2" "$1"
	truncate -s "$3" "$1"
}

size=$(stat -c %s dyn.vhd)
bat=$("$PATCH" dyn.vhd header table_offset)
[ "$bat" -ge 1536 ] || die "unexpected BAT offset $bat"
# The block stored last in the file.
last=0
for i in $(seq 0 7); do
	e=$("$PATCH" dyn.vhd bat "$i")
	[ "$e" = 4294967295 ] || [ "$e" -lt "$last" ] || last=$e
done
[ "$last" -gt 0 ] || die "no allocated block found"

cut_at cut-footer.vhd dyn.vhd $((size - 100))
bad_case "dynamic cut in the EOF footer" cut-footer.vhd 1 "footer" "truncated"
cut_at cut-header.vhd dyn.vhd 1000
bad_case "dynamic cut in the header" cut-header.vhd 1 "header" "truncated"
cut_at cut-bat.vhd dyn.vhd $((bat + 256))
bad_case "dynamic cut in the BAT" cut-bat.vhd 1 "BAT" "truncated"
cut_at cut-block.vhd dyn.vhd $((last * 512 + 512 + 256 * 1024))
bad_case "dynamic cut in the last block" cut-block.vhd 1 "past the end" "truncated"

# Fixed: 1 MiB of data gone, footer still at the end.
head -c 3M fixed.vhd >cut-fixed.vhd
tail -c 512 fixed.vhd >>cut-fixed.vhd
bad_case "fixed with data missing" cut-fixed.vhd 1 "size" "less than its size"

# Shorter than a footer, cookie at the start.
head -c 300 dyn.vhd >tiny.vhd
bad_case "file shorter than a footer" tiny.vhd 1 "short" "too short"

finish
