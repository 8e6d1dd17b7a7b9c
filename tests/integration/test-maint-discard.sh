#!/usr/bin/env bash
# vhdtool discard: whole blocks in the range are unallocated (zeros in a
# dynamic image, the parent's data in a differencing one), the sectors of a
# partly covered dynamic block read as zeros; compact then shrinks the file.
# Checked against a raw mirror (vhdtool compare, qemu-img compare for the
# dynamic VHD and VHDX), vhdtool check, and the allocation map.
. "$TOP/tests/functions.sh"
requires qemu-img jq

head -c 8M /dev/urandom > src.raw
for fmt in vhd vhdx; do
	qf=$fmt; [ $fmt = vhd ] && qf=vpc
	"$VHDTOOL" convert -q -O $fmt --block-size 2M src.raw dyn.$fmt || die "convert failed"
	cp src.raw want.raw
	# blocks 1 and 2 whole; in block 3, the whole sectors of 7000000+100000
	"$VHDTOOL" discard --offset 2M --length 4M dyn.$fmt || die "$fmt: discard failed"
	dd if=/dev/zero of=want.raw bs=1M seek=2 count=4 conv=notrunc status=none
	"$VHDTOOL" discard --offset 7000000 --length 100000 dyn.$fmt || die "$fmt: partial discard failed"
	a=$(( (7000000 + 511) / 512 * 512 )) b=$(( 7100000 / 512 * 512 ))
	dd if=/dev/zero of=want.raw bs=1 seek=$a count=$((b - a)) conv=notrunc status=none
	"$VHDTOOL" compare want.raw dyn.$fmt >/dev/null || die "$fmt: content after discard differs"
	qemu-img compare -q -f raw -F $qf want.raw dyn.$fmt || die "$fmt: qemu-img compare differs"
	"$VHDTOOL" check -q dyn.$fmt || die "$fmt: not clean after discard"
	alloc=$("$VHDTOOL" map --json dyn.$fmt | jq '[.[] | select(.type == "data") | .length] | add')
	[ "$alloc" -le $((4 << 20)) ] || die "$fmt: ${alloc} bytes still allocated after discarding 4 MiB of 8"
	before=$(stat -c %s dyn.$fmt)
	"$VHDTOOL" compact -q dyn.$fmt || die "$fmt: compact failed"
	after=$(stat -c %s dyn.$fmt)
	[ "$after" -le $((before - (4 << 20))) ] || die "$fmt: compact after discard: $before -> $after bytes"
	"$VHDTOOL" compare want.raw dyn.$fmt >/dev/null || die "$fmt: content after compact differs"
	"$VHDTOOL" check -q dyn.$fmt || die "$fmt: not clean after compact"
	echo "ok: $fmt dynamic ($before -> $after bytes)"

	# differencing: the discarded blocks show the parent again
	"$VHDTOOL" create -q --format $fmt --size 8M --block-size 2M base.$fmt
	head -c 4M /dev/urandom > low
	"$VHDTOOL" write base.$fmt low
	"$VHDTOOL" snapshot -q base.$fmt child.$fmt
	"$VHDTOOL" write child.$fmt src.raw
	"$VHDTOOL" discard --offset 0 --length 4M child.$fmt || die "$fmt: child discard failed"
	cp src.raw want.raw; dd if=low of=want.raw conv=notrunc status=none
	"$VHDTOOL" compare want.raw child.$fmt >/dev/null || die "$fmt: child does not show the parent"
	"$VHDTOOL" check -q child.$fmt || die "$fmt: child not clean after discard"
	echo "ok: $fmt differencing"
done

expect_fail "$VHDTOOL" discard --offset 0 dyn.vhd
echo "$ERR" | grep -q -- "--length" || die "discard without --length: unclear: $ERR"
s=$(sum dyn.vhd)
expect_fail "$VHDTOOL" discard --offset 6M --length 4M dyn.vhd
echo "$ERR" | grep -q "dyn.vhd.*past the end of the disk" || die "discard past the end: unclear: $ERR"
[ "$(sum dyn.vhd)" = "$s" ] || die "a refused discard changed the image"
echo "vhdtool discard ok"
