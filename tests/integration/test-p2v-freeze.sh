#!/usr/bin/env bash
# P2V of a mounted ext4 on a loop device: refused without --freeze (mount
# point named); with --freeze while a writer runs, the copy is consistent
# (fsck clean, same files) and the writer goes on afterwards; a timeout or
# SIGTERM thaws and removes the output; SIGKILL of vhdtool mid-freeze is
# thawed by the guardian.
. "$TOP/tests/functions.sh"
requires_root
requires losetup mkfs.ext4 mount e2fsck timeout
LOOPS=() W=
cleanup() {
	[ -n "$W" ] && kill "$W" 2>/dev/null
	for m in r m; do mountpoint -q "$T/$m" && umount "$T/$m"; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
}
trap 'cleanup; rm -rf "$T"' EXIT
# attach VAR LOSETUP-ARGS...: sets VAR (no subshell, so cleanup sees LOOPS)
attach() {
	local var=$1 l; shift
	l=$(losetup -f --show "$@") || skip "cannot attach a loop device"
	LOOPS+=("$l"); printf -v "$var" %s "$l"
}
# Whether the filesystem takes a write within $1 tenths of a second.  A
# write to a frozen filesystem blocks uninterruptibly, so the probe runs in
# the background and is only watched (it completes after the thaw).
writable_within() {
	local p i
	( echo x >> "$T/m/probe" ) & p=$!
	for ((i = 0; i < $1; i++)); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -0 "$p" 2>/dev/null && return 1
	return 0
}

truncate -s 96M fs.img
attach L fs.img
mkfs.ext4 -q "$L"
mkdir m r
mount "$L" m || skip "cannot mount ext4 here"
cp -r "$TOP/libvhd" m/files
sync

# 1. refused while mounted, naming the mount point; nothing written
expect_fail "$VHDTOOL" p2v "$L" out.vhd
grep -q "mounted on $T/m" <<<"$ERR" || die "refusal does not name the mount point: $ERR"
[ ! -e out.vhd ] || die "refused p2v left an output"
expect_fail "$VHDTOOL" p2v --freeze "$T" "$L" out.vhd     # not its mount point
[ ! -e out.vhd ] || die "bad --freeze left an output"

# 2. frozen copy while a writer runs
( while :; do date +%s%N >> m/log.txt; done ) & W=$!
"$VHDTOOL" p2v --freeze m "$L" out.vhd || die "p2v --freeze failed"
writable_within 50 || die "filesystem still frozen after p2v"
lines=$(wc -l < m/log.txt); sleep 0.5
[ "$(wc -l < m/log.txt)" -gt "$lines" ] || die "the writer did not resume"
kill "$W"; W=
"$VHDTOOL" check out.vhd || die "p2v output does not check clean"
"$VHDTOOL" convert -q out.vhd out.img
attach L2 -r out.img
e2fsck -fn "$L2" >fsck.out 2>&1 || { cat fsck.out; die "p2v image does not fsck clean"; }
mount -o ro,noload "$L2" r
diff -r "$TOP/libvhd" r/files || die "files differ in the p2v image"
umount r

# 3. timeout: thawed, output removed, one-line error
VHDTOOL_P2V_HOLD=5 expect_fail "$VHDTOOL" p2v --freeze m --freeze-timeout 1 "$L" t.vhd
grep -q "freeze timeout" <<<"$ERR" || die "no timeout message: $ERR"
[ ! -e t.vhd ] || die "timed-out p2v left an output"
writable_within 50 || die "filesystem frozen after a timeout"

# 4. SIGTERM during the freeze: thawed and cleaned up
VHDTOOL_P2V_HOLD=30 "$VHDTOOL" p2v --freeze m "$L" s.vhd 2>term.err & P=$!
sleep 1
writable_within 5 && die "filesystem not frozen during p2v"
kill -TERM "$P"; wait "$P" && die "p2v exited 0 after SIGTERM"
grep -q interrupted term.err || die "no interruption message: $(cat term.err)"
writable_within 50 || die "filesystem frozen after SIGTERM"
[ ! -e s.vhd ] || die "interrupted p2v left an output"

# 5. SIGKILL: the guardian thaws
VHDTOOL_P2V_HOLD=30 "$VHDTOOL" p2v --freeze m "$L" k.vhd 2>/dev/null & P=$!
sleep 1
writable_within 5 && die "filesystem not frozen during p2v"
kill -KILL "$P"; wait "$P" 2>/dev/null
writable_within 50 || die "filesystem left frozen after SIGKILL"
echo "p2v freeze checks passed"
