/*
 * fuzz_virtq.c -- libFuzzer target for hvcore's virtqueue parser and
 * virtio-blk request path: the input is a guest's RAM with rings and
 * requests in it; the harness serves the queue the way an I/O thread does.
 * Nothing the guest writes may make the host read or write outside guest
 * RAM, loop, or crash; a bad chain either completes with IOERR or stops
 * the queue.
 *
 * Input: byte 0 = log2 of the queue size (mod 9, so 1..256), byte 1 =
 * flags (bit 0: event idx negotiated; bit 1: read-only disk), then the
 * first bytes of a 64 KiB guest RAM (the rest zero).  Rings at fixed
 * addresses: descriptors 0x0000, available ring 0x1000, used ring 0x2000.
 * The disk is a 256 KiB raw image served from memory.
 *
 * Build with libFuzzer: ./configure --enable-fuzz && make fuzz, then
 * tests/fuzz/fuzz_virtq tests/fuzz/corpus-virtq.  `make check` replays the
 * corpus through replay_main.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blk_req.h"
#include "gmem.h"
#include "virtq.h"

#define RAM_SIZE  (64 * 1024)
#define DISK_SIZE (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void serve(struct virtq *q, struct blk_backend *disk, struct virtq_chain *c)
{
	for (unsigned round = 0; round < 4 && !q->broken; round++) {
		virtq_disable_notify(q);
		for (unsigned n = 0; n < 2u * q->size; n++) {
			int rc = virtq_pop(q, c);

			if (rc == VIRTQ_EMPTY || rc == -EPROTO)
				break;
			if (rc == -EBADMSG) {
				*c->status = 1;
				virtq_push(q, c->head, 1);
				continue;
			}
			rc = blk_req_serve(disk, c);
			if (rc < 0) {
				q->broken = true;
				break;
			}
			virtq_push(q, c->head, (uint32_t)rc);
		}
		virtq_need_interrupt(q);
		if (!virtq_enable_notify(q))
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t zeros[DISK_SIZE];
	struct vhd_open_opts o = { .format = VHD_FMT_RAW };
	struct vhd_crashsim *cs;
	struct blk_backend disk;
	struct virtq_chain *c;
	struct virtq q;
	struct gmem mem;
	uint8_t *ram;
	vhd_disk *d;

	if (size < 2)
		return 0;
	ram = aligned_alloc(4096, RAM_SIZE);
	c = malloc(sizeof(*c));
	cs = vhd_crashsim_new(1);
	if (!ram || !c || !cs)
		goto out;
	memset(ram, 0, RAM_SIZE);
	memcpy(ram, data + 2, size - 2 < RAM_SIZE ? size - 2 : RAM_SIZE);
	mem = (struct gmem){ ram, RAM_SIZE, 0 };
	o.io = vhd_crashsim_factory(cs);
	if (vhd_crashsim_load_buf(cs, "f/disk.img", zeros, sizeof(zeros)) < 0 ||
	    vhd_open("f/disk.img", VHD_OPEN_RDWR, &o, &d) < 0)
		goto out;
	blk_backend_init(&disk, d, "fuzz.img", data[1] & 2);
	if (virtq_init(&q, &mem, (uint16_t)(1u << (data[0] % 9)), 0x0000, 0x1000, 0x2000,
		       data[1] & 1) == 0)
		serve(&q, &disk, c);
	blk_backend_close(&disk);
out:
	vhd_crashsim_free(cs);
	free(c);
	free(ram);
	return 0;
}
