#!/usr/bin/env bash
# hvcore.sh -- 4 KiB random I/O measured inside a VM: the test guest
# (tests/guests/blkguest.elf, test=bench) polls its virtio-blk queue at CPL3
# and times itself with the TSC; this script prints the guest's IOPS.  Not
# part of `make bench`'s default set: run it by hand (bench/hvcore.sh) once
# hvcore/hvcore is built.
#
# Targets (TARGETS env):
#   hvcore-vpc   hvcore run ... --disk IMAGE.vhd   (a dynamic VHD, fully allocated first)
#   hvcore-raw   hvcore run ... --disk IMAGE.raw
#   qemu-raw     QEMU (KVM if usable) with the same raw file: a baseline
# Env: HVCORE_SIZE_MIB (default 1024), OPS (default 20000), IODEPTHS
# (default "1 16"), RWS (default "read write"), RUNS, TARGETS.
. "$(dirname "$0")/lib.sh"
need qemu-img
need_vhdkit tool
GUEST=$TOP/tests/guests/blkguest.elf
BLKEXPECT=$TOP/tests/guests/blkexpect
HVCORE=${HVCORE:-$TOP/hvcore/hvcore}
[[ -f $GUEST && -x $BLKEXPECT ]] || die "the test guest is not built (run make)"
: "${HVCORE_SIZE_MIB:=1024}" "${OPS:=20000}" "${IODEPTHS:=1 16}" "${RWS:=read write}"
: "${TARGETS:=hvcore-vpc hvcore-raw qemu-raw}"
if [[ ! -x $HVCORE ]]; then
    log "hvcore/hvcore is not built: only the qemu baseline runs"
    TARGETS=$(tr ' ' '\n' <<<"$TARGETS" | grep -v '^hvcore' | tr '\n' ' ')
fi
[[ -n ${TARGETS// } ]] || die "no target left to run"

dir=$WORK/hvcore
mkdir -p "$dir"
raw=$dir/bench.raw vhd=$dir/bench.vhd
if [[ ! -f $raw ]]; then
    log "making a ${HVCORE_SIZE_MIB} MiB raw file and a fully allocated dynamic VHD"
    dd if=/dev/urandom of="$raw" bs=1M count="$HVCORE_SIZE_MIB" status=none
    "$VHDTOOL" convert -q -O vhd "$raw" "$vhd" || die "convert failed"
fi
tsc_khz=$("$BLKEXPECT" tsc-khz)

# run TARGET RW IODEPTH: prints the guest's IOPS.
run() {
    local target=$1 rw=$2 depth=$3 console=$RUN_DIR/hvcore-console.txt
    local cmdline="test=bench rw=$rw iodepth=$depth ops=$OPS tsc_khz=$tsc_khz" accel=(-accel tcg)
    rm -f "$console"
    case $target in
        hvcore-vpc|hvcore-raw)
            local img=$raw
            [[ $target == hvcore-vpc ]] && img=$vhd
            "$HVCORE" run --kernel "$GUEST" --cmdline "$cmdline" --disk "$img" \
                --console "$console" --timeout 600 >/dev/null 2>&1 || die "$target: hvcore exit $?";;
        qemu-raw)
            need qemu-system-x86_64
            [[ -w /dev/kvm ]] && accel=(-accel kvm -accel tcg)
            timeout 600 qemu-system-x86_64 -machine q35 "${accel[@]}" -cpu max -m 256 \
                -display none -monitor none -serial "file:$console" -no-reboot \
                -kernel "$GUEST" -append "$cmdline" \
                -drive "file=$raw,format=raw,if=none,id=d0,cache=none,aio=native" \
                -device virtio-blk-pci,drive=d0,disable-legacy=on 2>/dev/null || die "$target: qemu exit $?";;
        *) die "unknown target $target";;
    esac
    tr -d '\r' <"$console" | sed -n 's/^GUEST BENCH .* iops=\([0-9]*\)$/\1/p' | grep . ||
        die "$target: no result: $(tr -d '\r' <"$console" | grep -a 'GUEST RESULT')"
}

printf '| job |'; for t in $TARGETS; do printf ' %s |' "$t"; done; printf '\n|---|'
for t in $TARGETS; do printf -- '---|'; done; printf '\n'
for rw in $RWS; do
    for depth in $IODEPTHS; do
        declare -A got=()
        for _ in $(seq "${RUNS:-3}"); do
            for t in $TARGETS; do got[$t]+="$(run "$t" "$rw" "$depth") "; done
        done
        printf '| rand%s 4k qd%s |' "$rw" "$depth"
        for t in $TARGETS; do
            # shellcheck disable=SC2086
            printf ' %s |' "$(printf '%s\n' ${got[$t]} | median)"
        done
        printf '\n'
        unset got
    done
done
