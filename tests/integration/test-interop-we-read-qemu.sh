#!/usr/bin/env bash
# test-interop-we-read-qemu.sh -- vhdtool reads VHDs that qemu-img 7.2 wrote:
# dynamic and fixed, with and without force_size, filled by `qemu-img convert
# -O vpc` from a random raw file, and empty ones written in place by
# qemu-io (qemu sets whole bitmaps to 0xFF on allocation).  For each image:
#  - `vhdtool info --json` virtual_size equals qemu-img info's virtual-size
#    (qemu rounds sizes up to CHS-exact ones with creator "qemu", and with
#    force_size=on writes creator "qem2" and the exact size: vhd-facts 1.3);
#  - `vhdtool convert X out.img` equals `qemu-img convert -f vpc -O raw X`
#    byte for byte;
#  - `vhdtool check` finds nothing wrong (exit 0).
# Also empty qemu dynamic disks of 127G (just under the CHS limit of 127.5
# GiB), 200G and 2040G (past it; qemu writes CHS 65535/16/255): same size as qemu says, clean, and a sector
# qemu-io writes at the very end reads back.
. "$TOP/tests/functions.sh"
requires qemu-img

mkdata() {	# mkdata FILE BYTES: random data at the ends, holes in between
	local f=$1 sectors=$(($2 / 512))
	truncate -s "$2" "$f"
	dd if=/dev/urandom of="$f" bs=512 count=200 conv=notrunc status=none
	dd if=/dev/urandom of="$f" bs=512 seek=$((sectors / 2 - 7)) count=50 conv=notrunc status=none
	dd if=/dev/urandom of="$f" bs=512 seek=$((sectors - 3)) count=3 conv=notrunc status=none
}

qemu_size() {
	qemu-img info -f vpc --output=json "$1" | sed -n 's/^ *"virtual-size": \([0-9]*\),*$/\1/p'
}
our_size() {
	$VHDTOOL info --json "$1" | sed -n 's/.*"virtual_size": \([0-9]*\),.*/\1/p' | head -n1
}

# Whether LEN bytes of FILE at OFF all equal BYTE (0xNN).
bytes_are() {
	cmp -s <(tail -c +$(($2 + 1)) "$1" | head -c "$3") \
		<(head -c "$3" /dev/zero | tr '\000' "\\$(printf %03o "$4")")
}

# Our view of X equals qemu's view of X, size and bytes.
compare_views() {	# compare_views VHD WHAT [WANT_SIZE]
	local f=$1 what=$2 want=${3:-} qs os
	qs=$(qemu_size "$f")
	os=$(our_size "$f")
	[ -n "$qs" ] || die "$what: qemu-img info gave no size"
	[ "$os" = "$qs" ] || die "$what: vhdtool says virtual size '$os', qemu says $qs"
	[ -z "$want" ] || [ "$qs" = "$want" ] || die "$what: qemu size $qs, expected $want"
	qemu-img convert -f vpc -O raw "$f" qemu.raw || die "$what: qemu-img convert failed"
	$VHDTOOL convert -q "$f" ours.img || die "$what: vhdtool convert failed"
	cmp qemu.raw ours.img || die "$what: our raw export differs from qemu's"
	$VHDTOOL check "$f" >check.out 2>&1 || die "$what: vhdtool check exit $?: $(cat check.out)"
	rm -f qemu.raw ours.img
	echo "ok: $what (virtual size $qs)"
}

# Without force_size qemu grows the size to a CHS-exact one; the test requires
# only that it grew (not shrank) and that we agree with qemu on the result.
for size in 4194304 10486272 33555968; do	# 4M, 10M+512, 32M+1024
	mkdata src.raw "$size"
	for sub in dynamic fixed; do
		for force in off on; do
			f=q-$sub-$force.vhd
			qemu-img convert -f raw -O vpc -o "subformat=$sub,force_size=$force" src.raw "$f" ||
				die "qemu-img convert to $sub force_size=$force failed"
			qs=$(qemu_size "$f")
			if [ "$force" = on ]; then
				want=$size
			else
				[ "$qs" -ge "$size" ] || die "qemu shrank $size to $qs?"
				want=
			fi
			compare_views "$f" "qemu $sub force_size=$force from $size bytes" $want
			# The data qemu copied is there (the rest, if qemu grew
			# the disk, reads as zeros).
			$VHDTOOL convert -q "$f" ours.img
			cmp -n "$size" src.raw ours.img || die "$f does not hold the source data"
			[ "$(stat -c %s ours.img)" = "$qs" ] || die "$f: our export is not $qs bytes"
			if [ "$qs" -gt "$size" ]; then
				cmp -s -i "$size:0" -n $((qs - size)) ours.img /dev/zero ||
					die "$f: bytes past the source are not zeros"
			fi
			rm -f "$f" ours.img
		done
	done
	rm -f src.raw
done

# Empty images from qemu-img create, then written in place by qemu-io.
if command -v qemu-io >/dev/null 2>&1; then
	for sub in dynamic fixed; do
		f=io-$sub.vhd
		qemu-img create -q -f vpc -o subformat=$sub "$f" 20M || die "qemu-img create failed"
		compare_views "$f" "empty qemu $sub"
		qemu-io -f vpc \
			-c 'write -P 0xa1 0 4k' \
			-c 'write -P 0xb2 2095616 1024' \
			-c 'write -P 0xc3 7340544 65536' \
			-c 'write -P 0xd4 12m 2m' \
			"$f" >qemu-io.out || die "qemu-io failed: $(cat qemu-io.out)"
		compare_views "$f" "qemu $sub written by qemu-io"
		$VHDTOOL convert -q "$f" ours.img
		# Spot checks of the patterns, independent of qemu's reader.
		bytes_are ours.img 0 4096 0xa1 || die "$sub: 0..4k is not 0xa1"
		bytes_are ours.img 2095616 1024 0xb2 || die "$sub: 1024 bytes at 2095616 are not 0xb2"
		bytes_are ours.img 7340544 65536 0xc3 || die "$sub: 64k at 7340544 are not 0xc3"
		bytes_are ours.img $((12 << 20)) $((2 << 20)) 0xd4 || die "$sub: 12M..14M is not 0xd4"
		bytes_are ours.img 4096 4096 0x00 || die "$sub: 4k..8k is not zero"
		rm -f "$f" ours.img
	done
else
	echo "qemu-io not installed: in-place writes by qemu not tested"
fi
# Large empty qemu disks (sizes past the CHS limit of 127.5 GiB use CHS
# 65535/16/255 as a "use current_size" marker), with one sector written by
# qemu-io at the very end when qemu-io is there.
for s in 127G 200G 2040G; do
	f=big-$s.vhd
	qemu-img create -q -f vpc -o subformat=dynamic "$f" "$s" || die "qemu-img create $s failed"
	qs=$(qemu_size "$f")
	[ "$(our_size "$f")" = "$qs" ] || die "$s: vhdtool says $(our_size "$f"), qemu says $qs"
	$VHDTOOL check "$f" >check.out 2>&1 || die "$s: check exit $?: $(cat check.out)"
	if command -v qemu-io >/dev/null 2>&1; then
		qemu-io -f vpc -c "write -P 0x5a $((qs - 512)) 512" "$f" >qemu-io.out || die "qemu-io failed"
		$VHDTOOL read --offset $((qs - 4096)) --length 4096 -o tail.bin "$f" || die "$s: read failed"
		bytes_are tail.bin 0 3584 0x00 && bytes_are tail.bin 3584 512 0x5a ||
			die "$s: the last sector qemu wrote reads wrong"
	fi
	echo "ok: empty qemu dynamic $s (virtual size $qs)"
	rm -f "$f" tail.bin
done
echo "we read everything qemu wrote as qemu does"
