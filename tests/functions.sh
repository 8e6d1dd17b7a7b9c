# functions.sh -- sourced by every tests/integration/test-*.sh.
#
#   requires CMD...      skip (exit 77) with a reason when a tool is missing
#   requires_root        skip unless root
#   skip REASON          skip now
#   die MSG              fail now
#   expect_fail CMD...   run CMD, which must exit non-zero and print exactly
#                        one line on stderr; stores it in $ERR
#   sum FILE             content hash, to prove an input was not changed
#   requires_plugin      sets $PLUGIN, skips when the nbdkit plugin is unusable
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

# requires_plugin: the nbdkit plugin is built and can be loaded.  In
# sanitizer builds it cannot: nbdkit is not instrumented, so the ASan
# runtime would have to be preloaded, and with it preloaded nbdkit (and
# anything else linking p11-kit) deadlocks at exit in freelocale().  The
# libvhd code under the plugin runs under ASan in the unit tests.
requires_plugin() {
	PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
	[ -f "$PLUGIN" ] || skip "the nbdkit plugin was not built"
	if grep -q '^ENABLE_ASAN = 1' "$TOP/config.mk" 2>/dev/null; then
		skip "sanitizer build: nbdkit cannot load an ASan-instrumented plugin"
	fi
	requires nbdkit
}
