# lib.sh -- common helpers of vhdkit's benchmarks.  Source this file.
# Method (from the shared baseline harness): every figure is the median of
# RUNS repetitions; within a repetition each job runs on every target back to
# back (round robin), so ratios are taken side by side, per run, and their
# median reported; one server at a time, on a unix socket, started before
# and stopped (by its PID) after each measurement; backing files warmed in
# the page cache right before each fio run; convert runs start with a cold
# page cache and include `sync FILE` of the output.
# shellcheck shell=bash
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HERE=$BENCH
TOP="$(cd "$BENCH/.." && pwd)"
# shellcheck source=config.sh
. "$BENCH/config.sh"

# vhdkit under test (the build tree, not an installed copy)
: "${VHDTOOL:=$TOP/vhdtool/vhdtool}"
: "${NBD_PLUGIN:=$TOP/nbd-plugin/nbdkit-vhd-plugin.so}"

mkdir -p "$WORK" "$RESULTS" "$RUN_DIR"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Debian package of each tool the benchmarks use (for the error message)
pkg_of() {
    case $1 in
        qemu-img|qemu-nbd) echo qemu-utils;;
        nbdfuse|nbdinfo|nbdcopy) echo libnbd-bin;;
        vhdimount) echo libvhdi-utils;;
        fusermount3) echo fuse3;;
        shuf|sync|truncate|stat) echo coreutils;;
        mountpoint) echo util-linux;;
        *) echo "$1";;
    esac
}

# need TOOL... : all present, or name every missing one (and its package)
# and exit non-zero.
need() {
    local c missing=() pkgs=()
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        missing+=("$c"); pkgs+=("$(pkg_of "$c")")
    done
    if (( ${#missing[@]} )); then
        log "missing tools: ${missing[*]}"
        log "install them with: apt-get install -y $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
        exit 1
    fi
}

# need_vhdkit [tool|plugin]... : the build products exist (run `make` first)
need_vhdkit() {
    local w
    for w in "$@"; do
        case $w in
            tool)   [[ -x $VHDTOOL ]] || die "$VHDTOOL is not built (run make)";;
            plugin) [[ -f $NBD_PLUGIN ]] || die "$NBD_PLUGIN is not built (run make; needs nbdkit-plugin-dev)";;
        esac
    done
}

# One build for the whole run: the build tree may be rebuilt while a run
# goes on (make, make clean), so the first script of a run copies vhdtool
# and the plugin (both link libvhd statically) to $PERF_ROOT/bin and every
# script of the run uses those copies.  VHDKIT_SNAPSHOT=0 uses the build
# tree directly.
snapshot_vhdkit() {
    local bin="$PERF_ROOT/bin" rev
    mkdir -p "$bin"
    if [[ -x $VHDTOOL ]]; then
        cp "$VHDTOOL" "$bin/.vhdtool.$$" && mv -f "$bin/.vhdtool.$$" "$bin/vhdtool"
        VHDTOOL="$bin/vhdtool"
    fi
    if [[ -f $NBD_PLUGIN ]]; then
        cp "$NBD_PLUGIN" "$bin/.plugin.$$" && mv -f "$bin/.plugin.$$" "$bin/nbdkit-vhd-plugin.so"
        NBD_PLUGIN="$bin/nbdkit-vhd-plugin.so"
    fi
    rev=$(git -C "$TOP" describe --always --dirty 2>/dev/null || echo '?')
    echo "vhdkit $(cat "$TOP/VERSION" 2>/dev/null) ($rev, copied from the build tree $(date -u '+%F %H:%MZ'))" \
        > "$RESULTS/vhdkit.version"
    VHDKIT_SNAPSHOT=1
    export VHDTOOL NBD_PLUGIN VHDKIT_SNAPSHOT
}
if [[ -z ${VHDKIT_SNAPSHOT:-} ]]; then snapshot_vhdkit; fi

now() { date +%s.%N; }

drop_caches() {
    sync
    if [[ "${DROP_CACHES}" == 1 ]]; then
        [[ -w /proc/sys/vm/drop_caches ]] || die "cannot drop the page cache: run as root, or DROP_CACHES=0 (warm source)"
        echo 3 > /proc/sys/vm/drop_caches
    fi
}

# Read a file once so it is in the page cache (used before "warm" tests).
# NOTE: these VMs run a DAMON "pageout" scheme that reclaims page cache not
# accessed for ~60 s, so warming happens right before each measurement.
# WARM=small: the file's cached pages are written back and dropped, then it
# is read in 1 MiB reads with readahead off (POSIX_FADV_RANDOM): the cache
# gets one small folio per page, as a guest's 4 KiB I/O leaves it, but in
# seconds, and every target starts from the same state;
# WARM=1: a sequential dd read (the page cache then holds large folios);
# WARM=random: 4 KiB random reads over the whole file, as a guest fills the
# cache (small folios; ext4 4 KiB writes into large folios cost much more).
warm_file() {
    case $WARM in
        small) sync -d "$1"; dd if="$1" iflag=nocache count=0 status=none   # drop its pages
               fio --name=warm --filename="$1" --rw=read --bs=1M --ioengine=psync \
                   --fadvise_hint=random --size=100% --output=/dev/null;;
        1) dd if="$1" of=/dev/null bs=4M status=none;;
        random) fio --name=warm --filename="$1" --rw=randread --bs=4k --ioengine=psync \
                    --size=100% --output=/dev/null;;
    esac
}

# Apparent and allocated size in bytes.
size_apparent() { stat -c %s "$1"; }
size_alloc()    { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }

# CPU seconds (user+system) consumed so far by a PID (0 if gone).
proc_cpu() {
    local pid=$1 tck; tck=$(getconf CLK_TCK)
    if [[ -n $pid && -r /proc/$pid/stat ]]; then
        # fields after the ")" : state is $1, utime $12, stime $13
        awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12+$13)/t }' "/proc/$pid/stat"
    else echo 0; fi
}

# last_run TSV COLUMN: the highest run number already in a results file (0
# if none), so that APPEND=1 numbers its runs after it (ratios pair runs by
# their number).
last_run() { awk -F'\t' -v c="$2" 'NR>1 && $c+0>m {m=$c+0} END {print m+0}' "$1"; }

# median of numbers on stdin
median() {
    sort -g | awk '{a[NR]=$1} END { if (NR==0) print "NA";
        else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}

# ---------------------------------------------------------------- servers ---
# Servers run in the foreground as children of this shell (so `wait` reaps
# them); we record their PIDs and only ever kill those PIDs.
declare -A SRV_PID=()

sock_path() { echo "$RUN_DIR/$1.sock"; }
nbd_uri()   { echo "nbd+unix:///?socket=$(sock_path "$1")"; }

wait_nbd() {   # wait until an NBD server answers on socket $1 (name)
    local name=$1 i
    for i in $(seq 1 200); do
        if nbdinfo --size "$(nbd_uri "$name")" >/dev/null 2>&1; then return 0; fi
        [[ -n "${SRV_PID[$name]:-}" ]] && ! kill -0 "${SRV_PID[$name]}" 2>/dev/null && break
        sleep 0.05
    done
    log "server log $RUN_DIR/$name.log:"; tail -5 "$RUN_DIR/$name.log" >&2 || true
    die "NBD server $name did not come up"
}

# start_server NAME CMD...   (CMD must stay in the foreground)
start_server() {
    local name=$1; shift
    rm -f "$(sock_path "$name")"
    "$@" >"$RUN_DIR/$name.log" 2>&1 &
    SRV_PID[$name]=$!
    echo "${SRV_PID[$name]}" > "$RUN_DIR/$name.pid"
    wait_nbd "$name"
}

stop_server() {
    local name=$1 pid=${SRV_PID[$1]:-}
    [[ -z "$pid" ]] && return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "SRV_PID[$name]"
    rm -f "$(sock_path "$name")" "$RUN_DIR/$name.pid"
}

# nbdkit file plugin:  start_nbdkit NAME IMAGE [extra nbdkit args / plugin params]
start_nbdkit() {
    local name=$1 img=$2; shift 2
    local pre=() post=()
    for a in "$@"; do case $a in -*) pre+=("$a");; *) post+=("$a");; esac; done
    start_server "$name" nbdkit -f -U "$(sock_path "$name")" "${pre[@]}" \
        file "$img" "${post[@]}"
}

# vhdkit's nbdkit plugin:  start_nbdkit_vhd NAME IMAGE [extra nbdkit args / plugin params]
start_nbdkit_vhd() {
    local name=$1 img=$2; shift 2
    local pre=() post=()
    for a in "$@"; do case $a in -*) pre+=("$a");; *) post+=("$a");; esac; done
    start_server "$name" nbdkit -f -U "$(sock_path "$name")" "${pre[@]}" \
        "$NBD_PLUGIN" file="$img" "${post[@]}"
}

# qemu-nbd:  start_qemu_nbd NAME FORMAT IMAGE [extra qemu-nbd args]
start_qemu_nbd() {
    local name=$1 fmt=$2 img=$3; shift 3
    start_server "$name" qemu-nbd -k "$(sock_path "$name")" -t -e 0 -f "$fmt" "$@" "$img"
}

# ------------------------------------------------------------------- FUSE ---
declare -A MNT_PID=()      # FUSE daemons that are our children (nbdfuse)
declare -A VHD_MNT=()      # mount points of daemonized vhdtool mounts
mnt_dir() { echo "$RUN_DIR/mnt-$1"; }

wait_file() {  # wait for path to exist
    local i; for i in $(seq 1 200); do [[ -e "$1" ]] && return 0; sleep 0.05; done
    die "timeout waiting for $1"
}

unmount_fuse() {
    local name=$1 d; d=$(mnt_dir "$name")
    if mountpoint -q "$d"; then fusermount3 -u "$d" || umount -l "$d"; fi
    if [[ -n "${MNT_PID[$name]:-}" ]]; then wait "${MNT_PID[$name]}" 2>/dev/null || true; unset "MNT_PID[$name]"; fi
}

# PID of the daemon of a vhdtool mount on DIR: from its pid file (where
# cmd_mount.c puts it: $XDG_RUNTIME_DIR, else /run, else /tmp), else by its
# command line.  Only used to count the daemon's CPU time.
vhdtool_daemon_pid() {
    local d=$1 real dir pf
    real=$(realpath -m "$d")
    for dir in ${XDG_RUNTIME_DIR:-} /run /tmp; do
        pf="$dir/vhdkit-mount-${real//\//_}.pid"
        [[ -s $pf ]] && { cat "$pf"; return 0; }
    done
    pgrep -n -f -- "vhdtool mount .*$d\$" || true
}

# mount_vhdtool NAME IMAGE [vhdtool mount options] -> sets FILE and MNT_DAEMON_PID
mount_vhdtool() {
    local name=$1 img=$2; shift 2
    local d i; d=$(mnt_dir "$name"); mkdir -p "$d"
    "$VHDTOOL" mount "$@" "$img" "$d" >"$RUN_DIR/$name.log" 2>&1 \
        || { cat "$RUN_DIR/$name.log" >&2; die "vhdtool mount $img failed"; }
    VHD_MNT[$name]=$d
    wait_file "$d/disk"; FILE="$d/disk"
    MNT_DAEMON_PID=""
    for i in $(seq 1 50); do
        MNT_DAEMON_PID=$(vhdtool_daemon_pid "$d")
        [[ -n $MNT_DAEMON_PID ]] && break
        sleep 0.02
    done
    [[ -n $MNT_DAEMON_PID ]] || log "warning: vhdtool mount daemon on $d not found (its CPU is not counted)"
}

umount_vhdtool() {
    local name=$1 d=${VHD_MNT[$1]:-}
    [[ -z $d ]] && return 0
    "$VHDTOOL" umount "$d" >>"$RUN_DIR/$name.log" 2>&1 \
        || { log "vhdtool umount $d failed:"; tail -3 "$RUN_DIR/$name.log" >&2; \
             mountpoint -q "$d" && fusermount3 -u "$d"; }
    unset "VHD_MNT[$name]"
}

# ---------------------------------------------------------------- cleanup ---
cleanup() {
    local n d
    for n in "${!VHD_MNT[@]}"; do umount_vhdtool "$n"; done
    for n in "${!MNT_PID[@]}"; do unmount_fuse "$n"; done
    for d in "$RUN_DIR"/mnt-*; do [[ -d "$d" ]] && mountpoint -q "$d" && fusermount3 -u "$d" 2>/dev/null; done
    for n in "${!SRV_PID[@]}"; do stop_server "$n"; done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -------------------------------------------------------------------- fio ---
# run_fio JOBFILE OUT.json  (workload given by env: RW BS QD NJ TB FSYNC RUNTIME ...)
# Returns non-zero (after showing fio's errors) if fio fails: the callers
# record the failure and go on with the other targets.
run_fio() {
    local jobfile=$1 out=$2
    fio --output-format=json --output="$out" "$jobfile" >/dev/null 2>"$out.err" \
        || { log "fio failed ($jobfile):"; tail -5 "$out.err" >&2; return 1; }
}

# fio_metrics OUT.json DIR(read|write) -> "iops MBps p99_us mean_us runtime_s"
# p99 and mean are of the total latency (submission + completion); with
# group_reporting the numbers are summed over numjobs, runtime is the longest.
fio_metrics() {
    jq -r --arg d "$2" '.jobs[0][$d] |
        [ (.iops|floor), ((.bw_bytes/1e6)*10|floor/10),
          ((.lat_ns.percentile["99.000000"] // .clat_ns.percentile["99.000000"] // 0)/1000|floor),
          ((.lat_ns.mean // 0)/1000|floor), (.runtime/1000) ] | @tsv' "$1"
}

# Parse a job spec "name:rw:bs:qd:nj[:tb[:fsync]]" into exported env for the
# job files.  tb: 1 time based (default), 0 one pass over the disk (capped at
# RUNTIME); fsync: a flush every N writes (default 0: none).
set_job() {
    local IFS=:
    read -r JOB RW BS QD NJ TB FSYNC <<<"$1"
    TB=${TB:-1}; FSYNC=${FSYNC:-0}
    export RW BS QD NJ TB FSYNC RUNTIME
    case $RW in *read*) DIR=read;; *) DIR=write;; esac
}

# TSV header used by all NBD/FUSE results files
TSV_HDR=$'bench\tphase\ttarget\tjob\trun\tiops\tMBps\tp99_us\tmean_us\truntime_s\tsrv_cpu_s'

# rotated RUN WORD...: the words rotated left by RUN-1, so that within a
# repetition no target always runs right after the same other one (a
# server's leftovers -- dirty pages, writeback -- land on the next).
rotated() {
    local n=$1; shift
    local a=("$@") k=$(( (n - 1) % $# ))
    echo "${a[@]:k}" "${a[@]:0:k}"
}
