/*
 * test_engine.c -- libvhd against an independent model: random workloads on
 * fixed, dynamic and differencing chains, concurrency, extents, and crash
 * cuts at every write point with the crash-simulating backend.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvhd.h"
#include "model.h"

static char tmpdir[256];
static enum vhd_format fmt = VHD_FMT_VHD;

/* Scratch file names, distinct per format. */
static const char *tpath(const char *name)
{
	static __thread char buf[4][512];
	static __thread int k;
	char *p = buf[k++ & 3];

	snprintf(p, 512, "%s/%s%s", tmpdir, fmt == VHD_FMT_VHDX ? "x-" : "", name);
	return p;
}

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vhdkit-engine.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#define CHECK_OK(expr)                                                       \
	do {                                                                 \
		int _rc = (int)(expr);                                       \
		if (_rc < 0)                                                 \
			fail_msg("%s = %d (%s): %s", #expr, _rc,             \
				 vhd_strerror(_rc), vhd_errmsg(NULL));        \
	} while (0)

/* create_image() makes images of format `fmt`; tests run once per format. */
static vhd_disk *create_image(const char *path, enum vhd_type type,
			      uint64_t size, uint32_t bs, const char *parent,
			      const struct vhd_io_factory *io)
{
	struct vhd_create_opts o = {
		.format = fmt, .type = type, .size = size,
		.block_size = bs, .parent = parent, .io = io,
	};

	/* VHDX blocks are 1 MiB at least. */
	if (fmt == VHD_FMT_VHDX && bs && bs < (1u << 20))
		o.block_size = 1u << 20;
	vhd_disk *d = NULL;
	int rc = vhd_create(path, &o, &d);

	if (rc < 0)
		fail_msg("create %s: %s", path, vhd_errmsg(NULL));
	return d;
}

static vhd_disk *open_image(const char *path, unsigned flags,
			    const struct vhd_io_factory *io)
{
	struct vhd_open_opts o = { .io = io };
	vhd_disk *d = NULL;
	int rc = vhd_open(path, flags, &o, &d);

	if (rc < 0)
		fail_msg("open %s: %s", path, vhd_errmsg(NULL));
	return d;
}

/* A write of random size (biased small) at a random offset; sometimes
 * sector aligned, sometimes not; sometimes spanning blocks. */
static void random_extent(uint64_t *rng, uint64_t size, uint64_t *off, size_t *len)
{
	uint64_t r = model_rand(rng);
	size_t max = (r & 3) == 0 ? 300000 : (r & 3) == 1 ? 9000 : 2048;

	*len = 1 + (size_t)(model_rand(rng) % max);
	if (*len > size)
		*len = (size_t)size;
	*off = model_rand(rng) % (size - *len + 1);
	if (model_rand(rng) % 3) {	/* aligned */
		*off &= ~511ull;
		*len = (*len + 511) & ~(size_t)511;
		if (*off + *len > size)
			*len = (size_t)(size - *off);
	}
}

static void do_write(vhd_disk *d, struct model *m, uint64_t *rng)
{
	uint64_t off;
	size_t len;
	uint8_t *buf;

	random_extent(rng, m->size, &off, &len);
	buf = malloc(len);
	model_fill_random(buf, len, rng);
	model_write(m, off, buf, len);
	if (vhd_pwrite(d, buf, len, off) != (ssize_t)len)
		fail_msg("write [%llu,+%zu): %s", (unsigned long long)off, len,
			 vhd_errmsg(d));
	free(buf);
}

static void do_read_check(vhd_disk *d, struct model *m, uint64_t *rng)
{
	uint64_t off;
	size_t len;
	uint8_t *buf;

	random_extent(rng, m->size, &off, &len);
	buf = malloc(len);
	if (vhd_pread(d, buf, len, off) != (ssize_t)len)
		fail_msg("read: %s", vhd_errmsg(d));
	if (memcmp(buf, m->cur + off, len))
		fail_msg("read [%llu,+%zu) differs from the model",
			 (unsigned long long)off, len);
	free(buf);
}

/* Discard: every sector then reads as before or as @absent's content. */
static void do_discard(vhd_disk *d, struct model *m, const uint8_t *absent,
		       uint64_t *rng)
{
	uint64_t off;
	size_t len;
	uint8_t *buf;

	random_extent(rng, m->size, &off, &len);
	CHECK_OK(vhd_discard(d, off, len));
	buf = malloc(len);
	if (vhd_pread(d, buf, len, off) != (ssize_t)len)
		fail_msg("read: %s", vhd_errmsg(d));
	for (size_t i = 0; i < len; i++) {
		uint8_t alt = absent ? absent[off + i] : 0;
		if (buf[i] != m->cur[off + i] && buf[i] != alt)
			fail_msg("discard exposed other data at %llu",
				 (unsigned long long)(off + i));
	}
	model_write(m, off, buf, len);
	free(buf);
}

/* Zero with random flags; a fast zero may refuse, and then changes nothing
 * (the model check after the workload proves it). */
static void do_zero(vhd_disk *d, struct model *m, uint64_t *rng)
{
	static const unsigned flag_sets[] = { 0, VHD_ZERO_NOUNMAP, VHD_ZERO_FAST };
	unsigned flags = flag_sets[model_rand(rng) % 3];
	uint64_t off;
	size_t len;
	uint8_t *z;
	int rc;

	random_extent(rng, m->size, &off, &len);
	z = calloc(1, len);
	rc = vhd_zero(d, off, len, flags);
	if (rc == -ENOTSUP && (flags & VHD_ZERO_FAST)) {
		free(z);
		return;
	}
	CHECK_OK(rc);
	model_write(m, off, z, len);
	free(z);
}

static void assert_model(vhd_disk *d, struct model *m)
{
	uint64_t bad = model_compare(m, d);

	if (bad != UINT64_MAX)
		fail_msg("disk differs from the model at byte %llu",
			 (unsigned long long)bad);
}

static void assert_check_clean(const char *path, const struct vhd_io_factory *io)
{
	struct vhd_open_opts o = { .io = io };
	struct vhd_check_result res = { 0 };

	CHECK_OK(vhd_check(path, 0, &o, NULL, NULL, &res));
	if (res.errors || res.warnings)
		fail_msg("%s: check found %u errors, %u warnings", path, res.errors,
			 res.warnings);
}

static void run_workload(vhd_disk *d, struct model *m, const uint8_t *absent,
			 uint64_t seed, int ops)
{
	uint64_t rng = seed;

	for (int i = 0; i < ops; i++) {
		uint64_t r = model_rand(&rng) % 100;
		if (r < 55)
			do_write(d, m, &rng);
		else if (r < 85)
			do_read_check(d, m, &rng);
		else if (r < 90)
			do_discard(d, m, absent, &rng);
		else if (r < 95)
			do_zero(d, m, &rng);
		else
			CHECK_OK(vhd_flush(d));
	}
}

static void test_dynamic_model(void **state)
{
	const uint64_t size = 24 << 20;
	struct model m;
	vhd_disk *d;

	assert_int_equal(model_init(&m, size, NULL), 0);
	d = create_image(tpath("dyn.vhd"), VHD_TYPE_DYNAMIC, size, 256 << 10, NULL, NULL);
	run_workload(d, &m, NULL, 42, 3000);
	assert_model(d, &m);
	CHECK_OK(vhd_close(d));
	assert_check_clean(tpath("dyn.vhd"), NULL);
	d = open_image(tpath("dyn.vhd"), 0, NULL);
	assert_model(d, &m);
	vhd_close(d);
	model_free(&m);
}

static void test_fixed_model(void **state)
{
	const uint64_t size = (8 << 20) + 3 * 512;
	struct model m;
	vhd_disk *d;

	assert_int_equal(model_init(&m, size, NULL), 0);
	d = create_image(tpath("fixed.vhd"), VHD_TYPE_FIXED, size, 0, NULL, NULL);
	run_workload(d, &m, NULL, 7, 1500);
	CHECK_OK(vhd_close(d));
	assert_check_clean(tpath("fixed.vhd"), NULL);
	d = open_image(tpath("fixed.vhd"), 0, NULL);
	assert_model(d, &m);
	vhd_close(d);
	model_free(&m);
}

/* base (dynamic) <- mid (diff) <- top (diff): writes at every level, the
 * top layer read against the model of the flattened chain. */
static void test_chain_model(void **state)
{
	const uint64_t size = 16 << 20;
	struct model m;
	uint8_t *mid_view;
	vhd_disk *d;
	uint64_t rng = 99;

	assert_int_equal(model_init(&m, size, NULL), 0);
	d = create_image(tpath("base.vhd"), VHD_TYPE_DYNAMIC, size, 128 << 10, NULL, NULL);
	for (int i = 0; i < 300; i++)
		do_write(d, &m, &rng);
	CHECK_OK(vhd_close(d));

	d = create_image(tpath("mid.vhd"), VHD_TYPE_DIFF, 0, 64 << 10,
			 tpath("base.vhd"), NULL);
	for (int i = 0; i < 300; i++)
		do_write(d, &m, &rng);
	assert_model(d, &m);
	CHECK_OK(vhd_close(d));

	mid_view = malloc(size);
	memcpy(mid_view, m.cur, size);
	d = create_image(tpath("top.vhd"), VHD_TYPE_DIFF, 0, 32 << 10,
			 tpath("mid.vhd"), NULL);
	assert_int_equal(vhd_parent(d) != NULL, 1);
	assert_int_equal(vhd_parent(vhd_parent(d)) != NULL, 1);
	run_workload(d, &m, mid_view, 1234, 3000);
	assert_model(d, &m);
	CHECK_OK(vhd_close(d));

	assert_check_clean(tpath("top.vhd"), NULL);
	d = open_image(tpath("top.vhd"), 0, NULL);
	assert_model(d, &m);

	/* Flattened by convert: the same bytes. */
	{
		struct vhd_convert_opts co = { .sparse_zeros = 1 };
		vhd_disk *flat;
		co.out.format = VHD_FMT_VHD;
		co.out.type = VHD_TYPE_DYNAMIC;
		CHECK_OK(vhd_convert(d, tpath("flat.vhd"), &co));
		flat = open_image(tpath("flat.vhd"), 0, NULL);
		assert_model(flat, &m);
		vhd_close(flat);
	}
	vhd_close(d);
	free(mid_view);
	model_free(&m);
}

/* Sub-sector writes into a child over a parent with data: the rest of each
 * touched sector must come from the parent, the rest of the block too. */
static void test_partial_sectors_over_parent(void **state)
{
	const uint64_t size = 1 << 20;
	struct model m;
	uint64_t rng = 5;
	uint8_t *base = malloc(size);
	vhd_disk *d;

	model_fill_random(base, size, &rng);
	assert_int_equal(model_init(&m, size, base), 0);
	d = create_image(tpath("pbase.vhd"), VHD_TYPE_DYNAMIC, size, 64 << 10, NULL, NULL);
	assert_int_equal(vhd_pwrite(d, base, size, 0), (ssize_t)size);
	CHECK_OK(vhd_close(d));
	d = create_image(tpath("pchild.vhd"), VHD_TYPE_DIFF, 0, 64 << 10,
			 tpath("pbase.vhd"), NULL);
	for (int i = 0; i < 2000; i++) {
		uint64_t off = model_rand(&rng) % (size - 700);
		size_t len = 1 + model_rand(&rng) % 700;
		uint8_t buf[700];
		model_fill_random(buf, len, &rng);
		model_write(&m, off, buf, len);
		assert_int_equal(vhd_pwrite(d, buf, len, off), (ssize_t)len);
		if (i % 100 == 0)
			assert_model(d, &m);
	}
	assert_model(d, &m);
	CHECK_OK(vhd_close(d));
	d = open_image(tpath("pchild.vhd"), 0, NULL);
	assert_model(d, &m);
	vhd_close(d);
	model_free(&m);
	free(base);
}

struct extent_check {
	const uint8_t *owner;	/* per sector: 0 child, 1 parent, 2 none */
	uint64_t next;
	int bad;
};

static int extent_cb(void *opaque, const struct vhd_extent *e)
{
	struct extent_check *c = opaque;

	if (e->offset != c->next)
		c->bad = 1;
	c->next = e->offset + e->length;
	for (uint64_t s = e->offset / 512; s < (e->offset + e->length) / 512; s++) {
		uint8_t want = c->owner[s];
		if (e->type == VHD_EXT_ZERO ? want != 2 : want != e->depth)
			c->bad = 1;
	}
	return 0;
}

static void test_extents_chain(void **state)
{
	const uint64_t size = 4 << 20;
	uint8_t owner[(4 << 20) / 512];
	struct extent_check c = { .owner = owner };
	uint8_t buf[64 << 10];
	uint64_t rng = 77;
	vhd_disk *d;

	memset(owner, 2, sizeof(owner));
	memset(buf, 0xAB, sizeof(buf));
	d = create_image(tpath("ebase.vhd"), VHD_TYPE_DYNAMIC, size, 64 << 10, NULL, NULL);
	{
		/* Dynamic blocks are whole: a write allocates all of its block. */
		struct vhd_info info;
		uint64_t bs, nb;
		vhd_get_info(d, &info);
		bs = info.block_size;
		nb = size / bs;
		for (int i = 0; i < 3; i++) {
			uint64_t b = model_rand(&rng) % nb;
			assert_int_equal(vhd_pwrite(d, buf, 512, b * bs + 4096), 512);
			memset(owner + b * (bs / 512), 1, bs / 512);
		}
	}
	CHECK_OK(vhd_close(d));
	d = create_image(tpath("echild.vhd"), VHD_TYPE_DIFF, 0, 64 << 10,
			 tpath("ebase.vhd"), NULL);
	for (int i = 0; i < 40; i++) {
		uint64_t s = model_rand(&rng) % (size / 512 - 16);
		uint32_t n = 1 + (uint32_t)(model_rand(&rng) % 16);
		assert_int_equal(vhd_pwrite(d, buf, n * 512, s * 512), (ssize_t)n * 512);
		memset(owner + s, 0, n);
	}
	CHECK_OK(vhd_extents(d, 0, size, extent_cb, &c));
	assert_int_equal(c.bad, 0);
	assert_int_equal(c.next, size);
	vhd_close(d);
}

struct writer_arg {
	vhd_disk *d;
	uint64_t size;
	unsigned index;		/* writes pages p with p % 4 == index */
};

static uint8_t page_fill(uint64_t page)
{
	return (uint8_t)(0x11 * (page % 4 + 1));
}

static void *writer(void *p)
{
	struct writer_arg *a = p;
	uint8_t buf[4096];

	for (uint64_t page = a->index; page < a->size / 4096; page += 4) {
		memset(buf, page_fill(page), sizeof(buf));
		if (vhd_pwrite(a->d, buf, 4096, page * 4096) != 4096)
			return (void *)1;
		if (page % 97 == 0 && vhd_flush(a->d) < 0)
			return (void *)1;
	}
	return NULL;
}

/* Four threads write interleaved 4 KiB pages of one differencing image, so
 * they race to allocate the same blocks and set bits in the same bitmaps,
 * while flushing. */
static void test_concurrent_writers(void **state)
{
	const uint64_t size = 8 << 20;
	pthread_t t[4];
	struct writer_arg a[4];
	uint8_t *buf = malloc(size);
	vhd_disk *d;

	d = create_image(tpath("cbase.vhd"), VHD_TYPE_DYNAMIC, size, 64 << 10, NULL, NULL);
	CHECK_OK(vhd_close(d));
	d = create_image(tpath("cchild.vhd"), VHD_TYPE_DIFF, 0, 64 << 10,
			 tpath("cbase.vhd"), NULL);
	for (int i = 0; i < 4; i++)
		a[i] = (struct writer_arg){ d, size, (unsigned)i };
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, &a[i]), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}
	CHECK_OK(vhd_close(d));
	assert_check_clean(tpath("cchild.vhd"), NULL);
	d = open_image(tpath("cchild.vhd"), 0, NULL);
	assert_int_equal(vhd_pread(d, buf, size, 0), (ssize_t)size);
	for (uint64_t i = 0; i < size; i++)
		if (buf[i] != page_fill(i / 4096))
			fail_msg("byte %llu wrong", (unsigned long long)i);
	vhd_close(d);
	free(buf);
}

/* ---- crash cuts ---- */

struct crash_setup {
	enum vhd_type type;
	const char *name;
	uint64_t size;
	uint32_t bs;
};

/* The workload used for cuts: writes and zeroes with a flush every few
 * operations.  Stops at the first failure (the cut); returns the count of
 * successful simulator writes it needed when run without a cut. */
static void crash_workload(vhd_disk *d, struct model *m, uint64_t seed, int ops)
{
	uint64_t rng = seed;

	for (int i = 0; i < ops; i++) {
		uint64_t r = model_rand(&rng) % 100;
		uint64_t off;
		size_t len;
		uint8_t *buf;

		if (r < 12) {
			if (vhd_flush(d) < 0)
				return;
			model_flush(m);
			continue;
		}
		random_extent(&rng, m->size, &off, &len);
		if (len > 70000)
			len = 70000;
		buf = malloc(len);
		if (r < 90)
			model_fill_random(buf, len, &rng);
		else
			memset(buf, 0, len);
		model_write(m, off, buf, len);
		if ((r < 90 ? vhd_pwrite(d, buf, len, off) : vhd_zero(d, off, len, 0)) < 0) {
			free(buf);
			return;
		}
		free(buf);
	}
	if (vhd_flush(d) == 0)
		model_flush(m);
}

static void crash_run(const struct crash_setup *cs, uint64_t cut, unsigned keep,
		      uint64_t *writes_out)
{
	struct vhd_crashsim *sim = vhd_crashsim_new(cut * 7919 + keep + 1);
	const struct vhd_io_factory *io = vhd_crashsim_factory(sim);
	const uint64_t size = cs->size;
	uint8_t *base = malloc(size);
	struct model m;
	uint64_t rng = 2024, bad;
	vhd_disk *d;
	char host_base[512], host_img[512];

	/* Image (and parent) built in the simulator, all durable. */
	model_fill_random(base, size, &rng);
	if (cs->type == VHD_TYPE_DIFF) {
		d = create_image("sim/base.vhd", VHD_TYPE_DYNAMIC, size, cs->bs, NULL, io);
		assert_int_equal(vhd_pwrite(d, base, size, 0), (ssize_t)size);
		CHECK_OK(vhd_close(d));
		assert_int_equal(model_init(&m, size, base), 0);
		d = create_image("sim/img.vhd", VHD_TYPE_DIFF, 0, cs->bs, "sim/base.vhd", io);
	} else {
		assert_int_equal(model_init(&m, size, NULL), 0);
		d = create_image("sim/img.vhd", cs->type, size, cs->bs, NULL, io);
	}
	CHECK_OK(vhd_flush(d));
	model_flush(&m);

	vhd_crashsim_cut_after(sim, cut);
	crash_workload(d, &m, 31337, 120);
	if (writes_out)
		*writes_out = vhd_crashsim_writes(sim);
	if (cut && !vhd_crashsim_crashed(sim)) {
		/* the workload finished before the cut: nothing to test */
		vhd_close(d);
		goto out;
	}
	/* Materialize the crash, then open it for real. */
	snprintf(host_base, sizeof(host_base), "%s/base.vhd", tmpdir);
	snprintf(host_img, sizeof(host_img), "%s/img.vhd", tmpdir);
	unlink(host_base);
	unlink(host_img);
	if (cs->type == VHD_TYPE_DIFF)
		CHECK_OK(vhd_crashsim_save_crash(sim, "sim/base.vhd", host_base, 100));
	CHECK_OK(vhd_crashsim_save_crash(sim, "sim/img.vhd", host_img, keep));
	vhd_close(d);	/* fails after the cut; the crash image is saved */

	assert_check_clean(host_img, NULL);
	d = open_image(host_img, 0, NULL);
	bad = model_check_crash(&m, d);
	if (bad != UINT64_MAX)
		fail_msg("%s: cut after %llu writes (keep %u%%): byte %llu holds neither flushed nor written data",
			 cs->name, (unsigned long long)cut, keep, (unsigned long long)bad);
	vhd_close(d);
	/* And it stays writable: a read-write open, a write, a clean check. */
	d = open_image(host_img, VHD_OPEN_RDWR, NULL);
	assert_int_equal(vhd_pwrite(d, base, 4096, size - 4096), 4096);
	CHECK_OK(vhd_close(d));
	assert_check_clean(host_img, NULL);
out:
	model_free(&m);
	free(base);
	vhd_crashsim_free(sim);
}

/* Every write point is cut in normal builds.  Sanitizer builds, which are
 * there to catch memory errors and run 5-10 times slower, cut every
 * fourth point (set VHDKIT_CRASH_STRIDE=1 to force all). */
static uint64_t crash_stride(void)
{
	const char *env = getenv("VHDKIT_CRASH_STRIDE");

	if (env && atoi(env) > 0)
		return (uint64_t)atoi(env);
#if defined(__SANITIZE_ADDRESS__)
	return 4;
#else
	return 1;
#endif
}

static void crash_all_cuts(const struct crash_setup *cs)
{
	uint64_t total = 0, stride = crash_stride();

	crash_run(cs, 0, 100, &total);	/* count the write points */
	assert_true(total > 20);
	for (uint64_t cut = 1; cut <= total; cut += stride) {
		unsigned keep = (unsigned)((cut * 37) % 101);
		crash_run(cs, cut, keep, NULL);
		if (cut % 7 == 0) {
			crash_run(cs, cut, 0, NULL);
			crash_run(cs, cut, 100, NULL);
		}
	}
	print_message("%s: %llu write points, every %llu cut\n", cs->name,
		      (unsigned long long)total, (unsigned long long)stride);
}

static void test_crash_dynamic(void **state)
{
	struct crash_setup cs = { VHD_TYPE_DYNAMIC, "dynamic", 4 << 20, 64 << 10 };

	crash_all_cuts(&cs);
}

static void test_crash_diff(void **state)
{
	struct crash_setup cs = { VHD_TYPE_DIFF, "differencing", 4 << 20, 32 << 10 };

	crash_all_cuts(&cs);
}

static void test_crash_fixed(void **state)
{
	struct crash_setup cs = { VHD_TYPE_FIXED, "fixed", 2 << 20, 0 };

	crash_all_cuts(&cs);
}

static int use_vhd(void **state)
{
	fmt = VHD_FMT_VHD;
	return 0;
}

static int use_vhdx(void **state)
{
	fmt = VHD_FMT_VHDX;
	return 0;
}

#define BOTH(t) cmocka_unit_test_setup(t, use_vhd), \
		cmocka_unit_test_setup(t##_x, use_vhdx)
#define XVARIANT(t) static void t##_x(void **state) { t(state); }
XVARIANT(test_dynamic_model)
XVARIANT(test_fixed_model)
XVARIANT(test_chain_model)
XVARIANT(test_partial_sectors_over_parent)
XVARIANT(test_extents_chain)
XVARIANT(test_concurrent_writers)
XVARIANT(test_crash_dynamic)
XVARIANT(test_crash_diff)
XVARIANT(test_crash_fixed)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_dynamic_model),
		BOTH(test_fixed_model),
		BOTH(test_chain_model),
		BOTH(test_partial_sectors_over_parent),
		BOTH(test_extents_chain),
		BOTH(test_concurrent_writers),
		BOTH(test_crash_dynamic),
		BOTH(test_crash_diff),
		BOTH(test_crash_fixed),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
