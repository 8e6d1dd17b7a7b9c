/*
 * cmd_create.c -- vhdtool create: new raw, fixed, dynamic or differencing
 * images.
 */
#include <getopt.h>
#include <string.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_create = {
	"create", run, "create a new image (fixed, dynamic, differencing, raw)",
	"[--type fixed|dynamic|diff] [--format vhd|vhdx|raw] --size SIZE\n"
	"       [--block-size SIZE] [--parent PARENT] [--creator XXXX] [--chs]\n"
	"       [--logical-sector 512|4096] [--physical-sector 512|4096]\n"
	"       [--preallocate] [-q] FILE\n"
	"  SIZE takes K, M, G, T suffixes (powers of 1024). The size is exact\n"
	"  (a multiple of 512) unless --chs rounds it up to whole CHS cylinders.\n"
	"  --parent makes a differencing disk (size defaults to the parent's).\n"
	"  VHDX defaults: 32 MiB blocks (dynamic), 2 MiB (fixed, differencing),\n"
	"  512-byte logical and 4096-byte physical sectors; up to 64 TiB.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "parent", required_argument, NULL, 'P' },
		{ "creator", required_argument, NULL, 'C' },
		{ "chs", no_argument, NULL, 'c' },
		{ "preallocate", no_argument, NULL, 'a' },
		{ "logical-sector", required_argument, NULL, 'L' },
		{ "physical-sector", required_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_create_opts o = { .format = VHD_FMT_AUTO, .type = 0 };
	uint64_t v;
	int c, rc, quiet = 0;

	while ((c = getopt_long(argc, argv, "t:f:s:b:P:qF:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_type(optarg, &o.type) < 0)
				return usage_error(&verb_create, "unknown type '%s'", optarg);
			break;
		case 'f':
		case 'F':
			if (parse_format(optarg, &o.format) < 0)
				return usage_error(&verb_create, "unknown format '%s'", optarg);
			break;
		case 's':
			if (parse_size(optarg, &o.size) < 0 || o.size == 0)
				return usage_error(&verb_create, "invalid size '%s'", optarg);
			break;
		case 'b':
			if (parse_size(optarg, &v) < 0 || v == 0 || v > UINT32_MAX)
				return usage_error(&verb_create, "invalid block size '%s'", optarg);
			o.block_size = (uint32_t)v;
			break;
		case 'P':
			o.parent = optarg;
			break;
		case 'C':
			if (strlen(optarg) > 4)
				return usage_error(&verb_create, "creator is at most 4 characters");
			memset(o.creator_app, ' ', 4);
			memcpy(o.creator_app, optarg, strlen(optarg));
			break;
		case 'c':
			o.chs_exact = 1;
			break;
		case 'a':
			o.preallocate = 1;
			break;
		case 'L':
		case 'H':
			if (parse_size(optarg, &v) < 0 || (v != 512 && v != 4096))
				return usage_error(&verb_create, "sector size must be 512 or 4096");
			if (c == 'L')
				o.logical_sector = (uint32_t)v;
			else
				o.physical_sector = (uint32_t)v;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			return bad_option(&verb_create, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_create, "expected one FILE");
	if (!o.type)
		o.type = o.parent ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC;
	/* No parent: the format is VHD unless told; a child takes its parent's. */
	if (o.format == VHD_FMT_AUTO && o.type != VHD_TYPE_DIFF)
		o.format = VHD_FMT_VHD;
	if (o.type == VHD_TYPE_DIFF && !o.parent)
		return usage_error(&verb_create, "a differencing disk needs --parent");
	if (o.parent && o.type != VHD_TYPE_DIFF)
		return usage_error(&verb_create, "--parent is only for differencing disks");
	if ((o.logical_sector || o.physical_sector) && o.format != VHD_FMT_VHDX)
		return usage_error(&verb_create, "sector sizes are a VHDX option");
	if (o.format == VHD_FMT_RAW && o.type == VHD_TYPE_DIFF)
		return usage_error(&verb_create, "raw images have no parent");
	if (!o.size && o.type != VHD_TYPE_DIFF)
		return usage_error(&verb_create, "--size is required");
	rc = vhd_create(argv[optind], &o, NULL);
	if (rc < 0)
		return fail_lib(NULL, rc);
	if (!quiet)
		printf("created %s\n", argv[optind]);
	return EXIT_OK;
}
