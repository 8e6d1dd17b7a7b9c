/*
 * cmd_merge.c -- vhdtool merge: merge a differencing image (or a chain
 * segment) into an ancestor, journaled; --resume finishes an interrupted
 * merge.
 */
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_merge = {
	"merge", run, "merge a child (or chain segment) into its parent or an ancestor",
	"[--into ANCESTOR] [--delete] [-p] [-q] CHILD\n"
	"       --resume [-p] [-q] TARGET\n"
	"  Copies what CHILD (and every layer down to ANCESTOR) stores into\n"
	"  ANCESTOR (default: CHILD's parent).  The merged layers are stale\n"
	"  afterwards; --delete removes them.  A journal TARGET.vhdkit-merge\n"
	"  makes an interrupted merge finish with --resume TARGET.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "into", required_argument, NULL, 'i' },
		{ "resume", no_argument, NULL, 'r' },
		{ "delete", no_argument, NULL, 'd' },
		{ "progress", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *into = NULL;
	int c, rc, resume = 0, del = 0, quiet = 0, want_progress = 0, n = 0;
	struct progress prog;
	char **stale = NULL;

	while ((c = getopt_long(argc, argv, "pq", opts, NULL)) != -1) {
		switch (c) {
		case 'i': into = optarg; break;
		case 'r': resume = 1; break;
		case 'd': del = 1; break;
		case 'p': want_progress = 1; break;
		case 'q': quiet = 1; break;
		default: return bad_option(&verb_merge, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_merge, "expected one image");
	if (resume && into)
		return usage_error(&verb_merge, "--resume takes the target only");
	progress_init(&prog, want_progress && !quiet, "merging");
	if (resume)
		rc = vhd_merge_resume(argv[optind], NULL, progress_update, &prog, &stale, &n);
	else
		rc = vhd_merge(argv[optind], into, NULL, progress_update, &prog, &stale, &n);
	if (prog.enabled)
		fputc('\n', stderr);
	if (rc < 0)
		return fail_lib(NULL, rc);
	for (int i = 0; i < n; i++) {
		if (del && unlink(stale[i]) == 0) {
			if (!quiet)
				printf("deleted %s (merged)\n", stale[i]);
		} else if (!quiet) {
			printf("%s is now stale (merged): delete it\n", stale[i]);
		}
		free(stale[i]);
	}
	free(stale);
	if (!quiet)
		printf("merge complete\n");
	return EXIT_OK;
}
