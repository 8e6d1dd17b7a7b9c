#!/usr/bin/env bash
# test-bad-chain-depth.sh -- long differencing chains (DESIGN "chain deeper
# than the limit"; libvhd.h VHD_MAX_CHAIN_DEPTH = 256).
#  - A chain of 256 layers (top at depth 255, inside the limit under any
#    reading of it) opens: info lists every layer, convert flattens it to the
#    base's content, and check (under the common CI limit of 1024 open files)
#    says clean -- a long valid chain is not damage.
#  - A chain of 301 layers (top at depth 300) is refused by info and convert
#    with one line that names the depth limit and a file of the chain, check
#    exits 1 with that finding, and no file changes.  Nothing may crash.
# The layers are made by copying one snapshot and rewriting its UUIDs and
# locators with vhdpatch, so building the chain does not depend on the engine
# opening deep chains.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"
ulimit -n 1024 2>/dev/null || true

truncate -s 1M base.raw
dd if=/dev/urandom of=base.raw bs=4k count=40 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --block-size 512K base.raw l0.vhd || die "convert base failed"
$VHDTOOL snapshot -q l0.vhd template.vhd || die "snapshot failed"
uuid() { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; }
"$PATCH" --copy both l0.vhd footer uuid "$(uuid 0)" || die "vhdpatch failed"

top=300
for i in $(seq 1 $top); do
	f=l$i.vhd
	cp template.vhd "$f"
	"$PATCH" --copy both "$f" footer uuid "$(uuid "$i")" &&
	"$PATCH" "$f" header parent_uuid "$(uuid $((i - 1)))" &&
	"$PATCH" "$f" locator-data 0 utf16le ".\\l$((i - 1)).vhd" &&
	"$PATCH" "$f" locator-data 1 utf16le "$T/l$((i - 1)).vhd" &&
	"$PATCH" "$f" header parent_name "$T/l$((i - 1)).vhd" || die "vhdpatch failed on $f"
done
# The crafted layers are valid: one of them with its parent checks clean.
$VHDTOOL check --no-parents l7.vhd >check.out 2>&1 || die "crafted layer l7.vhd is not clean: $(cat check.out)"
$VHDTOOL info l2.vhd >/dev/null || die "crafted chain l2 -> l1 -> l0 does not open"

# 256 layers: within the limit.
ok=255
$VHDTOOL info --json l$ok.vhd >info.json 2>info.err
rc=$?
[ "$rc" -eq 0 ] || die "info on a chain of $((ok + 1)) layers exited $rc: $(cat info.err)"
n=$(grep -c '"path": ' info.json)
[ "$n" -eq $((ok + 1)) ] || die "info lists $n layers, want $((ok + 1))"
$VHDTOOL convert -q l$ok.vhd flat.img 2>conv.err || die "convert of the $((ok + 1))-layer chain exited $?: $(cat conv.err)"
cmp base.raw flat.img || die "the $((ok + 1))-layer chain does not read as its base"
rm -f flat.img
$VHDTOOL check -q l$ok.vhd >check.out 2>&1
rc=$?
[ "$rc" -eq 0 ] || die "check on a valid chain of $((ok + 1)) layers exited $rc: $(head -c 600 check.out)"
echo "ok: a chain of $((ok + 1)) layers opens, reads and checks clean"

# 301 layers: over the limit.
before=$(cat l*.vhd | md5sum)
expect_fail $VHDTOOL info l$top.vhd
echo "$ERR" | grep -qiE 'deeper|too deep|depth' || die "info message does not name the depth limit: $ERR"
echo "$ERR" | grep -qE "l[0-9]+\.vhd" || die "info message names no file of the chain: $ERR"
expect_fail $VHDTOOL convert -q l$top.vhd flat.img
echo "$ERR" | grep -qiE 'deeper|too deep|depth' || die "convert message does not name the depth limit: $ERR"
[ ! -e flat.img ] || die "a failed convert left flat.img"
$VHDTOOL check l$top.vhd >check.out 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -qiE '^error:.*(deeper|too deep|depth)' check.out ||
	die "check on a $((top + 1))-layer chain: exit $rc: $(head -c 600 check.out)"
[ "$(cat l*.vhd | md5sum)" = "$before" ] || die "a layer was modified"
echo "ok: a chain of $((top + 1)) layers is refused"
