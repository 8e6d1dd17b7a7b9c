/*
 * boot_pvh.c -- PVH boot of an ELF kernel (an uncompressed Linux vmlinux,
 * or a test guest; ELF32 or ELF64).
 *
 * The ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18, name "Xen") holds the
 * physical entry point (4 bytes; Linux uses an 8-byte pointer-sized one).
 * Every PT_LOAD segment is copied to its p_paddr (which must lie in RAM at
 * or above 0xa0000) and its bss zeroed.  The vCPU starts in 32-bit protected
 * mode, paging off, flat CS/DS, with EBX = struct hvm_start_info (Xen's
 * public/arch-x86/hvm/start_info.h, version 1):
 *
 *   off size field                 off size hvm_memmap_table_entry
 *   0   4    magic 0x336ec578      0   8    addr
 *   4   4    version (1)           8   8    size
 *   8   4    flags                 16  4    type (1 RAM, 2 reserved)
 *   12  4    nr_modules            20  4    reserved
 *   16  8    modlist_paddr
 *   24  8    cmdline_paddr         hvm_modlist_entry: paddr, size,
 *   32  8    rsdp_paddr (0: none)  cmdline_paddr, reserved (8 bytes each)
 *   40  8    memmap_paddr
 *   48  4    memmap_entries
 *   52  4    reserved
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "boot.h"
#include "util.h"

#define PVH_NOTE_TYPE   18		/* XEN_ELFNOTE_PHYS32_ENTRY */
#define START_INFO_MAGIC 0x336ec578
#define MEMMAP_ADDR     (BOOT_START_INFO + 64)

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

/* Program headers of either class, widened. */
struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

struct elf {
	const uint8_t *img;
	size_t len;
	int is64;
	uint64_t phoff;
	unsigned phnum, phentsize;
};

int boot_is_elf(const uint8_t *img, size_t len)
{
	return len >= EI_NIDENT && !memcmp(img, ELFMAG, SELFMAG);
}

static int elf_open(struct elf *e, const char *path, const uint8_t *img, size_t len)
{
	e->img = img;
	e->len = len;
	e->is64 = img[EI_CLASS] == ELFCLASS64;
	if (e->is64 && len >= sizeof(Elf64_Ehdr)) {
		const Elf64_Ehdr *h = (const Elf64_Ehdr *)img;

		e->phoff = h->e_phoff;
		e->phnum = h->e_phnum;
		e->phentsize = h->e_phentsize;
	} else if (img[EI_CLASS] == ELFCLASS32 && len >= sizeof(Elf32_Ehdr)) {
		const Elf32_Ehdr *h = (const Elf32_Ehdr *)img;

		e->phoff = h->e_phoff;
		e->phnum = h->e_phnum;
		e->phentsize = h->e_phentsize;
	} else {
		return hv_fail(-ENOEXEC, "%s: truncated or unknown ELF class", path);
	}
	if (img[EI_DATA] != ELFDATA2LSB ||
	    e->phentsize != (e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    e->phoff > len || (uint64_t)e->phnum * e->phentsize > len - e->phoff)
		return hv_fail(-ENOEXEC, "%s: bad ELF program headers", path);
	return 0;
}

static void elf_phdr(const struct elf *e, unsigned i, struct phdr *p)
{
	const uint8_t *at = e->img + e->phoff + (uint64_t)i * e->phentsize;

	if (e->is64) {
		Elf64_Phdr h;

		memcpy(&h, at, sizeof(h));
		*p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
	} else {
		Elf32_Phdr h;

		memcpy(&h, at, sizeof(h));
		*p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
	}
}

/* Look for the PVH entry note in one PT_NOTE segment. */
static int find_note(const struct elf *e, const struct phdr *p, uint64_t *entry)
{
	uint64_t off = p->offset, end;

	if (p->offset > e->len || p->filesz > e->len - p->offset)
		return 0;
	end = p->offset + p->filesz;
	while (end - off >= 12) {
		uint32_t nh[3];
		uint64_t name, desc, next;

		memcpy(nh, e->img + off, 12);
		name = off + 12;
		desc = name + ((nh[0] + 3ULL) & ~3ULL);
		next = desc + ((nh[1] + 3ULL) & ~3ULL);
		if (next > end)
			return 0;
		if (nh[2] == PVH_NOTE_TYPE && nh[0] == 4 && !memcmp(e->img + name, "Xen", 4) &&
		    (nh[1] == 4 || nh[1] == 8)) {
			*entry = 0;
			memcpy(entry, e->img + desc, nh[1]);
			return 1;
		}
		off = next;
	}
	return 0;
}

static int find_entry(const char *path, const struct elf *e, uint64_t *entry)
{
	struct phdr p;

	for (unsigned i = 0; i < e->phnum; i++) {
		elf_phdr(e, i, &p);
		if (p.type == PT_NOTE && find_note(e, &p, entry))
			return 0;
	}
	return hv_fail(-ENOEXEC, "%s: ELF file without a PVH entry note "
		       "(XEN_ELFNOTE_PHYS32_ENTRY)", path);
}

static int load_segments(struct vm *vm, const char *path, const struct elf *e)
{
	struct phdr p;
	int loaded = 0;

	for (unsigned i = 0; i < e->phnum; i++) {
		uint8_t *dst;

		elf_phdr(e, i, &p);
		if (p.type != PT_LOAD || p.memsz == 0)
			continue;
		if (p.filesz > p.memsz || p.offset > e->len || p.filesz > e->len - p.offset)
			return hv_fail(-ENOEXEC, "%s: segment %u lies outside the file", path, i);
		dst = gmem_ptr(&vm->mem, p.paddr, p.memsz);
		if (!dst || p.paddr < BOOT_LOW_END || p.paddr + p.memsz > vm->mem.low_size)
			return hv_fail(-ENOEXEC, "%s: segment %u at 0x%llx (+0x%llx) is not in "
				       "guest RAM between 0xa0000 and %llu MiB", path, i,
				       (unsigned long long)p.paddr, (unsigned long long)p.memsz,
				       (unsigned long long)(vm->mem.low_size >> 20));
		memcpy(dst, e->img + p.offset, p.filesz);
		memset(dst + p.filesz, 0, p.memsz - p.filesz);
		loaded++;
	}
	if (!loaded)
		return hv_fail(-ENOEXEC, "%s: ELF file without loadable segments", path);
	return 0;
}

static void put_start_info(struct vm *vm, uint64_t initrd, uint64_t initrd_size)
{
	struct hvm_start_info *si = (void *)(vm->mem.host + BOOT_START_INFO);
	struct hvm_memmap_entry *mm = (void *)(vm->mem.host + MEMMAP_ADDR);
	struct hvm_modlist_entry *mod = (void *)(vm->mem.host + BOOT_MODLIST);
	struct e820_entry e[E820_MAX];
	unsigned n = boot_e820(vm, e);

	memset(si, 0, 4096);
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){ e[i].addr, e[i].size, e[i].type, 0 };
	si->magic = START_INFO_MAGIC;
	si->version = 1;
	si->cmdline_paddr = BOOT_CMDLINE;
	si->memmap_paddr = MEMMAP_ADDR;
	si->memmap_entries = n;
	if (initrd_size) {
		memset(mod, 0, sizeof(*mod));
		mod->paddr = initrd;
		mod->size = initrd_size;
		si->nr_modules = 1;
		si->modlist_paddr = BOOT_MODLIST;
	}
}

int boot_pvh(struct vm *vm, const struct boot_args *a, const uint8_t *img,
	     size_t len, struct boot_state *st)
{
	uint64_t entry = 0, initrd = 0, initrd_size = 0;
	struct elf e = { 0 };
	int rc;

	rc = elf_open(&e, a->kernel, img, len);
	if (rc < 0)
		return rc;
	rc = find_entry(a->kernel, &e, &entry);
	if (rc < 0)
		return rc;
	if (entry >= vm->mem.low_size)
		return hv_fail(-ENOEXEC, "%s: PVH entry 0x%llx is outside guest RAM",
			       a->kernel, (unsigned long long)entry);
	rc = load_segments(vm, a->kernel, &e);
	if (rc < 0)
		return rc;
	rc = boot_put_cmdline(vm, a->cmdline, BOOT_CMDLINE_MAX);
	if (rc < 0)
		return rc;
	if (a->initrd) {
		rc = boot_load_initrd(vm, a->initrd, VM_MMIO_HOLE, &initrd, &initrd_size);
		if (rc < 0)
			return rc;
	}
	put_start_info(vm, initrd, initrd_size);
	boot_write_gdt(vm, 0);
	*st = (struct boot_state){
		.mode = BOOT_PROTECTED32,
		.rip = entry,
		.rbx = BOOT_START_INFO,
	};
	return 0;
}
