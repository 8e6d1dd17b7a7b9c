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

# bad_case NAME FILE CHECK_RC CHECK_PATTERN KEYWORD...
# The contract for a bad image (DESIGN "Bad input"): `vhdtool info FILE` and
# `vhdtool convert FILE out.img` fail with exactly one stderr line naming FILE
# and containing every KEYWORD (case-insensitive); convert leaves no output;
# `vhdtool write FILE` (a read-write open) fails with one line naming FILE;
# `vhdtool check FILE` exits CHECK_RC (1: damage found, 2: could not check)
# and, for 1, prints an "error:" finding matching CHECK_PATTERN (extended
# regex, case-insensitive) and no finding twice; FILE is unchanged.  Runs in a
# subshell and records a failure instead of stopping, so that one run reports
# every broken case.
failed=()
bad_case() {
	local name=$1 f=$2 want=$3 pat=$4
	shift 4
	(
		before=$(sum "$f")
		expect_fail $VHDTOOL info "$f"
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: info message lacks '$k': $ERR"
		done
		expect_fail $VHDTOOL convert -q "$f" out.img
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: convert message lacks '$k': $ERR"
		done
		[ ! -e out.img ] || die "$name: failed convert left out.img behind"
		# Opening it for writing is refused too (and repairs nothing).
		head -c 512 /dev/urandom >sector.bin
		expect_fail $VHDTOOL write "$f" sector.bin
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: write message lacks '$k': $ERR"
		done
		$VHDTOOL check "$f" >check.out 2>check.err
		rc=$?
		[ "$rc" -eq "$want" ] || die "$name: check exit $rc, want $want: $(cat check.out check.err)"
		if [ "$want" -eq 1 ]; then
			grep -qiE "^error: .*$pat" check.out ||
				die "$name: check has no error finding matching '$pat': $(cat check.out)"
			[ -z "$(grep -E '^(error|warning):' check.out | sort | uniq -d)" ] ||
				die "$name: check reports a finding twice: $(cat check.out)"
		fi
		[ "$(sum "$f")" = "$before" ] || die "$name: $f was modified"
		echo "ok: $name"
	) || failed+=("$name")
}
finish() {
	[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: ${failed[*]}"
	echo "all cases passed"
}

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
