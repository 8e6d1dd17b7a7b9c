/*
 * test_aio.c -- the asynchronous queue (vhd_aio_*) against an independent
 * model: batches of reads, writes (scatter-gather, aligned and not, inside
 * and across blocks, allocating and overwriting), zeroes and flushes on
 * disjoint ranges in flight together, on raw, fixed/dynamic/differencing
 * VHD and dynamic/differencing VHDX, buffered and with O_DIRECT.  Every read
 * is checked on completion; the whole disk is compared after reopening.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvhd.h"
#include "model.h"

#define SIZE (8u << 20)
#define SLOT (64u << 10)	/* requests of one batch use distinct slots */
#define NSLOTS (SIZE / SLOT)
#define DEPTH 32

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-aio.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

struct job {
	struct vhd_aio a;
	struct iovec iov[3];
	uint8_t *mem;		/* backing of iov (aligned allocation) */
	uint8_t *expect;	/* READ: what the model says */
	size_t len;
};

static void job_free(struct job *j)
{
	free(j->mem);
	free(j->expect);
	memset(j, 0, sizeof(*j));
}

/* A READ or WRITE of 1-3 segments inside slot @slot.  Sizes are sector
 * multiples on aligned buffers most of the time (the kernel path), odd
 * otherwise (the synchronous path). */
static void make_rw(struct job *j, struct model *m, uint64_t *rng, unsigned slot,
		    bool write)
{
	bool odd = model_rand(rng) % 4 == 0;
	int nseg = 1 + (int)(model_rand(rng) % 3);
	size_t seg[3], total = 0;
	uint64_t off;
	uint8_t *p;

	for (int i = 0; i < nseg; i++) {
		seg[i] = odd ? 1 + model_rand(rng) % 9000 : 4096 * (1 + model_rand(rng) % 4);
		total += seg[i];
	}
	off = (uint64_t)slot * SLOT + (odd ? model_rand(rng) % (SLOT - total)
					  : 4096 * (model_rand(rng) % ((SLOT - total) / 4096 + 1)));
	assert_int_equal(posix_memalign((void **)&j->mem, 4096, total + 4096), 0);
	p = j->mem + (odd ? 1 : 0);
	for (int i = 0; i < nseg; i++) {
		j->iov[i].iov_base = p;
		j->iov[i].iov_len = seg[i];
		p += seg[i];
	}
	j->len = total;
	j->a = (struct vhd_aio){ .op = write ? VHD_AIO_WRITE : VHD_AIO_READ,
				 .iov = j->iov, .iovcnt = nseg, .offset = off,
				 .opaque = j };
	if (write) {
		model_fill_random(j->mem + (odd ? 1 : 0), total, rng);
		model_write(m, off, j->mem + (odd ? 1 : 0), total);
	} else {
		j->expect = malloc(total);
		assert_non_null(j->expect);
		memcpy(j->expect, m->cur + off, total);
	}
}

static void check_done(struct job *j)
{
	if (j->a.op == VHD_AIO_READ || j->a.op == VHD_AIO_WRITE)
		assert_int_equal(j->a.result, (ssize_t)j->len);
	else
		assert_int_equal(j->a.result, 0);
	if (j->a.op == VHD_AIO_READ) {
		size_t done = 0;
		for (int i = 0; i < j->a.iovcnt; i++) {
			assert_memory_equal(j->iov[i].iov_base, j->expect + done,
					    j->iov[i].iov_len);
			done += j->iov[i].iov_len;
		}
	}
}

static void run_batches(vhd_disk *d, struct model *m, uint64_t seed)
{
	static struct job jobs[DEPTH];
	struct vhd_aio *reqs[DEPTH], *done[DEPTH];
	uint64_t rng = seed;
	vhd_aioq *q;

	assert_int_equal(vhd_aioq_new(d, DEPTH, &q), 0);
	assert_true(vhd_aioq_eventfd(q) >= 0);
	for (int round = 0; round < 80; round++) {
		bool used[NSLOTS] = { false };
		unsigned n = 1 + model_rand(&rng) % (DEPTH - 1), got = 0;

		for (unsigned i = 0; i < n; i++) {
			unsigned slot, kind = model_rand(&rng) % 10;
			do
				slot = model_rand(&rng) % NSLOTS;
			while (used[slot]);
			used[slot] = true;
			if (kind < 5) {
				make_rw(&jobs[i], m, &rng, slot, true);
			} else if (kind < 9) {
				make_rw(&jobs[i], m, &rng, slot, false);
			} else {
				uint64_t off = (uint64_t)slot * SLOT, len = SLOT / 2;
				uint8_t z[SLOT / 2] = { 0 };
				model_write(m, off, z, len);
				jobs[i].a = (struct vhd_aio){ .op = VHD_AIO_ZERO, .offset = off,
							      .length = len, .opaque = &jobs[i] };
			}
			reqs[i] = &jobs[i].a;
		}
		if (round % 10 == 9) {
			jobs[n].a = (struct vhd_aio){ .op = VHD_AIO_FLUSH, .opaque = &jobs[n] };
			reqs[n] = &jobs[n].a;
			n++;
		}
		assert_int_equal(vhd_aio_submit(q, reqs, n), (int)n);
		while (got < n) {
			int k = vhd_aio_reap(q, done, 1, DEPTH);
			assert_true(k > 0);
			for (int i = 0; i < k; i++)
				check_done(done[i]->opaque);
			got += (unsigned)k;
		}
		assert_int_equal(vhd_aioq_inflight(q), 0);
		for (unsigned i = 0; i < n; i++)
			job_free(&jobs[i]);
	}
	vhd_aioq_free(q);
}

enum kind { RAW, VHD_FIXED, VHD_DYN, VHD_DIFF, VHDX_DYN, VHDX_DIFF };

static void one_case(enum kind k, bool direct)
{
	static const char *names[] = { "raw", "fixed", "dyn", "diff", "xdyn", "xdiff" };
	struct vhd_create_opts co = { .format = VHD_FMT_VHD, .type = VHD_TYPE_DYNAMIC,
				      .size = SIZE, .block_size = 1 << 20 };
	char path[400], base[400];
	uint8_t *initial = calloc(1, SIZE);
	uint64_t rng = 99 + (uint64_t)k;
	struct model m;
	vhd_disk *d;

	assert_non_null(initial);
	snprintf(path, sizeof(path), "%s/%s-%d.img", dir, names[k], direct);
	snprintf(base, sizeof(base), "%s/%s-%d-base.img", dir, names[k], direct);
	if (k == RAW)
		co.format = VHD_FMT_RAW;
	if (k == VHD_FIXED)
		co.type = VHD_TYPE_FIXED;
	if (k == VHDX_DYN || k == VHDX_DIFF)
		co.format = VHD_FMT_VHDX;
	if (k == VHD_DIFF || k == VHDX_DIFF) {
		/* a parent with data in some blocks, not in others */
		assert_int_equal(vhd_create(base, &co, &d), 0);
		for (uint64_t off = 0; off < SIZE; off += 3 * SLOT) {
			model_fill_random(initial + off, SLOT, &rng);
			assert_int_equal(vhd_pwrite(d, initial + off, SLOT, off), (ssize_t)SLOT);
		}
		assert_int_equal(vhd_close(d), 0);
		co.type = VHD_TYPE_DIFF;
		co.parent = base;
	}
	assert_int_equal(vhd_create(path, &co, NULL), 0);
	assert_int_equal(model_init(&m, SIZE, initial), 0);
	assert_int_equal(vhd_open(path, VHD_OPEN_RDWR | (direct ? VHD_OPEN_DIRECT : 0),
				  NULL, &d), 0);
	run_batches(d, &m, 1000 + (uint64_t)k * 2 + direct);
	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_open(path, 0, NULL, &d), 0);
	assert_true(model_compare(&m, d) == UINT64_MAX);
	assert_int_equal(vhd_close(d), 0);
	model_free(&m);
	free(initial);
}

static void test_raw(void **s) { one_case(RAW, false); one_case(RAW, true); }
static void test_vhd_fixed(void **s) { one_case(VHD_FIXED, false); one_case(VHD_FIXED, true); }
static void test_vhd_dynamic(void **s) { one_case(VHD_DYN, false); one_case(VHD_DYN, true); }
static void test_vhd_diff(void **s) { one_case(VHD_DIFF, false); one_case(VHD_DIFF, true); }
static void test_vhdx_dynamic(void **s) { one_case(VHDX_DYN, false); one_case(VHDX_DYN, true); }
static void test_vhdx_diff(void **s) { one_case(VHDX_DIFF, false); one_case(VHDX_DIFF, true); }

/* Errors come back in the request; a full queue takes what fits. */
static void test_errors_and_full_queue(void **s)
{
	struct vhd_create_opts co = { .format = VHD_FMT_VHD, .type = VHD_TYPE_DYNAMIC,
				      .size = SIZE };
	char path[400];
	uint8_t buf[4096] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct vhd_aio a[4], *r[4], *done[4];
	vhd_aioq *q;
	vhd_disk *d;

	snprintf(path, sizeof(path), "%s/err.vhd", dir);
	assert_int_equal(vhd_create(path, &co, NULL), 0);
	assert_int_equal(vhd_open(path, 0, NULL, &d), 0);
	assert_int_equal(vhd_aioq_new(d, 0, &q), -EINVAL);
	assert_int_equal(vhd_aioq_new(d, 2, &q), 0);
	a[0] = (struct vhd_aio){ .op = VHD_AIO_WRITE, .iov = &iov, .iovcnt = 1 };
	a[1] = (struct vhd_aio){ .op = VHD_AIO_READ, .iov = &iov, .iovcnt = 1,
				 .offset = SIZE - 2048 };
	a[2] = (struct vhd_aio){ .op = VHD_AIO_READ, .iov = &iov, .iovcnt = 1 };
	for (int i = 0; i < 3; i++)
		r[i] = &a[i];
	assert_int_equal(vhd_aio_submit(q, r, 3), 2);	/* depth 2 */
	assert_int_equal(vhd_aio_reap(q, done, 2, 4), 2);
	assert_int_equal(a[0].result, -EROFS);
	assert_int_equal(a[1].result, -EINVAL);
	assert_int_equal(vhd_aio_submit(q, &r[2], 1), 1);
	assert_int_equal(vhd_aio_reap(q, done, 1, 4), 1);
	assert_int_equal(a[2].result, 4096);
	vhd_aioq_free(q);
	assert_int_equal(vhd_close(d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_vhd_fixed),
		cmocka_unit_test(test_vhd_dynamic),
		cmocka_unit_test(test_vhd_diff),
		cmocka_unit_test(test_vhdx_dynamic),
		cmocka_unit_test(test_vhdx_diff),
		cmocka_unit_test(test_errors_and_full_queue),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
