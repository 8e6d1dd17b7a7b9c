#!/usr/bin/env bash
# convert --source-cache: auto reads a cold raw/VHD/VHDX source around the
# page cache (O_DIRECT, reads in flight) and a cached one through it;
# direct and buffered force either.  Checked by what the page cache holds of
# the source afterwards (fincore) and by the outputs, which must equal the
# source whichever way it was read.
. "$TOP/tests/functions.sh"
requires qemu-img fincore
trap 'rm -rf "$T"' EXIT
probe=$(mktemp -p "$T")
dd if=/dev/zero of="$probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null ||
    skip "the test directory does not support O_DIRECT"

cached_kib() { fincore -n -o RES --bytes "$1" | awk '{print int($1 / 1024)}'; }
# drop the file's clean pages from the page cache (GNU dd: fadvise DONTNEED)
uncache() { sync "$1"; dd if="$1" iflag=nocache count=0 status=none; }

# 20 MiB: data, a written zero run, a hole, data, an odd tail
mkrandom src.raw 8
dd if=/dev/zero bs=1M count=4 status=none >> src.raw
truncate -s 14M src.raw
head -c $((6 * 1048576 + 4321)) /dev/urandom >> src.raw
truncate -s $(( (20 << 20) + 2560 )) src.raw
"$VHDTOOL" convert -q -O vhdx src.raw src.vhdx

# MODE SRC FMT: convert; K = KiB of SRC cached right after; then check
# the output and compare it with src.raw (which reads src.raw into the cache)
convert_as() {
    local mode=$1 src=$2 fmt=$3 qfmt
    qfmt=$fmt; [ "$fmt" = vhd ] && qfmt=vpc
    rm -f "out.$fmt"
    "$VHDTOOL" convert -q ${mode:+--source-cache "$mode"} -O "$fmt" "$src" "out.$fmt" ||
        die "convert --source-cache ${mode:-(default)} $src -> $fmt failed"
    K=$(cached_kib "$src")
    qemu-img compare -q -f raw -F "$qfmt" src.raw "out.$fmt" ||
        die "${mode:-auto}: $src -> $fmt differs from the source"
    [ "$fmt" = raw ] || "$VHDTOOL" check "out.$fmt" >/dev/null ||
        die "${mode:-auto}: out.$fmt does not check"
}

for src in src.raw src.vhdx; do
    # cold source, default (auto): read around the cache
    uncache "$src"
    [ "$(cached_kib "$src")" -lt 512 ] || skip "cannot drop $src from the page cache"
    convert_as "" "$src" vhd
    [ "$K" -lt 1024 ] || die "auto on a cold $src went through the page cache (${K} KiB cached)"

    # forced buffered: the source ends up cached
    uncache "$src"
    convert_as buffered "$src" vhdx
    [ "$K" -ge 8192 ] || die "--source-cache buffered left only ${K} KiB of $src cached"

    # mostly cached source (its first 60%), auto: read through the cache,
    # so the rest is cached afterwards too
    uncache "$src"
    alloc=$(( $(du -k "$src" | cut -f1) ))
    dd if="$src" of=/dev/null bs=1K count=$(( alloc * 6 / 10 )) status=none
    convert_as auto "$src" raw
    [ "$K" -ge $(( alloc * 9 / 10 )) ] ||
        die "auto on a mostly cached $src read around the cache (${K} of ${alloc} KiB cached)"

    # forced direct on a cold source
    uncache "$src"
    convert_as direct "$src" vhd
    [ "$K" -lt 1024 ] || die "--source-cache direct went through the page cache (${K} KiB cached)"
done

expect_fail "$VHDTOOL" convert --source-cache sometimes src.raw x.vhd
echo "$ERR" | grep -q "auto, direct or buffered" || die "bad mode: unclear error: $ERR"
[ ! -e x.vhd ] || die "bad mode left an output"
echo "convert --source-cache ok"
