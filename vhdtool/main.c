/*
 * main.c -- vhdtool: dispatch to one file per verb.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "vhdtool.h"

static const struct verb *const verbs[] = {
	&verb_create, &verb_info, &verb_check, &verb_convert, &verb_snapshot,
	&verb_write, &verb_read, &verb_discard, &verb_serve, &verb_mount, &verb_umount,
	&verb_disks, &verb_compare, &verb_map, &verb_resize,
	&verb_merge, &verb_compact, &verb_repair, &verb_reparent,
	&verb_p2v,
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static void top_usage(FILE *out)
{
	fprintf(out, "usage: vhdtool VERB [OPTIONS] ARGS...\n\nverbs:\n");
	for (size_t i = 0; i < NVERBS; i++)
		fprintf(out, "  %-10s %s\n", verbs[i]->name, verbs[i]->summary);
	fprintf(out, "\nvhdtool VERB --help shows a verb's options.\n");
}

int main(int argc, char **argv)
{
	opterr = 0;	/* verbs report bad options in one line themselves */
	if (argc < 2) {
		top_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		top_usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("vhdtool %s\n", VHDKIT_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < NVERBS; i++) {
		if (strcmp(argv[1], verbs[i]->name))
			continue;
		for (int a = 2; a < argc; a++) {
			if (!strcmp(argv[a], "--"))
				break;
			if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
				print_usage(verbs[i], stdout);
				return EXIT_OK;
			}
		}
		return verbs[i]->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "vhdtool: unknown verb '%s' (vhdtool --help lists them)\n",
		argv[1]);
	return EXIT_USAGE;
}
