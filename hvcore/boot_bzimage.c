/*
 * boot_bzimage.c -- the Linux x86 boot protocol (Documentation/arch/x86/
 * boot.rst), 64-bit entry: no real-mode setup code runs.
 *
 * The file is: setup sectors ((setup_sects + 1) * 512 bytes, the setup header
 * at 0x1f1 with "HdrS" at 0x202), then the protected-mode kernel, which we
 * load at 1 MiB and enter at 1 MiB + 0x200 in long mode with RSI = the zero
 * page (boot_params) built from the file's setup header, our e820 map,
 * command line and initrd.  Requires protocol >= 2.12 and XLF_KERNEL_64.
 */
#include <errno.h>
#include <string.h>

#include <asm/bootparam.h>

#include "boot.h"
#include "util.h"

#define HDR_MAGIC 0x53726448	/* "HdrS" */

int boot_is_bzimage(const uint8_t *img, size_t len)
{
	uint32_t magic;

	if (len < 0x260)
		return 0;
	memcpy(&magic, img + 0x202, 4);
	return magic == HDR_MAGIC;
}

/* Check the header and return the offset of the protected-mode kernel. */
static int check_header(const char *path, const struct setup_header *h, size_t len,
			size_t *pm_off)
{
	size_t setup = ((size_t)(h->setup_sects ? h->setup_sects : 4) + 1) * 512;

	if (h->version < 0x20c || !(h->xloadflags & XLF_KERNEL_64))
		return hv_fail(-ENOEXEC, "%s: bzImage without the 64-bit entry "
			       "(boot protocol %u.%02u)", path, h->version >> 8, h->version & 0xff);
	if (setup >= len)
		return hv_fail(-ENOEXEC, "%s: truncated bzImage", path);
	*pm_off = setup;
	return 0;
}

static void put_e820(struct vm *vm, struct boot_params *bp)
{
	struct e820_entry e[E820_MAX];
	unsigned n = boot_e820(vm, e);

	for (unsigned i = 0; i < n; i++) {
		bp->e820_table[i].addr = e[i].addr;
		bp->e820_table[i].size = e[i].size;
		bp->e820_table[i].type = e[i].type;
	}
	bp->e820_entries = (uint8_t)n;
}

int boot_bzimage(struct vm *vm, const struct boot_args *a, const uint8_t *img,
		 size_t len, struct boot_state *st)
{
	struct boot_params *bp = (struct boot_params *)(vm->mem.host + BOOT_ZERO_PAGE);
	const struct setup_header *h = (const struct setup_header *)(img + 0x1f1);
	size_t pm_off = 0, hdr_end = 0x202 + img[0x201], pm_len;
	uint64_t initrd = 0, initrd_size = 0, need;
	int rc;

	rc = check_header(a->kernel, h, len, &pm_off);
	if (rc < 0)
		return rc;
	pm_len = len - pm_off;
	need = BOOT_KERNEL_ADDR + (h->init_size > pm_len ? h->init_size : pm_len);
	if (need > vm->mem.low_size)
		return hv_fail(-ENOMEM, "%s: needs %llu MiB of RAM below 3 GiB", a->kernel,
			       (unsigned long long)(need >> 20) + 1);
	memcpy(vm->mem.host + BOOT_KERNEL_ADDR, img + pm_off, pm_len);

	memset(bp, 0, sizeof(*bp));
	if (hdr_end > 0x1f1 + sizeof(bp->hdr) || hdr_end > len)
		hdr_end = 0x1f1 + sizeof(bp->hdr);
	memcpy(&bp->hdr, img + 0x1f1, hdr_end - 0x1f1);
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.vid_mode = 0xffff;
	bp->hdr.loadflags &= ~KEEP_SEGMENTS;
	bp->hdr.code32_start = BOOT_KERNEL_ADDR;
	rc = boot_put_cmdline(vm, a->cmdline, h->cmdline_size ? h->cmdline_size + 1ULL : 256);
	if (rc < 0)
		return rc;
	bp->hdr.cmd_line_ptr = (uint32_t)BOOT_CMDLINE;
	if (a->initrd) {
		rc = boot_load_initrd(vm, a->initrd, (uint64_t)h->initrd_addr_max + 1,
				      &initrd, &initrd_size);
		if (rc < 0)
			return rc;
		bp->hdr.ramdisk_image = (uint32_t)initrd;
		bp->hdr.ramdisk_size = (uint32_t)initrd_size;
	}
	put_e820(vm, bp);
	boot_write_gdt(vm, 1);
	boot_write_page_tables(vm);
	*st = (struct boot_state){
		.mode = BOOT_LONG64,
		.rip = BOOT_KERNEL_ADDR + 0x200,
		.rsi = BOOT_ZERO_PAGE,
		.cr3 = BOOT_PML4,
	};
	return 0;
}
