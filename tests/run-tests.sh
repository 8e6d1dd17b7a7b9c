#!/usr/bin/env bash
# run-tests.sh -- the test harness behind `make check`.
#
# Runs every C unit test binary (tests/unit/test_*; cmocka counts its cases),
# the fuzz corpus replay, and every integration script tests/integration/
# test-*.sh (exit 0 pass, 77 skip with a reason, anything else fail).
# Logs go to tests/tmp/logs/.  Ends with "N passed, N failed, N skipped" and
# exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."
top=$PWD
logs=$top/tests/tmp/logs
mkdir -p "$logs"
pass=0 fail=0 skip=0
failed=()
filter=${TESTS:-}

want() { [ -z "$filter" ] || [[ "$1" == *$filter* ]]; }

run_unit() {
	local bin=$1 name log out p f
	name=$(basename "$bin")
	log=$logs/$name.log
	want "$name" || return
	timeout 1500 "$bin" >"$log" 2>&1
	local rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
	p=${p:-0} f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)) fail=$((fail + f))
	if [ "$f" -ne 0 ]; then
		failed+=("$name")
		printf 'FAIL %-40s (%s passed, %s failed; log %s)\n' "$name" "$p" "$f" "$log"
		grep -E '^\[  (FAILED|ERROR) \]|error:|Failure' "$log" | head -n 10 | sed 's/^/     /'
	else
		printf 'PASS %-40s (%s cases)\n' "$name" "$p"
	fi
}

run_script() {
	local script=$1 name log rc start
	name=$(basename "$script" .sh)
	log=$logs/$name.log
	want "$name" || return
	start=$(date +%s)
	TOP=$top timeout 900 bash "$script" >"$log" 2>&1 </dev/null
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS %-40s (%ss)\n' "$name" $(( $(date +%s) - start )) ;;
	77) skip=$((skip + 1)); printf 'SKIP %-40s %s\n' "$name" "$(grep '^SKIP:' "$log" | tail -n1 | cut -c7-)" ;;
	*) fail=$((fail + 1)); failed+=("$name")
	   printf 'FAIL %-40s (exit %s; log %s)\n' "$name" "$rc" "$log"
	   tail -n 15 "$log" | sed 's/^/     /' ;;
	esac
}

for bin in tests/unit/test_*; do
	[ -x "$bin" ] && [ "${bin%.c}" = "$bin" ] && [ "${bin%.o}" = "$bin" ] && [ "${bin%.d}" = "$bin" ] || continue
	run_unit "$bin"
done

# Each fuzz target's checked-in corpus, replayed (no fuzzing engine needed).
replay() {
	local name=$1 corpus=$2
	want "$name" && [ -x "tests/fuzz/$name" ] || return 0
	if timeout 300 "tests/fuzz/$name" "$corpus"/* >"$logs/$name.log" 2>&1; then
		pass=$((pass + 1)); printf 'PASS %-40s (%s inputs)\n' "$name" "$(ls "$corpus" | wc -l)"
	else
		fail=$((fail + 1)); failed+=("$name")
		echo "FAIL $name (log $logs/$name.log)"
	fi
}
replay fuzz_open_replay tests/fuzz/corpus
replay fuzz_vhdx_replay tests/fuzz/corpus-vhdx
replay fuzz_import_replay tests/fuzz/corpus-import
replay fuzz_virtq_replay tests/fuzz/corpus-virtq

for script in tests/integration/test-*.sh; do
	[ -f "$script" ] && run_script "$script"
done

[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
