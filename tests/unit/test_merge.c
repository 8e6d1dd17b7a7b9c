/*
 * test_merge.c -- merge against an independent model, and crash cuts at
 * every write point of a merge: afterwards either the journal finishes the
 * merge (vhd_merge_resume) with the right content, or, when the cut came
 * before the journal was durable, the untouched chain still reads right.
 * Runs for VHD and VHDX chains.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvhd.h"
#include "model.h"

#define SIZE (4u << 20)

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-merge.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_random(vhd_disk *d, uint8_t *mirror, uint64_t *rng, int n)
{
	uint8_t buf[70000];

	for (int i = 0; i < n; i++) {
		size_t len = 512 * (1 + model_rand(rng) % 100);
		uint64_t off = (model_rand(rng) % (SIZE - len)) & ~511ull;
		model_fill_random(buf, len, rng);
		memcpy(mirror + off, buf, len);
		assert_int_equal(vhd_pwrite(d, buf, len, off), (ssize_t)len);
	}
}

/* base <- mid <- top in @io, with @mirror the content top shows. */
static void build_chain(enum vhd_format fmt, const struct vhd_io_factory *io,
			uint8_t *mirror)
{
	struct vhd_create_opts co = { .format = fmt, .type = VHD_TYPE_DYNAMIC,
				      .size = SIZE, .block_size = 1 << 20, .io = io };
	uint64_t rng = 4242;
	vhd_disk *d;

	memset(mirror, 0, SIZE);
	assert_int_equal(vhd_create("s/base.img", &co, &d), 0);
	write_random(d, mirror, &rng, 40);
	assert_int_equal(vhd_close(d), 0);
	co.type = VHD_TYPE_DIFF;
	co.size = 0;
	co.format = VHD_FMT_AUTO;
	co.parent = "s/base.img";
	assert_int_equal(vhd_create("s/mid.img", &co, &d), 0);
	write_random(d, mirror, &rng, 40);
	assert_int_equal(vhd_zero(d, 1 << 20, 1 << 20, 0), 0);	/* overrides base */
	memset(mirror + (1 << 20), 0, 1 << 20);
	assert_int_equal(vhd_close(d), 0);
	co.parent = "s/mid.img";
	assert_int_equal(vhd_create("s/top.img", &co, &d), 0);
	write_random(d, mirror, &rng, 40);
	assert_int_equal(vhd_close(d), 0);
}

static void assert_content(const char *path, const struct vhd_open_opts *o,
			   const uint8_t *mirror)
{
	uint8_t *buf = malloc(SIZE);
	vhd_disk *d;

	if (vhd_open(path, 0, o, &d) < 0)
		fail_msg("open %s: %s", path, vhd_errmsg(NULL));
	assert_int_equal(vhd_pread(d, buf, SIZE, 0), SIZE);
	for (uint32_t i = 0; i < SIZE; i++)
		if (buf[i] != mirror[i])
			fail_msg("%s: byte %u differs", path, i);
	vhd_close(d);
	free(buf);
}

static void free_stale(char **stale, int n)
{
	for (int i = 0; i < n; i++)
		free(stale[i]);
	free(stale);
}

static void merge_model(enum vhd_format fmt)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(1);
	struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
	uint8_t *mirror = malloc(SIZE);
	struct vhd_check_result res = { 0 };
	char **stale;
	int n;

	build_chain(fmt, o.io, mirror);
	assert_int_equal(vhd_merge("s/top.img", "s/base.img", &o, NULL, NULL, &stale, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(stale[0], "s/top.img");
	assert_string_equal(stale[1], "s/mid.img");
	free_stale(stale, n);
	assert_content("s/base.img", &o, mirror);
	assert_int_equal(vhd_check("s/base.img", 0, &o, NULL, NULL, &res), 0);
	assert_int_equal(res.errors + res.warnings, 0);
	free(mirror);
	vhd_crashsim_free(sim);
}

static void test_merge_vhd(void **state) { merge_model(VHD_FMT_VHD); }
static void test_merge_vhdx(void **state) { merge_model(VHD_FMT_VHDX); }

/* Copy every file of @from (after a crash) into a fresh simulator. */
static struct vhd_crashsim *reload(struct vhd_crashsim *from, unsigned keep)
{
	static const char *const names[] = { "s/base.img", "s/mid.img", "s/top.img",
					     "s/base.img.vhdkit-merge" };
	struct vhd_crashsim *to = vhd_crashsim_new(2);
	char host[400];

	for (size_t i = 0; i < 4; i++) {
		snprintf(host, sizeof(host), "%s/f%zu", dir, i);
		if (vhd_crashsim_save_crash(from, names[i], host, i == 0 || i == 3 ? keep : 100) < 0)
			continue;	/* the journal may not exist */
		assert_int_equal(vhd_crashsim_load(to, names[i], host), 0);
		unlink(host);
	}
	return to;
}

static void merge_cuts(enum vhd_format fmt)
{
	uint8_t *mirror = malloc(SIZE);
	uint64_t total, w0;
	unsigned journal_runs = 0, chain_runs = 0;

	{	/* count the write points of a merge */
		struct vhd_crashsim *sim = vhd_crashsim_new(1);
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		char **stale;
		int n;
		build_chain(fmt, o.io, mirror);
		w0 = vhd_crashsim_writes(sim);
		assert_int_equal(vhd_merge("s/top.img", "s/base.img", &o, NULL, NULL, &stale, &n), 0);
		free_stale(stale, n);
		total = vhd_crashsim_writes(sim) - w0;
		vhd_crashsim_free(sim);
	}
	for (uint64_t cut = 1; cut <= total; cut++) {
		struct vhd_crashsim *sim = vhd_crashsim_new(cut), *after;
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		struct vhd_open_opts a;
		char **stale = NULL;
		int n = 0, rc;

		build_chain(fmt, o.io, mirror);
		vhd_crashsim_cut_after(sim, cut);
		rc = vhd_merge("s/top.img", "s/base.img", &o, NULL, NULL, &stale, &n);
		if (rc == 0) {		/* the last write point: nothing cut */
			free_stale(stale, n);
			vhd_crashsim_free(sim);
			continue;
		}
		after = reload(sim, (unsigned)(cut * 31 % 101));
		vhd_crashsim_free(sim);
		a = (struct vhd_open_opts){ .io = vhd_crashsim_factory(after) };
		rc = vhd_merge_resume("s/base.img", &a, NULL, NULL, &stale, &n);
		if (rc == 0) {
			free_stale(stale, n);
			assert_content("s/base.img", &a, mirror);
			journal_runs++;
		} else {
			/* No durable journal: nothing was written to the target,
			 * and the chain reads as before. */
			assert_content("s/top.img", &a, mirror);
			chain_runs++;
		}
		vhd_crashsim_free(after);
	}
	print_message("%llu write points: %u finished by the journal, %u left the chain intact\n",
		      (unsigned long long)total, journal_runs, chain_runs);
	assert_true(journal_runs > 0);
	free(mirror);
}

static void test_merge_cuts_vhd(void **state) { merge_cuts(VHD_FMT_VHD); }
static void test_merge_cuts_vhdx(void **state) { merge_cuts(VHD_FMT_VHDX); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_vhd),
		cmocka_unit_test(test_merge_vhdx),
		cmocka_unit_test(test_merge_cuts_vhd),
		cmocka_unit_test(test_merge_cuts_vhdx),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
