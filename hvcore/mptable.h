/*
 * mptable.h -- the Intel MultiProcessor Specification 1.4 tables that tell
 * a kernel without ACPI about the CPUs, the IOAPIC and the interrupt wiring.
 */
#ifndef HVCORE_MPTABLE_H
#define HVCORE_MPTABLE_H

#include "vm.h"

/* IOAPIC pin of PCI slot @slot's INTA (16..23, shared round robin). */
#define MPTABLE_PCI_PIN(slot) (16 + ((slot) - 1) % 8)

/** Write the floating pointer and configuration table at BOOT_MPTABLE:
 *  vm->ncpus processors (APIC ids 0..n-1, 0 the BSP), buses PCI (0) and
 *  ISA (1), one IOAPIC (id ncpus), ISA IRQs 0..15 (but 2) on pins 0..15, INTA of PCI slots 1..@pci_slots on
 *  MPTABLE_PCI_PIN, LINT0 ExtINT and LINT1 NMI.  0 or -E2BIG. */
int mptable_write(struct vm *vm, unsigned pci_slots);

#endif /* HVCORE_MPTABLE_H */
