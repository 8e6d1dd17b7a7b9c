#!/usr/bin/env bash
# convert --direct (O_DIRECT on both sides, reads in flight through libaio):
# raw -> VHD/VHDX/raw, a differencing chain flattened, a VHDX with 4 KiB
# sectors, odd sizes; every output equal to the source (qemu-img compare
# where qemu reads the format, vhdtool compare otherwise), checks clean, and
# stays sparse.  O_DIRECT needs a file system that supports it (not tmpfs).
. "$TOP/tests/functions.sh"
requires qemu-img
trap 'rm -rf "$T"' EXIT
probe=$(mktemp -p "$T")
dd if=/dev/zero of="$probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null ||
    skip "the test directory does not support O_DIRECT"

# 24 MiB: random data, a zero run, a hole, more data, an odd tail.
mkrandom src.raw 8
dd if=/dev/zero bs=1M count=4 status=none >> src.raw
truncate -s 16M src.raw
head -c $((8 * 1048576 + 12345)) /dev/urandom >> src.raw
truncate -s $(( (24 << 20) + 12800 )) src.raw

for fmt in vhd vhdx raw; do
    "$VHDTOOL" convert -q --direct -O $fmt src.raw out.$fmt
    qfmt=$fmt; [ $fmt = vhd ] && qfmt=vpc
    qemu-img compare -q -f raw -F $qfmt src.raw out.$fmt || die "--direct -O $fmt differs"
    [ $fmt = raw ] || "$VHDTOOL" check out.$fmt >/dev/null || die "out.$fmt does not check"
done
# the zero run and the hole stay unallocated
alloc=$(du -k out.vhd | cut -f1)
[ "$alloc" -lt $(( 20 * 1024 )) ] || die "direct output not sparse: ${alloc} KiB"

# a chain, flattened, with --direct on the reading side
"$VHDTOOL" convert -q -O vhd src.raw base.vhd
"$VHDTOOL" snapshot -q base.vhd top.vhd
head -c 70000 /dev/urandom > patch
"$VHDTOOL" write --offset 5000000 top.vhd patch
"$VHDTOOL" convert -q --direct -O vhdx top.vhd flat.vhdx
"$VHDTOOL" compare top.vhd flat.vhdx || die "flattened chain differs"
# (qemu misreads differencing VHDs: compare with a raw reference instead)
cp src.raw expect.raw
dd if=patch of=expect.raw bs=1 seek=5000000 conv=notrunc status=none
qemu-img compare -q -f raw -F vhdx expect.raw flat.vhdx || die "qemu: flattened chain differs"

# a 4 KiB-sector VHDX source (written in pieces, unaligned), read --direct
"$VHDTOOL" create -q --format vhdx --size 8M --logical-sector 4096 4k.vhdx
head -c 3000000 src.raw | "$VHDTOOL" write --offset 777 4k.vhdx -
"$VHDTOOL" convert -q --direct -O raw 4k.vhdx back.raw
"$VHDTOOL" read --offset 777 --length 3000000 4k.vhdx | cmp - <(head -c 3000000 src.raw) ||
    die "4k VHDX read differs"
cmp <(tail -c +778 back.raw | head -c 3000000) <(head -c 3000000 src.raw) ||
    die "4k VHDX --direct convert differs"
echo "convert --direct ok"
