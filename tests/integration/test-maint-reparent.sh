#!/usr/bin/env bash
# test-maint-reparent.sh -- vhdtool reparent for VHD and VHDX chains: the
# parent moved and renamed; the child points at it again and reads as the
# mirror (vhdtool read + cmp, vhdtool compare) and checks clean, and so does
# a grandchild (the child's identity is kept).  A parent of another
# identity is refused (and unchanged) unless --ignore-id-mismatch; other
# format, other size, a cycle, a child that is not differencing: one line
# naming the file, non-zero exit, nothing changed.
. "$TOP/tests/functions.sh"

head -c 1M /dev/urandom >a.bin
head -c 1M /dev/urandom >b.bin
for fmt in vhd vhdx; do
	$VHDTOOL create -q --format $fmt --size 8M base.$fmt
	$VHDTOOL write --offset 1M base.$fmt a.bin >/dev/null
	$VHDTOOL create -q --parent base.$fmt child.$fmt
	$VHDTOOL write --offset 3M child.$fmt b.bin >/dev/null
	$VHDTOOL create -q --parent child.$fmt gc.$fmt
	$VHDTOOL read -o child.$fmt.raw child.$fmt
	$VHDTOOL read -o gc.$fmt.raw gc.$fmt
	mkdir -p moved
	mv base.$fmt moved/renamed.$fmt
	$VHDTOOL check -q child.$fmt >/dev/null && die "child.$fmt checks clean without its parent"
	s=$(sum child.$fmt)
	# Another disk of the same size and format: refused, unchanged.
	$VHDTOOL create -q --format $fmt --size 8M other.$fmt
	expect_fail $VHDTOOL reparent --parent other.$fmt child.$fmt
	echo "$ERR" | grep -qF "child.$fmt" && echo "$ERR" | grep -q "ignore-id-mismatch" ||
		die "mismatch message: $ERR"
	[ "$(sum child.$fmt)" = "$s" ] || die "a refused reparent changed child.$fmt"
	# The moved parent.
	$VHDTOOL reparent --parent moved/renamed.$fmt child.$fmt || die "reparent child.$fmt failed"
	for f in child gc; do
		$VHDTOOL check -q $f.$fmt || die "$f.$fmt not clean: $($VHDTOOL check $f.$fmt)"
		$VHDTOOL read -o got.raw $f.$fmt && cmp -s got.raw $f.$fmt.raw || die "$f.$fmt reads differently"
		$VHDTOOL compare $f.$fmt.raw $f.$fmt >/dev/null || die "$f.$fmt: vhdtool compare differs"
	done
	$VHDTOOL info child.$fmt | grep -q "renamed.$fmt" || die "info does not name the new parent"
	# The whole chain moved as a folder: the relative locator finds it.
	mkdir -p far.$fmt/c && cp moved/renamed.$fmt far.$fmt/ && cp child.$fmt far.$fmt/c/
	$VHDTOOL reparent -q --parent far.$fmt/renamed.$fmt far.$fmt/c/child.$fmt ||
		die "reparent into far.$fmt/ failed"
	mv far.$fmt moved-far.$fmt
	$VHDTOOL compare child.$fmt.raw moved-far.$fmt/c/child.$fmt >/dev/null ||
		die "the moved folder lost its link"
	# --ignore-id-mismatch records the other disk.
	cp child.$fmt forced.$fmt
	$VHDTOOL reparent -q --ignore-id-mismatch --parent other.$fmt forced.$fmt || die "forced reparent failed"
	$VHDTOOL check -q forced.$fmt || die "forced.$fmt not clean"

	# Bad inputs.
	$VHDTOOL create -q --format $fmt --size 4M small.$fmt
	$VHDTOOL create -q --format $([ $fmt = vhd ] && echo vhdx || echo vhd) --size 8M wrongfmt.img
	for args in "--parent small.$fmt child.$fmt" "--parent wrongfmt.img child.$fmt" \
		    "--parent gc.$fmt child.$fmt" "--parent child.$fmt child.$fmt" \
		    "--parent other.$fmt moved/renamed.$fmt" "--parent missing.$fmt child.$fmt" \
		    "--parent moved/renamed.$fmt missing.$fmt"; do
		s1=$(sum child.$fmt) s2=$(sum moved/renamed.$fmt)
		expect_fail $VHDTOOL reparent $args
		[ "$(sum child.$fmt)" = "$s1" ] && [ "$(sum moved/renamed.$fmt)" = "$s2" ] ||
			die "reparent $args changed a file"
	done
done
expect_fail $VHDTOOL reparent child.vhd
echo "all reparent cases passed"
