/* virtq.c -- a split virtqueue driven by polling.
 *
 * Memory (3 pages from the caller, 4 KiB aligned): descriptor table,
 * avail ring, used ring, one page each.  Free descriptors are chained
 * through desc[].next starting at free_head.  The guest never takes
 * interrupts: avail->flags says so, and completions are found by polling
 * used->idx.  Ordering: descriptors and the avail entry are written before
 * avail->idx (compiler barrier; x86 does not reorder stores), and the
 * notify write is an MMIO exit, which orders everything before it. */
#include "virtio.h"

size_t virtq_mem_size(void)
{
	return 3 * 4096;
}

void virtq_reset_free(struct virtq *q)
{
	uint16_t i;

	for (i = 0; i < q->size; i++)
		q->desc[i].next = i + 1;
	q->free_head = 0;
	q->num_free = q->size;
}

void virtq_init(struct virtq *q, uint16_t index, uint16_t size, void *mem, uint64_t notify)
{
	uint8_t *m = mem;

	memset(mem, 0, virtq_mem_size());
	q->size = size;
	q->index = index;
	q->desc = (volatile struct vring_desc *)m;
	q->avail = (volatile struct vring_avail *)(m + 4096);
	q->used = (volatile struct vring_used *)(m + 8192);
	q->notify = notify;
	q->avail_idx = 0;
	q->last_used = 0;
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	virtq_reset_free(q);
}

int virtq_add(struct virtq *q, const struct vbuf *b, int n, void *cookie)
{
	uint16_t head = q->free_head, i = head;
	int k;

	if (n < 1 || n > q->num_free)
		return -1;
	for (k = 0; k < n; k++) {
		volatile struct vring_desc *d = &q->desc[i];

		d->addr = b[k].addr;
		d->len = b[k].len;
		d->flags = (b[k].write ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0);
		i = d->next;	/* the free chain's next is the request's next */
	}
	q->free_head = i;
	q->num_free -= n;
	q->chain_len[head] = n;
	q->cookie[head] = cookie;
	return head;
}

void virtq_publish(struct virtq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->size] = head;
	barrier();
	q->avail_idx++;
	q->avail->idx = q->avail_idx;
}

void virtq_kick(struct virtq *q)
{
	mb();
	if (!(q->used->flags & VRING_USED_F_NO_NOTIFY))
		mmio_write16(q->notify, q->index);
}

/* Returns the chain at head to the free list (its descriptors are still
 * linked by next as they were added). */
static void free_chain(struct virtq *q, uint16_t head)
{
	uint16_t i = head, n = q->chain_len[head];

	while (--n)
		i = q->desc[i].next;
	q->desc[i].next = q->free_head;
	q->free_head = head;
	q->num_free += q->chain_len[head];
	q->chain_len[head] = 0;
	q->cookie[head] = NULL;
}

bool virtq_get(struct virtq *q, void **cookie, uint32_t *len, uint32_t *id)
{
	volatile struct vring_used_elem *e;
	uint32_t head;

	if (q->used->idx == q->last_used)
		return false;
	barrier();
	e = &q->used->ring[q->last_used % q->size];
	head = e->id;
	if (id)
		*id = head;
	if (len)
		*len = e->len;
	q->last_used++;
	if (head >= q->size || !q->chain_len[head]) {
		*cookie = NULL;	/* the device returned a head we did not give it */
		return true;
	}
	*cookie = q->cookie[head];
	free_chain(q, head);
	return true;
}
