/*
 * boot.h -- loading a kernel into guest RAM and the state the boot vCPU
 * starts in.
 *
 * Fixed guest-physical layout below 1 MiB (all inside e820 RAM, except the
 * MP table in the reserved [0x9fc00, 0x100000)):
 *
 *   0x000500  GDT: 0x10 code (64-bit or flat 32-bit), 0x18 flat data,
 *             0x20 32-bit TSS (base 0, limit 0x67)
 *   0x001000  PVH: struct hvm_start_info, then the memory map (<= 32 entries)
 *   0x002000  PVH: module list (initrd)
 *   0x007000  bzImage: boot_params ("zero page")
 *   0x009000  64-bit boot: PML4, PDPT, 4 page directories (identity map of
 *             the first 4 GiB with 2 MiB pages) up to 0xefff
 *   0x020000  kernel command line (<= 64 KiB)
 *   0x09fc00  MP floating pointer and configuration table (1 KiB)
 *   0x100000  bzImage protected-mode kernel
 *   ELF (PVH) segments go at their p_paddr, anywhere in low RAM at or above
 *   0xa0000 (above our structures)
 *   top of low RAM: initrd (page aligned)
 */
#ifndef HVCORE_BOOT_H
#define HVCORE_BOOT_H

#include <stdint.h>

#include "vm.h"

#define BOOT_GDT_ADDR      0x500ULL
#define BOOT_START_INFO    0x1000ULL
#define BOOT_MODLIST       0x2000ULL
#define BOOT_ZERO_PAGE     0x7000ULL
#define BOOT_PML4          0x9000ULL
#define BOOT_CMDLINE       0x20000ULL
#define BOOT_CMDLINE_MAX   0x10000ULL
#define BOOT_MPTABLE       0x9fc00ULL
#define BOOT_MPTABLE_END   0xa0000ULL	/* the last KiB of base memory */
#define BOOT_LOW_END       0xa0000ULL	/* our structures lie below */
#define BOOT_KERNEL_ADDR   0x100000ULL
#define BOOT_EBDA_END      0x100000ULL	/* end of the reserved low area */

#define BOOT_SEL_CODE 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS  0x20

enum boot_mode {
	BOOT_PROTECTED32,	/* PVH: 32-bit protected mode, paging off */
	BOOT_LONG64,		/* Linux 64-bit boot protocol */
};

/* Register state of the boot vCPU. */
struct boot_state {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rbx;		/* PVH: hvm_start_info */
	uint64_t rsi;		/* 64-bit: boot_params */
	uint64_t cr3;		/* 64-bit: PML4 */
};

struct boot_args {
	const char *kernel;	/* path */
	const char *initrd;	/* path or NULL */
	const char *cmdline;	/* never NULL */
};

/* One e820 / hvm_memmap entry. */
struct e820_entry {
	uint64_t addr, size;
	uint32_t type;		/* 1 RAM, 2 reserved */
};
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_MAX      8

/** Load the kernel (bzImage or ELF vmlinux with a PVH note, told apart by
 *  content) with initrd and command line; fill @st.  0 or -errno with a
 *  message naming the file. */
int boot_load(struct vm *vm, const struct boot_args *a, struct boot_state *st);

/* Shared by the two boot paths (boot.c). */
unsigned boot_e820(const struct vm *vm, struct e820_entry *e);
int boot_read_file(const char *path, uint8_t **buf, size_t *len);
int boot_load_initrd(struct vm *vm, const char *path, uint64_t max_end,
		     uint64_t *addr, uint64_t *size);
int boot_put_cmdline(struct vm *vm, const char *cmdline, uint64_t max);
void boot_write_gdt(struct vm *vm, int long_mode);
void boot_write_page_tables(struct vm *vm);

int boot_bzimage(struct vm *vm, const struct boot_args *a, const uint8_t *img,
		 size_t len, struct boot_state *st);
int boot_pvh(struct vm *vm, const struct boot_args *a, const uint8_t *img,
	     size_t len, struct boot_state *st);
/** Whether @img is a bzImage / an ELF64 file. */
int boot_is_bzimage(const uint8_t *img, size_t len);
int boot_is_elf(const uint8_t *img, size_t len);

#endif /* HVCORE_BOOT_H */
