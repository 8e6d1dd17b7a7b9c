/*
 * model.h -- an independent model of a disk for randomized tests.
 *
 * The model keeps the bytes the disk must hold now (`cur`), the bytes it
 * must hold after a crash as of the last completed flush (`durable`), and
 * the log of writes issued since that flush.  After a crash each byte must
 * equal its durable value or the value some logged write gave it (any write
 * since the flush may or may not have landed, in pieces).  It shares no code
 * with libvhd.
 */
#ifndef TESTS_MODEL_H
#define TESTS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhd.h"

struct model_write {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct model {
	uint64_t size;
	uint8_t *cur;
	uint8_t *durable;
	struct model_write *log;	/* writes since the last flush */
	size_t nlog, caplog;
};

int model_init(struct model *m, uint64_t size, const uint8_t *initial);
void model_free(struct model *m);
/* Record a write about to be issued. */
void model_write(struct model *m, uint64_t off, const void *buf, size_t len);
void model_fill_random(uint8_t *buf, size_t len, uint64_t *rng);
uint64_t model_rand(uint64_t *rng);
void model_flush(struct model *m);
/* Compare the whole disk with `cur`; returns the first differing offset or
 * UINT64_MAX. */
uint64_t model_compare(const struct model *m, vhd_disk *d);
/* After a crash: every byte must equal `durable` or a logged write.  Returns
 * the first bad offset or UINT64_MAX. */
uint64_t model_check_crash(const struct model *m, vhd_disk *d);

#endif /* TESTS_MODEL_H */
