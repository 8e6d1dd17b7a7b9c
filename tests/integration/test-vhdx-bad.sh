#!/usr/bin/env bash
# test-vhdx-bad.sh -- damaged and unusual VHDX files (vhd-facts section 2),
# crafted with tests/helpers/vhdxpatch (CRCs recomputed unless the damage is
# the CRC itself).
#
# The contract for a bad image (as test-bad-footer.sh): `vhdtool info` and
# `vhdtool convert` fail with exactly one stderr line naming the file and the
# cause; convert leaves no output; `vhdtool write` (a read-write open) fails
# the same way and repairs nothing; `vhdtool check` finds it; the file is
# unchanged (content hash before/after).
#
# check's exit status, decided from what check does (libvhd/check.c
# is_damage()): every refusal below comes from the VHDX parser with a
# VHD_E_* code other than VHD_E_FORMAT, so check reports it as an "error:"
# finding and exits 1 ("damage found") -- this includes the unknown
# *required* region / metadata item (VHD_E_UNSUPPORTED), the over-64-TiB
# size (VHD_E_TOO_BIG) and the parent problems.  Exit 2 ("could not check")
# is reserved for files that are not VHDX at all or cannot be read; none of
# the cases here is one.
#
# Cases that must still OPEN: one header bad (check: warning, exit 1), one
# region table copy bad with the other good (same), an unknown NON-required region or
# metadata item (accepted: check clean), and a log that replays (read-only
# opens replay it in memory and change nothing; a read-write open applies it).
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdxpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdxpatch is not built (make tests/helpers/vhdxpatch)"

. "$TOP/tests/bad_case.sh"
# good_case NAME FILE WANT_RAW CHECK_RC [CHECK_PATTERN]: opens; info exit 0;
# convert reads WANT_RAW; check exits CHECK_RC (0 clean, or 1 with a
# "warning:" finding matching CHECK_PATTERN); the file is unchanged.
good_case() {
	local name=$1 f=$2 raw=$3 want=$4 pat=${5:-}
	(
		before=$(sum "$f")
		$VHDTOOL info "$f" >info.out 2>info.err || die "$name: info exit $?: $(cat info.err)"
		rm -f out.img
		$VHDTOOL convert -q "$f" out.img || die "$name: convert exit $?"
		cmp "$raw" out.img || die "$name: content differs"
		rm -f out.img
		$VHDTOOL check "$f" >check.out 2>&1
		rc=$?
		[ "$rc" -eq "$want" ] || die "$name: check exit $rc, want $want: $(cat check.out)"
		if [ -n "$pat" ]; then
			grep -qiE "^warning: .*$pat" check.out ||
				die "$name: check has no warning matching '$pat': $(cat check.out)"
		fi
		grep -q '^error:' check.out && die "$name: check reports an error: $(cat check.out)"
		[ "$(sum "$f")" = "$before" ] || die "$name: $f was modified by info/convert/check"
		echo "ok: $name"
	) || failed+=("$name")
}
# mk NAME SRC PATCH-ARGS...: NAME is a copy of SRC with vhdxpatch applied.
mk() {
	local name=$1 src=$2
	shift 2
	rm -f "$name"
	cp "$src" "$name"
	"$PATCH" "$name" "$@" || die "vhdxpatch $name $* failed"
}

# 6 MiB of data, a hole, 1 MiB of data: dynamic (1 MiB blocks), fixed.
truncate -s 8M src.raw
dd if=/dev/urandom of=src.raw bs=1M count=6 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=1M seek=7 count=1 conv=notrunc status=none
$VHDTOOL convert -q -O vhdx --type dynamic --block-size 1M src.raw dyn.vhdx || die "convert to dynamic failed"
$VHDTOOL convert -q -O vhdx --type fixed --block-size 1M src.raw fixed.vhdx || die "convert to fixed failed"
$VHDTOOL check -q dyn.vhdx && $VHDTOOL check -q fixed.vhdx || die "fresh images do not check clean"
read -r chunk nblocks nsb nentries <<<"$("$PATCH" dyn.vhdx bat-geometry)"
[ "$nblocks" = 8 ] && [ "$nentries" = 8 ] || die "unexpected geometry of dyn.vhdx: $chunk $nblocks $nsb $nentries"
[ "$("$PATCH" dyn.vhdx bat 6 | cut -d' ' -f1)" = 0 ] || die "block 6 of dyn.vhdx should be unallocated"

# ---- headers ----
mk hdr-both.vhdx dyn.vhdx header both corrupt
bad_case "both headers: CRC mismatch" hdr-both.vhdx 1 "header" "header"
mk hdr-ver.vhdx dyn.vhdx header both version 2
bad_case "both headers: version 2 (good CRC)" hdr-ver.vhdx 1 "header" "header"
for n in 1 2; do
	mk hdr-$n.vhdx dyn.vhdx header $n corrupt
	good_case "header $n CRC mismatch, the other good" hdr-$n.vhdx src.raw 1 "header $n"
done
# The same after a session of safe writes, when the older header still
# names that session's log (replayed again, harmlessly).
(
	cp src.raw w.raw
	cp dyn.vhdx w.vhdx
	for off in 100000 3000000 6500000; do
		head -c 70000 /dev/urandom >p.bin
		$VHDTOOL write --offset $off w.vhdx p.bin >/dev/null || die "write to w.vhdx failed"
		dd if=p.bin of=w.raw bs=1M seek=$off oflag=seek_bytes conv=notrunc status=none
	done
) || failed+=("setup of written image")
for n in 1 2; do
	mk whdr-$n.vhdx w.vhdx header $n corrupt
	good_case "header $n CRC mismatch after safe writes" whdr-$n.vhdx w.raw 1 "header $n"
done
# A write session through the surviving header repairs the damaged one.
(
	cp hdr-1.vhdx fix1.vhdx
	cp src.raw fix1.raw
	head -c 4096 /dev/urandom >p.bin
	$VHDTOOL write --offset 8192 fix1.vhdx p.bin >/dev/null || die "write exit $?"
	dd if=p.bin of=fix1.raw bs=4096 seek=2 conv=notrunc status=none
	$VHDTOOL check fix1.vhdx >check.out 2>&1 || die "check after the write: $(cat check.out)"
	$VHDTOOL convert -q fix1.vhdx fix1.img && cmp fix1.raw fix1.img || die "content after the write differs"
	echo "ok: a write session rewrites the damaged header"
) || failed+=("write repairs a damaged header")

# ---- region table ----
mk rt-1.vhdx dyn.vhdx region 1 corrupt
good_case "region table 1 CRC mismatch, copy 2 good" rt-1.vhdx src.raw 1 "region table 1"
# Copy 2 damaged, copy 1 good: the file opens from copy 1, but check must say
# so, as it does for header 2 and for a VHD's backup footer -- one more hit
# on copy 1 and the file is lost.
mk rt-2.vhdx dyn.vhdx region 2 corrupt
good_case "region table 2 CRC mismatch, copy 1 good" rt-2.vhdx src.raw 1 "region table 2"
mk rt-both.vhdx dyn.vhdx region both corrupt
bad_case "region table CRC mismatch in both copies" rt-both.vhdx 1 "region table" "region table"
guid=8E1C3F7A-52B0-4C7D-9E21-0A4B6C8D2F13
mk rt-unknown-req.vhdx dyn.vhdx region both add $guid $((64 << 20)) $((1 << 20)) 1
bad_case "unknown required region" rt-unknown-req.vhdx 1 "unknown required region" "unknown required region" "$guid"
mk rt-unknown-opt.vhdx dyn.vhdx region both add $guid $((64 << 20)) $((1 << 20)) 0
good_case "unknown non-required region (accepted)" rt-unknown-opt.vhdx src.raw 0

# ---- metadata ----
mk md-unknown-req.vhdx dyn.vhdx meta add $guid 4 8
bad_case "unknown required metadata item" md-unknown-req.vhdx 1 "unknown required metadata" \
	"unknown required metadata" "$guid"
for flags in 0 1 2 3; do
	mk md-unknown-opt$flags.vhdx dyn.vhdx meta add $guid $flags 8
	good_case "unknown non-required metadata item, flags $flags (accepted)" md-unknown-opt$flags.vhdx src.raw 0
done
mk md-size.vhdx dyn.vhdx meta disk_size $(((64 << 40) + (1 << 20)))
bad_case "virtual size 64 TiB + 1 MiB" md-size.vhdx 1 "64 TiB" "64 TiB"
mk md-size2.vhdx dyn.vhdx meta disk_size $((1 << 50))
bad_case "virtual size 1 PiB" md-size2.vhdx 1 "64 TiB" "64 TiB"
mk md-bs3.vhdx dyn.vhdx meta block_size $((3 << 20))
bad_case "block size 3 MiB (not a power of two)" md-bs3.vhdx 1 "block size" "block size" "power of two"
mk md-bs-small.vhdx dyn.vhdx meta block_size $((512 << 10))
bad_case "block size 512 KiB (below 1 MiB)" md-bs-small.vhdx 1 "block size" "block size"
mk md-lsec.vhdx dyn.vhdx meta logical_sector 1000
bad_case "logical sector size 1000" md-lsec.vhdx 1 "logical sector" "logical sector" "1000"
mk md-psec.vhdx dyn.vhdx meta physical_sector 1000
bad_case "physical sector size 1000" md-psec.vhdx 1 "physical sector" "physical sector" "1000"

# ---- BAT ----
off1=$("$PATCH" dyn.vhdx bat 1 | cut -d' ' -f2)
mk bat-pp.vhdx dyn.vhdx bat 1 7 "$off1"
bad_case "PARTIALLY_PRESENT in a dynamic disk" bat-pp.vhdx 1 "state 7" "state 7" "BAT entry 1"
mk bat-pp-fixed.vhdx fixed.vhdx bat 1 7 "$("$PATCH" fixed.vhdx bat 1 | cut -d' ' -f2)"
bad_case "PARTIALLY_PRESENT in a fixed disk" bat-pp-fixed.vhdx 1 "state 7" "state 7"
mk bat-st4.vhdx dyn.vhdx bat 6 4 0
bad_case "reserved payload state 4" bat-st4.vhdx 1 "state 4" "state 4"
# A sector-bitmap entry exists in a non-differencing BAT only past chunk_ratio
# payload blocks: 256 MiB blocks give a chunk ratio of 16, so 17 blocks.
$VHDTOOL create -q --format vhdx --type dynamic --size $((17 * 256))M --block-size 256M big.vhdx ||
	die "create big.vhdx failed"
read -r bchunk bnblocks bnsb bnentries <<<"$("$PATCH" big.vhdx bat-geometry)"
[ "$bchunk" = 16 ] && [ "$bnentries" = 18 ] || die "big.vhdx geometry: $bchunk $bnblocks $bnsb $bnentries"
truncate -s +1M big.vhdx	# room for the bitmap block, inside the file
mk bat-sb.vhdx big.vhdx bat 16 6 $(($(stat -c %s big.vhdx) - (1 << 20)))
bad_case "sector bitmap block present in a dynamic disk" bat-sb.vhdx 1 "sector bitmap" "sector bitmap"
mk bat-sb-state.vhdx big.vhdx bat 16 3 0
bad_case "sector bitmap entry with state 3" bat-sb-state.vhdx 1 "sector bitmap" "sector bitmap"
fsize=$(stat -c %s dyn.vhdx)
mk bat-eof.vhdx dyn.vhdx bat 1 6 $((fsize + (100 << 20)))
bad_case "BAT entry past EOF" bat-eof.vhdx 1 "BAT entry 1" "BAT entry 1"
mk bat-eof2.vhdx dyn.vhdx bat 7 6 "$fsize"
bad_case "BAT entry starting at EOF" bat-eof2.vhdx 1 "BAT entry 7" "BAT entry 7"
mk bat-meta.vhdx dyn.vhdx bat 1 6 $((2 << 20))
bad_case "BAT entry pointing into the metadata region" bat-meta.vhdx 1 "BAT entry 1" "BAT entry 1"
mk bat-overlap.vhdx dyn.vhdx bat 2 6 "$off1"
bad_case "two BAT entries at one offset" bat-overlap.vhdx 1 "overlap" "overlap"

# ---- log ----
# One entry, good CRC, its data descriptor at an absurd file offset.
mk log-far.vhdx dyn.vhdx log $((1 << 62))
bad_case "log descriptor at 2^62" log-far.vhdx 1 "log" "log"
mk log-pib.vhdx dyn.vhdx log $((1 << 50))
bad_case "log descriptor at 1 PiB" log-pib.vhdx 1 "log" "log"
# 1 TiB and 100 TiB are absurd too for a 10 MiB file whose log entry says
# LastFileOffset = 10 MiB ("a file size that all allocated file structures
# fit into", MS-VHDX 2.3.1.1), but they are under the replay's fixed 128 TiB
# bound.  Not through bad_case: a write that wrongly succeeds makes a huge
# sparse file that md5sum cannot hash, so sizes are compared first.
for far in $((1 << 40)) $((100 << 40)); do
	name="log descriptor at $((far >> 40)) TiB (past the entry's LastFileOffset)"
	(
		rm -f log-far-t.vhdx
		cp dyn.vhdx log-far-t.vhdx
		"$PATCH" log-far-t.vhdx log $far || die "vhdxpatch failed"
		before=$(sum log-far-t.vhdx)
		size0=$(stat -c %s log-far-t.vhdx)
		probs=()
		$VHDTOOL info log-far-t.vhdx >/dev/null 2>info.err && probs+=("info exit 0")
		$VHDTOOL check log-far-t.vhdx >check.out 2>&1
		rc=$?
		[ $rc -eq 1 ] || probs+=("check exit $rc ($(tr '\n' ' ' <check.out))")
		[ "$(sum log-far-t.vhdx)" = "$before" ] || probs+=("read-only opens changed the file")
		head -c 512 /dev/urandom >sector.bin
		if $VHDTOOL write log-far-t.vhdx sector.bin >/dev/null 2>write.err; then
			probs+=("write exit 0")
		else
			[ "$(wc -l <write.err)" -eq 1 ] && grep -q 'log-far-t.vhdx' write.err ||
				probs+=("write error is not one line naming the file: '$(tr '\n' ' ' <write.err)'")
		fi
		size1=$(stat -c %s log-far-t.vhdx)
		if [ "$size1" != "$size0" ]; then
			probs+=("the write grew the file from $size0 to $size1 bytes")
		elif [ "$(sum log-far-t.vhdx)" != "$before" ]; then
			probs+=("the failed write changed the file")
		fi
		rm -f log-far-t.vhdx
		[ ${#probs[@]} -eq 0 ] || die "$name: $(printf '%s; ' "${probs[@]}")"
		echo "ok: $name"
	) || failed+=("$name")
done
# Control: a log entry that does replay -- a new page for the data of block 0
# (file offset of payload block 0 + 8 KiB).  Read-only opens see it and
# change nothing; a read-write open applies it and clears the log.
(
	name="a valid log replays"
	off0=$("$PATCH" dyn.vhdx bat 0 | cut -d' ' -f2)
	head -c 4096 /dev/urandom >page.bin
	cp dyn.vhdx log-ok.vhdx
	"$PATCH" log-ok.vhdx log $((off0 + 8192)) page.bin || die "vhdxpatch failed"
	cp src.raw log-ok.raw
	dd if=page.bin of=log-ok.raw bs=4096 seek=2 conv=notrunc status=none
	before=$(sum log-ok.vhdx)
	$VHDTOOL convert -q log-ok.vhdx out.img || die "$name: convert exit $?"
	cmp log-ok.raw out.img || die "$name: a read-only open does not show the replayed page"
	rm -f out.img
	$VHDTOOL check log-ok.vhdx >check.out 2>&1 || die "$name: check exit $?: $(cat check.out)"
	[ "$(sum log-ok.vhdx)" = "$before" ] || die "$name: read-only opens wrote the file"
	head -c 512 /dev/urandom >s.bin
	$VHDTOOL write --offset $((5 << 20)) log-ok.vhdx s.bin >/dev/null || die "$name: write exit $?"
	dd if=s.bin of=log-ok.raw bs=512 seek=$((5 << 11)) conv=notrunc status=none
	[ "$("$PATCH" log-ok.vhdx header current log_guid)" = "{00000000-0000-0000-0000-000000000000}" ] ||
		die "$name: the log is still named after a read-write session"
	$VHDTOOL convert -q log-ok.vhdx out.img && cmp log-ok.raw out.img || die "$name: content after replay differs"
	rm -f out.img
	echo "ok: $name"
) || failed+=("a valid log replays")

# ---- differencing ----
# Three separate chains, each made by its own snapshot (a copied folder would
# keep absolute_win32_path pointing at the original parent, which the
# resolver rightly accepts when its DataWriteGuid matches).
head -c 3000 /dev/urandom >c.bin
cp src.raw chain.raw
dd if=c.bin of=chain.raw bs=1M seek=5000 oflag=seek_bytes conv=notrunc status=none
for c in chain chain-changed chain-missing; do
	mkdir $c
	cp dyn.vhdx $c/parent.vhdx
	$VHDTOOL snapshot -q $c/parent.vhdx $c/child.vhdx || die "snapshot in $c failed"
	$VHDTOOL write --offset 5000 $c/child.vhdx c.bin >/dev/null || die "write to $c/child.vhdx failed"
done
good_case "control: the chain reads" chain/child.vhdx chain.raw 0
head -c 512 /dev/urandom >s.bin
$VHDTOOL write --offset 0 chain-changed/parent.vhdx s.bin >/dev/null || die "write to the parent failed"
bad_case "parent written after the snapshot (DataWriteGuid changed)" chain-changed/child.vhdx 1 \
	"parent.*changed" "parent" "changed"
rm chain-missing/parent.vhdx
bad_case "missing parent" chain-missing/child.vhdx 1 "parent.*not found" "parent" "not found"
# The parent named only by its linkage: a parent whose linkage is garbage.
mk chain-badlink.vhdx chain/child.vhdx locator parent_linkage "{not-a-guid}"
mv chain-badlink.vhdx chain/badlink.vhdx
bad_case "parent_linkage that is not a GUID" chain/badlink.vhdx 1 "parent_linkage" "parent_linkage"

# ---- not a VHDX ----
cp dyn.vhdx nosig.vhdx
printf 'vhdxfilX' | dd of=nosig.vhdx conv=notrunc status=none
(
	expect_fail $VHDTOOL convert -q -f vhdx nosig.vhdx out.img
	echo "$ERR" | grep -q 'nosig.vhdx' && echo "$ERR" | grep -qi 'vhdxfile\|not a VHDX' ||
		die "convert -f vhdx of a signature-less file: message lacks the cause: $ERR"
	[ ! -e out.img ] || die "failed convert left out.img"
	echo "ok: no file identifier, forced VHDX"
) || failed+=("no file identifier, forced VHDX")

finish
