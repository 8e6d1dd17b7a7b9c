/*
 * cmd_repair.c -- vhdtool repair: list, then make, the repairs of a
 * damaged image; --dry-run only lists them.
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_repair = {
	"repair", run, "repair a damaged image (footer, header, BAT, region table)",
	"[--dry-run] [-q] IMAGE\n"
	"  Prints every change first, then makes them in a crash-safe order:\n"
	"  VHD footer from its backup copy (or the copy from the footer), header\n"
	"  checksum, an interrupted reparent, BAT entries past EOF or overlapping\n"
	"  (cleared; the lost range is named), unreferenced space at the end;\n"
	"  VHDX header, region table from its copy, BAT entries outside the file.\n"
	"  --dry-run only prints.  Exit 0 repaired or nothing to do, 1 failed.",
};

static void print_action(void *opaque, const char *action)
{
	const char *path = opaque;

	printf("%s: %s\n", path, action);
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_repair_result res;
	unsigned flags = 0;
	int c, rc, quiet = 0;

	while ((c = getopt_long(argc, argv, "nq", opts, NULL)) != -1) {
		switch (c) {
		case 'n': flags |= VHD_REPAIR_DRY_RUN; break;
		case 'q': quiet = 1; break;
		default: return bad_option(&verb_repair, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_repair, "expected one IMAGE");
	rc = vhd_repair(argv[optind], flags, NULL, quiet ? NULL : print_action,
			argv[optind], &res);
	if (rc < 0)
		return fail_lib(NULL, rc);
	if (!quiet) {
		if (!res.actions)
			printf("%s: nothing to repair\n", argv[optind]);
		else if (flags & VHD_REPAIR_DRY_RUN)
			printf("%s: %u change(s) planned, none made (dry run)\n",
			       argv[optind], res.actions);
		else
			printf("%s: %u change(s) made%s\n", argv[optind], res.actions,
			       res.lost_blocks ? "; data of the cleared blocks is lost" : "");
	}
	return EXIT_OK;
}
