#!/usr/bin/env bash
# hvcore.sh -- 4 KiB random I/O measured inside a VM: the test guest
# (tests/guests/blkguest.elf, test=bench) polls its virtio-blk queue at CPL3
# and times itself with the TSC.  Side by side in each run, on the same
# fully allocated dynamic VHD (in the page cache):
#   hvcore-vpc   hvcore run ... --disk IMAGE.vhd   (guest IOPS; with --stats
#                hvcore also reports the I/O thread's CPU time per request,
#                notify to completion, host side)
#   hvcore-raw   the same on the raw file
#   nbd-vpc      fio's nbd engine against nbdkit + vhdkit's plugin on the VHD,
#                same queue depth (what a guest reaching the image over NBD
#                would get)
#   qemu-raw     QEMU (KVM) with the raw file, only where qemu-system-x86_64
#                is installed (not a dependency)
# Results: $RESULTS/hvcore.tsv and hvcore.md (included in summary.md).
# Env: HVCORE_SIZE_MIB (512), OPS (40000), IODEPTHS ("1 32"), RWS
# ("read write"), RUNS, TARGETS.
. "$(dirname "$0")/lib.sh"
need qemu-img fio jq nbdkit
need_vhdkit tool plugin
GUEST=$TOP/tests/guests/blkguest.elf
BLKEXPECT=$TOP/tests/guests/blkexpect
HVCORE=${HVCORE:-$TOP/hvcore/hvcore}
[[ -f $GUEST && -x $BLKEXPECT ]] || die "the test guest is not built (run make)"
[[ -x $HVCORE ]] || die "$HVCORE is not built (run make)"
: "${HVCORE_SIZE_MIB:=512}" "${OPS:=40000}" "${IODEPTHS:=1 32}" "${RWS:=read write}"
if [[ -z ${TARGETS:-} ]]; then
    TARGETS="hvcore-vpc hvcore-raw nbd-vpc"
    command -v qemu-system-x86_64 >/dev/null && TARGETS+=" qemu-raw"
fi

dir=$WORK/hvcore
mkdir -p "$dir"
raw=$dir/bench.raw vhd=$dir/bench.vhd
if [[ ! -f $raw || ! -f $vhd ]]; then
    log "making a ${HVCORE_SIZE_MIB} MiB raw file and a fully allocated dynamic VHD"
    dd if=/dev/urandom of="$raw" bs=1M count="$HVCORE_SIZE_MIB" status=none
    rm -f "$vhd"
    "$VHDTOOL" convert -q -O vhd "$raw" "$vhd" || die "convert failed"
fi
tsc_khz=$("$BLKEXPECT" tsc-khz)
# warm_small FILE: bring FILE into the page cache the way a guest does, with
# 4 KiB random reads (readahead off), so the cache holds small folios.  A
# dd-style sequential read builds large folios instead, and ext4 then walks
# every buffer head of a large folio on each 4 KiB write (measured here:
# 26-52 us of host CPU per guest write after a dd warm-up, 3-13 us after
# this one).  Every target is warmed the same way.
warm_small() {
    fio --name=warm --filename="$1" --rw=randread --bs=4k --ioengine=psync \
        --size=100% --output=/dev/null || die "warming $1 failed"
}

OUTTSV=$RESULTS/hvcore.tsv
echo $'target\trw\tiodepth\trun\tiops\thost_us_per_req' > "$OUTTSV"
printf 'HVCORE_SIZE_MIB=%s OPS=%s RUNS=%s\n' "$HVCORE_SIZE_MIB" "$OPS" "$RUNS" > "$RESULTS/hvcore.params"

# run TARGET RW IODEPTH: prints "IOPS HOST_US" (HOST_US: - when unknown).
run() {
    local target=$1 rw=$2 depth=$3 console=$RUN_DIR/hvcore-console.txt
    local cmdline="test=bench rw=$rw iodepth=$depth ops=$OPS tsc_khz=$tsc_khz"
    local stats=$RUN_DIR/hvcore-stats.txt host=- iops
    rm -f "$console"
    case $target in
        hvcore-vpc|hvcore-raw)
            local img=$raw
            [[ $target == hvcore-vpc ]] && img=$vhd
            warm_small "$img"
            "$HVCORE" run --kernel "$GUEST" --cmdline "$cmdline" --disk "$img" \
                --console "$console" --timeout 600 --stats >/dev/null 2>"$stats" ||
                die "$target: hvcore exit $?: $(tail -1 "$stats")"
            host=$(sed -n 's/.*disk 0: .* \([0-9.]*\) us\/request/\1/p' "$stats");;
        qemu-raw)
            warm_small "$raw"
            local accel=(-accel tcg)
            [[ -w /dev/kvm ]] && accel=(-accel kvm -accel tcg)
            timeout 600 qemu-system-x86_64 -machine q35 "${accel[@]}" -cpu max -m 256 \
                -display none -monitor none -serial "file:$console" -no-reboot \
                -kernel "$GUEST" -append "$cmdline" \
                -drive "file=$raw,format=raw,if=none,id=d0,cache=none,aio=native" \
                -device virtio-blk-pci,drive=d0,disable-legacy=on 2>/dev/null || die "$target: qemu exit $?";;
        nbd-vpc)
            warm_small "$vhd"
            start_nbdkit_vhd hvnbd "$vhd" || die "nbdkit failed"
            fio --name=hv --ioengine=nbd --uri="$(nbd_uri hvnbd)" --rw="rand$rw" --bs=4k \
                --iodepth="$depth" --runtime="$RUNTIME" --time_based --norandommap=1 \
                --output-format=json --output="$RUN_DIR/hvcore-fio.json" >/dev/null 2>&1 ||
                { stop_server hvnbd; die "nbd-vpc: fio failed"; }
            stop_server hvnbd
            jq -r ".jobs[0].$rw.iops|floor" "$RUN_DIR/hvcore-fio.json" | sed "s/\$/ $host/"
            return;;
        *) die "unknown target $target";;
    esac
    iops=$(tr -d '\r' <"$console" | sed -n 's/^GUEST BENCH .* iops=\([0-9]*\)$/\1/p')
    [[ -n $iops ]] || die "$target: no result: $(tr -d '\r' <"$console" | grep -a 'GUEST RESULT')"
    echo "$iops $host"
}

for run in $(seq "$RUNS"); do
    for rw in $RWS; do
        for depth in $IODEPTHS; do
            for t in $TARGETS; do
                read -r iops host < <(run "$t" "$rw" "$depth")
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rw" "$depth" "$run" "$iops" "$host" |
                    tee -a "$OUTTSV" >&2
            done
        done
    done
done

# Table: median IOPS per target, hvcore-vpc / nbd-vpc per run (median,
# min-max), median host us/request of hvcore-vpc.
awk -F'\t' -v targets="$TARGETS" '
  function med(s,   a,m,i,j,x) { m=split(s,a," "); if (!m) return "";
    for(i=2;i<=m;i++){x=a[i];for(j=i-1;j>0&&a[j]+0>x+0;j--)a[j+1]=a[j];a[j+1]=x}
    return (m%2)?a[(m+1)/2]:(a[m/2]+a[m/2+1])/2 }
  NR>1 { k=$2" qd"$3; if (!(k in seen)) { seen[k]=1; jobs[++nj]=k }
         v[k,$1]=v[k,$1]" "$5; by[k,$1,$4]=$5; runs[$4]=1
         if ($1=="hvcore-vpc" && $6!="-") hu[k]=hu[k]" "$6 }
  END { nt=split(targets,T," ")
    printf "| job (4k random, guest IOPS) |"; for(i=1;i<=nt;i++) printf " %s |", T[i]
    print " hvcore-vpc / nbd-vpc | hvcore host us/request |"
    printf "|---|"; for(i=1;i<=nt;i++) printf "---|"; print "---|---|"
    for (n=1;n<=nj;n++) { k=jobs[n]; printf "| rand%s |", k
      for(i=1;i<=nt;i++) printf " %s |", med(v[k,T[i]])
      r=""; for (x in runs) if (by[k,"nbd-vpc",x]>0 && by[k,"hvcore-vpc",x]!="") r=r" "by[k,"hvcore-vpc",x]/by[k,"nbd-vpc",x]
      printf " %s | %s |\n", (r==""?"-":sprintf("%.2f", med(r))), (hu[k]==""?"-":med(hu[k])) } }' \
    "$OUTTSV" | tee "$RESULTS/hvcore.md"
log "done: $OUTTSV"
