/*
 * cmd_disks.c -- vhdtool disks: the host's block devices, with size,
 * sector sizes and whether each can be passed through (and why not).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "passthrough.h"
#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_disks = {
	"disks", run, "list host block devices and whether they can be passed through",
	"[--json] [--all]\n"
	"  --all also lists devices without a medium (empty loop devices).",
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct pt_info *)a)->name, ((const struct pt_info *)b)->name);
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct pt_info *v;
	size_t n;
	int c, json = 0, all = 0, first = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'a': all = 1; break;
		default: return bad_option(&verb_disks, argv);
		}
	}
	if (optind != argc)
		return usage_error(&verb_disks, "no arguments expected");
	if (pt_list(&v, &n) < 0)
		return fail("%s", pt_errmsg());
	qsort(v, n, sizeof(*v), by_name);
	if (json)
		printf("[");
	else
		printf("%-12s %10s %5s %5s %3s %3s  %s\n", "DEVICE", "SIZE", "LSEC", "PSEC",
		       "RO", "ROT", "PASS-THROUGH");
	for (size_t i = 0; i < n; i++) {
		struct pt_info *p = &v[i];
		char size[32];
		if (!all && p->size == 0)
			continue;
		if (json) {
			printf("%s\n  {\"device\": ", first ? "" : ",");
			json_string(stdout, p->path);
			printf(", \"size\": %llu, \"logical_sector\": %u, \"physical_sector\": %u, "
			       "\"read_only\": %s, \"rotational\": %s, \"partition\": %s, "
			       "\"discard\": %s, \"model\": ", (unsigned long long)p->size,
			       p->logical_sector, p->physical_sector, p->read_only ? "true" : "false",
			       p->rotational ? "true" : "false", p->partition ? "true" : "false",
			       p->discard_max ? "true" : "false");
			json_string(stdout, p->model);
			printf(", \"serial\": ");
			json_string(stdout, p->serial);
			printf(", \"usable\": %s, \"reason\": ", p->usable ? "true" : "false");
			json_string(stdout, p->usable ? "" : p->why);
			printf("}");
			first = 0;
			continue;
		}
		format_size(p->size, size, sizeof(size));
		printf("%-12s %10s %5u %5u %3s %3s  %s%s%s\n", p->path, size, p->logical_sector,
		       p->physical_sector, p->read_only ? "yes" : "no", p->rotational ? "yes" : "no",
		       p->usable ? "yes" : "no: ", p->usable ? "" : p->why,
		       *p->model ? "" : "");
	}
	if (json)
		printf("\n]\n");
	free(v);
	return EXIT_OK;
}
