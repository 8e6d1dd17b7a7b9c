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

# bad_case NAME FILE CHECK_RC CHECK_PATTERN KEYWORD...
# The contract for a bad image (DESIGN "Bad input"): `vhdtool info FILE` and
# `vhdtool convert FILE out.img` fail with exactly one stderr line naming FILE
# and containing every KEYWORD (case-insensitive); convert leaves no output;
# `vhdtool write FILE` (a read-write open) fails with one line naming FILE;
# `vhdtool check FILE` exits CHECK_RC (1: damage found, 2: could not check)
# and, for 1, prints an "error:" finding matching CHECK_PATTERN (extended
# regex, case-insensitive) and no finding twice; FILE is unchanged.  Runs in a
# subshell and records a failure instead of stopping, so that one run reports
# every broken case.
failed=()
bad_case() {
	local name=$1 f=$2 want=$3 pat=$4
	shift 4
	(
		before=$(sum "$f")
		expect_fail $VHDTOOL info "$f"
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: info message lacks '$k': $ERR"
		done
		expect_fail $VHDTOOL convert -q "$f" out.img
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: convert message lacks '$k': $ERR"
		done
		[ ! -e out.img ] || die "$name: failed convert left out.img behind"
		# Opening it for writing is refused too (and repairs nothing).
		head -c 512 /dev/urandom >sector.bin
		expect_fail $VHDTOOL write "$f" sector.bin
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: write message lacks '$k': $ERR"
		done
		$VHDTOOL check "$f" >check.out 2>check.err
		rc=$?
		[ "$rc" -eq "$want" ] || die "$name: check exit $rc, want $want: $(cat check.out check.err)"
		if [ "$want" -eq 1 ]; then
			grep -qiE "^error: .*$pat" check.out ||
				die "$name: check has no error finding matching '$pat': $(cat check.out)"
			[ -z "$(grep -E '^(error|warning):' check.out | sort | uniq -d)" ] ||
				die "$name: check reports a finding twice: $(cat check.out)"
		fi
		[ "$(sum "$f")" = "$before" ] || die "$name: $f was modified"
		echo "ok: $name"
	) || failed+=("$name")
}
finish() {
	[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: ${failed[*]}"
	echo "all cases passed"
}

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
