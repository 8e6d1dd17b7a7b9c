#!/usr/bin/env bash
# test-bad-footer.sh -- damaged VHD footers (DESIGN "Bad input"): wrong
# cookie, wrong version, footer checksum mismatch with a good and with a bad
# backup copy, unknown disk type, a size that is not whole sectors.  Each is
# refused with one line naming the file and the cause; check reports it as
# damage (exit 1); nothing changes.  And the one footer oddity that is VALID:
# the 511-byte footer of Virtual PC before 2004 (vhd-facts 1.1) -- a file cut
# by one byte at the end still opens, reads the same data and can be written.
# A damaged backup copy alone does not stop reads, but check reports it.
. "$TOP/tests/functions.sh"
PATCH=$TOP/tests/helpers/vhdpatch
[ -x "$PATCH" ] || skip "tests/helpers/vhdpatch is not built (make tests/helpers/vhdpatch)"

. "$TOP/tests/bad_case.sh"

truncate -s 4M src.raw
dd if=/dev/urandom of=src.raw bs=1k count=700 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=1k seek=3000 count=1096 conv=notrunc status=none
$VHDTOOL convert -q -O vhd --type dynamic --block-size 512K src.raw dyn.vhd || die "convert to dynamic failed"
$VHDTOOL convert -q -O vhd --type fixed src.raw fixed.vhd || die "convert to fixed failed"
$VHDTOOL check -q dyn.vhd && $VHDTOOL check -q fixed.vhd || die "fresh images do not check clean"

# mk NAME SRC PATCH-ARGS...: NAME is a copy of SRC with vhdpatch applied.
mk() {
	local name=$1 src=$2
	shift 2
	cp "$src" "$name"
	"$PATCH" "$@" || die "vhdpatch $* failed"
}

# Wrong cookie in the footer at EOF (the backup copy at offset 0 is intact).
mk cookie.vhd dyn.vhd cookie.vhd footer cookie conectiX
bad_case "wrong cookie at EOF, dynamic" cookie.vhd 1 "footer" "footer"

# No cookie anywhere: without -f the file is raw data (format comes from the
# content), but read as a VHD it is refused.
mk nocookie.vhd fixed.vhd nocookie.vhd footer cookie xxxxxxxx
(
	expect_fail $VHDTOOL convert -q -f vhd nocookie.vhd out.img
	echo "$ERR" | grep -q 'nocookie.vhd' && echo "$ERR" | grep -qi 'not a VHD\|conectix\|cookie' ||
		die "convert -f vhd of a cookie-less file: message lacks the cause: $ERR"
	[ ! -e out.img ] || die "failed convert left out.img"
	echo "ok: no cookie, forced VHD"
) || failed+=("no cookie, forced VHD")

# Wrong version (checksum kept valid, so only the version is wrong).
mk version-dyn.vhd dyn.vhd --copy both version-dyn.vhd footer version 0x00020000
bad_case "wrong version, dynamic" version-dyn.vhd 1 "version" "version"
mk version-fixed.vhd fixed.vhd version-fixed.vhd footer version 0x00020000
bad_case "wrong version, fixed" version-fixed.vhd 1 "version" "version"

# Checksum mismatch: a field changed, the checksum left stale.
mk csum-good-backup.vhd dyn.vhd --keep-checksum csum-good-backup.vhd footer timestamp 12345
bad_case "checksum mismatch, good backup" csum-good-backup.vhd 1 "checksum" "checksum" "backup"
mk csum-bad-backup.vhd dyn.vhd --keep-checksum --copy both csum-bad-backup.vhd footer timestamp 12345
bad_case "checksum mismatch, bad backup" csum-bad-backup.vhd 1 "checksum" "checksum" "backup"
mk csum-fixed.vhd fixed.vhd --keep-checksum csum-fixed.vhd footer reserved 1
bad_case "checksum mismatch, fixed" csum-fixed.vhd 1 "checksum" "checksum"
# Only a stale checksum, nothing else changed: a flipped checksum bit.
mk csum-only.vhd dyn.vhd --copy both csum-only.vhd footer checksum $(( $("$PATCH" dyn.vhd footer checksum) ^ 1 ))
bad_case "checksum field corrupted in both copies" csum-only.vhd 1 "checksum" "checksum"

# Unknown (deprecated) disk type 5 and a size that is not whole sectors.
mk type5.vhd dyn.vhd --copy both type5.vhd footer disk_type 5
bad_case "disk type 5" type5.vhd 1 "type" "disk type"
mk oddsize.vhd fixed.vhd oddsize.vhd footer current_size 4194000
bad_case "size not a multiple of 512" oddsize.vhd 1 "512" "512"

# Only the backup copy at offset 0 is damaged: the image opens (the footer at
# EOF is the one in use), but check reports the damaged backup (exit 1).
(
	cp dyn.vhd backup-bad.vhd
	"$PATCH" --keep-checksum --copy backup backup-bad.vhd footer timestamp 99 || die "vhdpatch failed"
	before=$(sum backup-bad.vhd)
	$VHDTOOL convert -q backup-bad.vhd out.img && cmp src.raw out.img || die "image with a bad backup footer does not read"
	rm -f out.img
	$VHDTOOL check backup-bad.vhd >check.out 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && grep -qi "^error:.*backup" check.out || die "bad backup footer: check exit $rc: $(cat check.out)"
	[ "$(sum backup-bad.vhd)" = "$before" ] || die "backup-bad.vhd changed"
	echo "ok: damaged backup footer reported by check"
) || failed+=("damaged backup footer")

# VALID: the 511-byte footer.  Cut the last (reserved, zero) byte.
for kind in dyn fixed; do
	(
		f=short-$kind.vhd
		cp $kind.vhd "$f"
		truncate -s -1 "$f"
		before=$(sum "$f")
		$VHDTOOL info --json "$f" >info.json 2>info.err || die "511-byte footer ($kind): info exit $?: $(cat info.err)"
		grep -q '"virtual_size": 4194304' info.json || die "511-byte footer ($kind): wrong size: $(cat info.json)"
		grep -q "\"uuid\": \"$("$PATCH" $kind.vhd footer uuid)\"" info.json ||
			die "511-byte footer ($kind): wrong uuid: $(cat info.json)"
		$VHDTOOL convert -q "$f" out.img || die "511-byte footer ($kind): convert exit $?"
		cmp src.raw out.img || die "511-byte footer ($kind): content differs"
		rm -f out.img
		$VHDTOOL check "$f" >check.out 2>&1 || die "511-byte footer ($kind): check exit $?: $(cat check.out)"
		[ "$(sum "$f")" = "$before" ] || die "511-byte footer ($kind): file changed"
		echo "ok: 511-byte footer ($kind) opens and reads the same data"
		# It can also be written: the data lands, the image stays valid.
		head -c 700000 /dev/urandom >patch.bin
		$VHDTOOL write --offset 1000000 "$f" patch.bin || die "511-byte footer ($kind): write exit $?"
		cp src.raw want.raw
		dd if=patch.bin of=want.raw bs=700000 count=1 seek=1000000 oflag=seek_bytes conv=notrunc status=none
		$VHDTOOL convert -q "$f" out.img && cmp want.raw out.img || die "511-byte footer ($kind): content after a write differs"
		$VHDTOOL check "$f" >check.out 2>&1 || die "511-byte footer ($kind): check after a write: $(cat check.out)"
		rm -f out.img want.raw patch.bin
		echo "ok: 511-byte footer ($kind) can be written"
	) || failed+=("511-byte footer ($kind)")
done

finish
