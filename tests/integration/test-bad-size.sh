#!/usr/bin/env bash
# test-bad-size.sh -- sizes (DESIGN "Bad input": size over the format limit,
# sizes like 10Q, negative sizes; invariant 3: 2040 GiB cap for VHD).
#  - An image whose footer claims more than 2040 GiB (dynamic; fixed) is
#    refused with one line naming the file and "2040 GiB"; check exit 1.
#  - create refuses --size over 2040 GiB (exit 1, one line, no file), and
#    makes exactly 2040 GiB (dynamic) when asked.
#  - Size arguments that are not sizes -- 10Q, -5, 1.5G, empty, 1M1, 0x10 --
#    are usage errors: exit 2, one line quoting the value, no file.
#  - Block sizes that are not powers of two or out of range are refused.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"

. "$TOP/tests/bad_case.sh"

# Run a command, keeping its exit status in ./rc (expect_fail hides it).
rc_of() { "$@"; local r=$?; echo "$r" >"$T/rc"; return "$r"; }

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --block-size 512K src.raw dyn.vhd || die "convert failed"
$VHDTOOL convert -q -O vhd --type fixed src.raw fixed.vhd || die "convert failed"

over=$(( (2040 << 30) + 512 ))
cp dyn.vhd big-dyn.vhd
"$PATCH" --copy both big-dyn.vhd footer current_size $over || die "vhdpatch failed"
bad_case "dynamic footer over 2040 GiB" big-dyn.vhd 1 "2040 GiB" "2040 GiB"
cp fixed.vhd big-fixed.vhd
"$PATCH" big-fixed.vhd footer current_size $((4 << 40)) || die "vhdpatch failed"
bad_case "fixed footer at 4 TiB" big-fixed.vhd 1 "2040 GiB" "2040 GiB"

# create at and over the limit.
(
	$VHDTOOL create -q --size 2040G limit.vhd || die "create --size 2040G failed"
	$VHDTOOL info --json limit.vhd | grep -q "\"virtual_size\": $((2040 << 30))," ||
		die "2040 GiB image has the wrong size: $($VHDTOOL info --json limit.vhd)"
	$VHDTOOL check -q limit.vhd || die "2040 GiB image does not check clean"
	for s in 2041G $over 3T; do
		expect_fail rc_of $VHDTOOL create -q --size "$s" over.vhd
		echo "$ERR" | grep -q "2040 GiB" || die "create --size $s: message lacks '2040 GiB': $ERR"
		[ ! -e over.vhd ] || die "create --size $s left over.vhd"
	done
	echo "ok: create stops at 2040 GiB"
) || failed+=("create at and over 2040 GiB")

# Not sizes at all: usage errors.
for s in 10Q -5 1.5G "" 1M1 0x10 " 4M" 4M- 99999999999999999999 20000000000000000T; do
	(
		expect_fail rc_of $VHDTOOL create -q --size "$s" bad.vhd
		[ "$(cat rc)" -eq 2 ] || die "create --size '$s': exit $(cat rc), want 2"
		echo "$ERR" | grep -qF "'$s'" || die "create --size '$s': message does not quote the value: $ERR"
		[ ! -e bad.vhd ] || die "create --size '$s' left bad.vhd"
		echo "ok: --size '$s' refused"
	) || failed+=("--size '$s'")
done
(
	expect_fail rc_of $VHDTOOL create -q --size=-5 bad.vhd
	[ "$(cat rc)" -eq 2 ] && [ ! -e bad.vhd ] || die "--size=-5: exit $(cat rc)"
	echo "ok: --size=-5 refused"
) || failed+=("--size=-5")
# A size that is a number but not whole sectors.
(
	expect_fail rc_of $VHDTOOL create -q --size 1000 bad.vhd
	echo "$ERR" | grep -q "512" || die "--size 1000: message lacks the 512-byte rule: $ERR"
	[ ! -e bad.vhd ] || die "--size 1000 left bad.vhd"
	echo "ok: --size 1000 refused"
) || failed+=("--size 1000")

# Block sizes.
for b in 3M 512M 1K 10Q -1 1.5M; do
	(
		expect_fail rc_of $VHDTOOL create -q --size 4M --block-size "$b" bad.vhd
		echo "$ERR" | grep -qi "block size" || die "--block-size $b: message lacks 'block size': $ERR"
		[ ! -e bad.vhd ] || die "--block-size $b left bad.vhd"
		expect_fail rc_of $VHDTOOL convert -q --block-size "$b" src.raw bad.vhd
		echo "$ERR" | grep -qi "block size" || die "convert --block-size $b: message lacks 'block size': $ERR"
		[ ! -e bad.vhd ] || die "convert --block-size $b left bad.vhd"
		echo "ok: --block-size $b refused"
	) || failed+=("--block-size $b")
done

finish
