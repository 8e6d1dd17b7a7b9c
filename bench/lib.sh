# lib.sh -- helpers for vhdkit's benchmarks (method from shared/bench:
# cold source (page cache dropped), output synced inside the timing, every
# case run back to back in each round, medians over RUNS, ratios per round).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/.." && pwd)
VHDTOOL=$TOP/vhdtool/vhdtool
: "${WORK:=/tmp/vhdkit-bench}"
: "${RUNS:=3}"
: "${SIZE_MIB:=1024}"
: "${DATA_PCT:=50}"
: "${SEED:=42}"
mkdir -p "$WORK"

log() { printf '%s\n' "$*" >&2; }
need() { local c; for c in "$@"; do command -v "$c" >/dev/null || { log "bench: $c is not installed"; exit 1; }; done; }
drop_caches() { sync; [ -w /proc/sys/vm/drop_caches ] && echo 3 > /proc/sys/vm/drop_caches || true; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Deterministic source: SIZE_MIB MiB, DATA_PCT% of its 1 MiB chunks random
# (incompressible), the rest holes (src.raw) or written zeros (src-dense.raw).
make_source() {
	local stamp="size=$SIZE_MIB pct=$DATA_PCT seed=$SEED"
	if [ -f "$WORK/.stamp" ] && [ "$(cat "$WORK/.stamp")" = "$stamp" ]; then return; fi
	rm -f "$WORK"/src*.raw
	log "making a ${SIZE_MIB} MiB source with ${DATA_PCT}% data"
	truncate -s "${SIZE_MIB}M" "$WORK/src.raw"
	local n=$(( SIZE_MIB * DATA_PCT / 100 ))
	shuf -i "0-$(( SIZE_MIB - 1 ))" -n "$n" --random-source=<(yes "$SEED") | sort -n |
	while read -r i; do
		head -c 1048576 /dev/urandom | dd of="$WORK/src.raw" bs=1M seek="$i" count=1 conv=notrunc iflag=fullblock status=none
	done
	cp --sparse=never "$WORK/src.raw" "$WORK/src-dense.raw"
	echo "$stamp" > "$WORK/.stamp"
}
