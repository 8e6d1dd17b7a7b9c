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

/* The next run of @buf to write at or after *@pos: all of it without
 * sparse_zeros, else the next non-zero run at the zero granularity.  False
 * when none is left. */
static bool next_run(const struct copy_job *j, const uint8_t *buf, uint32_t len,
		     uint32_t *pos, uint32_t *start, uint32_t *end)
{
	uint32_t g = j->zero_grain, p = *pos;

	if (!j->o->sparse_zeros) {
		*start = p;
		*end = *pos = len;
		return p < len;
	}
	while (p < len && bytes_all_zero(buf + p, len - p < g ? len - p : g))
		p += g;
	if (p >= len)
		return false;
	*start = p;
	while (p < len && !bytes_all_zero(buf + p, len - p < g ? len - p : g))
		p += g;
	*end = *pos = p < len ? p : len;
	return true;
}

/* Write the non-zero runs of @buf. */
static int write_nonzero(struct copy_job *j, const uint8_t *buf, uint32_t len,
			 uint64_t off)
{
	uint32_t pos = 0, start, end;

	while (next_run(j, buf, len, &pos, &start, &end)) {
		ssize_t n = vhd_pwrite(j->dst, buf + start, end - start, off + start);
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

static int source_error(struct copy_job *j, ssize_t rd)
{
	return disk_error(j->dst, (int)rd, "reading source: %s", vhd_errmsg(j->src));
}

static int finish_chunk(struct copy_job *j, const uint8_t *buf, const struct chunk *c,
			ssize_t rd)
{
	int rc;

	if (rd < 0)
		return source_error(j, rd);
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
 * reads ahead for us, so each worker keeps reads in flight (vhd_aio, libaio
 * where the source maps straight to its file) while it scans and writes
 * what has arrived.  With --direct the output's writes go through vhd_aio
 * too, so a worker's slots cycle read -> scan -> writes in flight -> free
 * without waiting on a write; a buffered output is written in place (the
 * page cache takes it at once).  READ_DEPTH slots per worker (eight 1 MiB
 * reads in all) measured best for buffered output here: deeper queues only
 * take disk time from the output's writeback.
 */
#define READ_DEPTH 2
#define DIRECT_DEPTH 4		/* slots per worker with --direct */
#define SLOT_WRITES 4		/* writes in flight per slot; more runs: sync */

enum slot_state { SLOT_FREE, SLOT_READING, SLOT_WRITING };

struct slot {
	enum slot_state state;
	struct chunk c;
	uint8_t *buf;
	struct vhd_aio rd;
	struct iovec riov;
	bool read_done;
	struct vhd_aio wr[SLOT_WRITES];
	struct iovec wiov[SLOT_WRITES];
	unsigned writing;	/* writes still in flight */
};

struct slots {
	struct copy_job *j;
	vhd_aioq *rq, *wq;	/* wq: NULL for a buffered output */
	struct slot s[DIRECT_DEPTH];
	unsigned n;		/* slots in use: READ_DEPTH or DIRECT_DEPTH */
	unsigned order[DIRECT_DEPTH], head, reading;	/* reads, oldest first */
};

static int start_read(struct slots *w, struct slot *t, const struct chunk *c)
{
	struct vhd_aio *r = &t->rd;

	t->c = *c;
	t->read_done = false;
	t->riov = (struct iovec){ t->buf, c->len };
	t->rd = (struct vhd_aio){ .op = VHD_AIO_READ, .iov = &t->riov, .iovcnt = 1,
				  .offset = c->off, .opaque = t };
	if (vhd_aio_submit(w->rq, &r, 1) != 1)
		return -EAGAIN;
	t->state = SLOT_READING;
	w->order[(w->head + w->reading++) % w->n] = (unsigned)(t - w->s);
	return 0;
}

/* A write of @t finished (or failed). */
static int write_done(struct slots *w, struct slot *t, const struct vhd_aio *a)
{
	if (a->result < 0 || (size_t)a->result != a->iov->iov_len)
		return disk_error(w->j->dst, a->result < 0 ? (int)a->result : -EIO,
				  "writing at %llu: %s", (unsigned long long)a->offset,
				  a->result < 0 ? vhd_strerror((int)a->result) : "short write");
	if (--t->writing == 0) {
		t->state = SLOT_FREE;
		__atomic_add_fetch(&w->j->done, t->c.len, __ATOMIC_RELAXED);
	}
	return 0;
}

static int reap_writes(struct slots *w, unsigned min)
{
	struct vhd_aio *done[DIRECT_DEPTH * SLOT_WRITES];
	int n = vhd_aio_reap(w->wq, done, min, DIRECT_DEPTH * SLOT_WRITES), rc = 0;

	for (int i = 0; i < n && rc == 0; i++)
		rc = write_done(w, done[i]->opaque, done[i]);
	return n < 0 ? n : rc;
}

/* The oldest read has arrived: scan it and write its non-zero runs. */
static int scan_and_write(struct slots *w, struct slot *t)
{
	struct copy_job *j = w->j;
	struct vhd_aio *reqs[SLOT_WRITES];
	uint32_t pos = 0, start, end;
	unsigned n = 0;

	if (!w->wq) {
		t->state = SLOT_FREE;
		return finish_chunk(j, t->buf, &t->c, t->rd.result);
	}
	if (t->rd.result < 0)
		return source_error(j, t->rd.result);
	while (n < SLOT_WRITES && next_run(j, t->buf, t->c.len, &pos, &start, &end)) {
		t->wiov[n] = (struct iovec){ t->buf + start, end - start };
		t->wr[n] = (struct vhd_aio){ .op = VHD_AIO_WRITE, .iov = &t->wiov[n],
					     .iovcnt = 1, .offset = t->c.off + start,
					     .opaque = t };
		reqs[n] = &t->wr[n];
		n++;
	}
	if (n == SLOT_WRITES && pos < t->c.len) {
		/* many runs: the rest synchronously, then the queued ones */
		int rc = write_nonzero(j, t->buf + pos, t->c.len - pos, t->c.off + pos);
		if (rc < 0)
			return rc;
	}
	if (n == 0) {
		t->state = SLOT_FREE;
		__atomic_add_fetch(&j->done, t->c.len, __ATOMIC_RELAXED);
		return 0;
	}
	t->state = SLOT_WRITING;
	t->writing = n;
	/* the queue holds every slot's writes: submission cannot fall short */
	return vhd_aio_submit(w->wq, reqs, n) == (int)n ? 0 : -EAGAIN;
}

static int wait_oldest_read(struct slots *w)
{
	struct slot *t = &w->s[w->order[w->head]];
	struct vhd_aio *done[DIRECT_DEPTH];

	while (!t->read_done) {
		int n = vhd_aio_reap(w->rq, done, 1, DIRECT_DEPTH);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			((struct slot *)done[i]->opaque)->read_done = true;
	}
	w->head = (w->head + 1) % w->n;
	w->reading--;
	return scan_and_write(w, t);
}

static struct slot *free_slot(struct slots *w)
{
	for (unsigned i = 0; i < w->n; i++)
		if (w->s[i].state == SLOT_FREE)
			return &w->s[i];
	return NULL;
}

static void *direct_worker(void *opaque)
{
	struct slots w = { .j = opaque };
	struct copy_job *j = w.j;
	struct slot *t;
	struct chunk c;
	bool more = true;
	int rc = 0;

	w.n = j->o->direct ? DIRECT_DEPTH : READ_DEPTH;
	for (unsigned i = 0; i < w.n; i++)
		if (!(w.s[i].buf = aligned_alloc(4096, j->chunk)))
			rc = -ENOMEM;
	if (rc == 0)
		rc = vhd_aioq_new(j->src, w.n, &w.rq);
	if (rc == 0 && j->o->direct)
		rc = vhd_aioq_new(j->dst, w.n * SLOT_WRITES, &w.wq);
	while (rc == 0) {
		while (rc == 0 && more && (t = free_slot(&w))) {
			more = take_chunk(j, &c);
			if (more)
				rc = start_read(&w, t, &c);
		}
		if (rc)
			break;
		if (w.reading)
			rc = wait_oldest_read(&w);
		else if (w.wq && !free_slot(&w))
			rc = reap_writes(&w, 1);
		else if (!more)
			break;
		if (rc == 0 && w.wq)
			rc = reap_writes(&w, 0);
	}
	/* with no more chunks, wait for the writes still in flight */
	while (rc == 0 && w.wq) {
		bool busy = false;
		for (unsigned i = 0; i < w.n; i++)
			busy |= w.s[i].state == SLOT_WRITING;
		if (!busy)
			break;
		rc = reap_writes(&w, 1);
	}
	if (rc < 0)
		set_error(j, rc);
	vhd_aioq_free(w.wq);	/* waits for requests still in flight */
	vhd_aioq_free(w.rq);
	for (unsigned i = 0; i < w.n; i++)
		free(w.s[i].buf);
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
