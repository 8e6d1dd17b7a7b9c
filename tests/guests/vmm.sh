# shellcheck shell=bash
# vmm.sh -- sourced (after tests/functions.sh) by the integration tests
# that boot tests/guests/blkguest.elf.
#
#   guest_requires          skip unless the guest, blkexpect and a VMM are
#                           usable; sets GUEST_VMM, GUEST_ELF, BLKEXPECT
#   guest_run CMDLINE CONSOLE TIMEOUT DISK...
#                           boots the guest; sets GUEST_RC (the VMM's exit
#                           status).  DISK is PATH[,ro][,lbs=4096]: ro is
#                           passed on; lbs only tells QEMU the logical block
#                           size (hvcore takes it from the image).
#   guest_verdict CONSOLE   dies unless the VMM exited 0 on its own and the
#                           guest printed "GUEST RESULT: PASS"
#   guest_disk_line CONSOLE N   the guest's "GUEST DISK N ..." line
#   guest_expect [--bad] CONSOLE N INITIAL.raw OUT.raw
#                           OUT.raw = INITIAL.raw plus what the guest did to
#                           disk N (tests/guests/blkexpect)
#
# The VMM is hvcore (hvcore/hvcore run --kernel ... --disk ... --console ...
# --timeout ...), or QEMU with GUEST_VMM=qemu -- for checking the guest
# itself.  QEMU gets raw files and block devices directly and VHD/VHDX
# images through nbdkit with our plugin (QEMU's vpc cannot do differencing
# chains), boots the guest through SeaBIOS's PVH loader (-kernel), and
# exits on the guest's i8042 reset with -no-reboot.
GUEST_ELF=$TOP/tests/guests/blkguest.elf
BLKEXPECT=$TOP/tests/guests/blkexpect
GUEST_VMM=${GUEST_VMM:-hvcore}
HVCORE=${HVCORE:-$TOP/hvcore/hvcore}
GUEST_NBDKIT_PIDS=()

guest_requires() {
	[ -f "$GUEST_ELF" ] || skip "tests/guests/blkguest.elf is not built (make)"
	[ -x "$BLKEXPECT" ] || skip "tests/guests/blkexpect is not built (make)"
	case $GUEST_VMM in
	hvcore)
		[ -x "$HVCORE" ] ||
			skip "hvcore/hvcore is not built (the VMM comes with the hvcore branch; GUEST_VMM=qemu runs the guest under QEMU)"
		{ [ -r /dev/kvm ] && [ -w /dev/kvm ]; } || skip "/dev/kvm is not usable"
		;;
	qemu)
		requires qemu-system-x86_64
		;;
	*) die "GUEST_VMM=$GUEST_VMM: hvcore or qemu" ;;
	esac
	echo "VMM: $GUEST_VMM"
}

# The TSC frequency the guest needs for timeouts and IOPS.
guest_tsc_khz() {
	"$BLKEXPECT" tsc-khz
}

# Stops the nbdkit servers of a QEMU run and waits until they have closed
# (and so flushed) their images.
guest_stop_nbdkit() {
	local pid
	for pid in "${GUEST_NBDKIT_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	GUEST_NBDKIT_PIDS=()
}

# Appends QEMU's -drive and -device for disk I (PATH, RO, LBS) to QEMU_ARGS;
# VHD/VHDX go through nbdkit with our plugin.
qemu_disk() {
	local i=$1 path=$2 ro=$3 lbs=$4 file sock dev
	case $path in
	*.vhd|*.vhdx)
		sock=$T/nbd$i.sock
		# In the foreground, as our child: $! is its pid, and wait works.
		nbdkit -f ${ro:+-r} -U "$sock" "$PLUGIN" file="$path" 2>"$T/nbd$i.err" &
		GUEST_NBDKIT_PIDS+=($!)
		for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
		[ -S "$sock" ] || die "nbdkit for $path did not start: $(cat "$T/nbd$i.err")"
		file="nbd+unix:///?socket=$sock"
		;;
	*) file=$path ;;
	esac
	# Slots from 00:04.0 in disk order; serial = base name, as hvcore does.
	dev="virtio-blk-pci,drive=d$i,disable-legacy=on,addr=$(printf 0x%x $((4 + i)))"
	dev="$dev,serial=$(basename "$path" | cut -c1-20)"
	dev="$dev,logical_block_size=$lbs,physical_block_size=$lbs"
	QEMU_ARGS+=(-drive "file=$file,format=raw,if=none,id=d$i${ro:+,readonly=on}" -device "$dev")
}

guest_run_qemu() {
	local cmdline=$1 console=$2 timeout=$3 i=0 spec ro lbs accel=(-accel tcg)
	shift 3
	QEMU_ARGS=()
	for spec in "$@"; do
		ro='' lbs=512
		[[ ,$spec, == *,ro,* ]] && ro=1
		[[ ,$spec, == *,lbs=4096,* ]] && lbs=4096
		[[ $spec == *.vhd,* || $spec == *.vhdx,* || $spec == *.vhd || $spec == *.vhdx ]] &&
			requires_plugin
		qemu_disk $i "${spec%%,*}" "$ro" $lbs
		i=$((i + 1))
	done
	[ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=(-accel kvm -accel tcg)
	echo "qemu-system-x86_64 ${accel[*]} -kernel $GUEST_ELF -append '$cmdline' ${QEMU_ARGS[*]}"
	timeout "$timeout" qemu-system-x86_64 -machine q35 "${accel[@]}" -cpu max -m 256 \
		-display none -monitor none -serial "file:$console" -no-reboot \
		-kernel "$GUEST_ELF" -append "$cmdline" "${QEMU_ARGS[@]}" 2>"$T/qemu.err"
	GUEST_RC=$?
	guest_stop_nbdkit
	[ -s "$T/qemu.err" ] && sed 's/^/qemu: /' "$T/qemu.err"
	return 0
}

guest_run() {
	local cmdline=$1 console=$2 timeout=$3 spec disk args=()
	shift 3
	rm -f "$console"
	if [ "$GUEST_VMM" = qemu ]; then
		guest_run_qemu "$cmdline" "$console" "$timeout" "$@"
	else
		for spec in "$@"; do
			disk=${spec%%,*}
			[[ ,$spec, == *,ro,* ]] && disk=$disk,ro
			args+=(--disk "$disk")
		done
		echo "hvcore run --kernel $GUEST_ELF --cmdline '$cmdline' ${args[*]}"
		# The outer timeout only catches an hvcore that ignores --timeout.
		timeout -k 5 $((timeout + 30)) "$HVCORE" run --kernel "$GUEST_ELF" \
			--cmdline "$cmdline" "${args[@]}" --console "$console" \
			--timeout "$timeout" >"$T/hvcore.out" 2>&1
		GUEST_RC=$?
		[ -s "$T/hvcore.out" ] && sed 's/^/hvcore: /' "$T/hvcore.out"
	fi
	echo "--- guest console ($console) ---"
	tr -d '\r' <"$console" 2>/dev/null | grep -a '^GUEST' | grep -v '^GUEST memory map'
	echo "--- end of console (VMM exit status $GUEST_RC) ---"
}

guest_verdict() {
	local console=$1 result
	[ "$GUEST_RC" -ne 124 ] || die "$GUEST_VMM timed out"
	[ "$GUEST_RC" -le 128 ] || die "$GUEST_VMM died of signal $((GUEST_RC - 128))"
	result=$(tr -d '\r' <"$console" | grep -a '^GUEST RESULT:' | tail -n1)
	[ -n "$result" ] || die "the guest printed no result ($GUEST_VMM exit $GUEST_RC)"
	[ "$result" = "GUEST RESULT: PASS" ] || die "$result"
	[ "$GUEST_RC" -eq 0 ] || die "the guest passed but $GUEST_VMM exited $GUEST_RC"
	echo "ok: $result, $GUEST_VMM exited 0"
}

guest_disk_line() {
	local line
	line=$(tr -d '\r' <"$1" | grep -a "^GUEST DISK $2 " | tail -n1)
	[ -n "$line" ] || die "the guest printed no GUEST DISK $2 line"
	echo "$line"
}

guest_expect() {
	local bad='' line
	[ "$1" = --bad ] && { bad=--bad; shift; }
	line=$(guest_disk_line "$1" "$2") || exit 1
	cp --sparse=always "$3" "$4"
	# shellcheck disable=SC2086
	"$BLKEXPECT" apply $bad "$4" $line >/dev/null || die "blkexpect failed for disk $2: $line"
}
