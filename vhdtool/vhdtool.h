/*
 * vhdtool.h -- shared helpers of the vhdtool verbs (one file per verb).
 */
#ifndef VHDTOOL_H
#define VHDTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libvhd.h"

/* Exit codes: like fsck for check, 0/1 for compare, 2 for usage errors. */
#define EXIT_OK       0
#define EXIT_PROBLEMS 1
#define EXIT_USAGE    2
#define EXIT_FAIL     1

struct verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const char *usage;
};

extern const struct verb verb_create, verb_info, verb_check, verb_convert,
	verb_snapshot, verb_write, verb_read, verb_discard, verb_serve,
	verb_mount, verb_umount, verb_disks, verb_compare, verb_map,
	verb_resize, verb_merge, verb_p2v, verb_compact, verb_reparent,
	verb_repair;

/* Open an image, or a host block device through passthrough/ (then
 * exclusively, refused while mounted or in use).  Messages are printed. */
int open_disk(const char *path, unsigned vhd_flags, const struct vhd_open_opts *o,
	      vhd_disk **out);

/* "vhdtool: " + message + newline on stderr; returns EXIT_FAIL. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The library's last error for @d (NULL: thread), printed as one line. */
int fail_lib(const vhd_disk *d, int rc);
/* Usage error for @v: message plus "try vhdtool VERB --help". */
int usage_error(const struct verb *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void print_usage(const struct verb *v, FILE *out);
/* After getopt returned '?': name the offending argument in one line. */
int bad_option(const struct verb *v, char **argv);

/* Sizes: digits with an optional K, M, G, T (powers of 1024) suffix, an
 * optional trailing "B" or "iB".  Returns 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *out);
void format_size(uint64_t bytes, char *buf, size_t len);

/* Formats and types by name. */
int parse_format(const char *s, enum vhd_format *f);
int parse_type(const char *s, enum vhd_type *t);
const char *format_name(enum vhd_format f);
const char *type_name(enum vhd_type t);

/* JSON string literal (with quotes) of @s on @out. */
void json_string(FILE *out, const char *s);

/* How convert reads its source (source_cache.c). */
enum source_cache { SOURCE_CACHE_AUTO, SOURCE_CACHE_DIRECT, SOURCE_CACHE_BUFFERED };
int parse_source_cache(const char *s, enum source_cache *mode);
/* Open convert's source; *@direct: read it around the page cache. */
int open_convert_source(const char *path, enum source_cache mode,
			const struct vhd_open_opts *o, vhd_disk **out, bool *direct);

/* Progress bar on stderr when it is a TTY and enabled. */
struct progress {
	bool enabled;
	const char *label;
	double start, last;
	uint64_t total;		/* the last total reported */
};
void progress_init(struct progress *p, bool enabled, const char *label);
int progress_update(void *opaque, uint64_t done, uint64_t total);
void progress_finish(struct progress *p, uint64_t total);
double now_seconds(void);

#endif /* VHDTOOL_H */
