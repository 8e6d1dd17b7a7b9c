#!/usr/bin/env bash
# test-import-qcow2-vmdk.sh -- vhdtool reads the qcow2 and VMDK images qemu
# writes, as qemu reads them, and refuses damaged or unsupported ones.
#
# Good images, from a random raw file with holes whose size is not a
# multiple of any cluster size:
#  - qcow2 compat=0.10 (v2) and 1.1 (v3), clusters 4K/64K/2M, plain and
#    compressed (-c);
#  - qcow2 with a backing file (raw, qcow2, and a VHD vhdtool wrote),
#    partially overwritten (and zeroed, v3) by qemu-io when it is installed;
#  - VMDK monolithicSparse, monolithicFlat, streamOptimized (as qemu writes
#    it, and as VMware does, with the grain directory located by a footer),
#    and the split twoGbMaxExtentSparse/Flat variants (one small, one of
#    three extents).
# For each: `vhdtool info --json` names the format; `vhdtool convert` to vhd,
# vhdx and raw gives outputs `qemu-img compare` finds identical to qemu's own
# reading of the input; the VHD/VHDX outputs check clean; the input checks
# clean; writing to it is refused with one line; it is never modified.
#
# Bad images (each: `vhdtool info`/`convert`/`read` fail with exactly one
# stderr line naming the file and the cause, convert leaves no output, the
# input is unchanged): truncated L1 table, an L2 entry past EOF, versions 1
# and 4, a compressed cluster holding garbage, encryption, an external data
# file, extended L2, zstd compression, a backing file missing or of another
# format than declared; a grain directory entry past EOF, a stream-optimized
# VMDK without its footer, a compressed grain holding garbage, a missing
# flat extent, an unsupported extent type, a differencing VMDK.
. "$TOP/tests/functions.sh"
requires qemu-img od

failed=()
# case NAME CMD...: run a case in a subshell; a failure is recorded, the
# other cases still run.
case_() {
	local name=$1
	shift
	( "$@" ) || failed+=("$name")
}

# mkdata FILE BYTES: random data at the start (its first 640 KiB as text,
# which compresses, so that -c images hold compressed clusters), in the
# middle and at the end, holes in between.
mkdata() {
	local f=$1 sectors=$(($2 / 512))
	truncate -s "$2" "$f"
	dd if=/dev/urandom of="$f" bs=512 count=2600 conv=notrunc status=none
	head -c 491520 /dev/urandom | base64 -w 0 | dd of="$f" conv=notrunc status=none
	dd if=/dev/urandom of="$f" bs=512 seek=$((sectors / 2 - 7)) count=50 conv=notrunc status=none
	dd if=/dev/urandom of="$f" bs=512 seek=$((sectors - 3)) count=3 conv=notrunc status=none
}

# be64 FILE OFFSET / le32 FILE OFFSET: read an integer field.
be64() { echo $((16#$(od -An -tx1 -j "$2" -N8 "$1" | tr -d ' \n'))); }
le32() { echo $((16#$(od -An -tx1 -j "$2" -N4 "$1" | awk '{print $4 $3 $2 $1}'))); }
# poke FILE OFFSET HEX: overwrite bytes at OFFSET with HEX ("00ff...").
poke() {
	printf "$(echo "$3" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
hex64() { printf '%016x' "$1"; }
hex32le() { printf '%08x' "$1" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/'; }

# good IMG QEMU_FMT OUR_FMT [TYPE]: everything a good image must satisfy.
good() {
	local f=$1 qf=$2 ours=$3 type=${4:-} before out of
	before=$(sum "$f")
	$VHDTOOL info --json "$f" >info.json 2>info.err || die "$f: info exit $?: $(cat info.err)"
	grep -q "\"format\": \"$ours\"" info.json || die "$f: info does not name the format $ours: $(head -c 300 info.json)"
	[ -z "$type" ] || grep -q "\"type\": \"$type\"" info.json ||
		die "$f: info does not say type $type: $(head -c 300 info.json)"
	for out in vhd vhdx raw; do
		of=out.$out
		rm -f "$of"
		$VHDTOOL convert -q -O $out "$f" "$of" || die "$f: convert -O $out exit $?"
		case $out in vhd) q=vpc ;; *) q=$out ;; esac
		qemu-img compare -q -f "$qf" -F $q "$f" "$of" ||
			die "$f: qemu-img compare -f $qf -F $q finds our $out output different"
		if [ $out != raw ]; then
			$VHDTOOL check "$of" >check.out 2>&1 || die "$f: check of the $out output: $(cat check.out)"
		fi
		rm -f "$of"
	done
	$VHDTOOL check "$f" >check.out 2>&1 || die "$f: check exit $?: $(cat check.out)"
	head -c 512 /dev/urandom >sector.bin
	expect_fail $VHDTOOL write "$f" sector.bin >/dev/null
	echo "$ERR" | grep -q 'read-only' || die "$f: write refusal does not say read-only: $ERR"
	[ "$(sum "$f")" = "$before" ] || die "$f was modified"
	echo "ok: $f ($ours)"
}

# bad NAME FILE KEYWORD...: info, convert and read fail with one line naming
# FILE and every KEYWORD; no output is left; FILE is unchanged.
bad() {
	local name=$1 f=$2 before k
	shift 2
	before=$(sum "$f")
	for verb in info convert read; do
		rm -f out.img
		case $verb in
		info) expect_fail $VHDTOOL info "$f" >/dev/null ;;
		convert) expect_fail $VHDTOOL convert -q "$f" out.img >/dev/null ;;
		read) expect_fail $VHDTOOL read --offset 0 --length 65536 -o out.img "$f" >/dev/null ;;
		esac
		for k in "$f" "$@"; do
			echo "$ERR" | grep -qiF -- "$k" || die "$name: $verb message lacks '$k': $ERR"
		done
		[ $verb = read ] || [ ! -e out.img ] || die "$name: failed $verb left out.img"
	done
	[ "$(sum "$f")" = "$before" ] || die "$name: $f was modified"
	echo "ok: $name: $ERR"
}

# bad_data NAME FILE KEYWORD...: opens (info succeeds), but reading the
# damaged data fails with one line, and check reports it (exit 1).
bad_data() {
	local name=$1 f=$2 before k
	shift 2
	before=$(sum "$f")
	$VHDTOOL info "$f" >/dev/null 2>info.err || die "$name: info exit $?: $(cat info.err)"
	rm -f out.img
	expect_fail $VHDTOOL convert -q "$f" out.img >/dev/null
	for k in "$f" "$@"; do
		echo "$ERR" | grep -qiF -- "$k" || die "$name: convert message lacks '$k': $ERR"
	done
	[ ! -e out.img ] || die "$name: failed convert left out.img"
	expect_fail $VHDTOOL read --offset 0 --length 65536 -o out.img "$f" >/dev/null
	[ "$(sum "$f")" = "$before" ] || die "$name: $f was modified"
	echo "ok: $name: $ERR"
}

size=$((12 * 1024 * 1024 + 3584))	# 12 MiB + 7 sectors
mkdata src.raw $size
cp src.raw base.raw

# ---- qcow2 written by qemu-img convert ----
for compat in 0.10 1.1; do
	for cs in 4K 64K 2M; do
		for c in "" -c; do
			f=q-$compat-$cs${c:+-c}.qcow2
			qemu-img convert -f raw -O qcow2 $c -o compat=$compat,cluster_size=$cs src.raw "$f" ||
				die "qemu-img convert to $f failed"
			case_ "$f" good "$f" qcow2 qcow2 dynamic
		done
	done
done

# ---- qcow2 with backing files ----
qemu-img convert -f raw -O qcow2 src.raw base.qcow2 || die "qemu-img convert base.qcow2 failed"
$VHDTOOL convert -q -O vhd src.raw base.vhd || die "vhdtool convert base.vhd failed"
mkdir sub
for b in raw qcow2 vpc; do
	case $b in vpc) bf=base.vhd ;; *) bf=base.$b ;; esac
	f=sub/child-$b.qcow2
	qemu-img create -q -f qcow2 -b "../$bf" -F $b "$f" || die "qemu-img create $f failed"
	if command -v qemu-io >/dev/null 2>&1; then
		qemu-io -f qcow2 -c 'write -P 0x5a 4k 64k' -c 'write -z 1M 192k' \
			-c "write -P 0xa5 $((size - 1536)) 1536" "$f" >qemu-io.out ||
			die "qemu-io on $f failed: $(cat qemu-io.out)"
	fi
	case_ "$f" good "$f" qcow2 qcow2 differencing
	case_ "$f: parent path" eval \
		"$VHDTOOL info --json '$f' | grep -q '\"parent_path\": \"sub/../$bf\"' || die '$f: parent path not shown'"
done
if command -v qemu-io >/dev/null 2>&1; then
	case_ "backing: layer map" eval \
		"$VHDTOOL map sub/child-qcow2.qcow2 | grep -q 'data  1 .*base.qcow2' || die 'map shows no data from the backing file'"
else
	echo "qemu-io not installed: partial overwrites of a backing file not tested"
fi
# Three layers: qcow2 on qcow2 on raw.
qemu-img create -q -f qcow2 -b child-raw.qcow2 -F qcow2 sub/grandchild.qcow2 || die "grandchild"
case_ "grandchild" good sub/grandchild.qcow2 qcow2 qcow2 differencing

# ---- VMDK written by qemu-img convert ----
for sub in monolithicSparse monolithicFlat streamOptimized twoGbMaxExtentSparse twoGbMaxExtentFlat; do
	f=v-$sub.vmdk
	qemu-img convert -f raw -O vmdk -o subformat=$sub src.raw "$f" || die "qemu-img convert to $sub failed"
	case $sub in *Flat) t=fixed ;; *) t=dynamic ;; esac
	case_ "$f" good "$f" vmdk vmdk $t
done
# A stream-optimized VMDK as VMware writes it: the header at the start
# says the grain directory is at the end (GD_AT_END), and a footer (marker,
# header copy, end-of-stream marker) gives its place.  qemu writes the
# directory in front, so make one from its output; qemu reads both.
cp v-streamOptimized.vmdk stream-end.vmdk
{
	printf '\001\000\000\000\000\000\000\000\000\000\000\000\003\000\000\000'
	head -c 496 /dev/zero
	head -c 512 v-streamOptimized.vmdk
	head -c 512 /dev/zero
} >>stream-end.vmdk
poke stream-end.vmdk 56 ffffffffffffffff
case_ "stream-end.vmdk" good stream-end.vmdk vmdk vmdk dynamic

# Split variants over several extents: a 4.5 GiB disk with data in each.
truncate -s 4608M big.raw
for mib in 0 2047 2100 4607; do
	dd if=/dev/urandom of=big.raw bs=1M seek=$mib count=1 conv=notrunc status=none
done
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
	f=big-$sub.vmdk
	qemu-img convert -f raw -O vmdk -o subformat=$sub big.raw "$f" || die "qemu-img convert to $f failed"
	(
		n=$(grep -c '^RW ' "$f")
		[ "$n" -ge 3 ] || die "$f lists $n extents, expected 3"
		rm -f out.vhd
		$VHDTOOL convert -q -O vhd "$f" out.vhd || die "$f: convert exit $?"
		qemu-img compare -q -f vmdk -F vpc "$f" out.vhd || die "$f: qemu-img compare finds a difference"
		rm -f out.vhd
		echo "ok: $f ($n extents)"
	) || failed+=("$f")
done
rm -f big*

# ---- damaged qcow2 ----
qemu-img convert -f raw -O qcow2 -o cluster_size=64K src.raw good.qcow2 || die "good.qcow2"
l1=$(be64 good.qcow2 40)
l2=$(( $(be64 good.qcow2 "$l1") & 0x00fffffffffffe00 ))

cp good.qcow2 trunc-l1.qcow2
truncate -s $((l1 + 4)) trunc-l1.qcow2
case_ "truncated L1 table" bad "truncated L1 table" trunc-l1.qcow2 "L1 table"

cp good.qcow2 l2-eof.qcow2
poke l2-eof.qcow2 "$l2" "$(hex64 $(( (1 << 63) | (1 << 40) )))"
case_ "L2 entry past EOF" bad_data "L2 entry past EOF" l2-eof.qcow2 "past the end"
case_ "L2 entry past EOF: check" eval \
	"$VHDTOOL check l2-eof.qcow2 >check.out 2>&1; [ \$? -eq 1 ] && grep -q '^error: .*past the end' check.out || die \"check: \$(cat check.out)\""

for v in 1 4; do
	cp good.qcow2 ver$v.qcow2
	poke ver$v.qcow2 4 "$(printf '%08x' $v)"
	case_ "version $v" bad "version $v" ver$v.qcow2 "version $v"
done

qemu-img convert -f raw -O qcow2 -c -o cluster_size=64K src.raw comp.qcow2 || die "comp.qcow2"
cl1=$(be64 comp.qcow2 40)
cl2=$(( $(be64 comp.qcow2 "$cl1") & 0x00fffffffffffe00 ))
e=$(be64 comp.qcow2 "$cl2")
[ $(( (e >> 62) & 1 )) -eq 1 ] || die "cluster 0 of comp.qcow2 is not compressed"
coff=$(( e & ((1 << 54) - 1) ))		# x = 62 - (16 - 8) = 54
head -c 256 /dev/urandom >garbage.bin
dd if=garbage.bin of=comp.qcow2 bs=1 seek="$coff" conv=notrunc status=none
case_ "compressed cluster with garbage" bad_data "compressed cluster with garbage" comp.qcow2 "compressed cluster"

# Features a reader cannot honour: refused by name.
unsupported() {	# unsupported NAME FILE KEYWORD: create with qemu-img first
	local name=$1 f=$2 k=$3
	[ -e "$f" ] || { echo "qemu-img cannot make $name: not tested"; return 0; }
	bad "$name" "$f" "$k"
}
qemu-img create -q -f qcow2 --object secret,id=s0,data=pw \
	-o encrypt.format=luks,encrypt.key-secret=s0 enc.qcow2 1M 2>/dev/null
case_ "encrypted" unsupported "encrypted" enc.qcow2 "encrypted"
qemu-img create -q -f qcow2 -o data_file=ext.data ext.qcow2 1M 2>/dev/null
case_ "external data file" unsupported "external data file" ext.qcow2 "external data file"
qemu-img create -q -f qcow2 -o extended_l2=on xl2.qcow2 1M 2>/dev/null
case_ "extended L2" unsupported "extended L2" xl2.qcow2 "extended L2"
qemu-img create -q -f qcow2 -o compression_type=zstd zstd.qcow2 1M 2>/dev/null
case_ "zstd" unsupported "zstd compression" zstd.qcow2 "zstd"

mkdir nob
cp base.qcow2 nob/base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 nob/child.qcow2 || die "nob/child"
rm nob/base.qcow2
case_ "missing backing file" bad "missing backing file" nob/child.qcow2 "backing file" "not found"
qemu-img create -q -f qcow2 -b good.qcow2 -F raw -o size=1M liar.qcow2 || die "liar.qcow2"
case_ "backing declared raw, is qcow2" bad "backing file of another format" liar.qcow2 "declared raw"

# ---- damaged and unsupported VMDK ----
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse src.raw good.vmdk || die "good.vmdk"
gd=$(le32 good.vmdk 56)		# gdOffset (sectors), low half
cp good.vmdk gd-eof.vmdk
poke gd-eof.vmdk $((gd * 512)) "$(hex32le $((1 << 30)))"
case_ "grain directory entry past EOF" bad "grain directory entry past EOF" gd-eof.vmdk "grain directory entry 0"

qemu-img convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk || die "stream.vmdk"
cp stream-end.vmdk stream-cut.vmdk
truncate -s $(( $(stat -c %s stream-end.vmdk) - 1024 )) stream-cut.vmdk
case_ "stream without footer" bad "stream-optimized without footer" stream-cut.vmdk "footer"

cp stream.vmdk stream-garbage.vmdk
# The first grain follows the header and the embedded descriptor: its
# marker is the first sector after overHead whose LBA is 0 and size small.
ovh=$(le32 stream.vmdk 64)
dd if=garbage.bin of=stream-garbage.vmdk bs=1 seek=$((ovh * 512 + 12)) count=64 conv=notrunc status=none
case_ "compressed grain with garbage" bad_data "compressed grain with garbage" stream-garbage.vmdk "compressed grain"

qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat src.raw flat.vmdk || die "flat.vmdk"
mkdir noflat
cp flat.vmdk noflat/
case_ "missing flat extent" bad "missing flat extent" noflat/flat.vmdk "flat-flat.vmdk" "not found"
sed 's/ FLAT "flat-flat.vmdk" 0/ VMFSSPARSE "flat-flat.vmdk"/' flat.vmdk >vmfssparse.vmdk
case_ "unsupported extent type" bad "unsupported extent type" vmfssparse.vmdk "VMFSSPARSE"
cp flat.vmdk flat-short.vmdk
sed -i 's/flat-flat.vmdk/short-flat.vmdk/' flat-short.vmdk
head -c 1M src.raw >short-flat.vmdk
case_ "flat extent too short" bad "flat extent too short" flat-short.vmdk "short-flat.vmdk" "too short"

qemu-img create -q -f vmdk -b good.vmdk -F vmdk delta.vmdk || die "delta.vmdk"
case_ "differencing VMDK" bad "differencing VMDK" delta.vmdk "differencing" "good.vmdk"

[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: $(printf '[%s] ' "${failed[@]}")"
echo "all cases passed"
