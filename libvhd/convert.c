/*
 * convert.c -- copy a disk (its whole chain) into a new image.
 *
 * The source is walked by extents, so holes and unallocated blocks are never
 * read.  Data is copied in small chunks (they stay in the CPU cache between
 * the read, the zero scan and the write) by a few threads, so that reads,
 * scans and writes overlap; every all-zero 4 KiB run is
 * skipped, because the new output already reads zeros there -- a dynamic
 * block is only allocated by its first non-zero write, and its unwritten
 * parts read as zeros -- so sparse outputs stay sparse.  The output is opened VHD_OPEN_UNSAFE (no
 * intermediate syncs) and synced once at the end; on any failure it is
 * removed, and the source is only ever read.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "disk.h"

#define CHUNK (256u << 10)
#define CHUNK_DIRECT (1024u << 10)	/* O_DIRECT: fewer, larger requests */
#define ZERO_GRAIN 4096u
#define READ_AHEAD (32u << 20)	/* prefetch window ahead of the copy */

#define WORKERS 4		/* copy threads: reads, scans and writes overlap */
#define QUEUE 16		/* chunks waiting for a worker */

struct chunk {
	uint64_t off;
	uint32_t len;
};

struct copy_job {
	vhd_disk *src, *dst;
	const struct vhd_convert_opts *o;
	uint32_t zero_grain;	/* granularity of zero skipping inside chunks */
	uint32_t chunk;		/* CHUNK or CHUNK_DIRECT */
	bool direct_read;	/* direct_worker: the source is read around the cache */
	uint64_t done;		/* atomic: bytes handled */
	uint64_t total;
	uint64_t prefetched;	/* source prefetched up to here (producer) */

	pthread_mutex_t lock;
	pthread_cond_t can_put, can_take;
	struct chunk q[QUEUE];
	unsigned head, count;
	bool finished;		/* no more chunks will come */
	int error;		/* first failure; stops everyone */
};

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* Write the non-zero runs of @buf at the zero granularity. */
static int write_nonzero(struct copy_job *j, const uint8_t *buf, uint32_t len,
			 uint64_t off)
{
	uint32_t g = j->zero_grain, pos = 0;
	ssize_t n;

	if (!j->o->sparse_zeros) {
		n = vhd_pwrite(j->dst, buf, len, off);
		return n < 0 ? (int)n : 0;
	}
	while (pos < len) {
		uint32_t start, end;
		while (pos < len && all_zero(buf + pos, len - pos < g ? len - pos : g))
			pos += g;
		if (pos >= len)
			break;
		start = pos;
		while (pos < len && !all_zero(buf + pos, len - pos < g ? len - pos : g))
			pos += g;
		end = pos < len ? pos : len;
		n = vhd_pwrite(j->dst, buf + start, end - start, off + start);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

static void set_error(struct copy_job *j, int rc)
{
	pthread_mutex_lock(&j->lock);
	if (!j->error)
		j->error = rc;
	pthread_cond_broadcast(&j->can_put);
	pthread_cond_broadcast(&j->can_take);
	pthread_mutex_unlock(&j->lock);
}

/* Next chunk to copy; false when there is none (finished or failed). */
static bool take_chunk(struct copy_job *j, struct chunk *c)
{
	bool got = false;

	pthread_mutex_lock(&j->lock);
	while (!j->count && !j->finished && !j->error)
		pthread_cond_wait(&j->can_take, &j->lock);
	if (!j->error && j->count) {
		*c = j->q[j->head];
		j->head = (j->head + 1) % QUEUE;
		j->count--;
		pthread_cond_signal(&j->can_put);
		got = true;
	}
	pthread_mutex_unlock(&j->lock);
	return got;
}

static int finish_chunk(struct copy_job *j, const uint8_t *buf, const struct chunk *c,
			ssize_t rd)
{
	int rc;

	if (rd < 0)
		return disk_error(j->dst, (int)rd, "reading source: %s",
				  vhd_errmsg(j->src));
	rc = write_nonzero(j, buf, c->len, c->off);
	if (rc < 0)
		return rc;
	__atomic_add_fetch(&j->done, c->len, __ATOMIC_RELAXED);
	return 0;
}

static void *worker(void *opaque)
{
	struct copy_job *j = opaque;
	uint8_t *buf = aligned_alloc(4096, j->chunk);
	struct chunk c;
	int rc = 0;

	if (!buf) {
		set_error(j, -ENOMEM);
		return NULL;
	}
	while (rc == 0 && take_chunk(j, &c))
		rc = finish_chunk(j, buf, &c, vhd_pread(j->src, buf, c.len, c.off));
	if (rc < 0)
		set_error(j, rc);
	free(buf);
	return NULL;
}

/*
 * The worker for sources read around the page cache (O_DIRECT): nothing
 * reads ahead for us, so each worker keeps its next READ_DEPTH - 1 chunks'
 * reads in flight (vhd_aio, libaio where the source maps straight to its
 * file) while it scans and writes the current one.  Two per worker (eight
 * 1 MiB reads in all) measured best here: deeper queues only take disk
 * time from the output's writeback.
 */
#define READ_DEPTH 2

struct pending {
	struct vhd_aio a;
	struct iovec iov;
	struct chunk c;
	uint8_t *buf;
	bool done;
};

static int start_read(vhd_aioq *q, struct pending *p, const struct chunk *c)
{
	struct vhd_aio *r = &p->a;

	p->c = *c;
	p->done = false;
	p->iov = (struct iovec){ p->buf, c->len };
	p->a = (struct vhd_aio){ .op = VHD_AIO_READ, .iov = &p->iov, .iovcnt = 1,
				 .offset = c->off, .opaque = p };
	return vhd_aio_submit(q, &r, 1) == 1 ? 0 : -EAGAIN;
}

static int wait_read(vhd_aioq *q, struct pending *p)
{
	struct vhd_aio *done[READ_DEPTH];

	while (!p->done) {
		int n = vhd_aio_reap(q, done, 1, READ_DEPTH);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			((struct pending *)done[i]->opaque)->done = true;
	}
	return 0;
}

/* Ring of READ_DEPTH reads: p[head] is the oldest of @inflight. */
static void *direct_worker(void *opaque)
{
	struct copy_job *j = opaque;
	struct pending p[READ_DEPTH] = { 0 };
	unsigned head = 0, inflight = 0;
	vhd_aioq *q = NULL;
	struct chunk c;
	bool more = true;
	int rc = 0;

	for (unsigned i = 0; i < READ_DEPTH; i++)
		if (!(p[i].buf = aligned_alloc(4096, j->chunk)))
			rc = -ENOMEM;
	if (rc == 0)
		rc = vhd_aioq_new(j->src, READ_DEPTH, &q);
	while (rc == 0) {
		while (rc == 0 && more && inflight < READ_DEPTH) {
			more = take_chunk(j, &c);
			if (more) {
				rc = start_read(q, &p[(head + inflight) % READ_DEPTH], &c);
				inflight += rc == 0;
			}
		}
		if (rc || !inflight)
			break;
		rc = wait_read(q, &p[head]);
		if (rc == 0)
			rc = finish_chunk(j, p[head].buf, &p[head].c, p[head].a.result);
		head = (head + 1) % READ_DEPTH;
		inflight--;
	}
	if (rc < 0)
		set_error(j, rc);
	vhd_aioq_free(q);	/* waits for reads still in flight */
	for (unsigned i = 0; i < READ_DEPTH; i++)
		free(p[i].buf);
	return NULL;
}

static int report(struct copy_job *j)
{
	uint64_t done = __atomic_load_n(&j->done, __ATOMIC_RELAXED);

	if (j->o->progress && j->o->progress(j->o->opaque, done, j->total))
		return disk_error(j->dst, -ECANCELED, "conversion cancelled");
	return 0;
}

/* Producer: queue [off, off+len) in chunks, keeping read-ahead going. */
static int queue_range(struct copy_job *j, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t room = j->chunk - (off % j->chunk);
		uint32_t n = (uint32_t)(len < room ? len : room);
		int rc;

		if (j->prefetched < off)
			j->prefetched = off;
		if (!j->direct_read && j->prefetched < off + READ_AHEAD / 2) {
			vhd_prefetch(j->src, j->prefetched, READ_AHEAD);
			j->prefetched += READ_AHEAD;
		}
		pthread_mutex_lock(&j->lock);
		while (j->count == QUEUE && !j->error)
			pthread_cond_wait(&j->can_put, &j->lock);
		rc = j->error;
		if (!rc) {
			j->q[(j->head + j->count) % QUEUE] = (struct chunk){ off, n };
			j->count++;
			pthread_cond_signal(&j->can_take);
		}
		pthread_mutex_unlock(&j->lock);
		if (rc)
			return rc;
		rc = report(j);
		if (rc)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

static int copy_extent(void *opaque, const struct vhd_extent *e)
{
	struct copy_job *j = opaque;

	if (e->type == VHD_EXT_ZERO) {
		__atomic_add_fetch(&j->done, e->length, __ATOMIC_RELAXED);
		return report(j);
	}
	return queue_range(j, e->offset, e->length);
}

/* Walk the source's extents and copy them with WORKERS threads. */
static int parallel_copy(struct copy_job *j)
{
	pthread_t t[WORKERS];
	int n = 0, rc;

	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->can_put, NULL);
	pthread_cond_init(&j->can_take, NULL);
	for (; n < WORKERS; n++)
		if (pthread_create(&t[n], NULL, j->direct_read ? direct_worker : worker, j) != 0)
			break;
	rc = n ? vhd_extents(j->src, 0, j->src->size, copy_extent, j) : -EAGAIN;
	if (rc)
		set_error(j, rc);
	pthread_mutex_lock(&j->lock);
	j->finished = true;
	pthread_cond_broadcast(&j->can_take);
	pthread_mutex_unlock(&j->lock);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	rc = j->error;
	/* A failure of the source's own extent map is recorded on the source. */
	if (rc < 0 && !*vhd_errmsg(j->dst))
		disk_error(j->dst, rc, "reading source: %s", vhd_errmsg(j->src));
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->can_put);
	pthread_cond_destroy(&j->can_take);
	return rc;
}

static void remove_output(const struct vhd_convert_opts *o, const char *path)
{
	const struct vhd_io_factory *f = o->out.io ? o->out.io : vhd_io_posix();

	if (f->remove)
		f->remove(f, path);
}

int vhd_convert(vhd_disk *src, const char *dst_path,
		const struct vhd_convert_opts *o)
{
	struct vhd_create_opts co = o->out;
	struct vhd_open_opts oo = { .io = o->out.io };
	struct copy_job j = { .src = src, .o = o, .total = src->size };
	unsigned flags = VHD_OPEN_RDWR | VHD_OPEN_UNSAFE;
	char msg[1024];
	int rc;

	co.size = src->size;
	if (co.type == VHD_TYPE_DIFF)
		return path_error(dst_path, -EINVAL,
				  "convert writes standalone images; use snapshot for a child");
	if (co.format != VHD_FMT_RAW && src->size % 512)
		return path_error(dst_path, -EINVAL,
				  "source size %llu is not a multiple of 512 bytes",
				  (unsigned long long)src->size);
	rc = vhd_create(dst_path, &co, NULL);
	if (rc < 0)
		return rc;
	if (o->direct)
		flags |= VHD_OPEN_DIRECT;
	rc = vhd_open(dst_path, flags, &oo, &j.dst);
	if (rc < 0) {
		remove_output(o, dst_path);
		return rc;
	}
	j.zero_grain = ZERO_GRAIN;
	j.direct_read = o->direct || o->direct_source;
	j.chunk = j.direct_read ? CHUNK_DIRECT : CHUNK;
	rc = parallel_copy(&j);
	if (rc == 0)
		rc = vhd_flush(j.dst);
	if (rc < 0)
		goto fail;
	rc = vhd_close(j.dst);
	if (rc < 0)
		remove_output(o, dst_path);
	return rc;

fail:
	snprintf(msg, sizeof(msg), "%s", vhd_errmsg(j.dst));
	vhd_close(j.dst);	/* a valid image of what was copied so far */
	if (!o->keep_partial)
		remove_output(o, dst_path);
	path_error(dst_path, rc, "%s (%s)",
		   !strncmp(msg, dst_path, strlen(dst_path)) ? msg + strlen(dst_path) + 2 : msg,
		   o->keep_partial ? "partial output kept" : "partial output removed");
	return rc;
}
