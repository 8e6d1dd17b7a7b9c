/*
 * blk_req.c -- virtio-blk request decoding and execution (see blk_req.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <linux/virtio_blk.h>

#include "blk_req.h"

#define SECTOR 512ULL

/* A view of part of a chain: iovs [first, first + n), skipping @skip bytes
 * at the start and @trim bytes at the end. */
struct span {
	const struct virtq_iov *iov;
	unsigned n;
	uint64_t skip, trim, len;	/* len = bytes in the view */
};

static void span_init(struct span *s, const struct virtq_iov *iov, unsigned n,
		      uint64_t total, uint64_t skip, uint64_t trim)
{
	s->iov = iov;
	s->n = n;
	s->skip = skip;
	s->trim = trim;
	s->len = total >= skip + trim ? total - skip - trim : 0;
}

/* Call @fn on each contiguous piece of the view, with its offset in the
 * view; stops at the first error. */
static int span_each(const struct span *s,
		     int (*fn)(void *ctx, uint8_t *p, uint32_t len, uint64_t pos),
		     void *ctx)
{
	uint64_t skip = s->skip, pos = 0;
	int rc;

	for (unsigned i = 0; i < s->n && pos < s->len; i++) {
		uint64_t len = s->iov[i].len;
		uint8_t *p = s->iov[i].base;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		p += skip;
		len -= skip;
		skip = 0;
		if (len > s->len - pos)
			len = s->len - pos;
		rc = fn(ctx, p, (uint32_t)len, pos);
		if (rc < 0)
			return rc;
		pos += len;
	}
	return 0;
}

struct copy_ctx {
	uint8_t *buf;
	uint64_t from, len;
	int out;		/* 1: guest -> buf, 0: buf -> guest */
};

static int copy_piece(void *ctx, uint8_t *p, uint32_t len, uint64_t pos)
{
	struct copy_ctx *c = ctx;
	uint64_t a = pos > c->from ? pos : c->from;
	uint64_t b = pos + len < c->from + c->len ? pos + len : c->from + c->len;

	if (a < b) {
		if (c->out)
			memcpy(c->buf + (a - c->from), p + (a - pos), b - a);
		else
			memcpy(p + (a - pos), c->buf + (a - c->from), b - a);
	}
	return pos + len >= c->from + c->len ? -EAGAIN : 0;	/* -EAGAIN: done */
}

/* Copy @len bytes at offset @from of the view out of (to_guest = 0) or
 * into the guest.  The caller checked from + len <= s->len. */
static void span_copy(const struct span *s, void *buf, uint64_t from, uint64_t len,
		      int to_guest)
{
	struct copy_ctx c = { buf, from, len, !to_guest };

	if (len)
		span_each(s, copy_piece, &c);
}

struct io_ctx {
	struct blk_backend *b;
	uint64_t off;
};

static int read_piece(void *ctx, uint8_t *p, uint32_t len, uint64_t pos)
{
	struct io_ctx *c = ctx;

	return blk_backend_read(c->b, p, len, c->off + pos);
}

static int write_piece(void *ctx, uint8_t *p, uint32_t len, uint64_t pos)
{
	struct io_ctx *c = ctx;

	return blk_backend_write(c->b, p, len, c->off + pos);
}

/* [sector, sector + bytes) inside the disk?  Overflow-safe. */
static int in_range(const struct blk_backend *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->size / SECTOR && bytes <= b->size - sector * SECTOR;
}

static uint8_t do_rw(struct blk_backend *b, uint32_t type, uint64_t sector,
		     const struct span *data)
{
	struct io_ctx c = { b, sector * SECTOR };

	if (data->len % SECTOR || !in_range(b, sector, data->len))
		return VIRTIO_BLK_S_IOERR;
	if (type == VIRTIO_BLK_T_OUT && b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (span_each(data, type == VIRTIO_BLK_T_IN ? read_piece : write_piece, &c) < 0)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/* DISCARD / WRITE_ZEROES: an array of { le64 sector; le32 num_sectors;
 * le32 flags } after the header. */
static uint8_t do_ranges(struct blk_backend *b, uint32_t type, const struct span *payload)
{
	struct virtio_blk_discard_write_zeroes seg;
	uint64_t n = payload->len / sizeof(seg);
	int rc;

	if (payload->len % sizeof(seg) || n == 0 || n > BLK_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	if (b->read_only)
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t i = 0; i < n; i++) {
		span_copy(payload, &seg, i * sizeof(seg), sizeof(seg), 0);
		if (seg.num_sectors > BLK_DISCARD_MAX ||
		    !in_range(b, seg.sector, (uint64_t)seg.num_sectors * SECTOR))
			return VIRTIO_BLK_S_IOERR;
		if (type == VIRTIO_BLK_T_DISCARD) {
			if (seg.flags)
				return VIRTIO_BLK_S_UNSUPP;
			rc = blk_backend_discard(b, seg.sector * SECTOR, seg.num_sectors * SECTOR);
		} else {
			if (seg.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
				return VIRTIO_BLK_S_UNSUPP;
			rc = blk_backend_zero(b, seg.sector * SECTOR, seg.num_sectors * SECTOR,
					      seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		}
		if (rc < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

struct iov_ctx {
	struct iovec *iov;
	int n;
};

static int add_iov(void *ctx, uint8_t *p, uint32_t len, uint64_t pos)
{
	struct iov_ctx *c = ctx;

	c->iov[c->n++] = (struct iovec){ p, len };
	return 0;
}

/* READ/WRITE into @q: checked like do_rw, then one vhd_aio over the data
 * pieces.  Returns BLK_REQ_QUEUED, or BLK_REQ_DONE with *status set. */
static int start_rw(struct blk_backend *b, vhd_aioq *q, uint32_t type, uint64_t sector,
		    const struct span *data, struct blk_io *io, uint8_t *status)
{
	struct iov_ctx ic = { io->iov, 0 };
	struct vhd_aio *r = &io->aio;

	if (data->len % SECTOR || !in_range(b, sector, data->len) ||
	    (type == VIRTIO_BLK_T_OUT && b->read_only)) {
		*status = VIRTIO_BLK_S_IOERR;
		return BLK_REQ_DONE;
	}
	if (data->len == 0) {
		*status = VIRTIO_BLK_S_OK;
		return BLK_REQ_DONE;
	}
	span_each(data, add_iov, &ic);
	*r = (struct vhd_aio){ .op = type == VIRTIO_BLK_T_IN ? VHD_AIO_READ : VHD_AIO_WRITE,
			       .iov = io->iov, .iovcnt = ic.n, .offset = sector * SECTOR,
			       .length = data->len, .opaque = io };
	if (vhd_aio_submit(q, &r, 1) != 1) {
		*status = VIRTIO_BLK_S_IOERR;
		return BLK_REQ_DONE;
	}
	return BLK_REQ_QUEUED;
}

uint32_t blk_req_finish(struct blk_io *io)
{
	bool ok = io->aio.result >= 0 && (uint64_t)io->aio.result == io->aio.length;

	*io->status = ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	return ok ? io->written : 1;
}

int blk_req_serve(struct blk_backend *b, const struct virtq_chain *c)
{
	struct blk_io io;
	int rc = blk_req_start(b, NULL, c, &io);

	return rc < 0 ? rc : (int)io.written;
}

int blk_req_start(struct blk_backend *b, vhd_aioq *q, const struct virtq_chain *c,
		  struct blk_io *io)
{
	const struct virtq_iov *in = c->iov + c->nout, *last;
	struct virtio_blk_outhdr hdr;
	struct span out, data;
	uint8_t status, *statusp;
	uint32_t written = 1;

	if (c->nin == 0)
		return -EPROTO;
	last = &in[c->nin - 1];
	statusp = last->base + last->len - 1;
	io->head = c->head;
	io->status = statusp;
	io->written = 1;
	span_init(&out, c->iov, c->nout, c->out_len, 0, 0);
	if (out.len < sizeof(hdr)) {
		*statusp = VIRTIO_BLK_S_IOERR;
		return BLK_REQ_DONE;
	}
	span_copy(&out, &hdr, 0, sizeof(hdr), 0);
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		span_init(&data, in, c->nin, c->in_len, 0, 1);
		io->written = c->in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)c->in_len;
		if (q && start_rw(b, q, hdr.type, hdr.sector, &data, io, &status) ==
			 BLK_REQ_QUEUED)
			return BLK_REQ_QUEUED;
		if (!q)
			status = do_rw(b, hdr.type, hdr.sector, &data);
		if (status == VIRTIO_BLK_S_OK)
			written = io->written;
		break;
	case VIRTIO_BLK_T_OUT:
		span_init(&data, c->iov, c->nout, c->out_len, sizeof(hdr), 0);
		if (q && start_rw(b, q, hdr.type, hdr.sector, &data, io, &status) ==
			 BLK_REQ_QUEUED)
			return BLK_REQ_QUEUED;
		if (!q)
			status = do_rw(b, hdr.type, hdr.sector, &data);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = blk_backend_flush(b) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES] = { 0 };

		memcpy(id, b->serial, strnlen(b->serial, sizeof(id)));
		span_init(&data, in, c->nin, c->in_len, 0, 1);
		span_copy(&data, id, 0, data.len < sizeof(id) ? data.len : sizeof(id), 1);
		status = VIRTIO_BLK_S_OK;
		written = 1 + (uint32_t)(data.len < sizeof(id) ? data.len : sizeof(id));
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		span_init(&data, c->iov, c->nout, c->out_len, sizeof(hdr), 0);
		status = do_ranges(b, hdr.type, &data);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	*statusp = status;
	io->written = written;
	return BLK_REQ_DONE;
}
