/*
 * kvm.c -- the VM on /dev/kvm: RAM slots, in-kernel irqchip and PIT, the
 * GSI routing table (owned here, rebuilt whole on every change), irqfd and
 * ioeventfd registration, and the exit latch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "util.h"
#include "vm.h"

static int set_slot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size,
		    void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return hv_fail(-errno, "KVM_SET_USER_MEMORY_REGION: %m");
	return 0;
}

static int map_ram(struct vm *vm, uint64_t ram)
{
	void *p;
	int rc;

	p = mmap(NULL, ram, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return hv_fail(-errno, "cannot map %llu MiB of guest RAM: %m",
			       (unsigned long long)(ram >> 20));
	vm->mem.host = p;
	vm->mem.low_size = ram < GMEM_LOW_MAX ? ram : GMEM_LOW_MAX;
	vm->mem.high_size = ram - vm->mem.low_size;
	vm->ram_size = ram;
	rc = set_slot(vm, 0, 0, vm->mem.low_size, p);
	if (rc == 0 && vm->mem.high_size)
		rc = set_slot(vm, 1, GMEM_HIGH_BASE, vm->mem.high_size,
			      vm->mem.host + vm->mem.low_size);
	return rc;
}

static int create_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ VM_IDENT_MAP_ADDR }) < 0)
		return hv_fail(-errno, "KVM_SET_IDENTITY_MAP_ADDR: %m");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		return hv_fail(-errno, "KVM_SET_TSS_ADDR: %m");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return hv_fail(-errno, "KVM_CREATE_IRQCHIP: %m");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return hv_fail(-errno, "KVM_CREATE_PIT2: %m");
	return 0;
}

int vm_create(struct vm *vm, uint64_t ram)
{
	int rc;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	pthread_mutex_init(&vm->irq_lock, NULL);
	pthread_mutex_init(&vm->exit_lock, NULL);
	pthread_cond_init(&vm->exit_cond, NULL);
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return hv_fail(-errno, "/dev/kvm: %m");
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return hv_fail(-ENOTSUP, "/dev/kvm: unsupported KVM API version");
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		return hv_fail(-errno, "KVM_GET_VCPU_MMAP_SIZE: %m");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return hv_fail(-errno, "KVM_CREATE_VM: %m");
	rc = create_irqchip(vm);
	if (rc < 0)
		return rc;
	rc = map_ram(vm, ram);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&vm->irq_lock);
	rc = vm_msi_route(vm, 0, 0, 0, false);	/* our table = KVM's default */
	pthread_mutex_unlock(&vm->irq_lock);
	return rc;
}

void vm_destroy(struct vm *vm)
{
	if (vm->mem.host)
		munmap(vm->mem.host, vm->ram_size);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->mem.host = NULL;
	vm->vm_fd = vm->kvm_fd = -1;
}

void vm_exit(struct vm *vm, int code, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vm->exit_lock);
	if (!vm->exiting) {
		vm->exiting = true;
		vm->exit_code = code;
		if (fmt) {
			va_start(ap, fmt);
			vsnprintf(vm->exit_msg, sizeof(vm->exit_msg), fmt, ap);
			va_end(ap);
		}
		pthread_cond_broadcast(&vm->exit_cond);
	}
	pthread_mutex_unlock(&vm->exit_lock);
}

bool vm_exiting(struct vm *vm)
{
	return __atomic_load_n(&vm->exiting, __ATOMIC_ACQUIRE);
}

static void irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level };

	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

void vm_irq_pulse(struct vm *vm, unsigned irq)
{
	irq_line(vm, irq, 1);
	irq_line(vm, irq, 0);
}

void vm_intx_set(struct vm *vm, unsigned pin, unsigned source, bool level)
{
	uint32_t old, now;

	if (pin >= VM_IOAPIC_PINS || source >= 32)
		return;
	pthread_mutex_lock(&vm->irq_lock);
	old = vm->intx_sources[pin];
	now = level ? old | (1u << source) : old & ~(1u << source);
	vm->intx_sources[pin] = now;
	if (!old != !now)
		irq_line(vm, pin, now != 0);
	pthread_mutex_unlock(&vm->irq_lock);
}

/* The ISA part of the table, as KVM sets it up by default: GSI n goes to
 * IOAPIC pin n, and for n < 16 (but 2, the cascade) to the PIC too. */
static unsigned add_irqchip_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (unsigned gsi = 0; gsi < VM_IOAPIC_PINS; gsi++) {
		if (gsi < 16 && gsi != 2) {
			e[n].gsi = gsi;
			e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
			e[n].u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
							 : KVM_IRQCHIP_PIC_SLAVE;
			e[n].u.irqchip.pin = gsi % 8;
			n++;
		}
		e[n].gsi = gsi;
		e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e[n].u.irqchip.pin = gsi;
		n++;
	}
	return n;
}

/* Called with irq_lock held (or before any other thread exists). */
int vm_msi_route(struct vm *vm, unsigned idx, uint64_t addr, uint32_t data, bool used)
{
	enum { MAX = 2 * VM_IOAPIC_PINS + VM_MAX_MSI };
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[MAX];
	} t;
	unsigned n;

	if (idx >= VM_MAX_MSI)
		return -EINVAL;
	vm->msi[idx] = (struct msi_route){ (uint32_t)addr, (uint32_t)(addr >> 32), data, used };
	memset(&t, 0, sizeof(t));
	n = add_irqchip_routes(t.e);
	for (unsigned i = 0; i < VM_MAX_MSI; i++) {
		if (!vm->msi[i].used)
			continue;
		t.e[n].gsi = VM_GSI_MSI_BASE + i;
		t.e[n].type = KVM_IRQ_ROUTING_MSI;
		t.e[n].u.msi.address_lo = vm->msi[i].addr_lo;
		t.e[n].u.msi.address_hi = vm->msi[i].addr_hi;
		t.e[n].u.msi.data = vm->msi[i].data;
		n++;
	}
	t.r.nr = n;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, &t.r) < 0)
		return hv_fail(-errno, "KVM_SET_GSI_ROUTING: %m");
	return 0;
}

int vm_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		return hv_fail(-errno, "KVM_IRQFD (gsi %u): %m", gsi);
	return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int fd, bool pio,
		 bool assign)
{
	struct kvm_ioeventfd e = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &e) < 0)
		return hv_fail(-errno, "KVM_IOEVENTFD (0x%llx): %m", (unsigned long long)addr);
	return 0;
}
