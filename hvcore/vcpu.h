/*
 * vcpu.h -- virtual CPUs: one thread each, running KVM_RUN and serving the
 * exits that reach userspace (port I/O, MMIO) on the device handlers.
 *
 * The boot vCPU (0) starts in the state the kernel's boot protocol asks for;
 * the others start in KVM's wait-for-SIPI state and are woken by the guest
 * through the in-kernel local APIC (INIT/SIPI).
 */
#ifndef HVCORE_VCPU_H
#define HVCORE_VCPU_H

#include <pthread.h>
#include <stdbool.h>

#include "boot.h"
#include "vm.h"

struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned id;			/* also its APIC id */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/** Create vCPU @id with CPUID, MSRs, LAPIC and FPU set up. */
int vcpu_create(struct vm *vm, unsigned id, struct vcpu *v);
/** Registers of the boot vCPU. */
int vcpu_set_boot_state(struct vcpu *v, const struct boot_state *st);
int vcpu_start(struct vcpu *v);
/** Make the vCPU leave KVM_RUN (the VM is exiting) and wait for it. */
void vcpu_stop(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/** Install the signal used to kick vCPUs out of KVM_RUN.  Once, early. */
void vcpu_init_signals(void);

#endif /* HVCORE_VCPU_H */
