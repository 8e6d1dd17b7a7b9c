/*
 * test_virtq.c -- hvcore's split-virtqueue parser (hvcore/virtq.c) and
 * virtio-blk request path (hvcore/blk_req.c) on hand-built rings in a
 * 64 KiB "guest RAM": well-formed chains, and every kind of malformed chain
 * the contract names (index out of range, loops, total length > 2^32,
 * buffers outside RAM, order), which must fail the request with IOERR when
 * a status byte can be found and stop the queue (NEEDS_RESET) otherwise.
 * The disk is a raw image served from memory by libvhd's crash simulator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "blk_req.h"
#include "gmem.h"
#include "virtq.h"

#define RAM     (64 * 1024)
#define DESC    0x0000
#define AVAIL   0x1000
#define USED    0x2000
#define QSIZE   8
#define DISK    (1024 * 1024)

struct fx {
	uint8_t ram[RAM] __attribute__((aligned(16)));
	struct gmem mem;
	struct virtq q;
	struct virtq_chain c;
	struct vhd_crashsim *cs;
	struct blk_backend disk;
	uint16_t avail_idx;
};

static struct vring_desc *desc(struct fx *f, unsigned i)
{
	return (struct vring_desc *)(f->ram + DESC) + i;
}

static void set_desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	*desc(f, i) = (struct vring_desc){ addr, len, flags, next };
}

static void offer(struct fx *f, uint16_t head)
{
	struct vring_avail *a = (struct vring_avail *)(f->ram + AVAIL);

	a->ring[f->avail_idx % QSIZE] = head;
	a->idx = ++f->avail_idx;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vhd_open_opts o = { .format = VHD_FMT_RAW };
	void *zeros = calloc(1, DISK);
	vhd_disk *d;

	f->mem = (struct gmem){ f->ram, RAM, 0 };
	assert_int_equal(virtq_init(&f->q, &f->mem, QSIZE, DESC, AVAIL, USED, false), 0);
	f->cs = vhd_crashsim_new(1);
	o.io = vhd_crashsim_factory(f->cs);
	assert_int_equal(vhd_crashsim_load_buf(f->cs, "d/disk.img", zeros, DISK), 0);
	free(zeros);
	assert_int_equal(vhd_open("d/disk.img", VHD_OPEN_RDWR, &o, &d), 0);
	blk_backend_init(&f->disk, d, "/images/a-very-long-disk-name.vhdx", false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	blk_backend_close(&f->disk);
	vhd_crashsim_free(f->cs);
	free(f);
	return 0;
}

/* A request: header at 0x4000, data at 0x5000 (len), status at 0x6000. */
static void request(struct fx *f, uint32_t type, uint64_t sector, uint32_t len, int write_data)
{
	struct virtio_blk_outhdr h = { type, 0, sector };

	memcpy(f->ram + 0x4000, &h, sizeof(h));
	f->ram[0x6000] = 0xee;
	set_desc(f, 0, 0x4000, sizeof(h), VRING_DESC_F_NEXT, 1);
	if (len) {
		set_desc(f, 1, 0x5000, len, VRING_DESC_F_NEXT | (write_data ? 0 : VRING_DESC_F_WRITE), 2);
		set_desc(f, 2, 0x6000, 1, VRING_DESC_F_WRITE, 0);
	} else {
		set_desc(f, 1, 0x6000, 1, VRING_DESC_F_WRITE, 0);
	}
	offer(f, 0);
}

static int serve_one(struct fx *f)
{
	int rc = virtq_pop(&f->q, &f->c);

	if (rc == VIRTQ_CHAIN) {
		rc = blk_req_serve(&f->disk, &f->c);
		if (rc >= 0)
			virtq_push(&f->q, f->c.head, (uint32_t)rc);
	}
	return rc;
}

static void test_gmem_bounds(void **state)
{
	uint8_t host[16];
	struct gmem m = { host, 8, 8 };

	(void)state;
	assert_ptr_equal(gmem_ptr(&m, 0, 8), host);
	assert_null(gmem_ptr(&m, 0, 9));
	assert_null(gmem_ptr(&m, 7, UINT64_MAX));
	assert_null(gmem_ptr(&m, UINT64_MAX, 1));
	assert_ptr_equal(gmem_ptr(&m, GMEM_HIGH_BASE + 4, 4), host + 12);
	assert_null(gmem_ptr(&m, GMEM_HIGH_BASE + 4, 5));
	assert_null(gmem_ptr(&m, 8, 1));		/* the hole */
}

static void test_init_rejects_bad_rings(void **state)
{
	struct fx *f = *state;
	struct virtq q;

	assert_int_equal(virtq_init(&q, &f->mem, 3, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_init(&q, &f->mem, 512, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_init(&q, &f->mem, 8, DESC + 8, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_init(&q, &f->mem, 8, RAM - 64, AVAIL, USED, false), -EFAULT);
	assert_int_equal(virtq_init(&q, &f->mem, 8, DESC, AVAIL, 1ULL << 40, false), -EFAULT);
}

static void test_write_read_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vring_used *u = (struct vring_used *)(f->ram + USED);

	memset(f->ram + 0x5000, 0xab, 1024);
	request(f, VIRTIO_BLK_T_OUT, 8, 1024, 1);
	assert_int_equal(serve_one(f), 1);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_OK);
	memset(f->ram + 0x5000, 0, 1024);
	request(f, VIRTIO_BLK_T_IN, 8, 1024, 0);
	assert_int_equal(serve_one(f), 1025);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_OK);
	assert_int_equal(f->ram[0x5000], 0xab);
	assert_int_equal(f->ram[0x5000 + 1023], 0xab);
	assert_int_equal(u->idx, 2);
	assert_int_equal(u->ring[1].len, 1025);
	assert_int_equal(virtq_pop(&f->q, &f->c), VIRTQ_EMPTY);
}

static void test_request_errors(void **state)
{
	struct fx *f = *state;

	request(f, VIRTIO_BLK_T_IN, DISK / 512, 512, 0);	/* past the end */
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_IOERR);
	request(f, VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, 0);	/* overflowing */
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_IOERR);
	request(f, VIRTIO_BLK_T_IN, 0, 100, 0);			/* not sectors */
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_IOERR);
	request(f, 77, 0, 0, 0);				/* unknown type */
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_UNSUPP);
	f->disk.read_only = true;
	request(f, VIRTIO_BLK_T_OUT, 0, 512, 1);
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_IOERR);
	f->disk.read_only = false;
	request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_OK);
}

static void test_get_id_and_ranges(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_discard_write_zeroes seg = { 0, 8, 0 };

	request(f, VIRTIO_BLK_T_GET_ID, 0, 20, 0);
	assert_int_equal(serve_one(f), 21);
	assert_memory_equal(f->ram + 0x5000, "a-very-long-disk-nam", 20);
	memcpy(f->ram + 0x5000, &seg, sizeof(seg));
	request(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(seg), 1);
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_OK);
	seg.flags = 1;					/* unmap: not for discard */
	memcpy(f->ram + 0x5000, &seg, sizeof(seg));
	request(f, VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), 1);
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_UNSUPP);
	seg = (struct virtio_blk_discard_write_zeroes){ DISK / 512 - 1, 2, 0 };
	memcpy(f->ram + 0x5000, &seg, sizeof(seg));
	request(f, VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), 1);
	serve_one(f);
	assert_int_equal(f->ram[0x6000], VIRTIO_BLK_S_IOERR);
}

/* Header and data in one descriptor, status in the data's last byte. */
static void test_any_framing(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_outhdr h = { VIRTIO_BLK_T_IN, 0, 0 };

	memcpy(f->ram + 0x4000, &h, sizeof(h));
	set_desc(f, 0, 0x4000, sizeof(h), VRING_DESC_F_NEXT, 3);
	set_desc(f, 3, 0x5000, 513, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(serve_one(f), 513);
	assert_int_equal(f->ram[0x5000 + 512], VIRTIO_BLK_S_OK);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;

	offer(f, QSIZE);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);
	assert_true(f->q.broken);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);	/* stays stopped */
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;

	set_desc(f, 0, 0x4000, 16, VRING_DESC_F_NEXT, 200);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);
	assert_true(f->q.broken);
}

static void test_loop(void **state)
{
	struct fx *f = *state;

	set_desc(f, 0, 0x4000, 16, VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, 0x6000, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);
	set_desc(f, 2, 0x4000, 16, VRING_DESC_F_NEXT, 2);	/* self loop */
	f->q.broken = false;
	offer(f, 2);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);
}

static void test_buffer_outside_ram_with_status(void **state)
{
	struct fx *f = *state;

	f->ram[0x6000] = 0xee;
	set_desc(f, 0, 0x4000, 16, VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, RAM - 100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(f, 2, 0x6000, 1, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EBADMSG);
	assert_ptr_equal(f->c.status, f->ram + 0x6000);
	assert_false(f->q.broken);
}

static void test_huge_total_length(void **state)
{
	struct fx *f = *state;

	f->mem.low_size = RAM;
	set_desc(f, 0, 0x4000, 0xffffffffu, VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, 0x4000, 0xffffffffu, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(f, 2, 0x6000, 1, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EBADMSG);
	assert_non_null(f->c.status);
}

static void test_status_outside_ram(void **state)
{
	struct fx *f = *state;

	set_desc(f, 0, 0x4000, 16, VRING_DESC_F_NEXT, 1);
	set_desc(f, 1, 1ULL << 50, 1, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);
	assert_true(f->q.broken);
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;

	set_desc(f, 0, 0x5000, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(f, 1, 0x4000, 16, VRING_DESC_F_NEXT, 2);
	set_desc(f, 2, 0x6000, 1, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EBADMSG);
}

static void test_no_status_byte(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_outhdr h = { VIRTIO_BLK_T_FLUSH, 0, 0 };

	memcpy(f->ram + 0x4000, &h, sizeof(h));
	set_desc(f, 0, 0x4000, sizeof(h), 0, 0);		/* nothing writable */
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), VIRTQ_CHAIN);
	assert_int_equal(blk_req_serve(&f->disk, &f->c), -EPROTO);
}

static void test_avail_idx_jump(void **state)
{
	struct fx *f = *state;
	struct vring_avail *a = (struct vring_avail *)(f->ram + AVAIL);

	a->idx = QSIZE + 1;
	assert_int_equal(virtq_pop(&f->q, &f->c), -EPROTO);
	assert_true(f->q.broken);
}

static void test_interrupt_suppression(void **state)
{
	struct fx *f = *state;
	struct vring_avail *a = (struct vring_avail *)(f->ram + AVAIL);
	uint16_t avail_event;

	request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	serve_one(f);
	assert_true(virtq_need_interrupt(&f->q));
	a->flags = VRING_AVAIL_F_NO_INTERRUPT;
	request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	serve_one(f);
	assert_false(virtq_need_interrupt(&f->q));
	/* event idx: interrupt only when used idx passes used_event */
	f->q.event_idx = true;
	a->ring[QSIZE] = 3;			/* used_event: after the 4th */
	request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	serve_one(f);
	assert_false(virtq_need_interrupt(&f->q));	/* used idx 3 */
	request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	serve_one(f);
	assert_true(virtq_need_interrupt(&f->q));	/* used idx 4 */
	assert_false(virtq_enable_notify(&f->q));
	memcpy(&avail_event, f->ram + USED + 4 + 8 * QSIZE, 2);
	assert_int_equal(avail_event, 4);			/* we saw 4 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gmem_bounds),
		cmocka_unit_test_setup_teardown(test_init_rejects_bad_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_and_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_any_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_outside_ram_with_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_total_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readable_after_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_status_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_idx_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_suppression, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
