#!/usr/bin/env bash
# Random/sequential I/O through NBD: fio's nbd engine (libnbd, unix socket)
# against vhdkit's nbdkit plugin and the servers a user would pick instead.
#
# Targets (TARGETS env; the image is chosen by the name: 'vpc' = the dynamic
# VHD, otherwise the raw file):
#   nbdkit-vhd-vpc   nbdkit -f -U SOCK nbd-plugin/nbdkit-vhd-plugin.so file=IMAGE.vhd   (vhdkit)
#   nbdkit-vhd-vpc-keep  the same with realign=false, on its own copy of the
#                    VHD (the plugin's default moves each misaligned block it
#                    writes to a 4 KiB aligned place; this target keeps qemu's
#                    layout, to show what moving gains and costs)
#   qemu-nbd-vpc     qemu-nbd -k SOCK -t -e 0 -f vpc IMAGE.vhd   (same VHD file)
#   nbdkit-raw       nbdkit -f -U SOCK file IMAGE.raw            (same data, raw)
#   optional: nbdkit-vhd-raw (vhdkit plugin on the raw file), qemu-nbd-raw,
#   local-direct / local-buffered (fio libaio on the raw file, no NBD)
# Phases (PHASES env, default "read overwrite alloc"):
#   read       images as converted (50% data, the VHD ~75% of blocks
#              allocated); the backing file is warmed before each run.
#   overwrite  after one full 1M sequential write pass through each image
#              (steady state, no block allocation).
#   alloc      each measurement on a freshly created EMPTY image (sparse raw /
#              dynamic VHD from qemu-img create): cost of allocating writes.
# Within a phase and repetition each job runs once on every target back to
# back (round robin), so ratios are taken side by side.  One server at a
# time: started before, stopped (by PID) after each measurement.
#
# Env: RUNS RUNTIME TARGETS READ_JOBS WRITE_JOBS ALLOC_JOBS PHASES TAG APPEND
. "$(dirname "$0")/lib.sh"
need fio jq nbdkit qemu-nbd qemu-img nbdinfo bc
need_vhdkit plugin
"$BENCH/mkdata.sh"

: "${TARGETS:=nbdkit-vhd-vpc nbdkit-vhd-vhdkit qemu-nbd-vpc nbdkit-raw}"
# nbdkit-vhd-vpc serves the VHD qemu-img made (block data one sector after
# the bitmap, so 4 KiB guest I/O straddles two host pages); nbdkit-vhd-vhdkit
# the same content converted by vhdtool (block data on 4 KiB boundaries).
# job spec = name:rw:bs:iodepth:numjobs[:time_based[:fsync]] (see set_job in lib.sh)
: "${READ_JOBS:=rr4k-qd1:randread:4k:1:1 rr4k-qd32:randread:4k:32:1 sr1m-qd32:read:1M:32:1}"
: "${WRITE_JOBS:=rw4k-qd1:randwrite:4k:1:1 rw4k-qd32:randwrite:4k:32:1 sw1m-qd32:write:1M:32:1}"
: "${ALLOC_JOBS:=fill1m-qd32:write:1M:32:1:0 rw4k-qd32:randwrite:4k:32:1 rw4k-qd32-fsync32:randwrite:4k:32:1:1:32}"
: "${PHASES:=read overwrite alloc}"
: "${TAG:=nbd}"          # results file name: $RESULTS/$TAG.tsv

OUTTSV="$RESULTS/$TAG.tsv"; JSON_DIR="$RESULTS/json-$TAG"; mkdir -p "$JSON_DIR"
if [[ ${APPEND:-0} != 1 || ! -f $OUTTSV ]]; then echo "$TSV_HDR" > "$OUTTSV"; fi
CMDLOG="$RESULTS/$TAG.commands"; : > "$CMDLOG"; rm -f "$RESULTS/$TAG.check"
printf 'SIZE_MIB=%s DATA_PCT=%s RUNS=%s RUNTIME=%s\n' "$SIZE_MIB" "$DATA_PCT" "$RUNS" "$RUNTIME" > "$RESULTS/$TAG.params"

IMG_RAW="$WORK/nbd.raw"; IMG_VPC="$WORK/nbd.vhd"; IMG_OURS="$WORK/nbd-vhdkit.vhd"
IMG_KEEP="$WORK/nbd-keep.vhd"
r0=$(last_run "$OUTTSV" 5)   # APPEND=1: runs numbered after those already there

fmt_of() { case $1 in *vpc*|*vhdkit*) echo vpc;; *) echo raw;; esac; }
img_of() { case $1 in *vhdkit*) echo "$IMG_OURS";; *keep*) echo "$IMG_KEEP";; *vpc*) echo "$IMG_VPC";; *) echo "$IMG_RAW";; esac; }

# start_target NAME IMAGE -> sets KIND (nbd|file), URI or FILE/ENGINE/DIRECT, PID
start_target() {
    local t=$1 img=$2; KIND=nbd; URI=$(nbd_uri "$t"); PID=
    case $t in
        nbdkit-vhd-vpc|nbdkit-vhd-raw|nbdkit-vhd-vhdkit) start_nbdkit_vhd "$t" "$img";;
        nbdkit-vhd-vpc-keep) start_nbdkit_vhd "$t" "$img" realign=false;;
        nbdkit-vhd-*-t*)   start_nbdkit_vhd "$t" "$img" "--threads=${t##*-t}";;
        nbdkit-raw)        start_nbdkit "$t" "$img";;
        nbdkit-raw-t*)     start_nbdkit "$t" "$img" "--threads=${t#nbdkit-raw-t}";;
        qemu-nbd-raw|qemu-nbd-vpc)
                           start_qemu_nbd "$t" "$(fmt_of "$t")" "$img";;
        qemu-nbd-*-nat)    start_qemu_nbd "$t" "$(fmt_of "$t")" "$img" --cache=none --aio=native;;
        qemu-nbd-*-wburing) start_qemu_nbd "$t" "$(fmt_of "$t")" "$img" --cache=writeback --aio=io_uring;;
        local-direct)      KIND=file; FILE=$img; ENGINE=libaio; DIRECT=1; INVALIDATE=0;;
        local-buffered)    KIND=file; FILE=$img; ENGINE=libaio; DIRECT=0; INVALIDATE=0;;
        *) die "unknown target $t";;
    esac
    [[ $KIND == nbd ]] && PID=${SRV_PID[$t]}
    export URI FILE ENGINE DIRECT INVALIDATE
    # record the exact server command line once
    if [[ $KIND == nbd ]]; then
        grep -q "^$t	" "$CMDLOG" 2>/dev/null || \
            printf '%s\t%s\n' "$t" "$(tr '\0' ' ' < "/proc/$PID/cmdline")" >> "$CMDLOG"
    else
        grep -q "^$t	" "$CMDLOG" 2>/dev/null || \
            printf '%s\tfio %s (FILE=%s ENGINE=%s DIRECT=%s)\n' "$t" "$FIO_DIR/file.fio" "$img" "$ENGINE" "$DIRECT" >> "$CMDLOG"
    fi
    return 0
}
stop_target() { [[ $KIND == nbd ]] && stop_server "$1"; return 0; }

# measure PHASE TARGET JOBSPEC RUN [IMAGE]
measure() {
    local phase=$1 t=$2 spec=$3 run=$4 img=${5:-$(img_of "$2")} out cpu0 cpu1 m
    set_job "$spec"
    [[ $phase == alloc ]] || warm_file "$img"   # warm right before each run (see lib.sh)
    start_target "$t" "$img"
    out="$JSON_DIR/$phase.$t.$JOB.$run.json"
    cpu0=$(proc_cpu "$PID")
    local jobfile="$FIO_DIR/nbd.fio"; [[ $KIND == nbd ]] || jobfile="$FIO_DIR/file.fio"
    if ! run_fio "$jobfile" "$out"; then
        [[ -n $PID ]] && ! kill -0 "$PID" 2>/dev/null && log "the server $t has died; its log:" && tail -5 "$RUN_DIR/$t.log" >&2
        stop_target "$t"
        printf '%s: %s %s run %s FAILED: %s\n' "$TAG" "$phase" "$t" "$run" "$(tail -2 "$out.err" | tr '\n' ' ')" >> "$RESULTS/$TAG.check"
        return 0
    fi
    cpu1=$(proc_cpu "$PID")
    stop_target "$t"
    m=$(fio_metrics "$out" "$DIR")
    printf '%s\t%s\t%s\t%s\t%d\t%s\t%.2f\n' "$TAG" "$phase" "$t" "$JOB" "$run" "$m" \
        "$(echo "$cpu1 - $cpu0" | bc -l)" | tee -a "$OUTTSV" >&2
}

restore_images() {
    log "restoring images from pristine copies"
    cp --sparse=never "$WORK/src-dense.raw" "$IMG_RAW"   # fully allocated raw
    cp --sparse=always "$WORK/pristine.vhd"  "$IMG_VPC"
    if [[ " $TARGETS " == *keep* ]]; then cp --sparse=always "$WORK/pristine.vhd" "$IMG_KEEP"; fi
    if [[ " $TARGETS " == *vhdkit* ]]; then
        rm -f "$IMG_OURS"; "$VHDTOOL" convert -q -O vhd "$WORK/pristine.vhd" "$IMG_OURS"
    fi
    sync
}

# precondition: one full sequential write pass through each distinct image
# (by the first target in TARGETS that serves it)
precondition() {
    local t f seen=" "
    for t in $TARGETS; do
        f=$(img_of "$t"); [[ $seen == *" $f "* ]] && continue; seen+="$f "
        log "precondition $f via $t"
        measure precondition "$t" "fill1m-qd32:write:1M:32:1:0" 0
    done
}

fresh_empty() {  # fresh_empty TARGET -> path of a new empty image of its format
    local f; f=$(fmt_of "$1"); local p="$WORK/alloc.$f"
    rm -f "$p"
    case $1:$f in
        *:raw)       truncate -s "${SIZE_MIB}M" "$p";;
        *vhdkit*:vpc) "$VHDTOOL" create -q --size "${SIZE_MIB}M" "$p";;
        *:vpc)       qemu-img create -q -f vpc $VPC_OPTS "$p" "${SIZE_MIB}M";;
    esac
    echo "$p"
}

for phase in $PHASES; do
    case $phase in
        read)
            restore_images
            for run in $(seq $((r0 + 1)) $((r0 + RUNS))); do
                for spec in $READ_JOBS; do for t in $(rotated "$run" $TARGETS); do
                    measure read "$t" "$spec" "$run"
                done; done
            done;;
        overwrite)
            [[ " $PHASES " == *" read "* ]] || restore_images
            precondition
            for run in $(seq $((r0 + 1)) $((r0 + RUNS))); do
                for spec in $WRITE_JOBS; do for t in $(rotated "$run" $TARGETS); do
                    measure overwrite "$t" "$spec" "$run"
                done; done
            done;;
        alloc)
            for run in $(seq $((r0 + 1)) $((r0 + RUNS))); do
                for spec in $ALLOC_JOBS; do for t in $(rotated "$run" $TARGETS); do
                    [[ $t == local-* && $t != local-direct ]] && continue
                    img=$(fresh_empty "$t")
                    measure alloc "$t" "$spec" "$run" "$img"
                    # what the server wrote must be a valid VHD (untimed)
                    if [[ $(fmt_of "$t") == vpc ]] && ! "$VHDTOOL" check "$img" > "$RUN_DIR/nbd-check.out" 2>&1; then
                        log "alloc image written by $t fails vhdtool check:"; cat "$RUN_DIR/nbd-check.out" >&2
                        { echo "$TAG: alloc $t $JOB run $run: the image fails vhdtool check:"; cat "$RUN_DIR/nbd-check.out"; } >> "$RESULTS/$TAG.check"
                    fi
                    rm -f "$img"
                done; done
            done;;
        *) die "unknown phase $phase";;
    esac
done
# the images must still be valid VHDs after every write phase
for IMG_CHECK in "$IMG_VPC" "$IMG_OURS" "$IMG_KEEP"; do
    [[ " $TARGETS " == *vpc* || " $TARGETS " == *vhdkit* ]] || break
    [[ " $PHASES " == *" overwrite "* && -f $IMG_CHECK ]] || continue
    # (qemu-img check does not support vpc)
    if "$VHDTOOL" check "$IMG_CHECK" > "$RUN_DIR/nbd-check.out" 2>&1
    then log "after the run: $IMG_CHECK checks clean (vhdtool check)"
    else log "after the run: $IMG_CHECK has problems:"; cat "$RUN_DIR/nbd-check.out" >&2
         { echo "$TAG: $IMG_CHECK fails its check after the run:"; cat "$RUN_DIR/nbd-check.out"; } >> "$RESULTS/$TAG.check"
    fi
done
log "done: $OUTTSV"
