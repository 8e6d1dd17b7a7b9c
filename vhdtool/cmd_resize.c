/*
 * cmd_resize.c -- vhdtool resize: change an image's virtual size.
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_resize = {
	"resize", run, "grow or shrink an image (VHD, VHDX, raw)",
	"--size SIZE [--force] [-q] IMAGE\n"
	"  Grows, or shrinks when nothing stored would be cut (--force cuts).\n"
	"  Every step is crash-safe: an interrupted resize leaves a valid image\n"
	"  of the old or the new size.  The filesystem inside is not resized.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 0;
	unsigned flags = 0;
	int c, rc, quiet = 0;

	while ((c = getopt_long(argc, argv, "s:fq", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &size) < 0 || size == 0)
				return usage_error(&verb_resize, "invalid size '%s'", optarg);
			break;
		case 'f': flags |= VHD_RESIZE_FORCE; break;
		case 'q': quiet = 1; break;
		default: return bad_option(&verb_resize, argv);
		}
	}
	if (optind != argc - 1 || !size)
		return usage_error(&verb_resize, "expected --size SIZE and one IMAGE");
	rc = vhd_resize(argv[optind], size, flags, NULL);
	if (rc < 0)
		return fail_lib(NULL, rc);
	if (!quiet)
		printf("resized %s to %llu bytes\n", argv[optind], (unsigned long long)size);
	return EXIT_OK;
}
