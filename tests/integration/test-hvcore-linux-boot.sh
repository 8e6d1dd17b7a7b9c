#!/usr/bin/env bash
# test-hvcore-linux-boot.sh -- a full boot of the host's Debian kernel under
# hvcore, to a tiny initramfs whose /init (busybox) checks that the stock
# kernel found the virtio-blk disks through its own virtio_pci/virtio_blk
# modules (no special command line options), reads the GET_ID serial and a
# marker written on the host into a VHD, writes one back, and resets.
#
# Needs hardware virtualization: on hosts without VMX/SVM, /dev/kvm (kvm_pvm)
# emulates guest kernel mode and stock Linux stops at its int3 self-test, so
# the test skips there with that reason.
. "$TOP/tests/functions.sh"

HVCORE=$TOP/hvcore/hvcore
[ -x "$HVCORE" ] || die "hvcore is not built"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not usable"
grep -qwE 'vmx|svm' /proc/cpuinfo ||
	skip "no VMX/SVM on this host: /dev/kvm emulates guest kernel mode and stock Linux stops early (the early boot is test-hvcore-linux-early)"
requires busybox cpio gzip
kver=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 | sed 's|/boot/vmlinuz-||')
[ -n "$kver" ] || skip "no kernel in /boot"
moddir=/lib/modules/$kver/kernel/drivers
ls "$moddir"/virtio/virtio_pci.ko* >/dev/null 2>&1 || skip "no virtio_pci module for $kver"
busybox --list | grep -qx insmod || skip "busybox has no insmod"

# The initramfs: busybox, the virtio modules, and /init.
mkdir -p root/bin root/dev root/proc root/sys root/mod
cp "$(command -v busybox)" root/bin/busybox
for m in virtio/virtio.ko virtio/virtio_ring.ko virtio/virtio_pci_modern_dev.ko \
	 virtio/virtio_pci_legacy_dev.ko virtio/virtio_pci.ko block/virtio_blk.ko; do
	for f in "$moddir/$m"*; do
		[ -e "$f" ] || continue
		case $f in
		*.xz) xz -dc "$f" >"root/mod/$(basename "${f%.xz}")" ;;
		*.zst) zstd -qdc "$f" >"root/mod/$(basename "${f%.zst}")" ;;
		*) cp "$f" root/mod/ ;;
		esac
	done
done
cat >root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
	[ -f /mod/$m.ko ] && insmod /mod/$m.ko
done
sleep 1
echo "HVTEST disks: $(ls /sys/block | grep vd | tr '\n' ' ')"
echo "HVTEST serial: $(cat /sys/block/vda/serial 2>/dev/null)"
echo "HVTEST marker: $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 16)"
echo "guest-was-here" | dd of=/dev/vdb bs=512 conv=sync 2>/dev/null; sync
echo "HVTEST done"
reboot -f
INIT
chmod +x root/init
(cd root && find . | cpio -o -H newc 2>/dev/null | gzip) >initrd.gz

$VHDTOOL create -q --size 64M marker.vhd || die "create marker.vhd"
printf 'hvcore-marker-01' | $VHDTOOL write marker.vhd - >/dev/null || die "write marker"
$VHDTOOL create -q --size 64M --format vhdx out.vhdx 2>/dev/null ||
	$VHDTOOL create -q --size 64M out.vhd
out=$(ls out.vhd* | head -n1)

timeout 600 "$HVCORE" run --kernel "/boot/vmlinuz-$kver" --initrd initrd.gz --mem 1G --cpus 4 \
	--cmdline "console=ttyS0 panic=-1" --disk marker.vhd --disk "$out" \
	--console console.log --timeout 500 || { tail -40 console.log; die "hvcore exited $?"; }
grep -q 'HVTEST done' console.log || { tail -40 console.log; die "/init did not finish"; }
grep -q 'HVTEST disks: vda vdb' console.log || die "disks: $(grep 'HVTEST disks' console.log)"
grep -q 'HVTEST serial: marker.vhd' console.log || die "serial: $(grep 'HVTEST serial' console.log)"
grep -q 'HVTEST marker: hvcore-marker-01' console.log || die "marker: $(grep 'HVTEST marker' console.log)"
$VHDTOOL read --length 14 "$out" | grep -q 'guest-was-here' || die "the guest's write is not in $out"
$VHDTOOL check -q "$out" || die "$out does not check clean"
echo "stock kernel booted, found vda/vdb through virtio_pci, read and wrote them"
