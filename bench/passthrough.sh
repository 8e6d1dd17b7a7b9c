#!/usr/bin/env bash
# Pass-through disks: libvhd's asynchronous path on a host block device
# (bench/aiobench: passthrough/ handle, O_DIRECT, vhd_aio with libaio)
# against fio ioengine=libaio direct=1 on the same device, side by side in
# each run.  The device is a loop device with direct I/O to its backing file
# (losetup --direct-io=on), made fresh in $WORK and filled once.
#
# Env: RUNS RUNTIME PT_JOBS (name:rw:bs:qd) PT_MIB (device size) TAG APPEND
. "$(dirname "$0")/lib.sh"
need fio jq losetup bc
[[ $(id -u) == 0 ]] || die "run as root (loop devices)"
AIOBENCH="$TOP/bench/aiobench"
[[ -x $AIOBENCH ]] || die "$AIOBENCH is not built (make bench builds it)"
: "${TAG:=passthrough}"
: "${PT_MIB:=1024}"
: "${PT_JOBS:=rr4k-qd32:randread:4k:32 rw4k-qd32:randwrite:4k:32 sr1m-qd32:read:1M:32 sw1m-qd32:write:1M:32}"

OUTTSV="$RESULTS/$TAG.tsv"
if [[ ${APPEND:-0} != 1 || ! -f $OUTTSV ]]; then echo "$TSV_HDR" > "$OUTTSV"; : > "$RESULTS/$TAG.commands"; fi
printf 'PT_MIB=%s RUNS=%s RUNTIME=%s\n' "$PT_MIB" "$RUNS" "$RUNTIME" > "$RESULTS/$TAG.params"
r0=$(last_run "$OUTTSV" 5)

backing="$WORK/passthrough.img"
if [[ ! -f $backing || $(stat -c %s "$backing") != $((PT_MIB << 20)) ]]; then
    rm -f "$backing"
    dd if=/dev/urandom of="$backing" bs=1M count="$PT_MIB" status=none
fi
LOOP=$(losetup -f --show --direct-io=on "$backing") || die "losetup failed"
trap 'losetup -d "$LOOP"' EXIT
log "device $LOOP (direct I/O to $backing)"

for run in $(seq $((r0 + 1)) $((r0 + RUNS))); do
    for spec in $PT_JOBS; do
        IFS=: read -r job rw bs qd <<<"$spec"
        for t in vhdkit-aio fio-libaio; do
            out="$RUN_DIR/$TAG-$t-$job-$run.json"
            if [[ $t == vhdkit-aio ]]; then
                cmd=("$AIOBENCH" --rw "$rw" --bs "$bs" --iodepth "$qd" --runtime "$RUNTIME" "$LOOP")
                "${cmd[@]}" > "$out" 2>"$out.err" || { log "FAILED: ${cmd[*]}: $(cat "$out.err")"; continue; }
                iops=$(jq '.iops' "$out"); mbps=$(jq '.mbps' "$out")
            else
                cmd=(fio --name=pt --filename="$LOOP" --rw="$rw" --bs="$bs" --iodepth="$qd"
                     --ioengine=libaio --direct=1 --runtime="$RUNTIME" --time_based
                     --output-format=json --output="$out")
                "${cmd[@]}" >/dev/null 2>"$out.err" || { log "FAILED: ${cmd[*]}"; continue; }
                case $rw in *read*) d=read;; *) d=write;; esac
                iops=$(jq ".jobs[0].$d.iops|floor" "$out"); mbps=$(jq ".jobs[0].$d.bw_bytes/1e6" "$out")
            fi
            printf '%s\t%s\t%s\t%s\t%d\t%s\t%.1f\t0\t0\t%s\t0\n' "$TAG" "device" "$t" "$job" "$run" \
                "${iops%.*}" "$mbps" "$RUNTIME" | tee -a "$OUTTSV" >&2
            printf '%s\t%s\n' "$t" "${cmd[*]}" >> "$RESULTS/$TAG.commands"
        done
    done
done
sort -u -o "$RESULTS/$TAG.commands" "$RESULTS/$TAG.commands"
log "done: $OUTTSV"
