/*
 * cmd_check.c -- vhdtool check: verify an image and its chain.
 * Exit status like fsck: 0 clean, 1 problems found, 2 could not check.
 */
#include <getopt.h>
#include <string.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_check = {
	"check", run, "verify an image and its parents (exit 0 clean, 1 problems, 2 error)",
	"[--no-parents] [--json] [-q] FILE\n"
	"  Never changes the image. Exit status: 0 clean, 1 problems found,\n"
	"  2 the image could not be checked.",
};

struct out {
	int json, quiet, first;
};

static const char *sev_name(enum vhd_check_severity s)
{
	return s == VHD_CHECK_ERROR ? "error" : s == VHD_CHECK_WARN ? "warning" : "info";
}

static void report(void *opaque, enum vhd_check_severity sev, const char *msg)
{
	struct out *o = opaque;

	if (o->json) {
		printf("%s\n    {\"severity\": \"%s\", \"message\": ", o->first ? "" : ",",
		       sev_name(sev));
		json_string(stdout, msg);
		printf("}");
		o->first = 0;
	} else if (!o->quiet || sev != VHD_CHECK_INFO) {
		printf("%s: %s\n", sev_name(sev), msg);
	}
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-parents", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_check_result res = { 0 };
	struct out o = { .first = 1 };
	unsigned flags = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'n': flags |= VHD_OPEN_NOPARENT; break;
		case 'j': o.json = 1; break;
		case 'q': o.quiet = 1; break;
		default: return bad_option(&verb_check, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_check, "expected one FILE");
	if (o.json)
		printf("{\n  \"file\": "), json_string(stdout, argv[optind]),
		printf(",\n  \"findings\": [");
	rc = vhd_check(argv[optind], flags, NULL, report, &o, &res);
	if (rc < 0) {
		if (o.json)
			printf("]\n}\n");
		fail_lib(NULL, rc);
		return 2;
	}
	if (o.json) {
		printf("%s],\n  \"errors\": %u,\n  \"warnings\": %u,\n  \"clean\": %s\n}\n",
		       o.first ? "" : "\n  ", res.errors, res.warnings,
		       res.errors || res.warnings ? "false" : "true");
	} else if (!o.quiet) {
		if (res.errors || res.warnings)
			printf("%s: %u error(s), %u warning(s)\n", argv[optind],
			       res.errors, res.warnings);
		else
			printf("%s: clean\n", argv[optind]);
	}
	return res.errors || res.warnings ? EXIT_PROBLEMS : EXIT_OK;
}
