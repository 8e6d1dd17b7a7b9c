/* x86.h -- constants shared by boot.S and cpu.c: GDT selectors, control
 * register and EFLAGS bits, page table entry bits. */
#ifndef GUEST_X86_H
#define GUEST_X86_H

/* GDT layout (boot.S gdt); RPL 3 in the user selectors. */
#define SEL_KCODE	0x08	/* 64-bit code, DPL 0 */
#define SEL_KDATA	0x10	/* data, DPL 0 */
#define SEL_UCODE	0x1b	/* 64-bit code, DPL 3 */
#define SEL_UDATA	0x23	/* data, DPL 3 */
#define SEL_TSS		0x28	/* 64-bit TSS, 16 bytes (filled in by cpu.c) */

#define CR0_PE		0x00000001
#define CR0_WP		0x00010000
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xc0000080
#define EFER_LME	0x00000100

/* EFLAGS for the CPL3 code: IOPL 3 (port I/O allowed), IF 0, bit 1. */
#define USER_RFLAGS	0x3002

/* Page table entries: present, writable, user (U/S), 2 MiB page. */
#define PTE_P		0x001
#define PTE_W		0x002
#define PTE_U		0x004
#define PTE_PWT		0x008
#define PTE_PCD		0x010
#define PTE_PS		0x080
#define PTE_TABLE	(PTE_P | PTE_W | PTE_U)
#define PTE_2M		(PTE_P | PTE_W | PTE_U | PTE_PS)
#define PTE_2M_UC	(PTE_2M | PTE_PWT | PTE_PCD)

#define KSTACK_SIZE	16384
#define USTACK_SIZE	65536

#endif
