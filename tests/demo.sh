#!/usr/bin/env bash
# demo.sh -- `make demo`: the main job on an embedded default.
# Creates a small dynamic VHD, writes to it, snapshots it, writes to the
# snapshot, converts the chain to a flat VHD and to raw, and checks it all,
# cross-checking with qemu-img where it is installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
V=$top/vhdtool/vhdtool
dir=$(mktemp -d "${TMPDIR:-/tmp}/vhdkit-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# Embedded default data: a text banner plus 1 MiB of pseudo-random bytes.
printf 'vhdkit demo: hello from the base image\n' > hello.txt
head -c 1048576 /dev/urandom > blob.bin

say "$V" create --size 8M base.vhd
say "$V" write --offset 0 base.vhd hello.txt
say "$V" write --offset 3M base.vhd blob.bin
say "$V" snapshot base.vhd child.vhd
printf 'vhdkit demo: this line lives in the snapshot\n' > change.txt
say "$V" write --offset 1M child.vhd change.txt
say "$V" info child.vhd
say "$V" convert -p child.vhd flat.vhd
say "$V" convert child.vhd flat.img
say "$V" check child.vhd
say "$V" check flat.vhd

echo
echo "# what the chain reads at 0 and at 1 MiB:"
"$V" read --offset 0 --length 39 child.vhd; echo
"$V" read --offset 1M --length 45 child.vhd; echo
echo "# the base is unchanged at 1 MiB (zeros):"
"$V" read --offset 1M --length 16 base.vhd | od -An -tx1
cmp <("$V" read --offset 3M --length 1M child.vhd) blob.bin && echo "# 1 MiB blob read back through the chain: identical"
if command -v qemu-img >/dev/null 2>&1; then
	say qemu-img compare -f vpc -F raw flat.vhd flat.img
	say qemu-img info -f vpc flat.vhd
fi
echo
echo "demo finished: create -> write -> snapshot -> convert -> check all succeeded"
