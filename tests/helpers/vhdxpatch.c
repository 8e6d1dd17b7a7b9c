/*
 * vhdxpatch.c -- read or rewrite single fields of a VHDX, to craft damaged
 * (or unusual but valid) images for the integration tests
 * (tests/integration/test-vhdx-*.sh).
 *
 *   vhdxpatch [--bad-crc] FILE header 1|2|both|current FIELD [VALUE]
 *       FIELD: sequence file_write data_write log_guid log_version version
 *              log_length log_offset checksum
 *   vhdxpatch FILE header 1|2|both corrupt
 *       flip one reserved byte; the stored CRC-32C is left stale
 *   vhdxpatch FILE region 1|2|both corrupt        (same, region table)
 *   vhdxpatch [--bad-crc] FILE region 1|2|both add GUID OFFSET LENGTH REQUIRED
 *   vhdxpatch FILE region 1|2 list
 *   vhdxpatch FILE meta list
 *   vhdxpatch FILE meta NAME [VALUE]
 *       NAME: block_size params disk_size logical_sector physical_sector
 *             page83
 *   vhdxpatch FILE meta add GUID FLAGS LENGTH
 *       a new item (LENGTH zero bytes) after the last one; FLAGS is the
 *       IsUser(1)/IsVirtualDisk(2)/IsRequired(4) mask
 *   vhdxpatch FILE locator KEY [VALUE]
 *       a parent locator value (UTF-8 in, stored UTF-16LE); the item is
 *       rebuilt in place
 *   vhdxpatch FILE bat INDEX [STATE OFFSET]
 *       print "STATE OFFSET" (offset in bytes) or set the entry
 *   vhdxpatch FILE bat-geometry
 *       print "chunk_ratio payload_blocks sb_blocks entries"
 *   vhdxpatch FILE log OFFSET [PAGEFILE]
 *       write one log entry (good CRC) at the start of the log whose data
 *       descriptor puts the 4 KiB page PAGEFILE (default: 0xA5 bytes) at
 *       file offset OFFSET, and name its LogGuid in both headers (each
 *       header's CRC recomputed): a log that needs replay
 *
 * Headers are read and written as raw bytes at the MS-VHDX offsets, so a
 * damaged header can still be patched; CRCs are recomputed with crc32c()
 * unless --bad-crc.  "current" is the valid header with the higher
 * sequence number.  The region table used for meta/bat is copy 1 if it
 * decodes, else copy 2.  GUID values are text ("{...}" optional), "zero" or
 * "random"; they are printed in braces.  Numbers take C syntax.
 *
 * Exit: 0 done, 1 I/O or format problem, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "endian.h"
#include "libvhd.h"
#include "vhdx_codec.h"

static const char *path;
static int fd = -1;
static int bad_crc;

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhdxpatch: %s: ", path ? path : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void rd(void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n < 0)
		die(1, "read at %llu: %s", (unsigned long long)off, strerror(errno));
	if ((size_t)n < len)
		memset((uint8_t *)buf + n, 0, len - (size_t)n);
}

static void wr(const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	if (n < 0 || (size_t)n != len)
		die(1, "write at %llu: %s", (unsigned long long)off,
		    n < 0 ? strerror(errno) : "short write");
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		die(2, "not a number: %s", s);
	return v;
}

static void guid_arg(const char *s, vhdx_guid *g)
{
	if (!strcmp(s, "zero"))
		memset(g, 0, sizeof(*g));
	else if (!strcmp(s, "random")) {
		if (vhdx_guid_random(g) < 0)
			die(1, "no random GUID");
	} else if (vhdx_guid_parse(s, g) < 0)
		die(2, "not a GUID: %s", s);
}

static void print_guid(const void *p)
{
	char s[39];
	vhdx_guid g;

	memcpy(&g, p, 16);
	vhdx_guid_format(&g, s);
	printf("%s\n", s);
}

/* CRC-32C of @len bytes with the 4 bytes at @field zero, stored there. */
static void fix_crc(uint8_t *buf, size_t len, size_t field)
{
	memset(buf + field, 0, 4);
	put_le32(buf + field, crc32c(0, buf, len));
}

/* ---- headers ---- */

struct hfield {
	const char *name;
	unsigned off, size;
	int guid;
};

static const struct hfield hfields[] = {
	{ "checksum", 4, 4, 0 },
	{ "sequence", 8, 8, 0 },
	{ "file_write", 16, 16, 1 },
	{ "data_write", 32, 16, 1 },
	{ "log_guid", 48, 16, 1 },
	{ "log_version", 64, 2, 0 },
	{ "version", 66, 2, 0 },
	{ "log_length", 68, 4, 0 },
	{ "log_offset", 72, 8, 0 },
};

static uint64_t hoff(int slot)
{
	return slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF;
}

static int current_header(void)
{
	uint8_t b[VHDX_HEADER_SIZE];
	struct vhdx_header h[2];
	int ok[2];

	for (int i = 0; i < 2; i++) {
		rd(b, sizeof(b), hoff(i));
		ok[i] = vhdx_header_decode(b, &h[i]) == 0;
	}
	if (!ok[0] && !ok[1])
		die(1, "no valid header");
	return !ok[0] ? 1 : !ok[1] ? 0 : h[1].sequence > h[0].sequence;
}

/* Slots named by @which: bit 0 header/copy 1, bit 1 copy 2. */
static int slots(const char *which, int allow_current)
{
	if (!strcmp(which, "1"))
		return 1;
	if (!strcmp(which, "2"))
		return 2;
	if (!strcmp(which, "both"))
		return 3;
	if (allow_current && !strcmp(which, "current"))
		return 1 << current_header();
	die(2, "copy must be 1, 2 or both%s: %s", allow_current ? " or current" : "", which);
}

static void put_field(uint8_t *p, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_field(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int cmd_header(int argc, char **argv)
{
	uint8_t b[VHDX_HEADER_SIZE];
	const struct hfield *f = NULL;
	int mask;

	if (argc < 2)
		die(2, "header 1|2|both|current FIELD [VALUE]");
	mask = slots(argv[0], 1);
	if (!strcmp(argv[1], "corrupt")) {
		for (int i = 0; i < 2; i++) {
			if (!(mask & (1 << i)))
				continue;
			rd(b, sizeof(b), hoff(i));
			b[2000] ^= 0x5A;
			wr(b, sizeof(b), hoff(i));
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(hfields) / sizeof(hfields[0]); i++)
		if (!strcmp(argv[1], hfields[i].name))
			f = &hfields[i];
	if (!f)
		die(2, "unknown header field %s", argv[1]);
	for (int i = 0; i < 2; i++) {
		if (!(mask & (1 << i)))
			continue;
		rd(b, sizeof(b), hoff(i));
		if (argc < 3) {
			if (f->guid)
				print_guid(b + f->off);
			else
				printf("%llu\n", (unsigned long long)get_field(b + f->off, f->size));
			continue;
		}
		if (f->guid) {
			vhdx_guid g;
			guid_arg(argv[2], &g);
			memcpy(b + f->off, &g, 16);
		} else {
			put_field(b + f->off, f->size, num(argv[2]));
		}
		if (!bad_crc && strcmp(f->name, "checksum"))
			fix_crc(b, sizeof(b), 4);
		wr(b, sizeof(b), hoff(i));
	}
	return 0;
}

/* ---- region table ---- */

static uint64_t roff(int copy)
{
	return copy ? VHDX_REGION2_OFF : VHDX_REGION1_OFF;
}

static struct vhdx_region_table rt;

static void load_regions(void)
{
	static uint8_t b[VHDX_REGION_SIZE];

	for (int i = 0; i < 2; i++) {
		rd(b, sizeof(b), roff(i));
		if (vhdx_region_decode(b, &rt) == 0)
			return;
	}
	die(1, "no valid region table");
}

static void region_of(const vhdx_guid *g, uint64_t *off, uint32_t *len)
{
	for (uint32_t i = 0; i < rt.count; i++)
		if (vhdx_guid_eq(&rt.e[i].guid, g)) {
			*off = rt.e[i].offset;
			*len = rt.e[i].length;
			return;
		}
	die(1, "region not found");
}

static int cmd_region(int argc, char **argv)
{
	static uint8_t b[VHDX_REGION_SIZE];
	int mask;

	if (argc < 2)
		die(2, "region 1|2|both corrupt|add|list ...");
	mask = slots(argv[0], 0);
	for (int i = 0; i < 2; i++) {
		if (!(mask & (1 << i)))
			continue;
		rd(b, sizeof(b), roff(i));
		if (!strcmp(argv[1], "corrupt")) {
			b[VHDX_REGION_SIZE - 100] ^= 0x5A;
		} else if (!strcmp(argv[1], "list")) {
			uint32_t n = get_le32(b + 8);
			printf("count %u crc %s\n", n,
			       vhdx_region_decode(b, &rt) == 0 ? "ok" : "bad");
			for (uint32_t k = 0; k < n && k < VHDX_MAX_ENTRIES; k++) {
				char s[39];
				vhdx_guid g;
				memcpy(&g, b + 16 + 32 * k, 16);
				vhdx_guid_format(&g, s);
				printf("%s %llu %u %u\n", s,
				       (unsigned long long)get_le64(b + 16 + 32 * k + 16),
				       get_le32(b + 16 + 32 * k + 24), get_le32(b + 16 + 32 * k + 28));
			}
			continue;
		} else if (!strcmp(argv[1], "add")) {
			uint32_t n = get_le32(b + 8);
			uint8_t *p = b + 16 + 32 * (size_t)n;
			vhdx_guid g;
			if (argc != 6)
				die(2, "region N add GUID OFFSET LENGTH REQUIRED");
			if (n >= VHDX_MAX_ENTRIES)
				die(1, "region table full");
			guid_arg(argv[2], &g);
			memcpy(p, &g, 16);
			put_le64(p + 16, num(argv[3]));
			put_le32(p + 24, (uint32_t)num(argv[4]));
			put_le32(p + 28, (uint32_t)num(argv[5]));
			put_le32(b + 8, n + 1);
			if (!bad_crc)
				fix_crc(b, sizeof(b), 4);
		} else {
			die(2, "unknown region command %s", argv[1]);
		}
		wr(b, sizeof(b), roff(i));
	}
	return 0;
}

/* ---- metadata ---- */

static uint64_t meta_off;
static uint32_t meta_len;
static struct vhdx_meta_table mt;
static uint8_t mtab[VHDX_META_TABLE_SIZE];

static void load_meta(void)
{
	load_regions();
	region_of(&VHDX_GUID_METADATA, &meta_off, &meta_len);
	rd(mtab, sizeof(mtab), meta_off);
	if (vhdx_meta_decode(mtab, &mt) < 0)
		die(1, "metadata table is invalid");
}

static const struct vhdx_meta_entry *meta_find(const vhdx_guid *g)
{
	for (uint16_t i = 0; i < mt.count; i++)
		if (vhdx_guid_eq(&mt.e[i].id, g))
			return &mt.e[i];
	die(1, "metadata item not found");
}

struct mfield {
	const char *name;
	const vhdx_guid *item;
	unsigned off, size;
	int guid;
};

static int cmd_meta(int argc, char **argv)
{
	const struct mfield mf[] = {
		{ "block_size", &VHDX_GUID_FILE_PARAMS, 0, 4, 0 },
		{ "params", &VHDX_GUID_FILE_PARAMS, 4, 4, 0 },
		{ "disk_size", &VHDX_GUID_DISK_SIZE, 0, 8, 0 },
		{ "logical_sector", &VHDX_GUID_LOGICAL_SECTOR, 0, 4, 0 },
		{ "physical_sector", &VHDX_GUID_PHYSICAL_SECTOR, 0, 4, 0 },
		{ "page83", &VHDX_GUID_PAGE83, 0, 16, 1 },
	};
	const struct mfield *f = NULL;
	const struct vhdx_meta_entry *e;
	uint8_t v[16];

	if (argc < 1)
		die(2, "meta list|add|NAME ...");
	load_meta();
	if (!strcmp(argv[0], "list")) {
		printf("region %llu %u count %u\n", (unsigned long long)meta_off, meta_len, mt.count);
		for (uint16_t i = 0; i < mt.count; i++) {
			char s[39];
			vhdx_guid_format(&mt.e[i].id, s);
			printf("%s %u %u %u\n", s, mt.e[i].offset, mt.e[i].length, mt.e[i].flags);
		}
		return 0;
	}
	if (!strcmp(argv[0], "add")) {
		uint32_t end = VHDX_META_TABLE_SIZE, len;
		vhdx_guid g;
		uint8_t *zero;
		if (argc != 4)
			die(2, "meta add GUID FLAGS LENGTH");
		guid_arg(argv[1], &g);
		len = (uint32_t)num(argv[3]);
		for (uint16_t i = 0; i < mt.count; i++)
			if (mt.e[i].offset + mt.e[i].length > end)
				end = mt.e[i].offset + mt.e[i].length;
		end = (end + 7) & ~7u;
		if (mt.count >= VHDX_MAX_ENTRIES || end + len > meta_len)
			die(1, "no room for another metadata item");
		mt.e[mt.count] = (struct vhdx_meta_entry){ g, end, len, (uint32_t)num(argv[2]) };
		mt.count++;
		zero = calloc(1, len ? len : 1);
		if (!zero)
			die(1, "out of memory");
		wr(zero, len, meta_off + end);
		free(zero);
		vhdx_meta_encode(&mt, mtab);
		wr(mtab, sizeof(mtab), meta_off);
		return 0;
	}
	for (size_t i = 0; i < sizeof(mf) / sizeof(mf[0]); i++)
		if (!strcmp(argv[0], mf[i].name))
			f = &mf[i];
	if (!f)
		die(2, "unknown metadata field %s", argv[0]);
	e = meta_find(f->item);
	rd(v, f->size, meta_off + e->offset + f->off);
	if (argc < 2) {
		if (f->guid)
			print_guid(v);
		else
			printf("%llu\n", (unsigned long long)get_field(v, f->size));
		return 0;
	}
	if (f->guid) {
		vhdx_guid g;
		guid_arg(argv[1], &g);
		memcpy(v, &g, 16);
	} else {
		put_field(v, f->size, num(argv[1]));
	}
	wr(v, f->size, meta_off + e->offset + f->off);
	return 0;
}

/* ---- parent locator ---- */

static size_t to_utf16(const char *s, uint8_t *out)
{
	size_t n = 0;

	/* ASCII is enough for the tests: paths and GUIDs. */
	for (; *s; s++, n += 2) {
		if ((unsigned char)*s >= 0x80)
			die(2, "locator values must be ASCII here");
		out[n] = (uint8_t)*s;
		out[n + 1] = 0;
	}
	return n;
}

static int cmd_locator(int argc, char **argv)
{
	const struct vhdx_meta_entry *e;
	uint8_t *old, *nw;
	uint16_t count;
	uint32_t pos;
	int found = 0;

	if (argc < 1)
		die(2, "locator KEY [VALUE]");
	load_meta();
	e = meta_find(&VHDX_GUID_PARENT_LOCATOR);
	old = malloc(e->length);
	nw = calloc(1, 65536);
	if (!old || !nw)
		die(1, "out of memory");
	rd(old, e->length, meta_off + e->offset);
	count = get_le16(old + 18);
	memcpy(nw, old, 20);
	pos = 20 + 12u * count;
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *p = old + 20 + 12 * i;
		uint8_t *q = nw + 20 + 12 * i;
		uint32_t ko = get_le32(p), vo = get_le32(p + 4);
		uint16_t kl = get_le16(p + 8), vl = get_le16(p + 10);
		char key[256] = "";
		int match;
		for (uint16_t k = 0; k < kl / 2 && k < 255; k++)
			key[k] = (char)old[ko + 2 * k];
		match = !strcmp(key, argv[0]);
		if (match && argc < 2) {
			for (uint16_t k = 0; k < vl / 2; k++)
				putchar(old[vo + 2 * k]);
			putchar('\n');
			free(old);
			free(nw);
			return 0;
		}
		memcpy(nw + pos, old + ko, kl);
		put_le32(q, pos);
		put_le16(q + 8, kl);
		pos += kl;
		put_le32(q + 4, pos);
		if (match) {
			vl = (uint16_t)to_utf16(argv[1], nw + pos);
			found = 1;
		} else {
			memcpy(nw + pos, old + vo, vl);
		}
		put_le16(q + 10, vl);
		pos += vl;
	}
	if (!found)
		die(1, "no locator entry %s", argv[0]);
	/* The item keeps its place; the table entry gets the new length. */
	wr(nw, pos, meta_off + e->offset);
	for (uint16_t i = 0; i < mt.count; i++)
		if (&mt.e[i] == e)
			mt.e[i].length = pos;
	vhdx_meta_encode(&mt, mtab);
	wr(mtab, sizeof(mtab), meta_off);
	free(old);
	free(nw);
	return 0;
}

/* ---- BAT ---- */

struct geo {
	uint64_t chunk, nblocks, nsb, entries;
};

static void load_geo(struct geo *g)
{
	uint8_t v[8];
	uint32_t block, params, lsec;
	uint64_t size;

	load_meta();
	rd(v, 8, meta_off + meta_find(&VHDX_GUID_FILE_PARAMS)->offset);
	block = get_le32(v);
	params = get_le32(v + 4);
	rd(v, 8, meta_off + meta_find(&VHDX_GUID_DISK_SIZE)->offset);
	size = get_le64(v);
	rd(v, 4, meta_off + meta_find(&VHDX_GUID_LOGICAL_SECTOR)->offset);
	lsec = get_le32(v);
	if (!block || !lsec)
		die(1, "block or sector size is zero");
	g->chunk = ((uint64_t)1 << 23) * lsec / block;
	g->nblocks = (size + block - 1) / block;
	g->nsb = (g->nblocks + g->chunk - 1) / g->chunk;
	g->entries = (params & VHDX_PARAM_HAS_PARENT) ? g->nsb * (g->chunk + 1)
						      : g->nblocks + (g->nblocks - 1) / g->chunk;
}

static int cmd_bat(int argc, char **argv)
{
	uint64_t bat_off, idx;
	uint32_t bat_len;
	uint8_t v[8];

	if (argc != 1 && argc != 3)
		die(2, "bat INDEX [STATE OFFSET]");
	load_regions();
	region_of(&VHDX_GUID_BAT, &bat_off, &bat_len);
	idx = num(argv[0]);
	if (idx * 8 + 8 > bat_len)
		die(1, "BAT index %llu is outside the BAT region", (unsigned long long)idx);
	if (argc == 1) {
		rd(v, 8, bat_off + idx * 8);
		printf("%u %llu\n", vhdx_bat_state(get_le64(v)),
		       (unsigned long long)vhdx_bat_offset(get_le64(v)));
		return 0;
	}
	put_le64(v, vhdx_bat_make((uint32_t)num(argv[1]), num(argv[2])));
	wr(v, 8, bat_off + idx * 8);
	return 0;
}

static int cmd_bat_geometry(void)
{
	struct geo g;

	load_geo(&g);
	printf("%llu %llu %llu %llu\n", (unsigned long long)g.chunk,
	       (unsigned long long)g.nblocks, (unsigned long long)g.nsb,
	       (unsigned long long)g.entries);
	return 0;
}

/* ---- log ---- */

static int cmd_log(int argc, char **argv)
{
	uint8_t page[VHDX_LOG_SECTOR], hb[VHDX_HEADER_SIZE];
	uint8_t entry[2 * VHDX_LOG_SECTOR];
	struct vhdx_header h;
	uint64_t off, log_off;
	struct stat st;
	vhdx_guid lg;
	int cur;

	if (argc < 1 || argc > 2)
		die(2, "log OFFSET [PAGEFILE]");
	off = num(argv[0]);
	memset(page, 0xA5, sizeof(page));
	if (argc == 2) {
		int pf = open(argv[1], O_RDONLY);
		if (pf < 0 || read(pf, page, sizeof(page)) != (ssize_t)sizeof(page))
			die(1, "cannot read 4096 bytes from %s", argv[1]);
		close(pf);
	}
	cur = current_header();
	rd(hb, sizeof(hb), hoff(cur));
	if (vhdx_header_decode(hb, &h) < 0)
		die(1, "current header does not decode");
	log_off = h.log_offset;
	if (fstat(fd, &st) < 0)
		die(1, "stat: %s", strerror(errno));
	if (vhdx_guid_random(&lg) < 0)
		die(1, "no random GUID");
	vhdx_log_entry_encode(entry, 1, 0, &lg, (uint64_t)st.st_size, (uint64_t)st.st_size,
			      page, &off, 1);
	wr(entry, sizeof(entry), log_off);
	for (int i = 0; i < 2; i++) {
		rd(hb, sizeof(hb), hoff(i));
		if (vhdx_header_decode(hb, &h) < 0)
			continue;
		memcpy(hb + 48, &lg, 16);
		fix_crc(hb, sizeof(hb), 4);
		wr(hb, sizeof(hb), hoff(i));
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1, rc;
	const char *cmd;

	if (i < argc && !strcmp(argv[i], "--bad-crc")) {
		bad_crc = 1;
		i++;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: vhdxpatch [--bad-crc] FILE header|region|meta|locator|bat|bat-geometry|log ...\n");
		return 2;
	}
	path = argv[i++];
	cmd = argv[i++];
	fd = open(path, O_RDWR);
	if (fd < 0)
		die(1, "%s", strerror(errno));
	if (!strcmp(cmd, "header"))
		rc = cmd_header(argc - i, argv + i);
	else if (!strcmp(cmd, "region"))
		rc = cmd_region(argc - i, argv + i);
	else if (!strcmp(cmd, "meta"))
		rc = cmd_meta(argc - i, argv + i);
	else if (!strcmp(cmd, "locator"))
		rc = cmd_locator(argc - i, argv + i);
	else if (!strcmp(cmd, "bat"))
		rc = cmd_bat(argc - i, argv + i);
	else if (!strcmp(cmd, "bat-geometry"))
		rc = cmd_bat_geometry();
	else if (!strcmp(cmd, "log"))
		rc = cmd_log(argc - i, argv + i);
	else
		die(2, "unknown command %s", cmd);
	if (close(fd) < 0)
		die(1, "close: %s", strerror(errno));
	return rc;
}
