#!/usr/bin/env bash
# test-maint-repair.sh -- vhdtool repair on damaged copies of a good image
# (tests/helpers/vhdpatch, vhdxpatch): --dry-run lists the change and leaves
# the file as it was; repair makes it; then vhdtool check and qemu-img check
# (VHDX) pass and the content equals the raw mirror (vhdtool compare,
# qemu-img compare) except for blocks repair names as lost, which read as
# zeros.  Damage repair cannot undo fails in one line naming the file, and
# changes nothing.
. "$TOP/tests/functions.sh"
requires qemu-img
P=$TOP/tests/helpers/vhdpatch
X=$TOP/tests/helpers/vhdxpatch
[ -x "$P" ] && [ -x "$X" ] || skip "tests/helpers/vhdpatch or vhdxpatch is not built"

mkrandom src.raw 4
$VHDTOOL convert -q -O vhd --block-size 512K src.raw dyn.vhd || die "convert failed"
$VHDTOOL convert -q -O vhdx src.raw dyn.vhdx || die "convert failed"
fs=$(stat -c %s dyn.vhd)

# case NAME FILE WANT_LINE [LOST_KIB_FROM LOST_KIB]: FILE is damaged; the
# plan must hold WANT_LINE; afterwards it is clean and reads as src.raw
# (with LOST_KIB zeroed at LOST_KIB_FROM).
case_() {
	local name=$1 f=$2 want=$3 qf
	qf=$([ "${f##*.}" = vhd ] && echo vpc || echo vhdx)
	cp src.raw want.raw
	[ $# -lt 5 ] || dd if=/dev/zero of=want.raw bs=1K seek="$4" count="$5" conv=notrunc status=none
	s=$(sum "$f")
	$VHDTOOL repair --dry-run "$f" >plan.out || die "$name: dry run failed"
	grep -qiE "$want" plan.out || die "$name: the plan lacks '$want': $(cat plan.out)"
	[ "$(sum "$f")" = "$s" ] || die "$name: --dry-run changed $f"
	$VHDTOOL repair "$f" >done.out || die "$name: repair failed: $(cat done.out)"
	diff <(grep -v 'change(s)' plan.out) <(grep -v 'change(s)' done.out) ||
		die "$name: repair did other changes than it planned"
	$VHDTOOL check -q "$f" || die "$name: not clean after repair: $($VHDTOOL check "$f")"
	[ "$qf" = vpc ] || qemu-img check -q -f vhdx "$f" || die "$name: qemu-img check failed"
	$VHDTOOL compare want.raw "$f" >/dev/null || die "$name: content differs after repair"
	qemu-img compare -q -f raw -F $qf want.raw "$f" || die "$name: qemu-img compare differs"
	$VHDTOOL repair "$f" | grep -q "nothing to repair" || die "$name: a second repair found more"
	echo "ok: $name"
}

cp dyn.vhd past.vhd; $P past.vhd bat 2 $((fs / 512))
case_ "VHD BAT entry past EOF" past.vhd "clear BAT entry 2 .*past the end.*1048576-1572863" 1024 512
# convert's threads allocate blocks in any order: aim another entry one
# sector into the block that lies first in the file, so it overlaps it and
# ends inside the file whatever the order was.
emin= owner=
for b in 0 1 6 7; do
	e=$($P dyn.vhd bat $b)
	[ "$e" != 4294967295 ] || die "block $b of dyn.vhd is not allocated"
	if [ -z "$emin" ] || [ "$e" -lt "$emin" ]; then emin=$e owner=$b; fi
done
t=1; [ "$owner" != 1 ] || t=0
cp dyn.vhd overlap.vhd; $P overlap.vhd bat $t $((emin + 1))
case_ "VHD BAT entry overlapping a block" overlap.vhd "clear BAT entry $t .*overlapping" $((t * 512)) 512
cp dyn.vhd eof.vhd; $P --keep-checksum eof.vhd footer timestamp 5
case_ "VHD footer at EOF damaged" eof.vhd "footer at the end of the file .* from the backup copy"
cp dyn.vhd cut.vhd; truncate -s $((fs - 512)) cut.vhd
case_ "VHD footer at EOF missing" cut.vhd "footer at the end of the file .* from the backup copy"
cp dyn.vhd backup.vhd; $P --copy backup --keep-checksum backup.vhd footer timestamp 5
case_ "VHD backup footer damaged" backup.vhd "backup footer at offset 0 from the footer at the end"
cp dyn.vhd hdr.vhd; $P --keep-checksum hdr.vhd header parent_timestamp 7
case_ "VHD header checksum" hdr.vhd "dynamic header with its checksum"
cp dyn.vhd leak.vhd; truncate -s $((fs - 512 + 1048576)) leak.vhd; dd if=dyn.vhd of=leak.vhd bs=512 skip=$((fs / 512 - 1)) seek=$(((fs + 1048576) / 512 - 1)) conv=notrunc status=none
case_ "VHD unreferenced space before the footer" leak.vhd "give back 1048576 unreferenced bytes"

for h in 1 2; do
	cp dyn.vhdx h$h.vhdx; $X h$h.vhdx header $h corrupt
	case_ "VHDX header $h damaged" h$h.vhdx "rewrite header $h from header $((3 - h))"
	cp dyn.vhdx r$h.vhdx; $X r$h.vhdx region $h corrupt
	case_ "VHDX region table $h damaged" r$h.vhdx "rewrite region table $h from its intact copy $((3 - h))"
done
cp dyn.vhdx bat.vhdx; $X bat.vhdx bat 0 6 $(( $(stat -c %s dyn.vhdx) + 4194304 ))
case_ "VHDX BAT entry outside the file" bat.vhdx "clear BAT entry 0 .*outside the data area" 0 4096

# two VHDX entries on one block (1 MiB blocks: src.raw has data in blocks
# 0 and 3): opening refuses it; repair keeps block 0 and clears entry 3
$VHDTOOL convert -q -O vhdx --block-size 1M src.raw small.vhdx || die "convert failed"
read -r s0 o0 < <($X small.vhdx bat 0)
read -r s3 o3 < <($X small.vhdx bat 3)
[ "$s0" = 6 ] && [ "$s3" = 6 ] || die "blocks 0 and 3 of small.vhdx are not both present"
cp small.vhdx ov.vhdx; $X ov.vhdx bat 3 6 "$o0"
expect_fail $VHDTOOL info ov.vhdx
echo "$ERR" | grep -q "ov.vhdx.*BAT entry 3 .*overlaps BAT entry 0" ||
	die "overlapping VHDX blocks: unclear refusal: $ERR"
case_ "VHDX BAT entry overlapping a block" ov.vhdx \
	"clear BAT entry 3 .*overlapping another block.*3145728-4194303" 3072 1024
[ "$($X ov.vhdx bat 0)" = "6 $o0" ] || die "repair changed the entry of the block it kept"

$VHDTOOL repair dyn.vhd | grep -q "nothing to repair" || die "a clean image needs repair?"

# Beyond repair: both footers bad; not an image; missing.
cp dyn.vhd both.vhd
$P --copy both --keep-checksum both.vhd footer timestamp 5
for f in both.vhd src.raw missing.vhd; do
	s=$(sum $f 2>/dev/null)
	expect_fail $VHDTOOL repair $f
	echo "$ERR" | grep -qF "$f" || die "repair $f: message does not name the file: $ERR"
	[ "$(sum $f 2>/dev/null)" = "$s" ] || die "repair $f changed it"
done
echo "all repair cases passed"
