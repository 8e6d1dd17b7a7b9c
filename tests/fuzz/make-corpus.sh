#!/usr/bin/env bash
# make-corpus.sh -- regenerate the seed corpus (small images of every kind).
# The corpus is checked in; run this only to refresh it.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
V=$top/vhdtool/vhdtool
out=$top/tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
head -c 65536 /dev/urandom > data
$V create -q --size 1M --block-size 4K dyn.vhd
$V create -q --type fixed --size 64K fixed.vhd
truncate -s 1M raw.img
dd if=data of=raw.img bs=4k seek=3 count=2 conv=notrunc status=none
$V convert -q -O vhd --block-size 4K raw.img data.vhd
$V snapshot -q data.vhd child.vhd
if command -v qemu-img >/dev/null; then
	qemu-img create -q -f vpc -o subformat=dynamic q.vhd 1M
fi
head -c $(( $(stat -c %s fixed.vhd) - 1 )) fixed.vhd > fixed-511.vhd   # 511-byte footer
rm -f "$out"/*
for f in *.vhd; do cp "$f" "$out/$f"; done
ls -la "$out"

# VHDX seeds, in fuzz_vhdx's scattered form (see fuzz_vhdx.c).
outx=$top/tests/fuzz/corpus-vhdx
mkdir -p "$outx"
rm -f "$outx"/*
scatter() {
	{ dd if="$1" bs=1K count=320 status=none
	  dd if="$1" bs=1K skip=1024 count=64 status=none
	  dd if="$1" bs=1K skip=2048 count=128 status=none
	  dd if="$1" bs=1K skip=3072 count=64 status=none; } > "$2"
}
$V create -q --format vhdx --size 4M --block-size 1M x-dyn.vhdx
$V convert -q -O vhdx --block-size 1M raw.img x-data.vhdx
$V create -q --format vhdx --type fixed --size 2M --block-size 1M x-fixed.vhdx
$V create -q --format vhdx --size 4M --block-size 1M --logical-sector 4096 x-4k.vhdx
$V snapshot -q x-data.vhdx x-child.vhdx
printf 'child data' | $V write --offset 4100 x-child.vhdx -
if command -v qemu-img >/dev/null; then
	qemu-img create -q -f vhdx -o block_size=1M q.vhdx 4M
	qemu-img convert -O vhdx -o block_size=1M raw.img qdata.vhdx
fi
for f in *.vhdx; do scatter "$f" "$outx/${f%.vhdx}.bin"; done
ls -la "$outx"

# Import seeds (qcow2, VMDK), small.
outi=$top/tests/fuzz/corpus-import
mkdir -p "$outi"
rm -f "$outi"/*
if command -v qemu-img >/dev/null; then
	head -c 262144 raw.img > small.raw
	qemu-img convert -q -O qcow2 -o compat=0.10,cluster_size=4096 small.raw "$outi/v2.qcow2"
	qemu-img convert -q -O qcow2 -o compat=1.1,cluster_size=4096 small.raw "$outi/v3.qcow2"
	qemu-img convert -q -c -O qcow2 -o cluster_size=4096 small.raw "$outi/zlib.qcow2"
	qemu-img convert -q -O vmdk -o subformat=monolithicSparse small.raw "$outi/sparse.vmdk"
	qemu-img convert -q -O vmdk -o subformat=streamOptimized small.raw "$outi/stream.vmdk"
fi
ls -la "$outi"
