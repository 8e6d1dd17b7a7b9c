/*
 * cmd_snapshot.c -- vhdtool snapshot: a new differencing child of an image.
 * The parent must no longer be written to (it is the frozen layer).
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_snapshot = {
	"snapshot", run, "create a differencing child of an image",
	"[-q] PARENT CHILD\n"
	"  CHILD records PARENT's UUID and a relative and an absolute path to\n"
	"  it; from now on write to CHILD, never to PARENT.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_create_opts o = { .format = VHD_FMT_AUTO, .type = VHD_TYPE_DIFF };
	int c, rc, quiet = 0;

	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		if (c != 'q')
			return bad_option(&verb_snapshot, argv);
		quiet = 1;
	}
	if (optind != argc - 2)
		return usage_error(&verb_snapshot, "expected PARENT and CHILD");
	o.parent = argv[optind];
	rc = vhd_create(argv[optind + 1], &o, NULL);
	if (rc < 0)
		return fail_lib(NULL, rc);
	if (!quiet)
		printf("created %s (child of %s)\n", argv[optind + 1], argv[optind]);
	return EXIT_OK;
}
