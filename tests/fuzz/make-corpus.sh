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
