# shellcheck shell=bash
# Benchmark configuration.  Every value can be overridden from the
# environment, e.g.  RUNS=5 RUNTIME=15 bench/nbd.sh
# Sourced by lib.sh; not meant to be executed.
# The defaults are sized so that `make bench` takes about 25 minutes on a
# 2-core machine; README.md gives the full-size settings (SIZE_MIB=4096,
# RUNTIME=15).

: "${PERF_ROOT:=/tmp/vhdkit-bench}"
: "${WORK:=$PERF_ROOT/work}"          # images (source, pristine, per-test copies)
: "${RESULTS:=$PERF_ROOT/results}"    # TSV, raw fio JSON, commands, summary.md
: "${RUN_DIR:=$PERF_ROOT/run}"        # sockets, pid files, logs, FUSE mount points
: "${FIO_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fio}"   # fio job files

# Source image: SIZE_MIB of which DATA_PCT percent is pseudo-random data placed
# in CHUNK_MIB-sized chunks at SEED-determined positions; the rest are zeros.
: "${SIZE_MIB:=2048}"
: "${CHUNK_MIB:=1}"
: "${DATA_PCT:=50}"
: "${SEED:=42}"

: "${RUNS:=3}"          # repetitions; tables report medians
: "${RUNTIME:=8}"       # seconds per time-based fio job
: "${DROP_CACHES:=1}"   # 1: drop the page cache before each convert run (cold source)
: "${WARM:=small}"      # read the backing image right before each fio run:
                        # small: 1 MiB reads without readahead (small folios),
                        # 1: dd (large folios), random: 4 KiB random reads.
                        # On ext4 with large folios a 4 KiB write into a 2 MiB
                        # folio costs several times one into a 4 KiB folio, so
                        # `1` measures how the file was last written more than
                        # the server (see warm_file in lib.sh)

# qemu-img options for the dynamic VHD every target serves (pristine.vhd)
: "${VPC_OPTS:=}"       # e.g. "-o force_size=on" to avoid CHS rounding of the size
