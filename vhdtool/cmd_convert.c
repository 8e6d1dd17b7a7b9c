/*
 * cmd_convert.c -- vhdtool convert: copy an image (a chain is flattened)
 * into a new raw file or VHD.  The input format is read from its content;
 * the output format comes from -O or the output's extension.
 */
#include <getopt.h>
#include <string.h>
#include <strings.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_convert = {
	"convert", run, "copy an image into a new raw file or VHD (chains flattened)",
	"[-f raw|vhd|vhdx|qcow2|vmdk] [-O raw|vhd|vhdx] [--type fixed|dynamic]\n"
	"       [--block-size SIZE]\n"
	"       [-p] [-q] [--json] [--no-sparse] [--keep-partial] [--direct] SRC DST\n"
	"  The source format is detected from its content (-f forces one).\n"
	"  The output format is -O, else DST's extension (.vhd/.avhd, .vhdx/.avhdx,\n"
	"  .img/.raw).\n"
	"  All-zero blocks stay unallocated in dynamic outputs and holes in raw.\n"
	"  On failure the partial output is removed, or kept with --keep-partial.\n"
	"  --direct bypasses the page cache (O_DIRECT) on both sides, with reads\n"
	"  kept in flight by asynchronous I/O.",
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
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_convert_opts co = { .sparse_zeros = 1 };
	struct vhd_open_opts oo = { 0 };
	enum vhd_format outfmt = VHD_FMT_AUTO;
	int c, rc, quiet = 0, json = 0, want_progress = 0;
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
		default: return bad_option(&verb_convert, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error(&verb_convert, "expected SRC and DST");
	if (outfmt == VHD_FMT_AUTO && output_format(argv[optind + 1], &outfmt) < 0)
		return usage_error(&verb_convert,
				   "cannot tell the output format from '%s'; give -O",
				   argv[optind + 1]);
	co.out.format = outfmt;
	if (open_disk(argv[optind], co.direct ? VHD_OPEN_DIRECT : 0, &oo, &src) < 0)
		return EXIT_FAIL;
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
