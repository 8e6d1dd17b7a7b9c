#!/usr/bin/env bash
# convert --keep-partial: a convert that runs out of space keeps a valid,
# incomplete image (it checks clean) and says so; without it the output is
# removed.  info --tree draws a chain one line per layer.
. "$TOP/tests/functions.sh"
requires_root
requires mount
cleanup() { mountpoint -q "$T/small" && umount "$T/small"; }
trap 'cleanup; rm -rf "$T"' EXIT

mkrandom src.img 48
mkdir small
mount -t tmpfs -o size=16m tmpfs small || skip "cannot mount a tmpfs"
expect_fail "$VHDTOOL" convert -q -O vhd src.img small/out.vhd
grep -q "partial output removed" <<<"$ERR" || die "no removal notice: $ERR"
[ ! -e small/out.vhd ] || die "partial output left without --keep-partial"
expect_fail "$VHDTOOL" convert -q -O vhd --keep-partial src.img small/out.vhd
grep -q "partial output kept" <<<"$ERR" || die "no kept notice: $ERR"
[ -e small/out.vhd ] || die "--keep-partial removed the output"
"$VHDTOOL" check small/out.vhd || die "the kept partial output does not check clean"

"$VHDTOOL" create -q --size 8M base.vhd
"$VHDTOOL" snapshot -q base.vhd mid.vhd
"$VHDTOOL" snapshot -q mid.vhd top.vhd
"$VHDTOOL" info --tree top.vhd > tree.out
[ "$(wc -l < tree.out)" -eq 3 ] || die "tree has not 3 lines: $(cat tree.out)"
grep -q '^top.vhd  \[vhd differencing' tree.out || die "top line: $(cat tree.out)"
grep -q '^   └─ base.vhd  \[vhd dynamic' tree.out || die "base line: $(cat tree.out)"
expect_fail "$VHDTOOL" info --tree --json top.vhd
echo "convert options and info --tree ok"
