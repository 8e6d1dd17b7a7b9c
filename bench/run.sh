#!/usr/bin/env bash
# run.sh -- `make bench`: vhdkit against the tools a user would pick instead,
# in one run; prints markdown tables (also written to $RESULTS/summary.md).
#   BENCHES  subset of "convert nbd fuse passthrough hvcore" (default: all)
#   APPEND=1 keep earlier results in $RESULTS and add to them
# Every other knob (RUNS RUNTIME SIZE_MIB TARGETS PHASES *_JOBS ...) is passed
# to the scripts through the environment; see README.md.
. "$(dirname "$0")/lib.sh"
: "${BENCHES:=convert nbd fuse passthrough hvcore}"
need fio jq nbdkit qemu-nbd qemu-img nbdinfo nbdfuse vhdimount fusermount3 mountpoint bc openssl shuf
need_vhdkit tool plugin
[[ $(id -u) == 0 ]] || die "run as root (drops the page cache, mounts FUSE file systems)"

if [[ ${APPEND:-0} != 1 ]]; then
    rm -rf "$RESULTS"/*.tsv "$RESULTS"/*.params "$RESULTS"/*.commands "$RESULTS"/*.verify \
           "$RESULTS"/*.check "$RESULTS"/json-* "$RESULTS/summary.md" "$RESULTS/run.log"
fi
exec 2> >(tee -a "$RESULTS/run.log" >&2)
log "vhdkit bench: BENCHES='$BENCHES' SIZE_MIB=$SIZE_MIB RUNS=$RUNS RUNTIME=$RUNTIME -> $PERF_ROOT"
log "using $(cat "$RESULTS/vhdkit.version" 2>/dev/null): $VHDTOOL, $NBD_PLUGIN"
t0=$SECONDS
"$BENCH/mkdata.sh"
for b in $BENCHES; do
    case $b in
        convert|nbd|fuse|passthrough|hvcore) log "== $b"; "$BENCH/$b.sh";;
        *) die "unknown bench $b (convert nbd fuse passthrough hvcore)";;
    esac
done
"$BENCH/report.sh" > "$RESULTS/summary.md"
log "finished in $(( (SECONDS - t0) / 60 )) min $(( (SECONDS - t0) % 60 )) s; summary: $RESULTS/summary.md"
cat "$RESULTS/summary.md"
if grep -q '\*\*PROBLEMS\*\*' "$RESULTS/summary.md"; then
    log "verification problems found (see PROBLEMS above)"; exit 1
fi
