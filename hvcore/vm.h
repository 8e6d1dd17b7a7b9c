/*
 * vm.h -- the virtual machine: KVM file descriptors, guest RAM, the in-kernel
 * interrupt controllers and their routing, and the exit latch every thread
 * uses to end the VM.
 *
 * Interrupt numbering (GSIs, the KVM routing table we own):
 *   0..15   ISA IRQs: PIC pin (except 2) and IOAPIC pin of the same number
 *   16..23  IOAPIC pins for PCI INTx (level, shared by several devices)
 *   24..    one MSI route per (device, MSI-X vector): VM_GSI_MSI_BASE + n
 */
#ifndef HVCORE_VM_H
#define HVCORE_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gmem.h"
#include "iobus.h"

#define VM_MAX_CPUS       16	/* the MP table must fit in 1 KiB */
#define VM_IOAPIC_PINS    24
#define VM_GSI_MSI_BASE   24
#define VM_MAX_MSI        128	/* MSI routes */

/* Guest physical layout (see docs/hvcore.md) */
#define VM_MMIO_HOLE      (3ULL << 30)	/* [3 GiB, 4 GiB): no RAM */
#define VM_PCI_MMIO_BASE  0xc0000000ULL	/* BARs are assigned from here */
#define VM_PCI_MMIO_END   0xfec00000ULL
#define VM_IOAPIC_ADDR    0xfec00000ULL
#define VM_LAPIC_ADDR     0xfee00000ULL
#define VM_IDENT_MAP_ADDR 0xfeffc000ULL	/* KVM's private pages (VMX) */
#define VM_TSS_ADDR       0xfeffd000ULL

struct vcpu;
struct pci_bus;

struct msi_route {
	uint32_t addr_lo, addr_hi, data;
	bool used;
};

struct vm {
	int kvm_fd, vm_fd;
	int run_size;			/* mmap size of struct kvm_run */
	struct gmem mem;
	uint64_t ram_size;		/* --mem */
	unsigned ncpus;
	struct vcpu *vcpus;		/* ncpus entries */
	struct iobus pio;		/* port I/O handlers (userspace) */
	struct pci_bus *pci;

	pthread_mutex_t irq_lock;	/* routing table, INTx levels */
	struct msi_route msi[VM_MAX_MSI];
	uint32_t intx_sources[VM_IOAPIC_PINS];	/* bit per asserting device */

	pthread_mutex_t exit_lock;	/* the exit latch */
	pthread_cond_t exit_cond;
	bool exiting;
	int exit_code;			/* 0 reset/power-off, 1 failure, 124 timeout */
	char exit_msg[256];		/* one line, for failures */
};

/** Open /dev/kvm, create the VM with irqchip, PIT and @ram bytes of RAM.
 *  0 or -errno (message in hv_errmsg()). */
int vm_create(struct vm *vm, uint64_t ram);
void vm_destroy(struct vm *vm);

/** End the VM with @code (first caller wins).  @fmt: one-line reason or
 *  NULL. */
void vm_exit(struct vm *vm, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool vm_exiting(struct vm *vm);

/** Pulse an edge-triggered ISA IRQ (0..15). */
void vm_irq_pulse(struct vm *vm, unsigned irq);
/** Set PCI INTx @pin (16..23) asserted or not on behalf of @source (bit
 *  0..31); the line is the OR of its sources. */
void vm_intx_set(struct vm *vm, unsigned pin, unsigned source, bool level);
/** Point MSI route @n at (addr, data); routes with used = false are
 *  dropped from the table.  Returns 0 or -errno. */
int vm_msi_route(struct vm *vm, unsigned n, uint64_t addr, uint32_t data, bool used);
/** Bind eventfd @fd to GSI @gsi (KVM_IRQFD). */
int vm_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign);
/** Writes of @len bytes to @addr (MMIO, or a port when @pio) signal @fd
 *  in the kernel (KVM_IOEVENTFD). */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int fd, bool pio,
		 bool assign);

#endif /* HVCORE_VM_H */
