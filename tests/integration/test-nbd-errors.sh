#!/usr/bin/env bash
# test-nbd-errors.sh -- failures an NBD client of the vhd plugin must see,
# with the export still usable afterwards:
#  - read-only exports -- the plugin's readonly=true, `vhdtool serve
#    --readonly` (a background server with a pidfile), and nbdkit's own -r
#    (which the plugin's help names as an alternative): nbdinfo reports
#    is_read_only, a client write fails (qemu-io refuses to open for
#    writing with "Permission denied"; with libnbd's strict mode off, nbdsh
#    sends the write anyway and the server answers EPERM, which is what NBD
#    carries for EROFS/EPERM), reads still work, and neither file of the
#    chain changes (the child holds space a read-write open would reclaim,
#    so opening it for writing shows), and other readers (vhdtool info) can
#    open the image meanwhile;
#  - disk full: a 200 MiB dynamic VHD on a 20 MiB tmpfs.  Writing past the
#    space fails with ENOSPC ("No space left on device"), the server stays
#    up, the data written before still reads back (same connection, and a
#    new one), a flush succeeds; after the server stops, vhdtool check
#    finds no errors or warnings and the data is in the file; once the file
#    system has room again, a new server takes writes.
# The nbdkit -r case runs last, after the disk-full checks.
# nbdsh is optional (python3-libnbd): without it the strict-mode and errno
# checks are skipped with a note, the rest still runs.
. "$TOP/tests/functions.sh"
requires_plugin
PLUGIN=$TOP/nbd-plugin/nbdkit-vhd-plugin.so
[ -f "$PLUGIN" ] || skip "the nbdkit plugin is not built ($PLUGIN)"
requires nbdkit nbdinfo nbdcopy qemu-io
requires_root

M=$((1 << 20))
SMALL=$T/small
srv_pid=

cleanup() {
	if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
		kill "$srv_pid"
	fi
	mountpoint -q "$SMALL" && umount "$SMALL"
	return 0
}
trap 'cleanup; rm -rf "$T"' EXIT

# nbdsh runs python3 -m nbd; a python3 first in PATH (pyenv, venv) may lack
# the module while the system one has it.
# NBDSH is a command that works, or empty.
NBDSH=
if command -v nbdsh >/dev/null 2>&1; then
	if nbdsh -c pass >/dev/null 2>&1; then
		NBDSH=$(command -v nbdsh)
	elif env PATH="/usr/bin:$PATH" nbdsh -c pass >/dev/null 2>&1; then
		printf '#!/bin/sh\nPATH="/usr/bin:$PATH" exec nbdsh "$@"\n' >"$T/nbdsh"
		chmod +x "$T/nbdsh"
		NBDSH=$T/nbdsh
	fi
fi
[ -n "$NBDSH" ] || echo "note: nbdsh (python3-libnbd) is not usable: its checks are skipped"

# wait_for COND_CMD...: poll (up to 10 s) until the command succeeds.
wait_for() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# A chain with data: random base, child with one overlay.
mkrandom base.raw 16
$VHDTOOL convert -q -O vhd base.raw base.vhd || die "convert base failed"
$VHDTOOL snapshot -q base.vhd child.vhd || die "snapshot failed"
head -c 100000 /dev/urandom >patch.bin
$VHDTOOL write --offset 3000000 child.vhd patch.bin >/dev/null || die "vhdtool write failed"
# Leave unreferenced space in the child: a block written, then deallocated.
nbdkit -U - "$PLUGIN" file=child.vhd --run \
	'qemu-io -f raw "$uri" -c "write -P 0x77 8M 2M" -c "discard 8M 2M"' >discard.out 2>&1 ||
	die "writing and trimming a block failed: $(cat discard.out)"
$VHDTOOL check child.vhd >check.out 2>&1 && grep -q '^info: .*not referenced' check.out ||
	die "test bug: the child has no unreferenced space to reclaim: $(cat check.out)"
$VHDTOOL convert -q child.vhd want.raw || die "flattening failed"

# ro-checks.sh URI TAG [NBDSH]: the export is read-only and refuses writes;
# reads work (into TAG.raw); what only the caller can judge goes to
# TAG.problems.
cat >ro-checks.sh <<'EOF'
uri=$1 tag=$2 nbdsh=${3:-}
nbdinfo --is read-only "$uri" || { echo "$tag: nbdinfo says the export is writable" >&2; exit 1; }
# Reported by the caller (after it has looked at the files too).
: >$tag.problems
vhdtool info child.vhd >$tag.info 2>&1 ||
	echo "vhdtool info cannot open the image beside the read-only export: $(cat $tag.info)" >>$tag.problems
if qemu-io -f raw "$uri" -c "write -P 0x5a 0 64k" >$tag.qio 2>&1; then
	echo "$tag: qemu-io wrote to a read-only export: $(cat $tag.qio)" >&2; exit 1
fi
grep -qi 'permission denied\|read-only\|not permitted' $tag.qio ||
	{ echo "$tag: qemu-io failed without naming the cause: $(cat $tag.qio)" >&2; exit 1; }
nbdcopy "$uri" $tag.raw 2>$tag.read ||
	{ echo "$tag: copying out of the read-only export failed: $(cat $tag.read)" >&2; exit 1; }
if [ -n "$nbdsh" ]; then
	# Strict mode off: the requests reach the server, which must refuse.
	"$nbdsh" -u "$uri" -c '
import errno
h.set_strict_mode(0)
for what, call in (("write", lambda: h.pwrite(b"\x5a" * 65536, 0)),
		   ("write+fua", lambda: h.pwrite(b"\x5a" * 4096, 1 << 20, nbd.CMD_FLAG_FUA)),
		   ("zero", lambda: h.zero(1 << 20, 0)),
		   ("trim", lambda: h.trim(1 << 20, 0))):
    try:
        call()
    except nbd.Error as e:
        if e.errno not in ("EPERM", "EROFS"):
            raise SystemExit("%s on a read-only export failed with %s (%s), want EPERM/EROFS" % (what, e.errno, e.string))
        print("ok: %s refused: %s" % (what, e.string))
    else:
        raise SystemExit("%s on a read-only export succeeded" % what)
' >$tag.nbdsh 2>&1 || { echo "$tag: $(cat $tag.nbdsh)" >&2; exit 1; }
fi
exit 0
EOF

# ro_verdict TAG WHAT: the chain's files unchanged, no problem recorded.
ro_verdict() {
	local why=
	[ "$(sum base.vhd) $(sum child.vhd)" = "$sums" ] ||
		why="the chain's files changed (child now $(stat -c %s child.vhd) bytes; check: $($VHDTOOL check child.vhd | head -n 1)); "
	[ -s $1.problems ] && why="$why$(cat $1.problems)"
	[ -z "$why" ] || die "$2: $why"
}

# 1a. The plugin's readonly=true.
sums="$(sum base.vhd) $(sum child.vhd)"
nbdkit -U - "$PLUGIN" file=child.vhd readonly=true --run 'bash ro-checks.sh "$uri" ro-plugin "'"$NBDSH"'"' ||
	die "readonly=true export (see above)"
cmp want.raw ro-plugin.raw || die "the readonly=true export reads differently from the chain"
ro_verdict ro-plugin "readonly=true"
echo "ok: readonly=true refuses writes${NBDSH:+ (server answers EPERM)}"

# 1b. vhdtool serve --readonly in the background with a pidfile.
$VHDTOOL serve --readonly --socket "$T/ro.sock" --background --pidfile "$T/ro.pid" child.vhd \
	>serve.out 2>&1 || die "vhdtool serve --readonly --background failed: $(cat serve.out)"
wait_for test -s "$T/ro.pid" || die "vhdtool serve wrote no pidfile: $(cat serve.out)"
srv_pid=$(cat "$T/ro.pid")
wait_for test -S "$T/ro.sock" || die "vhdtool serve made no socket"
bash ro-checks.sh "nbd+unix:///?socket=$T/ro.sock" ro-serve "$NBDSH" ||
	die "vhdtool serve --readonly export (see above)"
cmp want.raw ro-serve.raw || die "the vhdtool serve --readonly export reads differently from the chain"
kill "$srv_pid"
wait_for eval '! kill -0 "$srv_pid" 2>/dev/null' || die "the server (pid $srv_pid) did not exit on SIGTERM"
srv_pid=
ro_verdict ro-serve "vhdtool serve --readonly"
echo "ok: vhdtool serve --readonly refuses writes"

# 2. Disk full.
mkdir -p "$SMALL"
mount -t tmpfs -o size=20m vhdkit-test "$SMALL" || skip "cannot mount a tmpfs"
$VHDTOOL create -q --size 200M "$SMALL/d.vhd" || die "create on the tmpfs failed"
cat >full.sh <<'EOF'
uri=$1 nbdsh=${2:-}
# 8 MiB fit; 64 MiB more do not.
qemu-io -f raw "$uri" -c "write -P 0x11 0 8M" >w1.out 2>&1 ||
	{ echo "the first 8 MiB were refused: $(cat w1.out)" >&2; exit 1; }
if qemu-io -f raw "$uri" -c "write -P 0x22 8M 64M" >w2.out 2>&1; then
	echo "64 MiB onto 12 MiB of free space succeeded: $(cat w2.out)" >&2; exit 1
fi
grep -q 'No space left on device' w2.out ||
	{ echo "the failed write does not say ENOSPC: $(cat w2.out)" >&2; exit 1; }
# Same connection: the error, then the old data and a flush.
qemu-io -f raw "$uri" -c "write -P 0x33 100M 4M" -c "read -P 0x11 0 8M" -c "flush" >w3.out 2>&1
grep -q 'No space left on device' w3.out ||
	{ echo "a write on a full disk does not say ENOSPC: $(cat w3.out)" >&2; exit 1; }
grep -q 'Pattern verification failed\|read failed\|flush failed' w3.out &&
	{ echo "after ENOSPC on the same connection: $(cat w3.out)" >&2; exit 1; }
if [ -n "$nbdsh" ]; then
	"$nbdsh" -u "$uri" -c '
try:
    h.pwrite(b"\x44" * (1 << 20), 150 << 20)
except nbd.Error as e:
    if e.errno != "ENOSPC":
        raise SystemExit("write on a full disk failed with %s (%s), want ENOSPC" % (e.errno, e.string))
else:
    raise SystemExit("a 1 MiB write on a full disk succeeded")
assert h.pread(8 << 20, 0) == b"\x11" * (8 << 20), "the first 8 MiB changed"
h.flush()
' >full.nbdsh 2>&1 || { echo "nbdsh: $(cat full.nbdsh)" >&2; exit 1; }
fi
# The server is still up: a new connection reads the data.
nbdinfo --size "$uri" >/dev/null || { echo "the server is gone after ENOSPC" >&2; exit 1; }
qemu-io -f raw -r "$uri" -c "read -P 0x11 0 8M" >r.out 2>&1 ||
	{ echo "reading back after ENOSPC over a new connection: $(cat r.out)" >&2; exit 1; }
exit 0
EOF
nbdkit -U - "$PLUGIN" file="$SMALL/d.vhd" --run 'bash full.sh "$uri" "'"$NBDSH"'"' 2>full.err ||
	die "disk full: $(cat full.err)"
grep -q 'No space left on device' full.err || die "the server logged no ENOSPC: $(cat full.err)"
echo "ok: ENOSPC reaches the client, the server stays up, old data reads back"

$VHDTOOL check --json "$SMALL/d.vhd" >check.json 2>&1
rc=$?
[ "$rc" -eq 0 ] && grep -q '"errors": 0,' check.json && grep -q '"warnings": 0,' check.json ||
	die "vhdtool check after the disk filled up: exit $rc: $(cat check.json)"
$VHDTOOL read --offset 0 --length 8M "$SMALL/d.vhd" >first.bin || die "vhdtool read failed"
head -c $((8 * M)) /dev/zero | tr '\0' '\021' | cmp - first.bin || die "the first 8 MiB are not in the file"
echo "ok: check after the disk filled: no errors ($(grep -c '"severity"' check.json) findings)"

# Room again: a new server takes writes, and they persist.
mount -o remount,size=300m "$SMALL" || die "cannot grow the tmpfs"
nbdkit -U - "$PLUGIN" file="$SMALL/d.vhd" --run '
	qemu-io -f raw "$uri" -c "write -P 0x55 100M 16M" -c "read -P 0x55 100M 16M" -c "read -P 0x11 0 8M"' \
	>again.out 2>&1 || die "writing after the disk has room again: $(cat again.out)"
! grep -q 'failed' again.out || die "writing after the disk has room again: $(cat again.out)"
$VHDTOOL check -q "$SMALL/d.vhd" >check2.out 2>&1 || die "check after writing again: $(cat check2.out)"
$VHDTOOL read --offset 100M --length 16M "$SMALL/d.vhd" >again.bin || die "vhdtool read failed"
head -c $((16 * M)) /dev/zero | tr '\0' '\125' | cmp - again.bin || die "the new 16 MiB are not in the file"
echo "ok: once there is room again, writes work"

# 3. nbdkit -r, without readonly=true (last: the disk-full checks run
# whatever it finds).
nbdkit -r -U - "$PLUGIN" file=child.vhd --run 'bash ro-checks.sh "$uri" ro-nbdkit "'"$NBDSH"'"' ||
	die "nbdkit -r export (see above)"
cmp want.raw ro-nbdkit.raw || die "the nbdkit -r export reads differently from the chain"
ro_verdict ro-nbdkit "nbdkit -r"
echo "ok: nbdkit -r refuses writes and leaves the files alone"

echo "NBD errors as expected"
