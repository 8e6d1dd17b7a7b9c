/* cmdline.c -- what the VMM hands over in struct hvm_start_info (Xen's
 * public/arch-x86/hvm/start_info.h): the command line ("key=value" words,
 * e.g. "test=rw seed=7 tsc_khz=2400000") and the e820-style memory map. */
#include "guest.h"

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;		/* version >= 1 */
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;	/* type 1 = RAM, 2 = reserved */
};

static char line[1024];
static const struct hvm_start_info *si;

int start_info_parse(void)
{
	const char *p;
	size_t n;

	si = (const struct hvm_start_info *)(uintptr_t)start_info_paddr;
	if (!si || si->magic != HVM_START_MAGIC) {
		si = NULL;
		return -1;
	}
	p = (const char *)(uintptr_t)si->cmdline_paddr;
	for (n = 0; p && n < sizeof(line) - 1 && p[n]; n++)
		line[n] = p[n];
	line[n] = '\0';
	return 0;
}

const char *cmdline(void)
{
	return line;
}

/* Finds "key=" at the start of a word; returns the value (up to a blank). */
static const char *find(const char *key)
{
	size_t klen = strlen(key);
	const char *p = line;

	while (*p) {
		while (*p == ' ')
			p++;
		if (strncmp(p, key, klen) == 0 && p[klen] == '=')
			return p + klen + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

const char *arg_str(const char *key, const char *def)
{
	static char val[8][64];
	static int next;
	const char *v = find(key);
	char *out;
	int n;

	if (!v)
		return def;
	out = val[next++ % 8];
	for (n = 0; n < 63 && v[n] && v[n] != ' '; n++)
		out[n] = v[n];
	out[n] = '\0';
	return out;
}

uint64_t arg_u64(const char *key, uint64_t def)
{
	const char *v = find(key);

	return v ? parse_u64(v, NULL) : def;
}

static const struct hvm_memmap_entry *memmap(uint32_t *n)
{
	if (!si || si->version < 1 || !si->memmap_paddr) {
		*n = 0;
		return NULL;
	}
	*n = si->memmap_entries;
	return (const struct hvm_memmap_entry *)(uintptr_t)si->memmap_paddr;
}

uint64_t ram_end(void)
{
	const struct hvm_memmap_entry *e;
	uint64_t end = 0;
	uint32_t i, n;

	e = memmap(&n);
	for (i = 0; i < n; i++)
		if (e[i].type == 1 && e[i].addr + e[i].size > end)
			end = e[i].addr + e[i].size;
	return end;
}

void memmap_print(void)
{
	const struct hvm_memmap_entry *e;
	uint32_t i, n;

	e = memmap(&n);
	if (!n)
		gprintf("GUEST memory map: none in start_info (version %u)\n", si ? si->version : 0);
	for (i = 0; i < n; i++)
		gprintf("GUEST memory map: [%#014lx, %#014lx) type %u%s\n", e[i].addr,
			e[i].addr + e[i].size, e[i].type, e[i].type == 1 ? " RAM" : "");
}
