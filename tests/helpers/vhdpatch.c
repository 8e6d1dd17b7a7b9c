/*
 * vhdpatch.c -- read or rewrite single fields of a VHD, to craft damaged
 * images for the integration tests (tests/integration/test-bad-*.sh).
 *
 *   vhdpatch [OPTIONS] FILE footer FIELD [VALUE]
 *   vhdpatch [OPTIONS] FILE header FIELD [VALUE]
 *   vhdpatch [OPTIONS] FILE bat INDEX [VALUE]
 *   vhdpatch [OPTIONS] FILE locator N FIELD [VALUE]
 *   vhdpatch [OPTIONS] FILE locator-data N utf16le|hex DATA
 *
 * Without VALUE the field is printed (numbers in decimal, cookies and
 * creator codes as text, UUIDs as 8-4-4-4-12), so scripts can find offsets.
 * With VALUE it is written and the structure's checksum is recomputed.
 *
 * The patcher works on raw bytes with the codec's offset tables (see
 * libvhd/vhd_codec.h), never through the decoder, so it also works on a
 * structure that is already damaged (bad cookie, bad checksum).
 *
 * Options:
 *   --keep-checksum  leave the stored checksum as it was (now stale)
 *   --copy eof|backup|both   footer copy to touch (default eof); reads use
 *                    the EOF copy (511-byte form too) unless "backup"
 *   --header-at OFF  header offset (default: footer data_offset; the backup
 *                    footer's when the EOF one has no cookie)
 *
 * Numbers take C syntax (0x... hex).  A BAT VALUE may be "unused".  A UUID
 * VALUE is 32 hex digits, dashes allowed.  locator-data writes the bytes at
 * the locator's data offset and sets its data length (header checksum
 * recomputed unless --keep-checksum); utf16le DATA is UTF-8 text encoded as
 * UTF-16LE, hex DATA is raw bytes ("3dd8" gives an unpaired high surrogate
 * U+D83D).
 *
 * Exit: 0 done, 1 I/O or format problem, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endian.h"
#include "vhd_codec.h"

enum kind { NUM, TEXT, UUID };

struct field {
	const char *name;
	unsigned off, size;
	enum kind kind;
};

static const struct field footer_fields[] = {
	{ "cookie", 0, 8, TEXT },
	{ "features", 8, 4, NUM },
	{ "version", 12, 4, NUM },
	{ "data_offset", 16, 8, NUM },
	{ "timestamp", 24, 4, NUM },
	{ "creator_app", 28, 4, TEXT },
	{ "creator_version", 32, 4, NUM },
	{ "creator_os", 36, 4, NUM },
	{ "original_size", 40, 8, NUM },
	{ "current_size", 48, 8, NUM },
	{ "cylinders", 56, 2, NUM },
	{ "heads", 58, 1, NUM },
	{ "sectors_per_track", 59, 1, NUM },
	{ "disk_type", 60, 4, NUM },
	{ "checksum", 64, 4, NUM },
	{ "uuid", 68, 16, UUID },
	{ "saved_state", 84, 1, NUM },
	{ "hidden", 85, 1, NUM },
	{ "reserved", 86, 1, NUM },	/* first reserved byte */
	{ NULL, 0, 0, NUM },
};

static const struct field header_fields[] = {
	{ "cookie", 0, 8, TEXT },
	{ "data_offset", 8, 8, NUM },
	{ "table_offset", 16, 8, NUM },
	{ "version", 24, 4, NUM },
	{ "max_table_entries", 28, 4, NUM },
	{ "block_size", 32, 4, NUM },
	{ "checksum", 36, 4, NUM },
	{ "parent_uuid", 40, 16, UUID },
	{ "parent_timestamp", 56, 4, NUM },
	{ "reserved", 60, 4, NUM },
	{ NULL, 0, 0, NUM },
};

/* Relative to the start of a 24-byte locator entry. */
static const struct field locator_fields[] = {
	{ "code", 0, 4, TEXT },
	{ "data_space", 4, 4, NUM },
	{ "data_length", 8, 4, NUM },
	{ "reserved", 12, 4, NUM },
	{ "data_offset", 16, 8, NUM },
	{ NULL, 0, 0, NUM },
};

#define FOOTER_CSUM 64
#define HEADER_CSUM 36
#define LOCATORS_AT 576

static const char *prog = "vhdpatch";
static int keep_checksum;

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [--keep-checksum] [--copy eof|backup|both] [--header-at OFF]\n"
		"           FILE footer FIELD [VALUE]\n"
		"       %s [...] FILE header FIELD [VALUE]\n"
		"       %s [...] FILE bat INDEX [VALUE|unused]\n"
		"       %s [...] FILE locator N FIELD [VALUE]\n"
		"       %s [...] FILE locator-data N utf16le|hex DATA\n"
		"footer fields:", prog, prog, prog, prog, prog);
	for (const struct field *f = footer_fields; f->name; f++)
		fprintf(stderr, " %s", f->name);
	fprintf(stderr, "\nheader fields:");
	for (const struct field *f = header_fields; f->name; f++)
		fprintf(stderr, " %s", f->name);
	fprintf(stderr, " parent_name");
	fprintf(stderr, "\nlocator fields:");
	for (const struct field *f = locator_fields; f->name; f++)
		fprintf(stderr, " %s", f->name);
	fprintf(stderr, "\n");
	exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void xpread(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n < 0 || (size_t)n != len)
		die("short read of %zu bytes at %llu", len, (unsigned long long)off);
}

static void xpwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	if (n < 0 || (size_t)n != len)
		die("short write of %zu bytes at %llu", len, (unsigned long long)off);
}

static uint64_t parse_num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end)
		die("bad number '%s'", s);
	return v;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex digits (dashes ignored) into @out; returns the byte count. */
static size_t parse_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;
		if (*s == '-')
			continue;
		v = hexval((unsigned char)*s);
		if (v < 0)
			die("bad hex digit '%c'", *s);
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == max)
			die("hex data longer than %zu bytes", max);
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		die("odd number of hex digits");
	return n;
}

static const struct field *find_field(const struct field *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static void print_field(const uint8_t *p, const struct field *f)
{
	switch (f->kind) {
	case TEXT:
		for (unsigned i = 0; i < f->size; i++)
			putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
		putchar('\n');
		break;
	case UUID:
		for (unsigned i = 0; i < 16; i++)
			printf("%02x%s", p[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
		putchar('\n');
		break;
	case NUM:
		switch (f->size) {
		case 1: printf("%u\n", p[0]); break;
		case 2: printf("%u\n", get_be16(p)); break;
		case 4: printf("%u\n", get_be32(p)); break;
		default: printf("%llu\n", (unsigned long long)get_be64(p)); break;
		}
		break;
	}
}

/* Returns 1 if the stored checksum field itself was set. */
static int set_field(uint8_t *p, const struct field *f, const char *value)
{
	uint64_t v;

	switch (f->kind) {
	case TEXT:
		if (strlen(value) > f->size)
			die("'%s' is longer than %u bytes", value, f->size);
		memset(p, f->size == 4 ? ' ' : 0, f->size);
		memcpy(p, value, strlen(value));
		break;
	case UUID:
		if (parse_hex(value, p, 16) != 16)
			die("a UUID needs 32 hex digits");
		break;
	case NUM:
		v = parse_num(value);
		if (f->size < 8 && v >> (8 * f->size))
			die("%llu does not fit in %u bytes", (unsigned long long)v, f->size);
		switch (f->size) {
		case 1: p[0] = (uint8_t)v; break;
		case 2: put_be16(p, (uint16_t)v); break;
		case 4: put_be32(p, (uint32_t)v); break;
		default: put_be64(p, v); break;
		}
		break;
	}
	return !strcmp(f->name, "checksum");
}

static void reseal(uint8_t *buf, size_t len, size_t csum_off, int csum_set)
{
	if (keep_checksum || csum_set)
		return;
	put_be32(buf + csum_off, vhd_checksum(buf, len, csum_off));
}

/* ---- the file ---- */

struct image {
	int fd;
	uint64_t size;
	uint64_t eof_off;		/* offset of the EOF footer copy */
	int eof_ok;			/* the EOF copy has the cookie */
	uint8_t eof[VHD_FOOTER_SIZE];
	uint8_t backup[VHD_FOOTER_SIZE];
};

static void image_open(struct image *im, const char *path)
{
	struct stat st;

	im->fd = open(path, O_RDWR);
	if (im->fd < 0)
		die("%s: %s", path, strerror(errno));
	if (fstat(im->fd, &st) < 0)
		die("%s: %s", path, strerror(errno));
	im->size = (uint64_t)st.st_size;
	if (im->size < VHD_FOOTER_SIZE - 1)
		die("%s: too short for a VHD", path);
	memset(im->eof, 0, sizeof(im->eof));
	memset(im->backup, 0, sizeof(im->backup));
	im->eof_off = im->size - VHD_FOOTER_SIZE;
	if (im->size >= VHD_FOOTER_SIZE) {
		xpread(im->fd, im->eof, VHD_FOOTER_SIZE, im->eof_off);
		xpread(im->fd, im->backup, VHD_FOOTER_SIZE, 0);
	}
	im->eof_ok = !memcmp(im->eof, "conectix", 8);
	if (!im->eof_ok) {
		/* The 511-byte form of old Virtual PC. */
		uint8_t b[VHD_FOOTER_SIZE] = { 0 };
		xpread(im->fd, b, VHD_FOOTER_SIZE - 1, im->size - (VHD_FOOTER_SIZE - 1));
		if (!memcmp(b, "conectix", 8)) {
			memcpy(im->eof, b, sizeof(b));
			im->eof_off = im->size - (VHD_FOOTER_SIZE - 1);
			im->eof_ok = 1;
		}
	}
}

static void write_footer_copy(struct image *im, const uint8_t *buf, int backup)
{
	if (backup) {
		xpwrite(im->fd, buf, VHD_FOOTER_SIZE, 0);
	} else {
		size_t len = im->size - im->eof_off;	/* 512 or 511 */
		xpwrite(im->fd, buf, len, im->eof_off);
	}
}

static uint64_t header_offset(struct image *im, const char *at)
{
	if (at)
		return parse_num(at);
	if (im->eof_ok)
		return get_be64(im->eof + 16);
	if (!memcmp(im->backup, "conectix", 8))
		return get_be64(im->backup + 16);
	die("no footer cookie at either end: give --header-at");
}

static void read_header(struct image *im, uint64_t hoff, uint8_t *h)
{
	if (hoff > im->size || im->size - hoff < VHD_HEADER_SIZE)
		die("header offset %llu is outside the file", (unsigned long long)hoff);
	xpread(im->fd, h, VHD_HEADER_SIZE, hoff);
}

/* ---- verbs ---- */

static int do_footer(struct image *im, const char *copy, char **arg, int n)
{
	const struct field *f;
	int eof = strcmp(copy, "backup") != 0;
	int backup = strcmp(copy, "eof") != 0;

	if (n < 1 || n > 2 || !(f = find_field(footer_fields, arg[0])))
		usage();
	if (n == 1) {
		print_field((eof ? im->eof : im->backup) + f->off, f);
		return 0;
	}
	if (eof) {
		if (!im->eof_ok)
			die("no footer at the end of the file");
		reseal(im->eof, VHD_FOOTER_SIZE, FOOTER_CSUM,
		       set_field(im->eof + f->off, f, arg[1]));
		write_footer_copy(im, im->eof, 0);
	}
	if (backup) {
		reseal(im->backup, VHD_FOOTER_SIZE, FOOTER_CSUM,
		       set_field(im->backup + f->off, f, arg[1]));
		write_footer_copy(im, im->backup, 1);
	}
	return 0;
}

static int do_header(struct image *im, const char *at, char **arg, int n)
{
	uint8_t h[VHD_HEADER_SIZE];
	uint64_t hoff = header_offset(im, at);
	const struct field *f;
	int csum_set = 0;

	if (n < 1 || n > 2)
		usage();
	read_header(im, hoff, h);
	if (!strcmp(arg[0], "parent_name")) {
		uint16_t units[VHD_PARENT_NAME_UNITS];
		int count;
		if (n == 1) {
			char out[VHD_PARENT_NAME_UNITS * 4 + 1];
			for (int i = 0; i < VHD_PARENT_NAME_UNITS; i++)
				units[i] = get_be16(h + 64 + 2 * i);
			vhd_utf16_to_utf8(units, VHD_PARENT_NAME_UNITS, out, sizeof(out), true);
			printf("%s\n", out);
			return 0;
		}
		count = vhd_utf8_to_utf16(arg[1], units, VHD_PARENT_NAME_UNITS);
		if (count < 0)
			die("parent name is not valid UTF-8 or too long");
		memset(h + 64, 0, 2 * VHD_PARENT_NAME_UNITS);
		for (int i = 0; i < count; i++)
			put_be16(h + 64 + 2 * i, units[i]);
	} else {
		if (!(f = find_field(header_fields, arg[0])))
			usage();
		if (n == 1) {
			print_field(h + f->off, f);
			return 0;
		}
		csum_set = set_field(h + f->off, f, arg[1]);
	}
	reseal(h, VHD_HEADER_SIZE, HEADER_CSUM, csum_set);
	xpwrite(im->fd, h, VHD_HEADER_SIZE, hoff);
	return 0;
}

static int do_bat(struct image *im, const char *at, char **arg, int n)
{
	uint8_t h[VHD_HEADER_SIZE], e[4];
	uint64_t idx, table, entries;

	if (n < 1 || n > 2)
		usage();
	read_header(im, header_offset(im, at), h);
	table = get_be64(h + 16);
	entries = get_be32(h + 28);
	idx = parse_num(arg[0]);
	if (idx >= entries)
		fprintf(stderr, "%s: warning: index %llu is past max_table_entries %llu\n",
			prog, (unsigned long long)idx, (unsigned long long)entries);
	if (n == 1) {
		xpread(im->fd, e, 4, table + 4 * idx);
		printf("%u\n", get_be32(e));
		return 0;
	}
	if (!strcmp(arg[1], "unused"))
		put_be32(e, VHD_BAT_UNUSED);
	else {
		uint64_t v = parse_num(arg[1]);
		if (v > UINT32_MAX)
			die("a BAT entry is 32 bits");
		put_be32(e, (uint32_t)v);
	}
	xpwrite(im->fd, e, 4, table + 4 * idx);
	return 0;
}

static int do_locator(struct image *im, const char *at, char **arg, int n)
{
	uint8_t h[VHD_HEADER_SIZE];
	uint64_t hoff = header_offset(im, at), idx;
	const struct field *f;
	uint8_t *l;
	int csum_set;

	if (n < 2 || n > 3 || !(f = find_field(locator_fields, arg[1])))
		usage();
	idx = parse_num(arg[0]);
	if (idx >= VHD_LOCATOR_COUNT)
		die("locator index %llu is not 0..7", (unsigned long long)idx);
	read_header(im, hoff, h);
	l = h + LOCATORS_AT + 24 * idx;
	if (n == 2) {
		print_field(l + f->off, f);
		return 0;
	}
	csum_set = set_field(l + f->off, f, arg[2]);
	reseal(h, VHD_HEADER_SIZE, HEADER_CSUM, csum_set);
	xpwrite(im->fd, h, VHD_HEADER_SIZE, hoff);
	return 0;
}

static int do_locator_data(struct image *im, const char *at, char **arg, int n)
{
	uint8_t h[VHD_HEADER_SIZE];
	uint8_t data[65536];
	uint64_t hoff = header_offset(im, at), idx, space, off;
	size_t len;
	uint8_t *l;

	if (n != 3)
		usage();
	idx = parse_num(arg[0]);
	if (idx >= VHD_LOCATOR_COUNT)
		die("locator index %llu is not 0..7", (unsigned long long)idx);
	if (!strcmp(arg[1], "hex")) {
		len = parse_hex(arg[2], data, sizeof(data));
	} else if (!strcmp(arg[1], "utf16le")) {
		uint16_t units[sizeof(data) / 2];
		int count = vhd_utf8_to_utf16(arg[2], units, sizeof(data) / 2);
		if (count < 0)
			die("'%s' is not valid UTF-8 or too long", arg[2]);
		for (int i = 0; i < count; i++)
			put_le16(data + 2 * i, units[i]);
		len = (size_t)count * 2;
	} else {
		usage();
	}
	read_header(im, hoff, h);
	l = h + LOCATORS_AT + 24 * idx;
	space = get_be32(l + 4);
	space = space < VHD_SECTOR ? space * VHD_SECTOR : space;
	off = get_be64(l + 16);
	if (len > space)
		die("%zu bytes do not fit in the locator's %llu bytes", len,
		    (unsigned long long)space);
	xpwrite(im->fd, data, len, off);
	put_be32(l + 8, (uint32_t)len);
	reseal(h, VHD_HEADER_SIZE, HEADER_CSUM, 0);
	xpwrite(im->fd, h, VHD_HEADER_SIZE, hoff);
	return 0;
}

int main(int argc, char **argv)
{
	const char *copy = "eof", *at = NULL;
	struct image im;
	int i = 1, rc;

	while (i < argc && !strncmp(argv[i], "--", 2)) {
		if (!strcmp(argv[i], "--keep-checksum")) {
			keep_checksum = 1;
			i++;
		} else if (!strcmp(argv[i], "--copy") && i + 1 < argc) {
			copy = argv[i + 1];
			if (strcmp(copy, "eof") && strcmp(copy, "backup") && strcmp(copy, "both"))
				usage();
			i += 2;
		} else if (!strcmp(argv[i], "--header-at") && i + 1 < argc) {
			at = argv[i + 1];
			i += 2;
		} else {
			usage();
		}
	}
	if (argc - i < 3)
		usage();
	image_open(&im, argv[i]);
	if (!strcmp(argv[i + 1], "footer"))
		rc = do_footer(&im, copy, argv + i + 2, argc - i - 2);
	else if (!strcmp(argv[i + 1], "header"))
		rc = do_header(&im, at, argv + i + 2, argc - i - 2);
	else if (!strcmp(argv[i + 1], "bat"))
		rc = do_bat(&im, at, argv + i + 2, argc - i - 2);
	else if (!strcmp(argv[i + 1], "locator"))
		rc = do_locator(&im, at, argv + i + 2, argc - i - 2);
	else if (!strcmp(argv[i + 1], "locator-data"))
		rc = do_locator_data(&im, at, argv + i + 2, argc - i - 2);
	else
		usage();
	if (fsync(im.fd) < 0 || close(im.fd) < 0)
		die("%s: %s", argv[i], strerror(errno));
	return rc;
}
