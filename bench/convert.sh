#!/usr/bin/env bash
# Conversion throughput, side by side in each repetition:
#   raw -> dynamic VHD   vhdtool convert -q -O vhd   vs  qemu-img convert -f raw -O vpc
#                        (vhdtool reads a cold raw source around the page cache:
#                        --source-cache auto, see vhdtool/source_cache.c)
#                        vs  cp --sparse=always (the copy a user could do instead)
#                        for the sparse source (holes) and the dense one (written zeros)
#   raw -> dynamic VHDX  vhdtool convert -q -O vhdx  vs  qemu-img convert -f raw -O vhdx
#                        vs  cp --sparse=always (sparse and dense sources)
#   raw -> VHD, direct   vhdtool convert -q --direct vs  qemu-img convert -t none -O vpc
#                        (both bypass the page cache; sparse and dense sources)
#   merge                vhdtool merge CHILD (into its parent, the 2 GiB pristine
#                        VHD) vs  cp --sparse=always CHILD: copying the bytes the
#                        child holds, the least any merge must do (MB/s = child
#                        file bytes / s).  The child (1/8 of the disk, 1 MiB
#                        writes at random places) is made before the clock starts.
#   VHD -> raw           vhdtool convert -q -O raw   vs  qemu-img convert -f vpc -O raw
#                        (source: work/pristine.vhd, made by qemu-img)
# Each timed run: rm the output, sync + drop the page cache (cold source), run
# the command, `sync OUTPUT` (for every case, although vhdtool syncs itself),
# stop the clock.  MB/s = virtual disk bytes / seconds / 1e6.
#
# Env: RUNS, JOBS (subset of the default list below),
#      CASES (subset of "vhdtool qemu-img cp-sparse"; the first is the
#      subject of the ratios), VERIFY=1 checks every output of run 1
#      (untimed: qemu-img compare with the source, vhdtool check on VHDs),
#      APPEND=1 adds to the previous results instead of starting afresh.
. "$(dirname "$0")/lib.sh"
need qemu-img bc
need_vhdkit tool
"$BENCH/mkdata.sh"

: "${JOBS:=raw2vhd-sparse raw2vhd-dense raw2vhdx-sparse raw2vhdx-dense raw2vhd-sparse-direct raw2vhd-dense-direct vhd2raw merge}"
: "${CASES:=vhdtool qemu-img cp-sparse}"
: "${VERIFY:=1}"
OUTTSV="$RESULTS/convert.tsv"
if [[ ${APPEND:-0} != 1 || ! -f $OUTTSV ]]; then
    printf 'bench\tjob\tcase\trun\tseconds\tMBps\tout_apparent\tout_alloc\n' > "$OUTTSV"
    : > "$RESULTS/convert.commands"; rm -f "$RESULTS/convert.verify"
fi
printf 'SIZE_MIB=%s DATA_PCT=%s RUNS=%s\n' "$SIZE_MIB" "$DATA_PCT" "$RUNS" > "$RESULTS/convert.params"

VHD="$WORK/pristine.vhd"
OUT="$WORK/conv-out"

# case_cmd JOB CASE -> sets CMD (array) and SRC; returns 1 if the case does not
# apply to the job (cp of a VHD is not a conversion)
case_cmd() {
    local job=$1 c=$2
    case $job in
        raw2vhd-sparse|raw2vhdx-sparse|raw2vhd-sparse-direct) SRC="$WORK/src.raw";;
        raw2vhd-dense|raw2vhdx-dense|raw2vhd-dense-direct) SRC="$WORK/src-dense.raw";;
        vhd2raw)        SRC="$VHD";;
        merge)          SRC="$WORK/merge-child.vhd";;
        *) die "unknown convert job $job";;
    esac
    case $job:$c in
        raw2vhd-*-direct:vhdtool)   CMD=("$VHDTOOL" convert -q --direct -O vhd "$SRC" "$OUT");;
        raw2vhd-*-direct:qemu-img)  CMD=(qemu-img convert -t none -f raw -O vpc $VPC_OPTS "$SRC" "$OUT");;
        raw2vhd-*-direct:cp-sparse) return 1;;
        raw2vhdx-*:vhdtool)  CMD=("$VHDTOOL" convert -q -O vhdx "$SRC" "$OUT");;
        raw2vhdx-*:qemu-img) CMD=(qemu-img convert -f raw -O vhdx "$SRC" "$OUT");;
        raw2vhdx-*:cp-sparse) CMD=(cp --sparse=always "$SRC" "$OUT");;
        raw2vhd-*:vhdtool)   CMD=("$VHDTOOL" convert -q -O vhd "$SRC" "$OUT");;
        raw2vhd-*:qemu-img)  CMD=(qemu-img convert -f raw -O vpc $VPC_OPTS "$SRC" "$OUT");;
        raw2vhd-*:cp-sparse) CMD=(cp --sparse=always "$SRC" "$OUT");;
        vhd2raw:vhdtool)     CMD=("$VHDTOOL" convert -q -O raw "$SRC" "$OUT");;
        vhd2raw:qemu-img)    CMD=(qemu-img convert -f vpc -O raw "$SRC" "$OUT");;
        vhd2raw:cp-sparse)   return 1;;
        merge:vhdtool)       CMD=("$VHDTOOL" merge -q "$SRC");;
        merge:cp-sparse)     CMD=(cp --sparse=always "$SRC" "$OUT");;
        merge:*)             return 1;;
        *) die "unknown convert case $c";;
    esac
}

# merge_setup: a fresh parent (copy of the pristine VHD) and child with
# 1/8 of the disk written in 1 MiB pieces at seeded random places; the
# expected content in merge-expect.raw (made once).
merge_setup() {
    local base="$WORK/merge-base.vhd" child="$WORK/merge-child.vhd"
    rm -f "$base" "$child" "$base.vhdkit-merge"
    cp --sparse=always "$VHD" "$base"
    "$VHDTOOL" snapshot -q "$base" "$child"
    if [[ ! -f $WORK/merge-patch.bin ]]; then
        head -c $(( SIZE_MIB / 8 ))M /dev/urandom > "$WORK/merge-patch.bin"
    fi
    local n=$(( SIZE_MIB / 8 )) i=0 off
    for off in $(seq 0 $(( SIZE_MIB - 1 )) | shuf -n "$n" --random-source=<(yes 7)); do
        echo "$off $i"; i=$((i + 1))
    done > "$WORK/merge-layout"
    while read -r off i; do
        dd if="$WORK/merge-patch.bin" bs=1M skip="$i" count=1 status=none |
            "$VHDTOOL" write --offset "${off}M" "$child" - >/dev/null
    done < "$WORK/merge-layout"
}

verify_out() {    # verify_out JOB CASE: the output holds the source's data
    local job=$1 c=$2 ofmt=raw sfmt=raw ok=1
    if [[ $job == merge ]]; then
        [[ $c == vhdtool ]] || { log "  verify $job $c: (a plain copy)"; return; }
        "$VHDTOOL" check "$WORK/merge-base.vhd" > "$RUN_DIR/check.out" 2>&1 || ok=0
        "$VHDTOOL" convert -q -O raw "$WORK/merge-base.vhd" "$WORK/merge-got.raw"
        cp --sparse=always "$(qemu_raw_of_vhd)" "$WORK/merge-expect.raw"
        while read -r off i; do
            dd if="$WORK/merge-patch.bin" of="$WORK/merge-expect.raw" bs=1M skip="$i" \
               seek="$off" count=1 conv=notrunc status=none
        done < "$WORK/merge-layout"
        cmp -s "$WORK/merge-got.raw" "$WORK/merge-expect.raw" || ok=0
        rm -f "$WORK/merge-got.raw" "$WORK/merge-expect.raw"
        if [[ $ok == 1 ]]; then log "  verify merge: parent holds base + child"
        else log "  verify merge: FAILED"; echo "VERIFY FAILED: merge" >> "$RESULTS/convert.verify"; fi
        return
    fi
    case $job in raw2vhd-*) [[ $c == cp-sparse ]] || ofmt=vpc;;
                 raw2vhdx-*) [[ $c == cp-sparse ]] || ofmt=vhdx;; vhd2raw) sfmt=vpc;; esac
    qemu-img compare -q -f "$sfmt" -F "$ofmt" "$SRC" "$OUT" || ok=0
    if [[ $ofmt != raw ]] && ! "$VHDTOOL" check "$OUT" >"$RUN_DIR/check.out" 2>&1; then
        ok=0; cat "$RUN_DIR/check.out" >&2
    fi
    if [[ $ok == 1 ]]; then log "  verify $job $c: identical"
    else log "  verify $job $c: FAILED"; echo "VERIFY FAILED: $job $c (${CMD[*]})" >> "$RESULTS/convert.verify"; fi
}

qemu_raw_of_vhd() {   # the pristine VHD's content as raw (made once)
    [[ -f $WORK/pristine.raw ]] || qemu-img convert -f vpc -O raw "$VHD" "$WORK/pristine.raw"
    echo "$WORK/pristine.raw"
}

bytes() { case $1 in vhd2raw) qemu-img info --output=json "$VHD" | jq '."virtual-size"';;
                     merge) stat -c %s "$WORK/merge-child.vhd" 2>/dev/null || echo 0;;
                     *) echo $(( SIZE_MIB * 1048576 ));; esac; }

# out_size FN: FN of the output (merge: of the merged-into parent)
out_size() {
    local f=$OUT
    [[ $job == merge && $c == vhdtool ]] && f="$WORK/merge-base.vhd"
    [[ -e $f ]] && "$1" "$f" || echo 0
}

r0=$(last_run "$OUTTSV" 4)
for run in $(seq $((r0 + 1)) $((r0 + RUNS))); do
  for job in $JOBS; do
    nbytes=$(bytes "$job")
    for c in $CASES; do
        case_cmd "$job" "$c" || continue
        [[ $job == merge ]] && merge_setup && nbytes=$(bytes merge)
        rm -f "$OUT"
        drop_caches
        t0=$(now)
        if ! "${CMD[@]}" 2>"$RUN_DIR/convert.err"; then
            log "FAILED: ${CMD[*]}"; cat "$RUN_DIR/convert.err" >&2
            echo "FAILED (run $run): ${CMD[*]}: $(head -c 300 "$RUN_DIR/convert.err")" >> "$RESULTS/convert.verify"
            continue
        fi
        if [[ -e $OUT ]]; then sync "$OUT"; else sync -f "$WORK"; fi   # merge: no OUT
        t1=$(now)
        secs=$(echo "$t1 - $t0" | bc -l)
        mbps=$(echo "$nbytes / $secs / 1000000" | bc -l)
        printf 'convert\t%s\t%s\t%d\t%.3f\t%.1f\t%d\t%d\n' "$job" "$c" "$run" "$secs" "$mbps" \
            "$(out_size size_apparent)" "$(out_size size_alloc)" | tee -a "$OUTTSV" >&2
        [[ $VERIFY == 1 && $run == $((r0 + 1)) ]] && verify_out "$job" "$c"
        printf '%s\t%s\t%s\n' "$job" "$c" "${CMD[*]}" >> "$RESULTS/convert.commands"
    done
  done
done
rm -f "$OUT"
sort -u -o "$RESULTS/convert.commands" "$RESULTS/convert.commands"
log "done: $OUTTSV"
