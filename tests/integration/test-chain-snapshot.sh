#!/usr/bin/env bash
# test-chain-snapshot.sh -- differencing chains made by `vhdtool snapshot`:
#  - a fresh child reads exactly as its parent (flattening convert == base);
#  - a write into a child shows through it and leaves the parent untouched;
#  - info lists every layer (2, then 3 with a grandchild), check is clean;
#  - the chain still resolves after its folders are moved elsewhere (the
#    relative W2ru locator; the absolute one is then stale), even with another
#    VHD at the old absolute path; a child moved alone resolves through the
#    absolute W2ku locator; with both stale, the parent's file name next to
#    the child is found;
#  - a renamed parent: one-line error naming the missing parent;
#  - a different VHD of the same size in the parent's place: one-line UUID
#    mismatch error;
#  - a parent cycle (a child that is its own parent; A -> B -> A): one-line
#    error mentioning the cycle, and no hang;
#  - parent names in UTF-8 survive the UTF-16 locators; a name with a
#    backslash never yields a child that cannot be opened.
# vhdtool check exit codes, as decided from the engine's contract: a broken
# chain (missing parent, wrong parent, cycle) is damage that check found in
# an image it could read, so exit 1 with an "error:" finding naming the
# cause; 2 is only for a FILE that cannot be checked at all (missing file).
# Nothing is ever modified by info, check or a failing convert.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"

uuid_of() {
	$VHDTOOL info --json "$1" 2>/dev/null | sed -n 's/.*"uuid": "\([0-9a-f-]*\)".*/\1/p' | head -n1
}
layers() {	# number of layers vhdtool info --json lists
	$VHDTOOL info --json "$1" | grep -c '"path": '
}
check_rc() {	# check_rc WANT FILE [PATTERN]: vhdtool check exit status and finding
	local want=$1 f=$2 pat=${3:-} rc
	$VHDTOOL check "$f" >check.out 2>check.err
	rc=$?
	[ "$rc" -eq "$want" ] || die "check $f: exit $rc, want $want: $(cat check.out check.err)"
	if [ -n "$pat" ]; then
		grep -qi "^error: .*$pat" check.out || die "check $f: no error finding about '$pat': $(cat check.out)"
	fi
	echo "ok: check $f exits $rc"
}
has() {	# has PATTERN: $ERR contains PATTERN (case-insensitive)
	echo "$ERR" | grep -qi -- "$1" || die "message lacks '$1': $ERR"
}

# Base: random data (incl. partial blocks) converted into a dynamic VHD.
mkdir -p root/images root/snaps
truncate -s 8M base.raw
dd if=/dev/urandom of=base.raw bs=512 count=700 conv=notrunc status=none
dd if=/dev/urandom of=base.raw bs=512 seek=9000 count=33 conv=notrunc status=none
dd if=/dev/urandom of=base.raw bs=512 seek=16383 count=1 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --block-size 512K base.raw root/images/base.vhd || die "convert base failed"
$VHDTOOL snapshot -q root/images/base.vhd root/snaps/child.vhd || die "snapshot failed"

# The child reads as the base.
$VHDTOOL convert -q root/snaps/child.vhd flat.img || die "flattening the child failed"
cmp base.raw flat.img || die "the fresh child does not read as its parent"
rm flat.img
[ "$(layers root/snaps/child.vhd)" -eq 2 ] || die "info does not list 2 layers: $($VHDTOOL info root/snaps/child.vhd)"
$VHDTOOL info --json root/snaps/child.vhd >info.json || die "info child failed"
grep -q '"chain_error": null' info.json || die "info reports a chain error: $(cat info.json)"
grep -q "\"type\": \"differencing\".*\"parent_uuid\": \"$(uuid_of root/images/base.vhd)\"" info.json ||
	die "child's parent_uuid is not the base's uuid: $(cat info.json)"
check_rc 0 root/snaps/child.vhd

# Writes go to the child only: a run across a 512K block boundary and a
# partial sector.  The flattened child is the base with that overlay; the
# base file and its content stay as they were.
base_sum=$(sum root/images/base.vhd)
$VHDTOOL snapshot -q root/images/base.vhd root/snaps/scratch.vhd || die "snapshot failed"
head -c 5000 /dev/urandom >patch.bin
$VHDTOOL write --offset 522000 root/snaps/scratch.vhd patch.bin || die "write into the child failed"
cp base.raw want.raw
dd if=patch.bin of=want.raw bs=5000 count=1 seek=522000 oflag=seek_bytes conv=notrunc status=none
$VHDTOOL convert -q root/snaps/scratch.vhd flat.img || die "flattening the written child failed"
cmp want.raw flat.img || die "the written child does not read as base + overlay"
$VHDTOOL convert -q root/images/base.vhd base-flat.img && cmp base.raw base-flat.img ||
	die "the base reads differently after writing its child"
[ "$(sum root/images/base.vhd)" = "$base_sum" ] || die "writing the child modified the base file"
check_rc 0 root/snaps/scratch.vhd
rm -f flat.img base-flat.img want.raw patch.bin root/snaps/scratch.vhd

# A grandchild: three layers, still the base's content.
$VHDTOOL snapshot -q root/snaps/child.vhd root/snaps/grand.vhd || die "second snapshot failed"
[ "$(layers root/snaps/grand.vhd)" -eq 3 ] || die "info does not list 3 layers"
$VHDTOOL convert -q root/snaps/grand.vhd flat.img && cmp base.raw flat.img || die "grandchild does not read as the base"
rm -f flat.img root/snaps/grand.vhd

# Moving the whole tree: the absolute locators are stale, the relative ones
# ("..\images\base.vhd") still lead to the parent.
old=$(realpath root)
mkdir -p elsewhere/deeper
mv root elsewhere/deeper/root2
[ ! -e "$old" ] || die "the old tree is still there"
C=elsewhere/deeper/root2/snaps/child.vhd
B=elsewhere/deeper/root2/images/base.vhd
$VHDTOOL info "$C" >info.txt || die "info after the move failed"
grep -q "parent path:.*root2/.*images/base.vhd" info.txt || die "moved chain: parent not resolved: $(cat info.txt)"
(cd elsewhere && $VHDTOOL convert -q deeper/root2/snaps/child.vhd ../flat.img) ||
	die "flattening the moved child failed"
cmp base.raw flat.img || die "moved chain reads differently"
rm flat.img
check_rc 0 "$C"
child_sum=$(sum "$C")

# An impostor at the old absolute path must not win over the relative locator.
mkdir -p "$old/images"
$VHDTOOL create -q --size 8M "$old/images/base.vhd" || die "create impostor failed"
$VHDTOOL info "$C" >info.txt 2>&1 || die "moved chain with an impostor at the old path: $(cat info.txt)"
grep -q "parent path:.*root2/.*images/base.vhd" info.txt || die "the impostor was taken: $(cat info.txt)"
rm -rf "$old"

# Only the child moved (the parent back at its original path): the relative
# locator is stale, the absolute one works.
mkdir -p "$old/images" solo
mv "$B" "$old/images/base.vhd"
cp "$C" solo/child.vhd
$VHDTOOL convert -q solo/child.vhd flat.img || die "child alone (absolute locator) does not open"
cmp base.raw flat.img || die "child alone reads differently"
rm flat.img

# Both locators stale, the parent next to the child under its recorded name.
mkdir flat
mv "$old/images/base.vhd" flat/base.vhd
rm -rf "$old"
cp solo/child.vhd flat/child.vhd
$VHDTOOL convert -q flat/child.vhd flat.img || die "parent in the child's folder (header name) not found"
cmp base.raw flat.img || die "child next to its parent reads differently"
mv flat/base.vhd "$B"
rm -rf flat.img flat solo

# Renamed parent.
mv "$B" "$B.renamed"
expect_fail $VHDTOOL info "$C"
has "not found"; has "base.vhd"
expect_fail $VHDTOOL convert -q "$C" flat.img
has "not found"
[ ! -e flat.img ] || die "a failed convert left flat.img"
check_rc 1 "$C" "not found"
mv "$B.renamed" "$B"

# Another VHD of the same size where the parent was.
mv "$B" "$B.orig"
$VHDTOOL create -q --size 8M "$B" || die "create impostor failed"
imp_sum=$(sum "$B")
expect_fail $VHDTOOL info "$C"
has "UUID"; has "base.vhd"
expect_fail $VHDTOOL convert -q "$C" flat.img
has "UUID"
[ ! -e flat.img ] || die "a failed convert left flat.img"
check_rc 1 "$C" "UUID"
[ "$(sum "$B")" = "$imp_sum" ] || die "the impostor parent was modified"
mv "$B.orig" "$B"
[ "$(sum "$C")" = "$child_sum" ] || die "the child was modified"
$VHDTOOL convert -q "$C" flat.img && cmp base.raw flat.img || die "restored chain reads differently"
rm flat.img

# Cycle 1: a child that names itself as its parent (UUID and locators).
cp "$C" self.vhd
self_uuid=$(uuid_of self.vhd)
"$PATCH" self.vhd header parent_uuid "$self_uuid" || die "vhdpatch failed"
"$PATCH" self.vhd locator-data 0 utf16le '.\self.vhd' || die "vhdpatch failed"
"$PATCH" self.vhd locator-data 1 utf16le "$(realpath self.vhd)" || die "vhdpatch failed"
"$PATCH" self.vhd header parent_name "$(realpath self.vhd)" || die "vhdpatch failed"
self_sum=$(sum self.vhd)
expect_fail timeout 10 $VHDTOOL info self.vhd
has "cycle"; has "self.vhd"
expect_fail timeout 10 $VHDTOOL convert -q self.vhd flat.img
has "cycle"
[ ! -e flat.img ] || die "a failed convert left flat.img"
$VHDTOOL check self.vhd >check.out 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -qi '^error:.*cycle' check.out || die "check self.vhd: exit $rc: $(cat check.out)"
[ "$(sum self.vhd)" = "$self_sum" ] || die "self.vhd was modified"

# Cycle 2: A -> B -> A.  B is a child of A; A is patched to name B.
cp "$B" base2.vhd
$VHDTOOL snapshot -q base2.vhd a.vhd && $VHDTOOL snapshot -q a.vhd b.vhd || die "snapshots failed"
"$PATCH" a.vhd header parent_uuid "$(uuid_of b.vhd)" || die "vhdpatch failed"
"$PATCH" a.vhd locator-data 0 utf16le '.\b.vhd' || die "vhdpatch failed"
"$PATCH" a.vhd locator-data 1 utf16le "$(realpath b.vhd)" || die "vhdpatch failed"
"$PATCH" a.vhd header parent_name "$(realpath b.vhd)" || die "vhdpatch failed"
a_sum=$(sum a.vhd) b_sum=$(sum b.vhd)
for top in a.vhd b.vhd; do
	expect_fail timeout 10 $VHDTOOL info "$top"
	has "cycle"
	expect_fail timeout 10 $VHDTOOL convert -q "$top" flat.img
	has "cycle"
	[ ! -e flat.img ] || die "a failed convert left flat.img"
	$VHDTOOL check "$top" >check.out 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && grep -qi '^error:.*cycle' check.out || die "check $top: exit $rc: $(cat check.out)"
done
[ "$(sum a.vhd)" = "$a_sum" ] && [ "$(sum b.vhd)" = "$b_sum" ] || die "the cycle's files were modified"

# Unusual parent file names.  Non-ASCII UTF-8 goes through the UTF-16
# locators and back (also after moving the pair); a name with a backslash --
# legal on Linux, a separator in Windows locators -- must not give a child
# that can never be opened: snapshot either refuses it (one line) or the
# child opens.
mkdir names
cp "$B" "names/bäse €.vhd"
$VHDTOOL snapshot -q "names/bäse €.vhd" names/c1.vhd || die "snapshot of a UTF-8 named parent failed"
mv names names-moved
$VHDTOOL convert -q names-moved/c1.vhd flat.img && cmp base.raw flat.img ||
	die "child of a UTF-8 named parent does not read as it"
rm -f flat.img
mkdir bs
cp "$B" 'bs/a\b.vhd'
if $VHDTOOL snapshot -q 'bs/a\b.vhd' bs/c2.vhd 2>snap.err; then
	$VHDTOOL convert -q bs/c2.vhd flat.img 2>conv.err && cmp base.raw flat.img ||
		die "snapshot of a parent named 'a\b.vhd' made a child that does not open: $(cat conv.err)"
	rm -f flat.img
else
	[ "$(wc -l <snap.err)" -eq 1 ] && [ ! -e bs/c2.vhd ] ||
		die "snapshot of 'a\b.vhd' failed untidily: $(cat snap.err)"
fi

# A missing FILE cannot be checked at all: exit 2.
check_rc 2 no-such.vhd
echo "chain behaviour as expected"
