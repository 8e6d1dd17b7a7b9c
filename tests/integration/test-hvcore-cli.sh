#!/usr/bin/env bash
# test-hvcore-cli.sh -- hvcore's command line and its failures: bad
# arguments (exit 2), a missing, garbage, truncated or non-PVH kernel, a
# missing, corrupt or unusable disk (exit 1) each give exactly one line on
# stderr naming the cause (and the file), and never a crash.  Then two tiny
# guests built here with the assembler: one prints on COM1 and resets
# through the i8042 (exit 0, output seen, first serial byte within 50 ms;
# also with a loop device as its disk, root only), one triple-faults (exit
# 1, the line names the exit and RIP).
. "$TOP/tests/functions.sh"

HVCORE=$TOP/hvcore/hvcore
[ -x "$HVCORE" ] || die "hvcore is not built"

# Run a command, keeping its exit status in ./rc (expect_fail hides it).
rc_of() { "$@"; local r=$?; echo "$r" >"$T/rc"; return "$r"; }
# fails WANT_RC WORD CMD...: one line on stderr containing WORD, exit WANT_RC.
fails() {
	local want=$1 word=$2
	shift 2
	expect_fail rc_of "$@"
	[ "$(cat rc)" -eq "$want" ] || die "exit $(cat rc), want $want: $*"
	case $ERR in *"$word"*) ;; *) die "message does not name '$word': $ERR" ;; esac
	case $ERR in hvcore:*) ;; *) die "message does not start with 'hvcore:': $ERR" ;; esac
}

# --- usage ---
"$HVCORE" --help >help.out || die "hvcore --help exited $?"
grep -q '^usage: hvcore run --kernel' help.out || die "--help: $(cat help.out)"
"$HVCORE" run --help >help2.out || die "hvcore run --help exited $?"
"$HVCORE" --version | grep -q '^hvcore [0-9]' || die "--version"
fails 2 command "$HVCORE"
fails 2 frobnicate "$HVCORE" frobnicate
fails 2 --kernel "$HVCORE" run
fails 2 --bogus "$HVCORE" run --kernel k --bogus
fails 2 --mem "$HVCORE" run --kernel k --mem 10Q
fails 2 --mem "$HVCORE" run --kernel k --mem 1M
fails 2 --cpus "$HVCORE" run --kernel k --cpus 0
fails 2 --cpus "$HVCORE" run --kernel k --cpus 99
fails 2 --cpus "$HVCORE" run --kernel k --cpus 1.5
fails 2 --timeout "$HVCORE" run --kernel k --timeout -3
fails 2 extra "$HVCORE" run --kernel k extra
fails 2 --disk "$HVCORE" run --kernel k --disk ,ro
args=()
for i in $(seq 32); do args+=(--disk "d$i.img"); done
fails 2 "too many" "$HVCORE" run --kernel k "${args[@]}"

[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not usable (usage checks passed)"

# --- kernels ---
fails 1 missing-kernel "$HVCORE" run --kernel missing-kernel
head -c 4096 /dev/urandom >garbage.bin
fails 1 garbage.bin "$HVCORE" run --kernel garbage.bin
fails 1 "not a regular file" "$HVCORE" run --kernel /tmp
cp /bin/true notpvh.elf
fails 1 "notpvh.elf: ELF file without a PVH entry note" "$HVCORE" run --kernel notpvh.elf
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)
if [ -n "$kernel" ]; then
	head -c 2000 "$kernel" >trunc.bz
	fails 1 trunc.bz "$HVCORE" run --kernel trunc.bz
fi

# --- guests (need binutils' as and ld) ---
requires as ld
guest() {	# guest NAME: assemble NAME.S into a PVH ELF at 1 MiB
	as --32 "$1.S" -o "$1.o" && ld -N -m elf_i386 -Ttext=0x100000 -o "$1.elf" "$1.o" 2>/dev/null ||
		die "cannot build the $1 guest"
}
note='	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.long _start'
cat >hello.S <<EOF
	.code32
	.globl _start
_start:	mov \$0x3f8, %dx
	mov \$msg, %esi
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	mov \$0xfe, %al
	out %al, \$0x64		# i8042 reset
	hlt
msg:	.asciz "hello from hvcore\n"
$note
EOF
cat >fault.S <<EOF
	.code32
	.globl _start
_start:	lidt idt
	ljmp \$0x50, \$0		# #GP, no IDT: triple fault
idt:	.word 0
	.long 0
$note
EOF
guest hello
guest fault

# --- disks ---
fails 1 nothere.vhd "$HVCORE" run --kernel hello.elf --disk nothere.vhd
fails 1 "$T" "$HVCORE" run --kernel hello.elf --disk "$T"
$VHDTOOL create -q --size 1M bad.vhd || die "vhdtool create"
size=$(stat -c %s bad.vhd)
printf 'garbage-garbage-' | dd of=bad.vhd bs=1 seek=$((size - 512)) conv=notrunc status=none
fails 1 bad.vhd "$HVCORE" run --kernel hello.elf --disk bad.vhd
$VHDTOOL create -q --size 1M good.vhd || die "vhdtool create"

# --- a guest that resets: exit 0, output, first byte fast ---
truncate -s 4M disk.img
"$HVCORE" run --kernel hello.elf --disk disk.img --disk good.vhd,ro --cpus 4 \
	--console out.txt --stats 2>stats.txt || die "hello guest: exit $? ($(cat stats.txt))"
grep -qx 'hello from hvcore' out.txt || die "hello guest: output '$(cat out.txt)'"
ms=$(sed -n 's/.*first serial byte after \([0-9.]*\) ms/\1/p' stats.txt)
echo "first serial byte after $ms ms"
awk -v ms="$ms" 'BEGIN { exit !(ms > 0 && ms <= 50) }' || die "first serial byte after $ms ms (> 50)"
"$HVCORE" run --kernel hello.elf >stdout.txt 2>&1 </dev/null || die "console stdio: exit $?"
grep -qx 'hello from hvcore' stdout.txt || die "console stdio: '$(cat stdout.txt)'"

# --- a host block device (a loop device) as a disk, and the same device
# twice (the second open is refused: it is held exclusively) ---
if [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null; then
	truncate -s 8M loop.img
	loop=$(losetup -f --show loop.img 2>/dev/null) || loop=
	if [ -n "$loop" ]; then
		trap 'losetup -d "$loop" 2>/dev/null; rm -rf "$T"' EXIT
		"$HVCORE" run --kernel hello.elf --disk "$loop" --console loop.out ||
			die "--disk $loop: exit $?"
		grep -qx 'hello from hvcore' loop.out || die "--disk $loop: output '$(cat loop.out)'"
		fails 1 "$loop" "$HVCORE" run --kernel hello.elf --disk "$loop" --disk "$loop"
		losetup -d "$loop"
		trap 'rm -rf "$T"' EXIT
		echo "loop device $loop ok"
	fi
fi

# --- a guest that triple-faults: exit 1, one line with the exit and RIP ---
fails 1 "RIP 0x" "$HVCORE" run --kernel fault.elf --timeout 20
case $ERR in *"triple fault"*|*KVM_EXIT*) ;; *) die "fault guest: $ERR" ;; esac
echo "all CLI checks passed"
