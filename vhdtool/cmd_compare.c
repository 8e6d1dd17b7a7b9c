/*
 * cmd_compare.c -- vhdtool compare: content equality across formats, exit
 * status like cmp(1): 0 identical, 1 different, 2 trouble.
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_compare = {
	"compare", run, "compare the content of two images (exit 0 same, 1 different)",
	"[--strict] [-q] A B\n"
	"  A and B may be of any formats (raw, VHD, VHDX, chains, devices).  When\n"
	"  the sizes differ, the extra part of the larger must read as zeros;\n"
	"  --strict makes a size difference a difference.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "strict", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc, strict = 0, quiet = 0;
	vhd_disk *a, *b;
	uint64_t diff;

	while ((c = getopt_long(argc, argv, "sq", opts, NULL)) != -1) {
		switch (c) {
		case 's': strict = 1; break;
		case 'q': quiet = 1; break;
		default: return bad_option(&verb_compare, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error(&verb_compare, "expected A and B");
	if (open_disk(argv[optind], 0, NULL, &a) < 0)
		return 2;
	if (open_disk(argv[optind + 1], 0, NULL, &b) < 0) {
		vhd_close(a);
		return 2;
	}
	if (strict && vhd_size(a) != vhd_size(b)) {
		if (!quiet)
			printf("sizes differ: %llu and %llu bytes\n",
			       (unsigned long long)vhd_size(a), (unsigned long long)vhd_size(b));
		rc = 1;
		goto out;
	}
	rc = vhd_compare(a, b, &diff);
	if (rc < 0) {
		fail("%s", vhd_errmsg(NULL)[0] ? vhd_errmsg(NULL) : vhd_strerror(rc));
		rc = 2;
	} else if (rc == 1) {
		if (!quiet)
			printf("content differs at byte %llu\n", (unsigned long long)diff);
	} else if (!quiet) {
		printf("images are identical%s\n",
		       vhd_size(a) != vhd_size(b) ? " (sizes differ; the extra part is zeros)" : "");
	}
out:
	vhd_close(a);
	vhd_close(b);
	return rc;
}
