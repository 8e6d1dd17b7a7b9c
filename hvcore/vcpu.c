/*
 * vcpu.c -- vCPU setup (CPUID, MSRs, LAPIC, FPU, boot registers) and the
 * run loop.  Userspace exits: port I/O (vm->pio), MMIO (PCI BARs), and the
 * ends of the VM: reset/power-off (exit 0), triple fault and KVM failures
 * (exit 1, with the exit reason and RIP).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "pci.h"
#include "util.h"
#include "vcpu.h"

#define VCPU_SIGNAL SIGUSR1
#define CPUID_MAX_ENTRIES 256

/* MSRs set at reset (never 0x10a, IA32_ARCH_CAPABILITIES). */
static const uint32_t boot_msrs[] = {
	0x174, 0x175, 0x176,		/* SYSENTER_CS/ESP/EIP */
	0xc0000081, 0xc0000082,		/* STAR, LSTAR */
	0xc0000083, 0xc0000084,		/* CSTAR, SYSCALL_MASK */
	0xc0000102,			/* KERNEL_GS_BASE */
	0x10,				/* TSC */
	0x1a0,				/* MISC_ENABLE */
};
#define MSR_MISC_ENABLE_FAST_STRING 1

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpu_init_signals(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_SIGNAL, &sa, NULL);
}

static struct kvm_cpuid2 *supported_cpuid(struct vm *vm)
{
	struct kvm_cpuid2 *c;
	size_t sz = sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]);

	c = calloc(1, sz);
	if (!c)
		return NULL;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* Whether the host has hardware virtualization.  Without it, /dev/kvm is a
 * flavour (kvm_pvm) that emulates guest kernel mode, and its instruction
 * emulator lacks CMPXCHG16B: hide CX16 so that guests do not use it.  (It
 * lacks XSAVE too, but keeps CPUID's XSAVE bits set whatever we say.) */
static bool host_has_hw_virt(void)
{
	static int cached = -1;
	char line[4096];
	FILE *f;

	if (cached >= 0)
		return cached;
	cached = 1;
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return cached;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		cached = strstr(line, " vmx") || strstr(line, " svm");
		break;
	}
	fclose(f);
	return cached;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

/* Per-vCPU view of the host's supported CPUID: our APIC id, the topology
 * (ncpus cores of one package, one thread each), the hypervisor bit. */
static void filter_cpuid(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0xffff) | (id << 24) | ((ncpus & 0xff) << 16);
			e->ecx |= 1u << 31;		/* running on a hypervisor */
			if (ncpus > 1)
				e->edx |= 1u << 28;	/* HTT: ebx[23:16] valid */
			if (!host_has_hw_virt())
				e->ecx &= ~(1u << 13);	/* CX16 */
			break;
		case 4:
			e->eax = (e->eax & 0x3ffffff) | ((ncpus - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1u << 8;	/* SMT level */
			} else if (e->index == 1) {
				e->eax = bits_for(ncpus);
				e->ebx = ncpus;
				e->ecx = 2u << 8 | 1;	/* core level */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		}
	}
}

static int setup_cpuid(struct vcpu *v)
{
	static struct kvm_cpuid2 *base;
	struct kvm_cpuid2 *c;
	size_t sz;
	int rc = 0;

	if (!base)	/* vCPUs are created one after another by main */
		base = supported_cpuid(v->vm);
	if (!base)
		return hv_fail(-errno ? -errno : -ENOMEM, "KVM_GET_SUPPORTED_CPUID: %m");
	sz = sizeof(*base) + base->nent * sizeof(base->entries[0]);
	c = malloc(sz);
	if (!c)
		return hv_fail(-ENOMEM, "out of memory");
	memcpy(c, base, sz);
	filter_cpuid(c, v->id, v->vm->ncpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = hv_fail(-errno, "vcpu %u: KVM_SET_CPUID2: %m", v->id);
	free(c);
	return rc;
}

static int setup_msrs(struct vcpu *v)
{
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry e[N];
	} s;

	memset(&s, 0, sizeof(s));
	s.m.nmsrs = N;
	for (unsigned i = 0; i < N; i++) {
		s.e[i].index = boot_msrs[i];
		if (boot_msrs[i] == 0x1a0)
			s.e[i].data = MSR_MISC_ENABLE_FAST_STRING;
	}
	/* KVM stops at the first MSR it refuses; those before are set.  Not
	 * fatal: some hosts do not have every MSR. */
	if (ioctl(v->fd, KVM_SET_MSRS, &s.m) < 0)
		return hv_fail(-errno, "vcpu %u: KVM_SET_MSRS: %m", v->id);
	return 0;
}

/* LINT0 = ExtINT (the PIC), LINT1 = NMI, as firmware leaves them. */
static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state l;
	uint32_t lvt0 = 7u << 8, lvt1 = 4u << 8;

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return hv_fail(-errno, "vcpu %u: KVM_GET_LAPIC: %m", v->id);
	memcpy(&l.regs[0x350], &lvt0, 4);
	memcpy(&l.regs[0x360], &lvt1, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return hv_fail(-errno, "vcpu %u: KVM_SET_LAPIC: %m", v->id);
	return 0;
}

static int setup_fpu(struct vcpu *v)
{
	struct kvm_fpu f = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(v->fd, KVM_SET_FPU, &f) < 0)
		return hv_fail(-errno, "vcpu %u: KVM_SET_FPU: %m", v->id);
	return 0;
}

int vcpu_create(struct vm *vm, unsigned id, struct vcpu *v)
{
	int rc;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return hv_fail(-errno, "KVM_CREATE_VCPU %u: %m", id);
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return hv_fail(-errno, "vcpu %u: mmap kvm_run: %m", id);
	}
	rc = setup_cpuid(v);
	if (rc == 0)
		rc = setup_msrs(v);
	if (rc == 0)
		rc = setup_lapic(v);
	if (rc == 0)
		rc = setup_fpu(v);
	return rc;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, int long_code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = long_code ? 0 : 1, .s = 1,
		.l = long_code ? 1 : 0, .g = 1,
	};
}

int vcpu_set_boot_state(struct vcpu *v, const struct boot_state *st)
{
	struct kvm_sregs sr;
	struct kvm_regs r;
	int long_mode = st->mode == BOOT_LONG64;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return hv_fail(-errno, "KVM_GET_SREGS: %m");
	flat_segment(&sr.cs, BOOT_SEL_CODE, 0xb, long_mode);
	flat_segment(&sr.ds, BOOT_SEL_DATA, 0x3, 0);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = BOOT_SEL_TSS,
				      .type = 0xb, .present = 1 };
	sr.gdt.base = BOOT_GDT_ADDR;
	sr.gdt.limit = 5 * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	if (long_mode) {
		sr.cr0 = 0x80050033;	/* PG WP NE ET MP PE */
		sr.cr3 = st->cr3;
		sr.cr4 = 0x20;		/* PAE */
		sr.efer = 0x500;	/* LMA LME */
	} else {
		sr.cr0 = 0x11;		/* ET PE, paging off */
		sr.cr3 = sr.cr4 = 0;
		sr.efer = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
		return hv_fail(-errno, "KVM_SET_SREGS: %m");
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = st->rip;
	r.rbx = st->rbx;
	r.rsi = st->rsi;
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return hv_fail(-errno, "KVM_SET_REGS: %m");
	return 0;
}

static unsigned long long rip_of(struct vcpu *v)
{
	struct kvm_regs r;

	return ioctl(v->fd, KVM_GET_REGS, &r) == 0 ? r.rip : ~0ULL;
}

static void do_pio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
		if (!iobus_access(&v->vm->pio, run->io.port, p, run->io.size, write) && !write)
			memset(p, 0xff, run->io.size);
}

static void do_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len <= 8 ? run->mmio.len : 8;

	if (!pci_mmio(v->vm->pci, run->mmio.phys_addr, run->mmio.data, len,
		      run->mmio.is_write) && !run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
}

static void system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
	case KVM_SYSTEM_EVENT_RESET:
		vm_exit(v->vm, 0, NULL);
		break;
	default:
		vm_exit(v->vm, 1, "vcpu %u: guest crash (system event %u) at RIP 0x%llx",
			v->id, v->run->system_event.type, rip_of(v));
	}
}

/* Serve one exit.  Returns false when the vCPU must stop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		do_pio(v);
		return true;
	case KVM_EXIT_MMIO:
		do_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		vm_exit(v->vm, 0, NULL);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		system_event(v);
		return false;
	case KVM_EXIT_SHUTDOWN:
		vm_exit(v->vm, 1, "vcpu %u: triple fault (KVM_EXIT_SHUTDOWN) at RIP 0x%llx",
			v->id, rip_of(v));
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vm_exit(v->vm, 1, "vcpu %u: KVM_EXIT_FAIL_ENTRY (hardware reason 0x%llx) at RIP 0x%llx",
			v->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			rip_of(v));
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vm_exit(v->vm, 1, "vcpu %u: KVM_EXIT_INTERNAL_ERROR (suberror %u) at RIP 0x%llx",
			v->id, run->internal.suberror, rip_of(v));
		return false;
	default:
		vm_exit(v->vm, 1, "vcpu %u: unexpected KVM exit reason %u at RIP 0x%llx",
			v->id, run->exit_reason, rip_of(v));
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	while (!vm_exiting(v->vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vm_exit(v->vm, 1, "vcpu %u: KVM_RUN: %s at RIP 0x%llx",
				v->id, strerror(errno), rip_of(v));
			break;
		}
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (rc)
		return hv_fail(-rc, "vcpu %u: cannot start its thread: %s", v->id, strerror(rc));
	v->started = true;
	return 0;
}

void vcpu_stop(struct vcpu *v)
{
	if (!v->started)
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_SIGNAL);
	pthread_join(v->thread, NULL);
	v->started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
