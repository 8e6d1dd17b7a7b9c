/*
 * cmd_info.c -- vhdtool info: an image and its whole chain, as text or JSON.
 */
#include <getopt.h>
#include <string.h>

#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_info = {
	"info", run, "show an image and its parent chain",
	"[--json | --tree] [--size-rule auto|current|chs] FILE\n"
	"  Lists every layer from FILE down to the base image; --tree draws the\n"
	"  chain one line per layer.",
};

static void creator_string(const struct vhd_info *i, char out[5])
{
	for (int k = 0; k < 4; k++) {
		unsigned char ch = (unsigned char)i->creator_app[k];
		out[k] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
	}
	out[4] = '\0';
}

static void print_text(const struct vhd_info *i, unsigned layer)
{
	char size[32], fsize[32], uuid[37], creator[5];

	format_size(i->size, size, sizeof(size));
	format_size(i->file_size, fsize, sizeof(fsize));
	printf("%s%s\n", layer ? "parent: " : "image: ", i->path);
	printf("  format:        %s%s%s\n", format_name(i->format),
	       i->format == VHD_FMT_RAW ? "" : " ",
	       i->format == VHD_FMT_RAW ? "" : type_name(i->type));
	printf("  virtual size:  %s (%llu bytes)\n", size, (unsigned long long)i->size);
	printf("  file size:     %s\n", fsize);
	if (i->format != VHD_FMT_VHD && i->format != VHD_FMT_VHDX) {
		if (i->type == VHD_TYPE_DIFF)
			printf("  backing file:  %s\n", i->parent_path ? i->parent_path : "(not resolved)");
		return;
	}
	vhd_uuid_format(i->uuid, uuid);
	if (i->format == VHD_FMT_VHDX) {
		printf("  disk id:       %s (page 83)\n", uuid);
		vhd_uuid_format(i->data_write_guid, uuid);
		printf("  data write id: %s\n", uuid);
		printf("  sectors:       %u logical, %u physical\n", i->logical_sector,
		       i->physical_sector);
	} else {
		creator_string(i, creator);
		printf("  uuid:          %s\n", uuid);
		printf("  creator:       \"%s\" version 0x%08x\n", creator, i->creator_version);
		printf("  geometry:      %u/%u/%u (CHS), size taken from %s\n", i->cylinders,
		       i->heads, i->sectors_per_track, i->size_source);
		if (i->current_size != i->size)
			printf("  current size:  %llu bytes\n", (unsigned long long)i->current_size);
	}
	if (i->type == VHD_TYPE_FIXED)
		return;
	format_size(i->block_size, size, sizeof(size));
	printf("  block size:    %s\n", size);
	printf("  blocks:        %u allocated of %u entries\n", i->blocks_allocated,
	       i->max_table_entries);
	if (i->type != VHD_TYPE_DIFF)
		return;
	vhd_uuid_format(i->parent_uuid, uuid);
	printf("  parent %s %s\n", i->format == VHD_FMT_VHDX ? "linkage:" : "uuid:   ", uuid);
	printf("  parent name:   %s\n", i->parent_name ? i->parent_name : "");
	printf("  parent path:   %s\n", i->parent_path ? i->parent_path : "(not resolved)");
}

static void print_json(const struct vhd_info *i, unsigned layer)
{
	char uuid[37], creator[5];

	printf("%s    {\"path\": ", layer ? ",\n" : "");
	json_string(stdout, i->path);
	printf(", \"format\": \"%s\", \"type\": \"%s\", \"virtual_size\": %llu, "
	       "\"file_size\": %llu", format_name(i->format), type_name(i->type),
	       (unsigned long long)i->size, (unsigned long long)i->file_size);
	if (i->format == VHD_FMT_VHDX) {
		vhd_uuid_format(i->uuid, uuid);
		printf(", \"uuid\": \"%s\"", uuid);
		vhd_uuid_format(i->data_write_guid, uuid);
		printf(", \"data_write_guid\": \"%s\", \"logical_sector\": %u, "
		       "\"physical_sector\": %u", uuid, i->logical_sector, i->physical_sector);
	} else if (i->format == VHD_FMT_VHD) {
		creator_string(i, creator);
		vhd_uuid_format(i->uuid, uuid);
		printf(", \"uuid\": \"%s\", \"creator\": ", uuid);
		json_string(stdout, creator);
		printf(", \"current_size\": %llu, \"cylinders\": %u, \"heads\": %u, "
		       "\"sectors_per_track\": %u, \"size_source\": \"%s\"",
		       (unsigned long long)i->current_size, i->cylinders, i->heads,
		       i->sectors_per_track, i->size_source);
	}
	if ((i->format == VHD_FMT_VHD || i->format == VHD_FMT_VHDX) &&
	    i->type != VHD_TYPE_FIXED)
		printf(", \"block_size\": %u, \"blocks_allocated\": %u, "
		       "\"max_table_entries\": %u", i->block_size, i->blocks_allocated,
		       i->max_table_entries);
	if (i->type == VHD_TYPE_DIFF) {
		vhd_uuid_format(i->parent_uuid, uuid);
		printf(", \"parent_uuid\": \"%s\", \"parent_name\": ", uuid);
		json_string(stdout, i->parent_name);
		printf(", \"parent_path\": ");
		if (i->parent_path)
			json_string(stdout, i->parent_path);
		else
			printf("null");
	}
	printf("}");
}

/* One line per layer: name, format and type, size, allocation. */
static void print_tree(const struct vhd_info *i, unsigned layer)
{
	char size[32], fsize[32];

	format_size(i->size, size, sizeof(size));
	format_size(i->file_size, fsize, sizeof(fsize));
	printf("%*s%s%s  [%s %s, %s, file %s", (int)(layer ? 3 * (layer - 1) : 0), "",
	       layer ? "└─ " : "", i->path, format_name(i->format),
	       i->format == VHD_FMT_RAW ? "" : type_name(i->type), size, fsize);
	if ((i->format == VHD_FMT_VHD || i->format == VHD_FMT_VHDX) &&
	    i->type != VHD_TYPE_FIXED)
		printf(", %u of %u blocks", i->blocks_allocated, i->max_table_entries);
	printf("]\n");
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "tree", no_argument, NULL, 't' },
		{ "size-rule", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_open_opts oo = { 0 };
	int c, rc, json = 0, tree = 0, broken = 0;
	char chain_err[1024] = "";
	vhd_disk *d;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 't': tree = 1; break;
		case 'r':
			if (!strcmp(optarg, "auto")) oo.size_rule = VHD_SIZE_AUTO;
			else if (!strcmp(optarg, "current")) oo.size_rule = VHD_SIZE_CURRENT;
			else if (!strcmp(optarg, "chs")) oo.size_rule = VHD_SIZE_CHS;
			else return usage_error(&verb_info, "unknown size rule '%s'", optarg);
			break;
		default: return bad_option(&verb_info, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_info, "expected one FILE");
	if (json && tree)
		return usage_error(&verb_info, "--json and --tree exclude each other");
	rc = vhd_open(argv[optind], 0, &oo, &d);
	if (rc == VHD_E_NOPARENT || rc == VHD_E_PARENT_ID || rc == VHD_E_CHAIN) {
		/* Show what can be shown, then say what is broken. */
		snprintf(chain_err, sizeof(chain_err), "%s", vhd_errmsg(NULL));
		broken = 1;
		rc = vhd_open(argv[optind], VHD_OPEN_NOPARENT, &oo, &d);
	}
	if (rc < 0)
		return fail_lib(NULL, rc);
	if (json)
		printf("{\n  \"chain\": [\n");
	unsigned layer = 0;
	for (vhd_disk *l = d; l; l = vhd_parent(l), layer++) {
		struct vhd_info i;
		vhd_get_info(l, &i);
		if (json)
			print_json(&i, layer);
		else if (tree)
			print_tree(&i, layer);
		else
			print_text(&i, layer);
	}
	if (json) {
		printf("\n  ],\n  \"chain_error\": ");
		if (broken)
			json_string(stdout, chain_err);
		else
			printf("null");
		printf("\n}\n");
	}
	vhd_close(d);
	if (broken)
		return fail("%s", chain_err);
	return EXIT_OK;
}
