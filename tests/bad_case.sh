# bad_case.sh -- sourced by the bad-input scripts (test-bad-*.sh,
# test-vhdx-bad.sh) after functions.sh: the contract every bad image meets.

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
	[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: $(printf '[%s] ' "${failed[@]}")"
	echo "all cases passed"
}
