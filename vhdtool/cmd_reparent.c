/*
 * cmd_reparent.c -- vhdtool reparent: point a differencing image at another
 * parent (a moved, renamed or copied parent file).
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_reparent = {
	"reparent", run, "point a differencing image at another parent file",
	"--parent NEW [--ignore-id-mismatch] [-q] CHILD\n"
	"  Rewrites CHILD's parent locators, parent name and link (VHD: parent\n"
	"  UUID and timestamp; VHDX: parent_linkage).  NEW must have CHILD's\n"
	"  format and size and carry the identity CHILD was made from (VHD: its\n"
	"  UUID; VHDX: its DataWriteGuid); --ignore-id-mismatch accepts another\n"
	"  one and records it (the content may then differ from what CHILD was\n"
	"  made over).  Crash-safe; after a crash, vhdtool repair CHILD finishes.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "parent", required_argument, NULL, 'p' },
		{ "ignore-id-mismatch", no_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *parent = NULL;
	unsigned flags = 0;
	int c, rc, quiet = 0;

	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'p': parent = optarg; break;
		case 'i': flags |= VHD_REPARENT_IGNORE_ID; break;
		case 'q': quiet = 1; break;
		default: return bad_option(&verb_reparent, argv);
		}
	}
	if (optind != argc - 1 || !parent)
		return usage_error(&verb_reparent, "expected --parent NEW and one CHILD");
	rc = vhd_reparent(argv[optind], parent, flags, NULL);
	if (rc < 0)
		return fail_lib(NULL, rc);
	if (!quiet)
		printf("%s: parent is now %s\n", argv[optind], parent);
	return EXIT_OK;
}
