/*
 * boot.c -- what both boot paths share: the e820 map, reading files, the
 * initrd, the command line, the GDT and the identity page tables; and
 * boot_load(), which tells a bzImage from an ELF vmlinux by content.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "util.h"

#define KERNEL_MAX_FILE (512ULL << 20)

/* RAM [0, 0x9fc00), reserved [0x9fc00, 1 MiB) (MP table, BIOS area), RAM
 * [1 MiB, low end), and RAM above 4 GiB when there is more.  The MMIO hole
 * [3 GiB, 4 GiB) is left out (a gap, where Linux looks for PCI space). */
unsigned boot_e820(const struct vm *vm, struct e820_entry *e)
{
	unsigned n = 0;

	e[n++] = (struct e820_entry){ 0, BOOT_MPTABLE, E820_RAM };
	e[n++] = (struct e820_entry){ BOOT_MPTABLE, BOOT_EBDA_END - BOOT_MPTABLE, E820_RESERVED };
	e[n++] = (struct e820_entry){ BOOT_KERNEL_ADDR, vm->mem.low_size - BOOT_KERNEL_ADDR, E820_RAM };
	if (vm->mem.high_size)
		e[n++] = (struct e820_entry){ GMEM_HIGH_BASE, vm->mem.high_size, E820_RAM };
	return n;
}

/* Open @path read-only; it must be a regular file.  Returns the fd. */
static int open_regular(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return hv_fail(-errno, "%s: %m", path);
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return hv_fail(-EINVAL, "%s: not a regular file", path);
	}
	return fd;
}

int boot_read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *p;
	size_t done = 0;
	int fd, rc = 0;

	fd = open_regular(path, &st);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > KERNEL_MAX_FILE) {
		rc = hv_fail(-EFBIG, "%s: too big (%lld bytes)", path, (long long)st.st_size);
		goto out_close;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		rc = hv_fail(-ENOMEM, "%s: out of memory", path);
		goto out_close;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, p + done, (size_t)st.st_size - done);

		if (n <= 0) {
			rc = hv_fail(n < 0 ? -errno : -EIO, "%s: read failed", path);
			free(p);
			goto out_close;
		}
		done += (size_t)n;
	}
	*buf = p;
	*len = done;
out_close:
	close(fd);
	return rc;
}

/* The initrd goes at the top of low RAM, page aligned, below @max_end. */
int boot_load_initrd(struct vm *vm, const char *path, uint64_t max_end,
		     uint64_t *addr, uint64_t *size)
{
	uint64_t end = vm->mem.low_size < max_end ? vm->mem.low_size : max_end;
	struct stat st;
	uint64_t at;
	size_t done = 0;
	int fd, rc = 0;

	fd = open_regular(path, &st);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size + (64ULL << 20) > end) {
		rc = hv_fail(-ENOMEM, "%s: does not fit in guest RAM (%lld bytes)",
			     path, (long long)st.st_size);
		goto out_close;
	}
	at = (end - (uint64_t)st.st_size) & ~0xfffULL;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, vm->mem.host + at + done, (size_t)st.st_size - done);

		if (n <= 0) {
			rc = hv_fail(n < 0 ? -errno : -EIO, "%s: read failed", path);
			goto out_close;
		}
		done += (size_t)n;
	}
	*addr = at;
	*size = done;
out_close:
	close(fd);
	return rc;
}

int boot_put_cmdline(struct vm *vm, const char *cmdline, uint64_t max)
{
	size_t len = strlen(cmdline);

	if (max > BOOT_CMDLINE_MAX)
		max = BOOT_CMDLINE_MAX;
	if (len + 1 > max)
		return hv_fail(-E2BIG, "command line too long (%zu bytes, at most %llu)",
			       len, (unsigned long long)max - 1);
	memcpy(vm->mem.host + BOOT_CMDLINE, cmdline, len + 1);
	return 0;
}

/* GDT: null, null, code (0x10), data (0x18), TSS (0x20). */
void boot_write_gdt(struct vm *vm, int long_mode)
{
	uint64_t gdt[5] = {
		0,
		0,
		long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL,
		0x00cf93000000ffffULL,
		0x00008b0000000067ULL,
	};

	memcpy(vm->mem.host + BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

/* Identity map of [0, 4 GiB) with 2 MiB pages: PML4 -> PDPT -> 4 PDs. */
void boot_write_page_tables(struct vm *vm)
{
	uint64_t *pml4 = (uint64_t *)(vm->mem.host + BOOT_PML4);
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pdpt + 512;

	memset(pml4, 0, 6 * 4096);
	pml4[0] = (BOOT_PML4 + 0x1000) | 0x3;		/* present, writable */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PML4 + 0x2000 + i * 0x1000ULL) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;		/* present, writable, 2 MiB */
}

int boot_load(struct vm *vm, const struct boot_args *a, struct boot_state *st)
{
	uint8_t *img;
	size_t len;
	int rc;

	rc = boot_read_file(a->kernel, &img, &len);
	if (rc < 0)
		return rc;
	if (boot_is_elf(img, len))
		rc = boot_pvh(vm, a, img, len, st);
	else if (boot_is_bzimage(img, len))
		rc = boot_bzimage(vm, a, img, len, st);
	else
		rc = hv_fail(-ENOEXEC, "%s: not a bzImage or an ELF vmlinux", a->kernel);
	free(img);
	return rc;
}
