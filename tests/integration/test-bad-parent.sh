#!/usr/bin/env bash
# test-bad-parent.sh -- differencing disks whose parent cannot be used
# (DESIGN "Bad input"): parent missing, parent UUID mismatch, a parent
# locator with bad UTF-16 (an unpaired surrogate in the W2ru data, and in the
# W2ku data), with an odd byte length, and locator data past EOF.  Each is
# refused with one line naming the child and the cause; check reports damage
# (exit 1) -- the child could be read, its chain is broken -- once per
# problem; nothing changes.  A damaged parent (bad footer checksum) is named
# in the message.  The chain tests (moves, cycles) are in
# test-chain-snapshot.sh.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"

. "$TOP/tests/bad_case.sh"

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --block-size 512K src.raw base.vhd || die "convert failed"
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
$VHDTOOL check -q child.vhd || die "fresh child does not check clean"
[ "$("$PATCH" child.vhd locator 0 code)" = W2ru ] && [ "$("$PATCH" child.vhd locator 1 code)" = W2ku ] ||
	die "snapshot should write a W2ru and a W2ku locator"

# Parent missing: a chain in its own folder, then the parent deleted (both
# locators and the header name lead nowhere).
mkdir missing
cp base.vhd missing/base.vhd
$VHDTOOL snapshot -q missing/base.vhd missing/child.vhd || die "snapshot failed"
rm missing/base.vhd
bad_case "parent missing" missing/child.vhd 1 "not found" "not found" "base.vhd"

# Parent UUID mismatch: a different VHD of the same size replaces the parent.
mkdir impostor
cp base.vhd impostor/base.vhd
$VHDTOOL snapshot -q impostor/base.vhd impostor/child.vhd || die "snapshot failed"
rm impostor/base.vhd
$VHDTOOL create -q --size 4M impostor/base.vhd || die "create failed"
bad_case "parent UUID mismatch" impostor/child.vhd 1 "UUID" "UUID" "base.vhd"
# ... also when the child's recorded parent UUID is what changed.
cp child.vhd wrong-id.vhd
"$PATCH" wrong-id.vhd header parent_uuid 0123456789abcdef0123456789abcdef || die "vhdpatch failed"
bad_case "child names another parent UUID" wrong-id.vhd 1 "UUID" "UUID" "01234567-89ab-cdef-0123-456789abcdef"

# A damaged parent (footer checksum bad in both copies): the message names the
# parent and the cause; check of the child reports it (exit 1); no file
# changes.  (It need not name the child: the damage is in the parent.)
mkdir damaged
cp base.vhd damaged/base.vhd
$VHDTOOL snapshot -q damaged/base.vhd damaged/child.vhd || die "snapshot failed"
"$PATCH" --keep-checksum --copy both damaged/base.vhd footer timestamp 5 || die "vhdpatch failed"
(
	before=$(cat damaged/*.vhd | md5sum)
	for cmd in "info damaged/child.vhd" "convert -q damaged/child.vhd out.img" "write damaged/child.vhd src.raw"; do
		expect_fail $VHDTOOL $cmd
		echo "$ERR" | grep -q "damaged/base.vhd" && echo "$ERR" | grep -qi "checksum" ||
			die "$cmd: message lacks the parent or the cause: $ERR"
	done
	[ ! -e out.img ] || die "failed convert left out.img"
	$VHDTOOL check damaged/child.vhd >check.out 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && grep -qi "^error:.*base.vhd.*checksum" check.out ||
		die "check of a child with a damaged parent: exit $rc: $(cat check.out)"
	[ "$(cat damaged/*.vhd | md5sum)" = "$before" ] || die "a file changed"
	echo "ok: damaged parent"
) || failed+=("damaged parent")

# Bad UTF-16 in the locators (the parent itself is present and right).
cp child.vhd utf16-w2ru.vhd	# ".\" U+D83D (high surrogate, no low) "t"
"$PATCH" utf16-w2ru.vhd locator-data 0 hex 2e005c003dd87400 || die "vhdpatch failed"
bad_case "unpaired high surrogate in W2ru" utf16-w2ru.vhd 1 "UTF-16" "UTF-16"
cp child.vhd utf16-w2ku.vhd	# "/" U+DC00 (low surrogate alone) "x"
"$PATCH" utf16-w2ku.vhd locator-data 1 hex 2f0000dc7800 || die "vhdpatch failed"
bad_case "unpaired low surrogate in W2ku" utf16-w2ku.vhd 1 "UTF-16" "UTF-16"
cp child.vhd utf16-odd.vhd
"$PATCH" utf16-odd.vhd locator 0 data_length $(( $("$PATCH" child.vhd locator 0 data_length) - 1 )) || die "vhdpatch failed"
bad_case "odd UTF-16 byte length" utf16-odd.vhd 1 "UTF-16" "UTF-16"

# Locator data past the end of the file.
cp child.vhd loc-past.vhd
"$PATCH" loc-past.vhd locator 0 data_offset 1073741824 || die "vhdpatch failed"
bad_case "locator data past EOF" loc-past.vhd 1 "locator" "locator" "past the end"

finish
