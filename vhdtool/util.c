/*
 * util.c -- helpers shared by the verbs: errors, sizes, names, JSON.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <getopt.h>

#include "passthrough.h"
#include "vhdtool.h"

int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vhdtool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int open_disk(const char *path, unsigned vhd_flags, const struct vhd_open_opts *o,
	      vhd_disk **out)
{
	int rc;

	if (pt_is_block_device(path)) {
		rc = pt_open(path, (vhd_flags & VHD_OPEN_RDWR) ? PT_RDWR : 0, out);
		if (rc < 0)
			fail("%s", pt_errmsg());
		return rc;
	}
	rc = vhd_open(path, vhd_flags, o, out);
	if (rc < 0)
		fail_lib(NULL, rc);
	return rc;
}

int fail_lib(const vhd_disk *d, int rc)
{
	const char *m = vhd_errmsg(d);

	return fail("%s", *m ? m : vhd_strerror(rc));
}

void print_usage(const struct verb *v, FILE *out)
{
	fprintf(out, "usage: vhdtool %s %s\n", v->name, v->usage);
}

int usage_error(const struct verb *v, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhdtool %s: ", v->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (vhdtool %s --help)\n", v->name);
	return EXIT_USAGE;
}

int bad_option(const struct verb *v, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";

	if (arg[0] != '-' && optopt)
		return usage_error(v, "unknown option or missing value: -%c", optopt);
	return usage_error(v, "unknown option or missing value: %s", arg);
}

int parse_size(const char *s, uint64_t *out)
{
	unsigned shift = 0;
	uint64_t v = 0;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return -EINVAL;	/* no digits: "-1", "G", ... */
	switch (*p) {
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	case 't': case 'T': shift = 40; p++; break;
	}
	if (shift && !strcasecmp(p, "ib"))
		p += 2;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

void format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

int parse_format(const char *s, enum vhd_format *f)
{
	if (!strcasecmp(s, "raw") || !strcasecmp(s, "img"))
		*f = VHD_FMT_RAW;
	else if (!strcasecmp(s, "vhd") || !strcasecmp(s, "vpc"))
		*f = VHD_FMT_VHD;
	else if (!strcasecmp(s, "vhdx"))
		*f = VHD_FMT_VHDX;
	else if (!strcasecmp(s, "qcow2"))
		*f = VHD_FMT_QCOW2;
	else if (!strcasecmp(s, "vmdk"))
		*f = VHD_FMT_VMDK;
	else
		return -EINVAL;
	return 0;
}

int parse_type(const char *s, enum vhd_type *t)
{
	if (!strcasecmp(s, "fixed"))
		*t = VHD_TYPE_FIXED;
	else if (!strcasecmp(s, "dynamic") || !strcasecmp(s, "sparse"))
		*t = VHD_TYPE_DYNAMIC;
	else if (!strcasecmp(s, "diff") || !strcasecmp(s, "differencing"))
		*t = VHD_TYPE_DIFF;
	else
		return -EINVAL;
	return 0;
}

const char *format_name(enum vhd_format f)
{
	switch (f) {
	case VHD_FMT_RAW: return "raw";
	case VHD_FMT_VHD: return "vhd";
	case VHD_FMT_VHDX: return "vhdx";
	case VHD_FMT_QCOW2: return "qcow2";
	case VHD_FMT_VMDK: return "vmdk";
	default: return "unknown";
	}
}

const char *type_name(enum vhd_type t)
{
	switch (t) {
	case VHD_TYPE_FIXED: return "fixed";
	case VHD_TYPE_DYNAMIC: return "dynamic";
	case VHD_TYPE_DIFF: return "differencing";
	default: return "none";
	}
}

void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}
