# functions.sh -- sourced by every tests/integration/test-*.sh.
#
#   requires CMD...      skip (exit 77) with a reason when a tool is missing
#   requires_root        skip unless root
#   skip REASON          skip now
#   die MSG              fail now
#   expect_fail CMD...   run CMD, which must exit non-zero and print exactly
#                        one line on stderr; stores it in $ERR
#   sum FILE             content hash, to prove an input was not changed
#   mkrandom FILE SIZE_MIB  file with random data at random 1 MiB chunks
#
# Each test gets a fresh scratch folder $T (removed on exit) and $VHDTOOL.
set -u
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VHDTOOL=$TOP/vhdtool/vhdtool
# Debian's tools first: nbdsh needs the system python3 (python3-libnbd).
export PATH=$TOP/vhdtool:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/vhdkit-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*" >&2; exit 1; }
requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}
requires_root() { [ "$(id -u)" -eq 0 ] || skip "needs root"; }

expect_fail() {
	local rc lines
	"$@" >"$T/.out" 2>"$T/.err"
	rc=$?
	ERR=$(cat "$T/.err")
	[ "$rc" -ne 0 ] || die "expected failure, got exit 0: $* (stderr: $ERR)"
	lines=$(wc -l <"$T/.err")
	[ "$lines" -eq 1 ] || die "expected one line on stderr from: $* -- got $lines: $ERR"
	echo "ok (exit $rc): $ERR"
	return 0
}

sum() { md5sum "$1" | cut -d' ' -f1; }

mkrandom() {
	local f=$1 mib=$2 i
	truncate -s "${mib}M" "$f"
	for i in $(seq 0 3 $((mib - 1))); do
		dd if=/dev/urandom of="$f" bs=1M count=1 seek="$i" conv=notrunc status=none
	done
}

# Sanitizer builds: the plugin needs the ASan runtime loaded first in
# nbdkit, which is not instrumented; wrap nbdkit (found by PATH, also by
# vhdtool serve) to preload it -- for nbdkit only: the commands of --run
# get a clean environment (qemu-img hangs at exit with ASan preloaded).
if grep -q '^ENABLE_ASAN = 1' "$TOP/config.mk" 2>/dev/null && command -v nbdkit >/dev/null; then
	asan_rt=$(grep '^CC = ' "$TOP/config.mk" | cut -d' ' -f3- | xargs -I{} sh -c '{} -print-file-name=libasan.so')
	mkdir -p "$T/.bin"
	cat > "$T/.bin/nbdkit" <<WRAP
#!/usr/bin/env bash
args=()
while [ \$# -gt 0 ]; do
	if [ "\$1" = --run ]; then
		args+=(--run "unset LD_PRELOAD ASAN_OPTIONS; \$2"); shift 2; continue
	fi
	args+=("\$1"); shift
done
LD_PRELOAD=$asan_rt ASAN_OPTIONS=detect_leaks=0 exec $(command -v nbdkit) "\${args[@]}"
WRAP
	chmod +x "$T/.bin/nbdkit"
	export PATH=$T/.bin:$PATH
fi
