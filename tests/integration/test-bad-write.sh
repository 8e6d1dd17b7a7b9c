#!/usr/bin/env bash
# test-bad-write.sh -- `vhdtool write` with a range the disk does not have
# (DESIGN "Bad input": one-line error, exit != 0, and nothing else changes).
# A data file that would run past the end of the disk -- starting inside it
# and crossing the end, starting exactly at the end, starting beyond it -- is
# refused with one line naming the image and saying "past the end", and the
# image is byte-for-byte unchanged: no leading part of the data may land
# before the error is noticed (the file's size is known up front).  Same for
# a data file that does not exist.  A write that ends exactly at the end of
# the disk is fine.
. "$TOP/tests/functions.sh"

failed=()
for type in dynamic fixed; do
	img=$type.vhd
	bs=; [ $type = dynamic ] && bs="--block-size 512K"
	$VHDTOOL create -q --type $type --size 4M $bs "$img" || die "create $type failed"
	head -c 3M /dev/urandom >three.bin
	for off in 2M 3670016 4M 4194305 5M; do	# inside+crossing, 3.5M, end, end+1, beyond
		(
			before=$(sum "$img")
			expect_fail $VHDTOOL write --offset "$off" "$img" three.bin
			echo "$ERR" | grep -qF "$img" || die "$type --offset $off: message does not name the image: $ERR"
			echo "$ERR" | grep -qi "past the end" || die "$type --offset $off: message lacks 'past the end': $ERR"
			[ "$(sum "$img")" = "$before" ] || die "$type --offset $off: the refused write changed the image"
			echo "ok: $type --offset $off refused, image unchanged"
		) || failed+=("$type --offset $off")
	done
	(
		before=$(sum "$img")
		expect_fail $VHDTOOL write "$img" no-such-data.bin
		echo "$ERR" | grep -qF "no-such-data.bin" || die "$type: missing data file not named: $ERR"
		[ "$(sum "$img")" = "$before" ] || die "$type: image changed"
		echo "ok: $type missing data file refused"
	) || failed+=("$type missing data file")
	(
		head -c 1M three.bin >one.bin
		$VHDTOOL write --offset 3M "$img" one.bin || die "$type: a write ending at the end of the disk failed"
		$VHDTOOL read --offset 3M "$img" | cmp -s - one.bin || die "$type: the last MiB reads wrong"
		$VHDTOOL check -q "$img" || die "$type: check after a good write"
		echo "ok: $type write up to the end"
	) || failed+=("$type write up to the end")
done

[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: ${failed[*]}"
echo "all cases passed"
