#!/usr/bin/env bash
# test-interop-vhdiinfo.sh -- libvhdi (vhdiinfo 20210425) parses the fixed,
# dynamic and differencing images vhdtool writes: exit 0, and its disk type,
# media size and identifier match ours; for the child it shows the parent's
# identifier and file name.  Then, if vhdimount and a usable /dev/fuse are
# there, libvhdi's read-only view of our dynamic VHD equals our raw export
# (skipped with a note otherwise; the rest of the test still runs).
. "$TOP/tests/functions.sh"
requires vhdiinfo

field() {	# field NAME FILE: value of "NAME : value" in vhdiinfo output
	sed -n "s/^[[:space:]]*$1[[:space:]]*: \\(.*\\)\$/\\1/p" "$2" | head -n1
}
our() {	# our KEY FILE: a string or number of the top layer in vhdtool info --json
	$VHDTOOL info --json "$2" | sed -n "s/.*\"$1\": \"\\{0,1\\}\\([^\",]*\\)\"\\{0,1\\}[,}].*/\\1/p" | head -n1
}

mkdata() {	# mkdata FILE BYTES
	truncate -s "$2" "$1"
	dd if=/dev/urandom of="$1" bs=512 count=300 conv=notrunc status=none
	dd if=/dev/urandom of="$1" bs=512 seek=$(($2 / 1024 - 3)) count=9 conv=notrunc status=none
	dd if=/dev/urandom of="$1" bs=512 seek=$(($2 / 512 - 1)) count=1 conv=notrunc status=none
}

size=10486272	# 10 MiB + 512: not CHS-exact
mkdata src.raw $size
$VHDTOOL convert -q -O vhd --type fixed src.raw fixed.vhd || die "convert to fixed failed"
$VHDTOOL convert -q -O vhd --type dynamic --block-size 512K src.raw dyn.vhd || die "convert to dynamic failed"
$VHDTOOL snapshot -q dyn.vhd child.vhd || die "snapshot failed"

check_vhdiinfo() {	# check_vhdiinfo FILE TYPE
	local f=$1 type=$2 got
	vhdiinfo "$f" >"$f.info" 2>&1 || die "vhdiinfo $f exited $?: $(cat "$f.info")"
	got=$(field 'Disk type' "$f.info")
	[ "$got" = "$type" ] || die "$f: vhdiinfo disk type '$got', want '$type'"
	got=$(field 'Media size' "$f.info")
	case $got in *"($size bytes)"*) ;; *) die "$f: vhdiinfo media size '$got', want $size bytes" ;; esac
	got=$(field 'Identifier' "$f.info")
	[ -n "$got" ] && [ "$got" = "$(our uuid "$f")" ] ||
		die "$f: vhdiinfo identifier '$got', vhdtool uuid '$(our uuid "$f")'"
	echo "ok: vhdiinfo reads $f as $type, $size bytes, $got"
}
check_vhdiinfo fixed.vhd Fixed
check_vhdiinfo dyn.vhd Dynamic
check_vhdiinfo child.vhd Differential

got=$(field 'Parent identifier' child.vhd.info)
[ "$got" = "$(our uuid dyn.vhd)" ] || die "child: vhdiinfo parent identifier '$got', parent uuid '$(our uuid dyn.vhd)'"
[ "$(our parent_uuid child.vhd)" = "$got" ] || die "child: vhdtool parent_uuid '$(our parent_uuid child.vhd)' differs"
got=$(field 'Parent filename' child.vhd.info)
[ "$got" = "$(realpath dyn.vhd)" ] || die "child: vhdiinfo parent filename '$got', want $(realpath dyn.vhd)"
echo "ok: vhdiinfo shows the child's parent $got"

# libvhdi's data view of our dynamic disk.
if ! command -v vhdimount >/dev/null 2>&1; then
	echo "NOTE: vhdimount not installed: mount comparison skipped"
elif ! command -v fusermount >/dev/null 2>&1 || [ ! -c /dev/fuse ] || ! : 2>/dev/null </dev/fuse; then
	echo "NOTE: /dev/fuse or fusermount not usable: mount comparison skipped"
else
	mkdir mnt
	trap 'fusermount -u "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
	if ! timeout 20 vhdimount dyn.vhd mnt >mount.log 2>&1; then
		echo "NOTE: vhdimount could not mount (FUSE not usable here?): $(tail -n1 mount.log); comparison skipped"
	else
		$VHDTOOL convert -q dyn.vhd ours.img || die "convert dyn.vhd to raw failed"
		cmp src.raw ours.img || die "our raw export of dyn.vhd differs from the source"
		[ -f mnt/vhdi1 ] || die "vhdimount shows no mnt/vhdi1: $(ls mnt)"
		cmp mnt/vhdi1 ours.img || die "libvhdi's view of dyn.vhd differs from ours"
		fusermount -u mnt || die "fusermount -u failed"
		echo "ok: vhdimount view of dyn.vhd equals our raw export"
	fi
fi
echo "libvhdi agrees with us"
