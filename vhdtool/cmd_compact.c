/*
 * cmd_compact.c -- vhdtool compact: reclaim the space of all-zero,
 * discarded and parent-equal blocks of a dynamic or differencing image.
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_compact = {
	"compact", run, "reclaim unused blocks of a dynamic or differencing image and shrink the file",
	"[-p] [--json] [-q] IMAGE\n"
	"  Drops blocks that read the same without them (all-zero blocks of a\n"
	"  dynamic disk; blocks of a differencing disk equal to the parent's\n"
	"  data), moves the last blocks into the holes and truncates the file.\n"
	"  An all-zero block over parent data is kept (VHD) or marked ZERO\n"
	"  (VHDX).  Content and identity do not change; children stay valid.\n"
	"  Crash-safe: an interrupted compact leaves a valid image.\n"
	"  -p draws a progress bar on a terminal.",
};

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_compact_stats st;
	int c, rc, quiet = 0, json = 0, want_progress = 0;
	struct progress prog;

	while ((c = getopt_long(argc, argv, "pq", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 'p': want_progress = 1; break;
		default: return bad_option(&verb_compact, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_compact, "expected one IMAGE");
	progress_init(&prog, want_progress && !quiet, "compacting");
	rc = vhd_compact(argv[optind], 0, NULL, progress_update, &prog, &st);
	if (rc < 0) {
		if (prog.enabled)
			fputc('\n', stderr);
		return fail_lib(NULL, rc);
	}
	progress_finish(&prog, prog.total);
	if (json) {
		printf("{\"file\": ");
		json_string(stdout, argv[optind]);
		printf(", \"blocks_before\": %llu, \"blocks_after\": %llu, \"dropped\": %llu, "
		       "\"zeroed\": %llu, \"kept_zero\": %llu, \"moved\": %llu, "
		       "\"file_before\": %llu, \"file_after\": %llu}\n",
		       (unsigned long long)st.blocks_before, (unsigned long long)st.blocks_after,
		       (unsigned long long)st.dropped, (unsigned long long)st.zeroed,
		       (unsigned long long)st.kept_zero, (unsigned long long)st.moved,
		       (unsigned long long)st.file_before, (unsigned long long)st.file_after);
	} else if (!quiet) {
		printf("%s: %llu blocks dropped, %llu marked zero, %llu moved; %llu -> %llu blocks, file %llu -> %llu bytes\n",
		       argv[optind], (unsigned long long)st.dropped, (unsigned long long)st.zeroed,
		       (unsigned long long)st.moved, (unsigned long long)st.blocks_before,
		       (unsigned long long)st.blocks_after, (unsigned long long)st.file_before,
		       (unsigned long long)st.file_after);
		if (st.kept_zero)
			printf("%s: %llu all-zero blocks kept: the parent holds other data there\n",
			       argv[optind], (unsigned long long)st.kept_zero);
	}
	return EXIT_OK;
}
