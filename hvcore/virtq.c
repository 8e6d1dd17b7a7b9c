/*
 * virtq.c -- split virtqueue parser (see virtq.h for the guarantees).
 *
 * Ring layout in guest memory (little-endian, virtio 1.x 2.7):
 *   desc  table: size x { le64 addr; le32 len; le16 flags; le16 next }   align 16
 *   avail ring : le16 flags; le16 idx; le16 ring[size]; le16 used_event align 2
 *   used  ring : le16 flags; le16 idx; { le32 id; le32 len }[size];
 *                le16 avail_event                                       align 4
 * The host is x86-64 (little-endian): fields are used as they are.
 */
#include <errno.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "virtq.h"

#define CHAIN_MAX_BYTES (1ULL << 32)

static inline uint16_t load16(const volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store16(volatile uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The event fields after each ring (VIRTIO_F_RING_EVENT_IDX). */
static inline uint16_t *used_event(const struct virtq *q)
{
	return (uint16_t *)((uint8_t *)q->avail + 4 + 2 * q->size);
}

static inline uint16_t *avail_event(const struct virtq *q)
{
	return (uint16_t *)((uint8_t *)q->used + 4 + 8 * q->size);
}

int virtq_init(struct virtq *q, const struct gmem *mem, uint16_t size,
	       uint64_t desc, uint64_t avail, uint64_t used, bool event_idx)
{
	memset(q, 0, sizeof(*q));
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if ((desc & 15) || (avail & 1) || (used & 3))
		return -EINVAL;
	q->desc = gmem_ptr(mem, desc, 16ULL * size);
	q->avail = gmem_ptr(mem, avail, 6 + 2ULL * size);
	q->used = gmem_ptr(mem, used, 6 + 8ULL * size);
	if (!q->desc || !q->avail || !q->used)
		return -EFAULT;
	q->mem = mem;
	q->size = size;
	q->event_idx = event_idx;
	return 0;
}

/* The status byte of a bad chain: the last byte of its last descriptor,
 * when that one is writable and inside RAM. */
static uint8_t *bad_chain_status(const struct virtq *q, const struct vring_desc *last)
{
	uint8_t *p;

	if (!(last->flags & VRING_DESC_F_WRITE) || last->len == 0)
		return NULL;
	p = gmem_ptr(q->mem, last->addr, last->len);
	return p ? p + last->len - 1 : NULL;
}

/* Walk the chain at @head.  Structural faults (index out of range, a loop)
 * leave no way to find the chain's end: -EPROTO.  Faults in a buffer (outside
 * RAM, too long in total, order, indirect) keep walking to find the status
 * byte: -EBADMSG. */
static int walk(struct virtq *q, uint16_t head, struct virtq_chain *c)
{
	struct vring_desc d = { 0 };
	uint16_t idx = head;
	unsigned n = 0;
	uint64_t total = 0;
	bool bad = false;
	uint8_t *p;

	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	c->status = NULL;
	for (;;) {
		if (idx >= q->size || ++n > q->size)
			return -EPROTO;
		memcpy(&d, (const void *)&q->desc[idx], sizeof(d));
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		total += d.len;
		if (total > CHAIN_MAX_BYTES || (d.flags & VRING_DESC_F_INDIRECT))
			bad = true;
		if (!(d.flags & VRING_DESC_F_WRITE) && c->nin)
			bad = true;	/* readable after writable */
		if (!bad && d.len) {
			p = gmem_ptr(q->mem, d.addr, d.len);
			if (!p) {
				bad = true;
			} else {
				c->iov[c->nout + c->nin] = (struct virtq_iov){ p, d.len };
				if (d.flags & VRING_DESC_F_WRITE) {
					c->nin++;
					c->in_len += d.len;
				} else {
					c->nout++;
					c->out_len += d.len;
				}
			}
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	if (!bad)
		return VIRTQ_CHAIN;
	c->status = bad_chain_status(q, &d);
	if (!c->status) {
		q->broken = true;
		return -EPROTO;
	}
	return -EBADMSG;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	uint16_t avail_idx, head;
	int rc;

	if (q->broken)
		return -EPROTO;
	avail_idx = load16(&q->avail->idx);
	if (avail_idx == q->last_avail)
		return VIRTQ_EMPTY;
	if ((uint16_t)(avail_idx - q->last_avail) > q->size) {
		q->broken = true;	/* the driver claims more than the ring holds */
		return -EPROTO;
	}
	head = load16(&q->avail->ring[q->last_avail & (q->size - 1)]);
	q->last_avail++;
	rc = walk(q, head, c);
	if (rc == -EPROTO)
		q->broken = true;
	return rc;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &q->used->ring[q->used_idx & (q->size - 1)];

	e->id = head;
	e->len = len;
	q->used_idx++;
	store16(&q->used->idx, q->used_idx);
}

bool virtq_need_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used, new = q->used_idx, event;

	/* The used idx store must be visible before we read the driver's
	 * flags/event, or we could miss a request for an interrupt. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->signalled_used = new;
	if (!q->event_idx)
		return !(load16(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	event = load16(used_event(q));
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void virtq_disable_notify(struct virtq *q)
{
	if (!q->event_idx)
		store16(&q->used->flags, VRING_USED_F_NO_NOTIFY);
}

bool virtq_has_avail(struct virtq *q)
{
	return !q->broken && load16(&q->avail->idx) != q->last_avail;
}

bool virtq_enable_notify(struct virtq *q)
{
	if (q->event_idx)
		store16(avail_event(q), q->last_avail);
	else
		store16(&q->used->flags, 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !q->broken && load16(&q->avail->idx) != q->last_avail;
}
