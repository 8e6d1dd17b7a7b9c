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
	"[--type fixed|dynamic|diff] [--format vhd|raw] --size SIZE\n"
	"       [--block-size SIZE] [--parent PARENT] [--creator XXXX] [--chs]\n"
	"       [--preallocate] [-q] FILE\n"
	"  SIZE takes K, M, G, T suffixes (powers of 1024). The size is exact\n"
	"  (a multiple of 512) unless --chs rounds it up to whole CHS cylinders.\n"
	"  --parent makes a differencing disk (size defaults to the parent's).",
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
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_create_opts o = { .format = VHD_FMT_VHD, .type = 0 };
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
	if (o.type == VHD_TYPE_DIFF && !o.parent)
		return usage_error(&verb_create, "a differencing disk needs --parent");
	if (o.parent && o.type != VHD_TYPE_DIFF)
		return usage_error(&verb_create, "--parent is only for differencing disks");
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
