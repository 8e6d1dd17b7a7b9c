#!/usr/bin/env bash
# test-vhdx-interop.sh -- VHDX files cross-checked against qemu-img 7.2 and
# libvhdi 20210425 (vhd-facts section 2):
#  a. ours -> qemu: fixed and dynamic VHDX from `vhdtool create` + `write`
#     and from `vhdtool convert` of random raw data (block sizes 1M, 2M, 32M;
#     a size that is not a multiple of the block size) are identical to the
#     raw for `qemu-img compare -f raw -F vhdx` and clean for `qemu-img
#     check`.  qemu supports only 512-byte logical sectors ("VHDX error -
#     QEMU only supports 512 byte sector sizes", block/vhdx.c), so the
#     4096-byte ones are checked through libvhdi's vhdimount instead when
#     FUSE is usable (else noted and skipped).
#  b. qemu -> ours: `qemu-img convert -O vhdx` with subformat dynamic/fixed,
#     block_size 1M/8M/32M, block_state_zero on/off reads back as the raw
#     through `vhdtool convert`, and `vhdtool check` is clean; empty images
#     from `qemu-img create -f vhdx` read as zeros.
#  c. vhdiinfo parses our fixed, dynamic and differencing VHDX: exit 0, disk
#     type, media size, bytes per sector, and its Identifier (the header's
#     DataWriteGuid) equals the one in the file and the one vhdtool info
#     shows.  For the child, its "Parent identifier" must be the parent's
#     DataWriteGuid and its "Parent filename" the parent.  libvhdi reads
#     parent_linkage with libfguid's LOWER_CASE|SURROUNDING_BRACES format
#     only (libvhdi_parent_locator_get_value_as_guid) and silently leaves
#     zeros when that fails; MS-VHDX 2.6.2.6.3 says the value "is encoded as
#     a lowercase string with enclosing braces".  vhdimount (FUSE) must open
#     our chain and read it as we do; with the upper-case linkage it refuses
#     ("libvhdi_file_set_parent_file: mismatch in identifier").  A control
#     proves that with a lowercase linkage libvhdi shows the right parent and
#     reads the chain like we do, and that we still open such a child.
#  d. VHD -> VHDX -> VHD -> raw through vhdtool convert is byte-identical,
#     and a VHDX differencing chain (3 levels, unaligned writes) flattened by
#     `vhdtool convert child.vhdx flat.vhd` equals the expected content
#     (checked by us and by qemu's vpc driver).
# Every case runs even when an earlier one failed; the failures are listed
# at the end.
. "$TOP/tests/functions.sh"
requires qemu-img vhdiinfo
PATCH=$TOP/tests/helpers/vhdxpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdxpatch is not built"

failed=()
fail_case() { failed+=("$1"); }
finish() {
	[ ${#failed[@]} -eq 0 ] || die "${#failed[@]} case(s) failed: $(printf '[%s] ' "${failed[@]}")"
	echo "all cases passed"
}

# mkdata FILE BYTES: random data at the start, across 1M/2M/32M block
# boundaries, in an unaligned run in the middle and at the very end; holes
# (zeros) elsewhere, so that dynamic outputs have unallocated blocks.
mkdata() {
	local f=$1 bytes=$2 sectors=$(($2 / 512))
	rm -f "$f"
	truncate -s "$bytes" "$f"
	put() { [ $(($1 + $2)) -le "$sectors" ] && dd if=/dev/urandom of="$f" bs=512 seek="$1" count="$2" conv=notrunc status=none; return 0; }
	put 0 300
	put $((2048 - 5)) 11		# across 1M
	put $((4096 * 3 - 1)) 3		# across 6M (2M blocks)
	put $((65536 - 7)) 15		# across 32M
	put $((sectors / 2 + 3)) 77
	put $((sectors - 9)) 9
}

# FUSE usable for vhdimount?
fuse_ok=0
if command -v vhdimount >/dev/null 2>&1 && command -v fusermount >/dev/null 2>&1 &&
   [ -c /dev/fuse ] && : 2>/dev/null </dev/fuse; then
	fuse_ok=1
	mkdir mnt
	trap 'fusermount -u "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
fi
# vhdimount_cmp IMG RAW: libvhdi's data view of IMG equals RAW (0), or 2
# when it cannot mount here.
vhdimount_cmp() {
	local rc
	timeout 20 vhdimount "$1" mnt >mount.log 2>&1 || return 2
	cmp mnt/vhdi1 "$2"
	rc=$?
	fusermount -u mnt
	return $rc
}

# ------------------------------------------------------------------
# a. ours -> qemu
size=$((37 * 1024 * 1024 + 3 * 4096))	# 37 MiB + 12 KiB: no block size divides it
mkdata src.raw $size
for type in fixed dynamic; do
	for bs in 1M 2M 32M; do
		for lsec in 512 4096; do
			what="ours->qemu: create+write $type block $bs lsec $lsec"
			(
				rm -f o.vhdx back.img
				$VHDTOOL create -q --format vhdx --type $type --size $size --block-size $bs \
					--logical-sector $lsec o.vhdx || die "$what: create exit $?"
				$VHDTOOL write o.vhdx src.raw >/dev/null || die "$what: write exit $?"
				$VHDTOOL check -q o.vhdx || die "$what: vhdtool check exit $?"
				$VHDTOOL convert -q o.vhdx back.img && cmp src.raw back.img ||
					die "$what: our own read-back differs"
				if [ $lsec = 512 ]; then
					qemu-img compare -q -f raw -F vhdx src.raw o.vhdx ||
						die "$what: qemu-img compare exit $?"
					qemu-img check -q -f vhdx o.vhdx >qcheck.log 2>&1 ||
						die "$what: qemu-img check exit $?: $(cat qcheck.log)"
					echo "ok: $what (qemu compare + check)"
				elif [ $fuse_ok = 1 ]; then
					vhdimount_cmp o.vhdx src.raw
					case $? in
					0) echo "ok: $what (libvhdi's vhdimount view; qemu has no 4K sectors)" ;;
					2) echo "NOTE: $what: vhdimount cannot mount here: $(tail -n1 mount.log)" ;;
					*) die "$what: libvhdi's view differs from the raw" ;;
					esac
				else
					echo "NOTE: $what: qemu has no 4K sectors and FUSE is not usable; own read-back only"
				fi
			) || fail_case "$what"
		done
	done
	for bs in 1M 2M 32M; do
		what="ours->qemu: convert -O vhdx --type $type --block-size $bs"
		(
			rm -f c.vhdx
			$VHDTOOL convert -q -O vhdx --type $type --block-size $bs src.raw c.vhdx ||
				die "$what: exit $?"
			qemu-img compare -q -f raw -F vhdx src.raw c.vhdx || die "$what: qemu-img compare exit $?"
			qemu-img check -q -f vhdx c.vhdx >qcheck.log 2>&1 ||
				die "$what: qemu-img check exit $?: $(cat qcheck.log)"
			vs=$(qemu-img info -f vhdx --output=json c.vhdx | sed -n 's/^ *"virtual-size": \([0-9]*\),*$/\1/p')
			[ "$vs" = "$size" ] || die "$what: qemu virtual size $vs, want $size"
			echo "ok: $what"
		) || fail_case "$what"
	done
done
# Empty images from create: zeros for qemu.
truncate -s $size zero.raw
for type in fixed dynamic; do
	what="ours->qemu: empty $type"
	(
		rm -f e.vhdx
		$VHDTOOL create -q --format vhdx --type $type --size $size e.vhdx || die "$what: create exit $?"
		qemu-img compare -q -f raw -F vhdx zero.raw e.vhdx || die "$what: qemu-img compare exit $?"
		qemu-img check -q -f vhdx e.vhdx >qcheck.log 2>&1 || die "$what: qemu-img check: $(cat qcheck.log)"
		echo "ok: $what"
	) || fail_case "$what"
done

# ------------------------------------------------------------------
# b. qemu -> ours
for sub in dynamic fixed; do
	for bs in 1M 8M 32M; do
		for bz in on off; do
			what="qemu->ours: subformat=$sub block_size=$bs block_state_zero=$bz"
			(
				rm -f q.vhdx out.img
				qemu-img convert -f raw -O vhdx -o subformat=$sub,block_size=$bs,block_state_zero=$bz \
					src.raw q.vhdx || die "$what: qemu-img convert exit $?"
				before=$(sum q.vhdx)
				$VHDTOOL convert -q q.vhdx out.img || die "$what: vhdtool convert exit $?"
				cmp src.raw out.img || die "$what: content differs from the raw"
				$VHDTOOL check q.vhdx >check.out 2>&1 || die "$what: vhdtool check exit $?: $(cat check.out)"
				$VHDTOOL info --json q.vhdx >info.json || die "$what: info exit $?"
				grep -q "\"virtual_size\": $size," info.json || die "$what: info size: $(cat info.json)"
				want_type=$sub
				grep -q "\"type\": \"$want_type\"" info.json || die "$what: info type: $(cat info.json)"
				[ "$(sum q.vhdx)" = "$before" ] || die "$what: reading changed the qemu image"
				echo "ok: $what"
			) || fail_case "$what"
		done
	done
done
for sub in dynamic fixed; do
	what="qemu->ours: empty qemu-img create subformat=$sub"
	(
		rm -f qe.vhdx out.img
		qemu-img create -q -f vhdx -o subformat=$sub qe.vhdx $size || die "$what: qemu-img create exit $?"
		$VHDTOOL convert -q qe.vhdx out.img || die "$what: convert exit $?"
		cmp zero.raw out.img || die "$what: does not read as zeros"
		$VHDTOOL read --offset $((size - 4096)) --length 4096 qe.vhdx | cmp - <(head -c 4096 /dev/zero) ||
			die "$what: read of the last 4K is not zeros"
		$VHDTOOL check -q qe.vhdx || die "$what: check exit $?"
		echo "ok: $what"
	) || fail_case "$what"
done
# A qemu image written by us reads back in qemu (both directions on one file).
what="qemu image written by vhdtool"
(
	rm -f qw.vhdx
	qemu-img create -q -f vhdx -o block_size=1M qw.vhdx $size || die "$what: create"
	cp zero.raw want.raw
	head -c 300000 /dev/urandom >patch.bin
	$VHDTOOL write --offset 1500000 qw.vhdx patch.bin >/dev/null || die "$what: write exit $?"
	dd if=patch.bin of=want.raw bs=1M seek=1500000 oflag=seek_bytes conv=notrunc status=none
	qemu-img compare -q -f raw -F vhdx want.raw qw.vhdx || die "$what: qemu sees other content"
	qemu-img check -q -f vhdx qw.vhdx >qcheck.log 2>&1 || die "$what: qemu-img check: $(cat qcheck.log)"
	echo "ok: $what"
) || fail_case "$what"

# ------------------------------------------------------------------
# c. vhdiinfo
field() {	# field NAME FILE: value of "NAME : value" in vhdiinfo output
	sed -n "s/^[[:space:]]*$1[[:space:]]*: \\(.*\\)\$/\\1/p" "$2" | head -n1
}
guid_text() {	# {ABCD...} -> abcd... (the canonical GUID text, lower case)
	echo "$1" | tr -d '{}' | tr 'A-F' 'a-f'
}
csize=$((20 * 1024 * 1024 + 4096))
mkdata c.raw $csize
$VHDTOOL convert -q -O vhdx --type fixed c.raw cfix.vhdx || die "convert to fixed VHDX failed"
$VHDTOOL convert -q -O vhdx --type dynamic --block-size 2M c.raw cdyn.vhdx || die "convert to dynamic VHDX failed"
$VHDTOOL snapshot -q cdyn.vhdx cchild.vhdx || die "snapshot of a VHDX failed"
# Some data in the child (a sub-sector write over parent data, a write in a
# parent hole).  Without it the child has no sector-bitmap block at all
# (SB entry NOT_PRESENT, valid per MS-VHDX: everything reads from the
# parent), and libvhdi 20210425 misreads such a child: sector 0 comes from
# the parent, but many later sectors of parent data read as zeros, as if the
# bytes at file offset 0 (the file identifier) were the bitmap -- a libvhdi
# limitation, not checked here.
cp c.raw cchild.raw
head -c 700 /dev/urandom >cw.bin
$VHDTOOL write --offset 1000 cchild.vhdx cw.bin >/dev/null || die "write to the child failed"
dd if=cw.bin of=cchild.raw bs=1M seek=1000 oflag=seek_bytes conv=notrunc status=none
$VHDTOOL write --offset $((15 * 1024 * 1024 + 3)) cchild.vhdx cw.bin >/dev/null || die "write to the child failed"
dd if=cw.bin of=cchild.raw bs=1M seek=$((15 * 1024 * 1024 + 3)) oflag=seek_bytes conv=notrunc status=none
$VHDTOOL create -q --format vhdx --type dynamic --size $csize --logical-sector 4096 c4k.vhdx ||
	die "create 4K VHDX failed"

check_vhdiinfo() {	# check_vhdiinfo FILE TYPE SECTOR
	local f=$1 type=$2 sec=$3 got want
	vhdiinfo "$f" >"$f.info" 2>&1 || die "vhdiinfo $f exited $?: $(cat "$f.info")"
	grep -q 'VHDX' "$f.info" || die "$f: vhdiinfo does not say VHDX: $(cat "$f.info")"
	got=$(field 'Disk type' "$f.info")
	[ "$got" = "$type" ] || die "$f: vhdiinfo disk type '$got', want '$type'"
	got=$(field 'Media size' "$f.info")
	case $got in *"($csize bytes)"*) ;; *) die "$f: vhdiinfo media size '$got', want $csize bytes" ;; esac
	got=$(field 'Bytes per sector' "$f.info")
	[ "$got" = "$sec bytes" ] || die "$f: vhdiinfo bytes per sector '$got', want $sec"
	got=$(field 'Identifier' "$f.info")
	want=$(guid_text "$("$PATCH" "$f" header current data_write)")
	[ "$got" = "$want" ] || die "$f: vhdiinfo Identifier '$got', the header's DataWriteGuid is $want"
	echo "ok: vhdiinfo reads $f as $type, $csize bytes, $sec-byte sectors, identifier $got"
}
for spec in "cfix.vhdx Fixed 512" "cdyn.vhdx Dynamic 512" "cchild.vhdx Differential 512" "c4k.vhdx Dynamic 4096"; do
	set -- $spec
	(check_vhdiinfo "$@") || fail_case "vhdiinfo $1"
done

# vhdtool info shows the same identifiers as libvhdi (GUID text form).
what="vhdtool info shows DataWriteGuid as libvhdi does"
(
	want=$(field 'Identifier' cdyn.vhdx.info)
	got=$($VHDTOOL info cdyn.vhdx | sed -n 's/^ *data write id: *//p' | head -n1)
	[ "$(guid_text "$got")" = "$want" ] ||
		die "$what: vhdtool info 'data write id: $got', vhdiinfo 'Identifier: $want' (GUID $("$PATCH" cdyn.vhdx header current data_write) in the header)"
	echo "ok: $what"
) || fail_case "$what"

# The child: what libvhdi shows as its parent.
what="vhdiinfo parent identifier of our child"
(
	want=$(guid_text "$("$PATCH" cdyn.vhdx header current data_write)")
	link=$("$PATCH" cchild.vhdx locator parent_linkage)
	[ "$(guid_text "$link")" = "$want" ] ||
		die "$what: the child's parent_linkage $link is not the parent's DataWriteGuid $want"
	got=$(field 'Parent identifier' cchild.vhdx.info)
	echo "vhdiinfo shows: Parent identifier '$got', Parent filename '$(field 'Parent filename' cchild.vhdx.info)'; stored parent_linkage '$link'"
	[ "$got" = "$want" ] ||
		die "$what: vhdiinfo 'Parent identifier: $got', want the parent's DataWriteGuid $want; the child stores parent_linkage '$link' (MS-VHDX 2.6.2.6.3: a lowercase string with braces; libvhdi parses it lowercase-only)"
	echo "ok: $what"
) || fail_case "$what"
what="vhdiinfo parent filename of our child"
(
	got=$(field 'Parent filename' cchild.vhdx.info)
	[ "$got" = "$(realpath cdyn.vhdx)" ] || die "$what: '$got', want $(realpath cdyn.vhdx)"
	echo "ok: $what"
) || fail_case "$what"
# Control: the same child with its linkage in lower case -- libvhdi shows the
# parent, and we still open the chain (our parser is case-insensitive).
what="lowercase parent_linkage (control)"
(
	cp cchild.vhdx lower.vhdx
	link=$("$PATCH" lower.vhdx locator parent_linkage)
	lower=$(echo "$link" | tr 'A-F' 'a-f')
	"$PATCH" lower.vhdx locator parent_linkage "$lower" || die "$what: patch failed"
	vhdiinfo lower.vhdx >lower.info 2>&1 || die "$what: vhdiinfo exit $?"
	got=$(field 'Parent identifier' lower.info)
	[ "$got" = "$(guid_text "$link")" ] || die "$what: vhdiinfo parent identifier '$got' even with '$lower'"
	rm -f lower.img
	$VHDTOOL convert -q lower.vhdx lower.img && cmp cchild.raw lower.img ||
		die "$what: we do not read the chain through a lowercase linkage"
	if [ $fuse_ok = 1 ]; then
		if timeout 20 vhdimount lower.vhdx mnt >mount.log 2>&1; then
			cmp mnt/vhdi2 cchild.raw || { fusermount -u mnt; die "$what: libvhdi's view of the chain differs"; }
			fusermount -u mnt
			echo "ok: $what: vhdimount reads the chain like we do"
		else
			die "$what: vhdimount cannot open the chain: $(grep -v '^vhdimount' mount.log | tr '\n' ' ')"
		fi
	fi
	echo "ok: $what (vhdiinfo: $got)"
) || fail_case "$what"
# libvhdi checks the parent's identifier against the child's parent_linkage
# when it opens the chain: with the linkage as we write it, does it open?
if [ $fuse_ok = 1 ]; then
	what="vhdimount opens our differencing chain"
	(
		if timeout 20 vhdimount cchild.vhdx mnt >mount.log 2>&1; then
			cmp mnt/vhdi2 cchild.raw || { fusermount -u mnt; die "$what: libvhdi's view differs"; }
			fusermount -u mnt
			echo "ok: $what"
		else
			die "$what: vhdimount refuses it: $(grep -v '^vhdimount' mount.log | tr '\n' ' ')"
		fi
	) || fail_case "$what"
fi
# libvhdi reads our VHDX data too (dynamic, fixed).
if [ $fuse_ok = 1 ]; then
	for f in cdyn.vhdx cfix.vhdx; do
		what="vhdimount view of $f"
		(
			vhdimount_cmp $f c.raw
			case $? in
			0) echo "ok: $what" ;;
			2) echo "NOTE: $what: cannot mount here: $(tail -n1 mount.log)" ;;
			*) die "$what differs from the raw" ;;
			esac
		) || fail_case "$what"
	done
fi

# ------------------------------------------------------------------
# d. Round trips and a flattened chain.
what="VHD -> VHDX -> VHD -> raw"
(
	mkdata r.raw $((9 * 1024 * 1024 + 512))
	$VHDTOOL convert -q -O vhd --type dynamic --block-size 512K r.raw r1.vhd || die "$what: raw->vhd"
	$VHDTOOL convert -q -O vhdx r1.vhd r2.vhdx || die "$what: vhd->vhdx exit $?"
	$VHDTOOL convert -q -O vhd r2.vhdx r3.vhd || die "$what: vhdx->vhd exit $?"
	$VHDTOOL convert -q -O raw r3.vhd r4.raw || die "$what: vhd->raw exit $?"
	cmp r.raw r4.raw || die "$what: content changed"
	qemu-img compare -q -f raw -F vhdx r.raw r2.vhdx || die "$what: qemu sees other content in r2.vhdx"
	echo "ok: $what"
) || fail_case "$what"
what="VHD (fixed) -> VHDX (fixed) -> VHD -> raw"
(
	mkdata r.raw $((9 * 1024 * 1024 + 512))
	$VHDTOOL convert -q -O vhd --type fixed r.raw f1.vhd || die "$what: raw->vhd"
	$VHDTOOL convert -q -O vhdx --type fixed f1.vhd f2.vhdx || die "$what: vhd->vhdx exit $?"
	$VHDTOOL info --json f2.vhdx | grep -q '"type": "fixed"' || die "$what: the VHDX is not fixed"
	$VHDTOOL convert -q -O vhd --type fixed f2.vhdx f3.vhd || die "$what: vhdx->vhd exit $?"
	$VHDTOOL convert -q f3.vhd f4.raw || die "$what: vhd->raw exit $?"
	cmp r.raw f4.raw || die "$what: content changed"
	echo "ok: $what"
) || fail_case "$what"

what="VHDX chain flattened to VHD"
(
	msize=$((24 * 1024 * 1024))
	mkdata base.raw $msize
	$VHDTOOL convert -q -O vhdx --type dynamic --block-size 1M base.raw base.vhdx || die "$what: base"
	cp base.raw want.raw
	# wr IMG OFF LEN: random bytes into IMG and into the mirror want.raw.
	wr() {
		head -c "$3" /dev/urandom >w.bin
		$VHDTOOL write --offset "$2" "$1" w.bin >/dev/null || die "$what: write $1 @$2+$3 exit $?"
		dd if=w.bin of=want.raw bs=1M seek="$2" oflag=seek_bytes conv=notrunc status=none ||
			die "$what: dd failed"
	}
	$VHDTOOL snapshot -q base.vhdx mid.vhdx || die "$what: snapshot 1"
	wr mid.vhdx 1000 777			# sub-sector, inside a parent block with data
	wr mid.vhdx $((3 * 1024 * 1024 - 100)) 5000	# across a block boundary
	wr mid.vhdx $((10 * 1024 * 1024)) $((2 * 1024 * 1024))	# whole blocks in a hole
	$VHDTOOL snapshot -q mid.vhdx top.vhdx || die "$what: snapshot 2"
	wr top.vhdx 1500 100			# over mid's sub-sector write
	wr top.vhdx $((msize - 700)) 700	# the last bytes
	wr top.vhdx $((7 * 1024 * 1024 + 513)) 1	# one byte
	$VHDTOOL info top.vhdx | grep -c '^parent:' | grep -qx 2 || die "$what: top.vhdx does not show 2 parents"
	$VHDTOOL convert -q top.vhdx flat.vhd || die "$what: convert exit $?"
	$VHDTOOL info --json flat.vhd | grep -q '"format": "vhd"' || die "$what: flat.vhd is not a VHD"
	$VHDTOOL convert -q flat.vhd flat.raw && cmp want.raw flat.raw || die "$what: flattened content differs"
	qemu-img compare -q -f raw -F vpc want.raw flat.vhd || die "$what: qemu sees other content in flat.vhd"
	$VHDTOOL convert -q top.vhdx flat2.vhdx || die "$what: convert to vhdx exit $?"
	qemu-img compare -q -f raw -F vhdx want.raw flat2.vhdx || die "$what: qemu sees other content in flat2.vhdx"
	$VHDTOOL check -q top.vhdx || die "$what: check of the chain exit $?"
	echo "ok: $what"
) || fail_case "$what"

finish
