#!/usr/bin/env bash
# test-interop-qemu-reads-ours.sh -- images vhdtool writes are read by qemu's
# vpc driver (qemu-img 7.2) with exactly the size we asked for and the same
# content: empty fixed/dynamic images from `create`, fixed/dynamic images
# from `convert` of a raw file with random data, for sizes that are and are
# not CHS-exact (10M+512, an odd sector count, 1G) and block sizes 512K/2M,
# and images then changed in place by `vhdtool write`.
#
# qemu trusts current_size for creator "win " (what we write), so its
# virtual-size must equal the requested size to the byte (vhd-facts 1.3, 1.6).
. "$TOP/tests/functions.sh"
requires qemu-img

# File with random data at the start, the end, across a 512K and a 2M block
# boundary, and in one unaligned run in the middle; holes elsewhere.
mkdata() {	# mkdata FILE BYTES
	local f=$1 bytes=$2 sectors=$(($2 / 512)) s
	truncate -s "$bytes" "$f"
	put() { dd if=/dev/urandom of="$f" bs=512 seek="$1" count="$2" conv=notrunc status=none; }
	put 0 128
	put $((sectors - 8)) 8
	[ "$sectors" -gt 5000 ] && put $((1024 - 3)) 7		# across 512K
	[ "$sectors" -gt 9000 ] && put $((4096 - 5)) 11		# across 2M
	s=$((sectors / 2 + 1))
	put "$s" $((sectors - s > 300 ? 300 : 1))
	return 0
}

# qemu's virtual size of a vpc image.
qemu_size() {
	qemu-img info -f vpc --output=json "$1" | sed -n 's/^ *"virtual-size": \([0-9]*\),*$/\1/p'
}

check_qemu() {	# check_qemu RAW VHD SIZE WHAT
	local raw=$1 vhd=$2 size=$3 what=$4 got
	got=$(qemu_size "$vhd")
	[ "$got" = "$size" ] || die "$what: qemu sees virtual size '$got', want $size"
	qemu-img compare -q -f raw -F vpc "$raw" "$vhd" ||
		die "$what: qemu-img compare says the content differs (exit $?)"
	echo "ok: $what"
}

sizes="4194304 10486272 3148288 1073741824"	# 4M, 10M+512, 3M+3584 (odd sectors), 1G

layouts="fixed dynamic:512K dynamic:2M"

# Options of vhdtool create/convert for a layout TYPE[:BLOCK].
layout_opts() {
	case $1 in
	fixed) echo "--type fixed" ;;
	dynamic:*) echo "--type dynamic --block-size ${1#dynamic:}" ;;
	esac
}

# 1. Empty images from create read as zeros, at the exact size.
for size in $sizes; do
	truncate -s "$size" zero.raw
	for l in $layouts; do
		$VHDTOOL create -q $(layout_opts "$l") --size "$size" new.vhd || die "create $l $size failed"
		check_qemu zero.raw new.vhd "$size" "empty $l of $size bytes"
		rm -f new.vhd
	done
	rm -f zero.raw
done

# 2. Random data converted from raw.
for size in $sizes; do
	mkdata src.raw "$size"
	src=$(sum src.raw)
	for l in $layouts; do
		$VHDTOOL convert -q -O vhd $(layout_opts "$l") src.raw conv.vhd ||
			die "convert to $l of $size bytes failed"
		check_qemu src.raw conv.vhd "$size" "convert to $l of $size bytes"
		# qemu's raw export equals the source byte for byte (for 1G the
		# compare above suffices; cmp would read 2 GiB).
		if [ "$size" -le $((100 << 20)) ]; then
			qemu-img convert -f vpc -O raw conv.vhd back.raw || die "qemu-img convert failed"
			cmp src.raw back.raw || die "qemu's raw export of the $l image differs from the source"
		fi
		rm -f conv.vhd back.raw
	done
	[ "$(sum src.raw)" = "$src" ] || die "convert changed its source"
	rm -f src.raw
done
# 3. Images changed in place by `vhdtool write` (new blocks, partial sectors,
# runs across block boundaries), fixed and dynamic: qemu sees every write.
size=10486272
for l in fixed dynamic:512K; do
	mkdata src.raw $size
	$VHDTOOL convert -q -O vhd $(layout_opts "$l") src.raw w.vhd || die "convert failed"
	for spec in 1000:5000 524000:1100000 6000000:300 $((size - 700)):700; do
		off=${spec%%:*} len=${spec#*:}
		head -c "$len" /dev/urandom >patch.bin
		$VHDTOOL write --offset "$off" w.vhd patch.bin || die "vhdtool write $spec into $l failed"
		dd if=patch.bin of=src.raw bs="$len" count=1 seek="$off" oflag=seek_bytes conv=notrunc status=none
	done
	check_qemu src.raw w.vhd "$size" "$l written in place by vhdtool"
	rm -f w.vhd src.raw patch.bin
done
echo "qemu reads every image we wrote"
