/* tests.h -- the three things the guest can do (cmdline test=rw|bad|bench).
 * Each returns 0 when the test passed and -1 after printing why not;
 * main.c prints the GUEST RESULT line. */
#ifndef GUEST_TESTS_H
#define GUEST_TESTS_H
#include "blk.h"

int test_rw(void);
int test_bad(void);
int test_bench(void);

/* test_rw.c, shared with the others */
extern uint8_t wbuf[], rbuf[];	/* PLAN_CHUNK + 4 KiB each, 4 KiB aligned */
#define IOBUF_SIZE (256 * 1024 + 4096)
int disk_get_id(struct blk *b);	/* fills b->id; prints it */
void disk_summary(struct blk *b, uint64_t seed);
#endif
