/*
 * cmd_convert.c -- vhdtool convert: copy an image (a chain is flattened)
 * into a new raw file or VHD.  The input format is read from its content;
 * the output format comes from -O or the output's extension.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_convert = {
	"convert", run, "copy an image into a new raw file or VHD (chains flattened)",
	"[-f raw|vhd|vhdx|qcow2|vmdk] [-O raw|vhd|vhdx] [--type fixed|dynamic]\n"
	"       [--block-size SIZE]\n"
	"       [-p] [-q] [--json] [--no-sparse] [--keep-partial] [--direct]\n"
	"       [--source-cache auto|direct|buffered] SRC DST\n"
	"       --keep-chain [-O vhd|vhdx] [...] SRC DIR/ or DSTPREFIX\n"
	"  The source format is detected from its content (-f forces one).\n"
	"  The output format is -O, else DST's extension (.vhd/.avhd, .vhdx/.avhdx,\n"
	"  .img/.raw).\n"
	"  All-zero blocks stay unallocated in dynamic outputs and holes in raw.\n"
	"  On failure the partial output is removed, or kept with --keep-partial.\n"
	"  --direct bypasses the page cache (O_DIRECT) on both sides, with reads\n"
	"  kept in flight by asynchronous I/O.\n"
	"  --source-cache: how the source is read; auto (default) reads a raw, VHD\n"
	"  or VHDX source around the page cache (O_DIRECT, asynchronous) unless\n"
	"  most of it is cached already; the output stays buffered.\n"
	"  --keep-chain makes one output per layer of SRC's chain, each a\n"
	"  differencing image over the previous one (the base converted whole),\n"
	"  in -O's format (default: SRC's): DIR/LAYERNAME.EXT when DIR is a\n"
	"  folder, else DSTPREFIX0.EXT (the base), DSTPREFIX1.EXT, ...",
};

static int output_format(const char *path, enum vhd_format *f)
{
	const char *dot = strrchr(path, '.');

	if (!dot)
		return -1;
	if (!strcasecmp(dot, ".vhd") || !strcasecmp(dot, ".avhd"))
		*f = VHD_FMT_VHD;
	else if (!strcasecmp(dot, ".vhdx") || !strcasecmp(dot, ".avhdx"))
		*f = VHD_FMT_VHDX;
	else if (!strcasecmp(dot, ".img") || !strcasecmp(dot, ".raw"))
		*f = VHD_FMT_RAW;
	else
		return -1;
	return 0;
}

static const char *ext_of(enum vhd_format f)
{
	return f == VHD_FMT_VHDX ? "vhdx" : "vhd";
}

/* Output names for --keep-chain: @names[0] for the base. */
static int chain_names(vhd_disk *src, const char *dst, enum vhd_format f,
		       char **names, int n)
{
	struct stat st;
	bool dir = stat(dst, &st) == 0 && S_ISDIR(st.st_mode);
	int i = n - 1;

	for (vhd_disk *l = src; l; l = vhd_parent(l), i--) {
		struct vhd_info info;
		char base[PATH_MAX], *dot;
		const char *slash;
		vhd_get_info(l, &info);
		slash = strrchr(info.path, '/');
		snprintf(base, sizeof(base), "%s", slash ? slash + 1 : info.path);
		if ((dot = strrchr(base, '.')))
			*dot = '\0';
		if (dir && asprintf(&names[i], "%s%s%s.%s", dst,
				    dst[strlen(dst) - 1] == '/' ? "" : "/", base, ext_of(f)) < 0)
			return -1;
		if (!dir && asprintf(&names[i], "%s%d.%s", dst, i, ext_of(f)) < 0)
			return -1;
	}
	for (int a = 0; a < n; a++)
		for (int b = a + 1; b < n; b++)
			if (!strcmp(names[a], names[b]))
				return fail("%s: two layers would both be written to %s; give a DSTPREFIX instead of a folder",
					    dst, names[a]);
	return 0;
}

static int convert_chain(const char *srcpath, const char *dst, enum vhd_format outfmt,
			 struct vhd_open_opts *oo, struct vhd_convert_opts *co, int quiet)
{
	struct vhd_info info;
	vhd_disk *src;
	char **names;
	int n, rc;

	if (open_disk(srcpath, 0, oo, &src) < 0)
		return EXIT_FAIL;
	vhd_get_info(src, &info);
	if (outfmt == VHD_FMT_AUTO)
		outfmt = info.format;
	if (outfmt != VHD_FMT_VHD && outfmt != VHD_FMT_VHDX) {
		vhd_close(src);
		return fail("%s: --keep-chain writes VHD or VHDX layers: give -O vhd or -O vhdx",
			    srcpath);
	}
	co->out.format = outfmt;
	n = (int)info.depth + 1;
	names = calloc((size_t)n, sizeof(*names));
	rc = names ? chain_names(src, dst, outfmt, names, n) : -1;
	if (rc == 0)
		rc = vhd_convert_chain(src, (const char *const *)names, n, co);
	if (rc < 0 && names && rc != EXIT_FAIL)
		fail_lib(NULL, rc);
	for (int i = 0; rc == 0 && !quiet && i < n; i++)
		printf("%s%s\n", names[i], i ? " (differencing over the line above)" : " (base)");
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	vhd_close(src);
	return rc < 0 || rc == EXIT_FAIL ? EXIT_FAIL : EXIT_OK;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "progress", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-sparse", no_argument, NULL, 'S' },
		{ "keep-partial", no_argument, NULL, 'K' },
		{ "direct", no_argument, NULL, 'D' },
		{ "keep-chain", no_argument, NULL, 'C' },
		{ "source-cache", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_convert_opts co = { .sparse_zeros = 1 };
	struct vhd_open_opts oo = { 0 };
	enum vhd_format outfmt = VHD_FMT_AUTO;
	int c, rc, quiet = 0, json = 0, want_progress = 0, keep_chain = 0;
	enum source_cache srccache = SOURCE_CACHE_AUTO;
	bool direct_source;
	struct progress prog;
	double t0, secs;
	vhd_disk *src;
	uint64_t v;

	co.out.type = VHD_TYPE_DYNAMIC;
	while ((c = getopt_long(argc, argv, "f:O:t:b:pq", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format(optarg, &oo.format) < 0)
				return usage_error(&verb_convert, "unknown format '%s'", optarg);
			break;
		case 'O':
			if (parse_format(optarg, &outfmt) < 0 || outfmt == VHD_FMT_QCOW2 ||
			    outfmt == VHD_FMT_VMDK)
				return usage_error(&verb_convert, "unknown format '%s'", optarg);
			break;
		case 't':
			if (parse_type(optarg, &co.out.type) < 0 || co.out.type == VHD_TYPE_DIFF)
				return usage_error(&verb_convert, "type must be fixed or dynamic");
			break;
		case 'b':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > UINT32_MAX)
				return usage_error(&verb_convert, "invalid block size '%s'", optarg);
			co.out.block_size = (uint32_t)v;
			break;
		case 'p': want_progress = 1; break;
		case 'q': quiet = 1; break;
		case 'j': json = 1; break;
		case 'S': co.sparse_zeros = 0; break;
		case 'K': co.keep_partial = 1; break;
		case 'D': co.direct = 1; break;
		case 'C': keep_chain = 1; break;
		case 's':
			if (parse_source_cache(optarg, &srccache) < 0)
				return usage_error(&verb_convert,
						   "--source-cache is auto, direct or buffered");
			break;
		default: return bad_option(&verb_convert, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error(&verb_convert, "expected SRC and DST");
	if (keep_chain)
		return convert_chain(argv[optind], argv[optind + 1], outfmt, &oo, &co, quiet);
	if (outfmt == VHD_FMT_AUTO && output_format(argv[optind + 1], &outfmt) < 0)
		return usage_error(&verb_convert,
				   "cannot tell the output format from '%s'; give -O",
				   argv[optind + 1]);
	co.out.format = outfmt;
	if (co.direct)
		srccache = SOURCE_CACHE_DIRECT;
	if (open_convert_source(argv[optind], srccache, &oo, &src, &direct_source) < 0)
		return EXIT_FAIL;
	co.direct_source = direct_source;
	progress_init(&prog, want_progress && !quiet, "converting");
	co.progress = progress_update;
	co.opaque = &prog;
	t0 = now_seconds();
	rc = vhd_convert(src, argv[optind + 1], &co);
	secs = now_seconds() - t0;
	if (rc == 0)
		progress_finish(&prog, vhd_size(src));
	else if (prog.enabled)
		fputc('\n', stderr);
	if (rc < 0) {
		vhd_close(src);
		return fail_lib(NULL, rc);
	}
	if (json)
		printf("{\"source\": \"%s\", \"output\": \"%s\", \"bytes\": %llu, "
		       "\"seconds\": %.3f}\n", argv[optind], argv[optind + 1],
		       (unsigned long long)vhd_size(src), secs);
	else if (!quiet)
		printf("converted %s -> %s (%s)\n", argv[optind], argv[optind + 1],
		       format_name(outfmt));
	vhd_close(src);
	return EXIT_OK;
}
