/*
 * test_reparent.c -- reparent cut at every write point (VHD and VHDX).  The
 * child first hangs under s/base; the new parent s/base2 is a byte copy
 * (same identity).  After a crash the child must read exactly as before
 * (under the old or the new parent) and check clean -- directly, or after
 * vhd_repair() when the crash tore the VHD header (then the journal is
 * there and repair finishes the reparent).
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
#define RUNS 12		/* crash images per write point: none, all, 10 random */

static char dir[256];
static const char *const names[] = { "s/base", "s/base2", "s/child",
				     "s/child.vhdkit-reparent" };

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vhdkit-reparent.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Move every file of @from (as a crash would leave it) into a new
 * simulator; @keep: percent of pending sector writes kept. */
static struct vhd_crashsim *reload(struct vhd_crashsim *from, unsigned keep,
				   uint64_t seed)
{
	struct vhd_crashsim *to = vhd_crashsim_new(seed);
	char host[400];

	for (size_t i = 0; i < 4; i++) {
		snprintf(host, sizeof(host), "%s/f%zu", dir, i);
		if (vhd_crashsim_save_crash(from, names[i], host, keep) < 0)
			continue;
		assert_int_equal(vhd_crashsim_load(to, names[i], host), 0);
		unlink(host);
	}
	return to;
}

static void build(enum vhd_format fmt, struct vhd_crashsim **simp, uint8_t *mirror)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(5), *copy;
	struct vhd_create_opts co = { .format = fmt, .type = VHD_TYPE_DYNAMIC,
				      .size = SIZE, .block_size = 1 << 20,
				      .io = vhd_crashsim_factory(sim) };
	struct vhd_open_opts o = { .io = co.io };
	uint8_t buf[65536];
	uint64_t rng = 9;
	vhd_disk *d;

	assert_int_equal(vhd_create("s/base", &co, &d), 0);
	model_fill_random(buf, sizeof(buf), &rng);
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), 100000), sizeof(buf));
	assert_int_equal(vhd_close(d), 0);
	co.type = VHD_TYPE_DIFF;
	co.size = 0;
	co.parent = "s/base";
	assert_int_equal(vhd_create("s/child", &co, &d), 0);
	model_fill_random(buf, sizeof(buf), &rng);
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), 2u << 20), sizeof(buf));
	assert_int_equal(vhd_close(d), 0);
	/* s/base2: the same bytes as s/base, durable */
	copy = reload(sim, 100, 6);
	vhd_crashsim_free(sim);
	sim = copy;
	{
		char host[400];
		snprintf(host, sizeof(host), "%s/copy", dir);
		assert_int_equal(vhd_crashsim_save_crash(sim, "s/base", host, 100), 0);
		assert_int_equal(vhd_crashsim_load(sim, "s/base2", host), 0);
		unlink(host);
	}
	o.io = vhd_crashsim_factory(sim);
	assert_int_equal(vhd_open("s/child", 0, &o, &d), 0);
	assert_int_equal(vhd_pread(d, mirror, SIZE, 0), SIZE);
	vhd_close(d);
	*simp = sim;
}

static void assert_reads(const struct vhd_open_opts *o, const uint8_t *mirror)
{
	uint8_t *buf = malloc(SIZE);
	struct vhd_check_result res = { 0 };
	vhd_disk *d;

	if (vhd_open("s/child", 0, o, &d) < 0)
		fail_msg("open: %s", vhd_errmsg(NULL));
	assert_int_equal(vhd_pread(d, buf, SIZE, 0), SIZE);
	assert_memory_equal(buf, mirror, SIZE);
	vhd_close(d);
	assert_int_equal(vhd_check("s/child", 0, o, NULL, NULL, &res), 0);
	assert_int_equal(res.errors + res.warnings, 0);
	free(buf);
}

static void cuts(enum vhd_format fmt)
{
	uint8_t *mirror = malloc(SIZE);
	struct vhd_crashsim *sim;
	uint64_t total, w0;
	unsigned repaired = 0;

	build(fmt, &sim, mirror);
	{
		struct vhd_open_opts o = { .io = vhd_crashsim_factory(sim) };
		w0 = vhd_crashsim_writes(sim);
		if (vhd_reparent("s/child", "s/base2", 0, &o) < 0)
			fail_msg("reparent: %s", vhd_errmsg(NULL));
		total = vhd_crashsim_writes(sim) - w0;
		assert_reads(&o, mirror);
		vhd_crashsim_free(sim);
	}
	for (uint64_t run = 0; run < RUNS * total; run++) {
		uint64_t cut = run / RUNS + 1;
		unsigned keep = run % RUNS == 0 ? 0 : run % RUNS == 1 ? 100 : 50;
		struct vhd_crashsim *after;
		struct vhd_open_opts o, a;
		vhd_disk *d;

		build(fmt, &sim, mirror);
		o = (struct vhd_open_opts){ .io = vhd_crashsim_factory(sim) };
		vhd_crashsim_cut_after(sim, cut);
		if (vhd_reparent("s/child", "s/base2", 0, &o) == 0) {
			vhd_crashsim_free(sim);
			continue;
		}
		after = reload(sim, keep, run + 10);
		vhd_crashsim_free(sim);
		a = (struct vhd_open_opts){ .io = vhd_crashsim_factory(after) };
		if (vhd_open("s/child", 0, &a, &d) < 0) {
			if (vhd_repair("s/child", 0, &a, NULL, NULL, NULL) < 0)
				fail_msg("cut %llu: repair: %s", (unsigned long long)cut,
					 vhd_errmsg(NULL));
			repaired++;
		} else {
			vhd_close(d);
		}
		assert_reads(&a, mirror);
		vhd_crashsim_free(after);
	}
	print_message("%llu write points, %u crash images finished by repair\n",
		      (unsigned long long)total, repaired);
	free(mirror);
}

static void test_reparent_cuts_vhd(void **s) { cuts(VHD_FMT_VHD); }

/* The crash model cuts at write points, and the header write is followed
 * by its sync, so a torn header is made by hand: the journal is durable
 * (a cut at the header write), then the first sector of the new header
 * lands without the second.  A strict open refuses the mix; repair
 * finishes the reparent from the journal. */
static void test_reparent_torn_header_vhd(void **s)
{
	uint8_t *mirror = malloc(SIZE), sector[512];
	struct vhd_crashsim *sim, *after;
	struct vhd_open_opts o, a;
	struct vhd_repair_result res;
	char host[4][400];
	vhd_disk *d;
	FILE *j, *c;

	build(VHD_FMT_VHD, &sim, mirror);
	o = (struct vhd_open_opts){ .io = vhd_crashsim_factory(sim) };
	vhd_crashsim_cut_after(sim, 4);	/* footer, 2 locators, journal */
	assert_true(vhd_reparent("s/child", "s/base2", 0, &o) < 0);
	for (int i = 0; i < 4; i++) {
		snprintf(host[i], sizeof(host[i]), "%s/t%d", dir, i);
		assert_int_equal(vhd_crashsim_save_crash(sim, names[i], host[i], 100), 0);
	}
	vhd_crashsim_free(sim);
	j = fopen(host[3], "rb");
	c = fopen(host[2], "r+b");
	assert_non_null(j);
	assert_non_null(c);
	assert_int_equal(fseek(j, 32, SEEK_SET), 0);
	assert_int_equal(fread(sector, 1, 512, j), 512);
	assert_int_equal(fseek(c, 512, SEEK_SET), 0);	/* header sector 1 */
	assert_int_equal(fwrite(sector, 1, 512, c), 512);
	fclose(j);
	fclose(c);
	after = vhd_crashsim_new(4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vhd_crashsim_load(after, names[i], host[i]), 0);
		unlink(host[i]);
	}
	a = (struct vhd_open_opts){ .io = vhd_crashsim_factory(after) };
	assert_int_equal(vhd_open("s/child", 0, &a, &d), VHD_E_CHECKSUM);
	assert_int_equal(vhd_repair("s/child", 0, &a, NULL, NULL, &res), 0);
	assert_true(res.actions >= 1);
	assert_reads(&a, mirror);
	assert_int_equal(vhd_open("s/child", VHD_OPEN_NOPARENT, &a, &d), 0);
	{
		struct vhd_info info;
		vhd_get_info(d, &info);
		assert_non_null(strstr(info.parent_name, "base2"));
	}
	vhd_close(d);
	vhd_crashsim_free(after);
	free(mirror);
}

static void test_reparent_cuts_vhdx(void **s) { cuts(VHD_FMT_VHDX); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reparent_cuts_vhd),
		cmocka_unit_test(test_reparent_torn_header_vhd),
		cmocka_unit_test(test_reparent_cuts_vhdx),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
