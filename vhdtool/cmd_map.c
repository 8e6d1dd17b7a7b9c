/*
 * cmd_map.c -- vhdtool map: where a disk's data lives, extent by extent:
 * data in which layer of the chain, or zeros stored nowhere.
 */
#include <getopt.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_map = {
	"map", run, "show the allocation map of an image (which layer holds what)",
	"[--json] IMAGE\n"
	"  One line per extent: offset, length, \"data\" with the layer holding it\n"
	"  (0 = IMAGE, 1 = its parent, ...) or \"zero\".",
};

struct map_out {
	vhd_disk *top;
	int json, first;
};

static const char *layer_path(vhd_disk *top, unsigned depth)
{
	struct vhd_info i;
	vhd_disk *l = top;

	while (depth-- && l)
		l = vhd_parent(l);
	if (!l)
		return "?";
	vhd_get_info(l, &i);
	return i.path;
}

static int print_extent(void *opaque, const struct vhd_extent *e)
{
	struct map_out *m = opaque;
	bool data = e->type == VHD_EXT_DATA;

	if (m->json) {
		printf("%s\n  {\"offset\": %llu, \"length\": %llu, \"type\": \"%s\"",
		       m->first ? "" : ",", (unsigned long long)e->offset,
		       (unsigned long long)e->length, data ? "data" : "zero");
		if (data) {
			printf(", \"depth\": %u, \"file\": ", e->depth);
			json_string(stdout, layer_path(m->top, e->depth));
		}
		printf("}");
		m->first = 0;
	} else {
		printf("%15llu %15llu  %s", (unsigned long long)e->offset,
		       (unsigned long long)e->length, data ? "data" : "zero");
		if (data)
			printf("  %u %s", e->depth, layer_path(m->top, e->depth));
		printf("\n");
	}
	return 0;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct map_out m = { .first = 1 };
	vhd_disk *d;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return bad_option(&verb_map, argv);
		m.json = 1;
	}
	if (optind != argc - 1)
		return usage_error(&verb_map, "expected IMAGE");
	if (open_disk(argv[optind], 0, NULL, &d) < 0)
		return EXIT_FAIL;
	m.top = d;
	if (m.json)
		printf("[");
	else
		printf("%15s %15s  %s\n", "OFFSET", "LENGTH", "TYPE  LAYER FILE");
	rc = vhd_extents(d, 0, vhd_size(d), print_extent, &m);
	if (m.json)
		printf("\n]\n");
	if (rc < 0)
		fail_lib(d, rc);
	vhd_close(d);
	return rc < 0 ? EXIT_FAIL : EXIT_OK;
}
