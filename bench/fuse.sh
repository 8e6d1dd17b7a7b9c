#!/usr/bin/env bash
# Reads from a VHD exposed as a file through FUSE:
#   vhdtool-vpc        vhdtool mount --readonly pristine.vhd DIR; fio on DIR/disk   (vhdkit)
#   vhdimount-vpc      vhdimount (libvhdi, read-only) on the same VHD; DIR/vhdi1
#   nbdfuse-nbdkit-raw nbdfuse -r -> nbdkit -r file (the same data as a raw file)
#   local-raw          the raw image file itself (no FUSE; memory-speed reference)
#   optional: nbdfuse-nbdkit-vhd-vpc (nbdfuse -> vhdkit's nbdkit plugin on the
#   VHD), nbdfuse-qnbd-vpc (nbdfuse -> qemu-nbd -r -f vpc)
# Backing files are in the page cache (warmed right before each measurement),
# so the numbers are the software path cost.  A fresh mount for each
# measurement; fio drops the FUSE file's page cache before each job
# (invalidate=1; not for local-raw, whose cache is the reference).
# Job spec: name:rw:bs:iodepth:numjobs:time_based:engine:direct
#   direct=1 opens the file with O_DIRECT (bypasses the FUSE page cache);
#   direct=0 goes through it; the buffered sequential job reads the whole
#   file once (time_based=0).
# Env: RUNS RUNTIME TARGETS FUSE_JOBS TAG APPEND
. "$(dirname "$0")/lib.sh"
need fio jq vhdimount nbdfuse nbdkit fusermount3 mountpoint bc
need_vhdkit tool
"$BENCH/mkdata.sh"

: "${TARGETS:=vhdtool-vpc vhdimount-vpc nbdfuse-nbdkit-raw local-raw}"
: "${FUSE_JOBS:=sr1m-buf:read:1M:1:1:0:psync:0 rr4k-qd1-buf:randread:4k:1:1:1:psync:0 rr4k-qd1-dio:randread:4k:1:1:1:psync:1}"
: "${TAG:=fuse}"
OUTTSV="$RESULTS/$TAG.tsv"; JSON_DIR="$RESULTS/json-$TAG"; mkdir -p "$JSON_DIR"
if [[ ${APPEND:-0} != 1 || ! -f $OUTTSV ]]; then echo "$TSV_HDR" > "$OUTTSV"; fi
CMDLOG="$RESULTS/$TAG.commands"; : > "$CMDLOG"; rm -f "$RESULTS/$TAG.check"
printf 'SIZE_MIB=%s DATA_PCT=%s RUNS=%s RUNTIME=%s\n' "$SIZE_MIB" "$DATA_PCT" "$RUNS" "$RUNTIME" > "$RESULTS/$TAG.params"

VHD="$WORK/pristine.vhd"; RAW="$WORK/src-dense.raw"

# mount_target NAME -> sets FILE and CPU_PIDS (processes whose CPU we count)
mount_target() {
    local t=$1 d; d=$(mnt_dir "$t"); mkdir -p "$d"; CPU_PIDS=""
    case $t in
        vhdtool-vpc)
            mount_vhdtool "$t" "$VHD" --readonly      # daemonizes; FILE=$d/disk
            CPU_PIDS=$MNT_DAEMON_PID
            CMD="$VHDTOOL mount --readonly $VHD $d";;
        vhdimount-vpc)
            vhdimount "$VHD" "$d" >"$RUN_DIR/$t.log" 2>&1   # daemonizes
            wait_file "$d/vhdi1"; FILE="$d/vhdi1"
            CPU_PIDS=$(pgrep -n -f "^vhdimount $VHD $d\$" || true)
            CMD="vhdimount $VHD $d";;
        nbdfuse-qnbd-vpc|nbdfuse-nbdkit-vhd-vpc|nbdfuse-nbdkit-raw)
            local srv="$t-srv"
            case $t in
                nbdfuse-qnbd-vpc)       start_qemu_nbd "$srv" vpc "$VHD" -r
                                        CMD="qemu-nbd -k SOCK -t -e 0 -f vpc -r $VHD";;
                nbdfuse-nbdkit-vhd-vpc) start_nbdkit_vhd "$srv" "$VHD" -r
                                        CMD="nbdkit -f -r -U SOCK $NBD_PLUGIN file=$VHD";;
                nbdfuse-nbdkit-raw)     start_nbdkit "$srv" "$RAW" -r
                                        CMD="nbdkit -f -r -U SOCK file $RAW";;
            esac
            nbdfuse -r -P "$RUN_DIR/$t.fusepid" "$d" --unix "$(sock_path "$srv")" \
                >"$RUN_DIR/$t.log" 2>&1 &
            MNT_PID[$t]=$!; wait_file "$RUN_DIR/$t.fusepid"; FILE="$d/nbd"
            CPU_PIDS="${MNT_PID[$t]} ${SRV_PID[$srv]}"
            CMD="$CMD; nbdfuse -r $d --unix SOCK";;
        local-raw) FILE="$RAW"; CMD="(no FUSE) $RAW";;
        *) die "unknown target $t";;
    esac
    export FILE
    grep -q "^$t	" "$CMDLOG" || printf '%s\t%s\n' "$t" "$CMD" >> "$CMDLOG"
}
umount_target() {
    local t=$1
    case $t in
        local-raw) ;;
        vhdtool-vpc) umount_vhdtool "$t";;
        vhdimount-vpc) unmount_fuse "$t";;
        nbdfuse-*) unmount_fuse "$t"; stop_server "$t-srv"; rm -f "$RUN_DIR/$t.fusepid";;
    esac
}
cpu_sum() { local s=0 p; for p in $CPU_PIDS; do s=$(echo "$s + $(proc_cpu "$p")" | bc -l); done; echo "$s"; }

r0=$(last_run "$OUTTSV" 5)   # APPEND=1: runs numbered after those already there
for run in $(seq $((r0 + 1)) $((r0 + RUNS))); do
    for spec in $FUSE_JOBS; do
        IFS=: read -r _ _ _ _ _ _ ENGINE DIRECT <<<"$spec"
        set_job "${spec%:*:*}"
        export ENGINE DIRECT INVALIDATE=1
        for t in $(rotated "$run" $TARGETS); do
            # local-raw: never drop the raw file's page cache (the buffered job is
            # the memory-speed reference, and nbdkit-raw reads the same file)
            [[ $t == local-raw ]] && INVALIDATE=0
            case $t in *vpc*) warm_file "$VHD";; *) warm_file "$RAW";; esac
            mount_target "$t"
            out="$JSON_DIR/$t.$JOB.$run.json"
            c0=$(cpu_sum)
            if ! run_fio "$FIO_DIR/file.fio" "$out"; then
                umount_target "$t"; INVALIDATE=1
                printf '%s: %s %s run %s FAILED: %s\n' "$TAG" "$t" "$JOB" "$run" "$(tail -2 "$out.err" | tr '\n' ' ')" >> "$RESULTS/$TAG.check"
                continue
            fi
            c1=$(cpu_sum)
            umount_target "$t"
            INVALIDATE=1
            printf '%s\t%s\t%s\t%s\t%d\t%s\t%.2f\n' "$TAG" read "$t" "$JOB" "$run" \
                "$(fio_metrics "$out" "$DIR")" "$(echo "$c1 - $c0" | bc -l)" | tee -a "$OUTTSV" >&2
        done
    done
done
log "done: $OUTTSV"
