#!/usr/bin/env bash
# All summary tables (markdown) for whatever results exist in $RESULTS.
VHDKIT_SNAPSHOT=${VHDKIT_SNAPSHOT:-0}   # tables only: no copy of the build
. "$(dirname "$0")/lib.sh"
trap - EXIT
S="$BENCH/summarize.sh"
ver() { "$@" 2>&1 | head -1; }
params() { [[ -f $RESULTS/$1.params ]] && cat "$RESULTS/$1.params" || echo "?"; }
commands() {  # commands TAG: the exact commands of each target, as run
    [[ -s $RESULTS/$1.commands ]] || return 0
    printf '\n<details><summary>commands</summary>\n\n```\n'
    sed "s|$PERF_ROOT/bin/||g; s|$TOP/||g; s|$WORK/||g; s|$RUN_DIR/||g" "$RESULTS/$1.commands"
    printf '```\n</details>\n'
}
problems() {  # verification / check failures, if any
    local f
    for f in "$@"; do [[ -s $f ]] && { printf '\n**PROBLEMS** (%s):\n\n```\n' "${f##*/}"; cat "$f"; printf '```\n'; }; done
    return 0
}

echo "# vhdkit benchmarks ($(date -u '+%F %H:%MZ'), $(nproc) CPUs, $(uname -r))"
echo
echo "$(cat "$RESULTS/vhdkit.version" 2>/dev/null || echo "vhdkit $(cat "$TOP/VERSION" 2>/dev/null)");" \
     "$(ver qemu-img --version); $(ver nbdkit --version); $(ver fio --version);" \
     "vhdimount $(vhdimount -V 2>&1 | head -1 | awk '{print $NF}'); $(ver nbdfuse --version)"
echo
echo "Ratios \"vhdkit / X\" are medians over runs of per-run ratios of throughput (IOPS, MB/s; for convert time(X)/time(vhdkit)), > 1 = vhdkit faster; min-max over runs in parentheses."
if [[ -f $RESULTS/convert.tsv ]]; then
    echo; echo "## convert ($(params convert); cold page cache, output synced inside the timing)"; echo
    "$S" convert
    commands convert
    problems "$RESULTS/convert.verify"
fi
for f in "$RESULTS"/nbd*.tsv; do
    [[ -f $f ]] || continue; t=$(basename "$f" .tsv)
    echo; echo "## $t: fio nbd engine over a unix socket ($(params "$t"))"
    "$S" "$t"
    commands "$t"
    problems "$RESULTS/$t.check"
done
for f in "$RESULTS"/fuse*.tsv; do
    [[ -f $f ]] || continue; t=$(basename "$f" .tsv)
    echo; echo "## $t: fio psync on the file a FUSE mount exposes ($(params "$t"))"
    "$S" "$t"
    commands "$t"
    problems "$RESULTS/$t.check"
done
if [[ -f $RESULTS/passthrough.tsv ]]; then
    echo; echo "## passthrough: a loop device through libvhd's async path (bench/aiobench) vs fio libaio direct=1 ($(params passthrough))"
    "$S" passthrough vhdkit-aio
    commands passthrough
fi
if [[ -f $RESULTS/hvcore.md ]]; then
    echo; echo "## hvcore: the test guest's 4k random I/O polling at CPL3 vs fio over NBD to the plugin ($(params hvcore))"; echo
    cat "$RESULTS/hvcore.md"
fi
exit 0
