#!/usr/bin/env bash
# test-hvcore-linux-early.sh -- the host's Debian kernel started by hvcore:
#  1. the uncompressed vmlinux (extracted from /boot/vmlinuz-*) through the
#     PVH entry prints its banner, the e820 map hvcore built (every line
#     compared with what hvcore sets for --mem 512M) and our command line
#     on COM1 (earlyprintk), well within the time bound;
#  2. the bzImage itself through the 64-bit boot protocol: its decompressor
#     reads our command line from the zero page and answers "nokaslr" on
#     COM1, which proves boot_params, the page tables and the entry.
# The VM is stopped as soon as the lines are there.  Guest kernel code is
# emulated on kvm_pvm hosts (slow): the bounds are generous, 55 s each.
. "$TOP/tests/functions.sh"

HVCORE=$TOP/hvcore/hvcore
[ -x "$HVCORE" ] || die "hvcore is not built"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not usable"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)
[ -n "$kernel" ] && [ -r "$kernel" ] || skip "no kernel in /boot"

# Extract the ELF vmlinux: find the compressed payload by its magic and
# decompress it (xz, zstd or gzip; trailing bytes are ignored).
extract_vmlinux() {
	local img=$1 out=$2 magic tool off
	for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
		tool=${magic%%:*}
		command -v "$tool" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$img" 2>/dev/null | cut -d: -f1 | head -n 4); do
			case $tool in
			xz) tail -c +$((off + 1)) "$img" | xz -dc --single-stream >"$out" 2>/dev/null ;;
			zstd) tail -c +$((off + 1)) "$img" | zstd -dc >"$out" 2>/dev/null ;;
			gzip) tail -c +$((off + 1)) "$img" | gzip -dc >"$out" 2>/dev/null ;;
			esac
			[ "$(head -c 4 "$out" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && return 0
		done
	done
	return 1
}

# wait_for FILE SECONDS PATTERN...: every pattern (grep -F) in FILE in time.
wait_for() {
	local file=$1 secs=$2 p missing
	shift 2
	for _ in $(seq $((secs * 5))); do
		missing=
		for p in "$@"; do
			grep -qF -- "$p" "$file" 2>/dev/null || { missing=$p; break; }
		done
		[ -z "$missing" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	echo "missing: $missing" >&2
	return 1
}

stop_vm() {
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# --- 1. PVH vmlinux ---
extract_vmlinux "$kernel" vmlinux || skip "cannot extract an ELF vmlinux from $kernel"
tag=hvtest$RANDOM
cmdline="earlyprintk=serial,ttyS0,115200 console=ttyS0 $tag=1"
start=$(date +%s)
"$HVCORE" run --kernel vmlinux --mem 512M --cmdline "$cmdline" --console pvh.log \
	--timeout 58 2>pvh.err &
pid=$!
if ! wait_for pvh.log 55 "Linux version" "Command line: $cmdline" \
	"BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable" \
	"BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved" \
	"BIOS-e820: [mem 0x0000000000100000-0x000000001fffffff] usable"; then
	stop_vm
	cat pvh.log pvh.err
	die "PVH: the kernel did not print its banner, e820 map and command line"
fi
secs=$(( $(date +%s) - start ))
stop_vm
[ "$(grep -c 'BIOS-e820:' pvh.log)" -eq 3 ] || { cat pvh.log; die "PVH: unexpected e820 lines"; }
grep -q 'found SMP MP-table' pvh.log || true	# printed later on slow hosts
echo "PVH: banner, e820 and command line after ${secs}s"
grep -E 'Linux version|BIOS-e820|Command line' pvh.log

# --- 2. bzImage, 64-bit boot protocol ---
"$HVCORE" run --kernel "$kernel" --mem 512M --console bz.log --timeout 58 \
	--cmdline "earlyprintk=serial,ttyS0,115200 nokaslr" 2>bz.err &
pid=$!
if ! wait_for bz.log 55 "KASLR disabled: 'nokaslr' on cmdline."; then
	stop_vm
	cat bz.log bz.err
	die "bzImage: the decompressor did not answer on COM1"
fi
stop_vm
echo "bzImage: the decompressor read our command line"
