/*
 * io_crashsim.c -- an in-memory, crash-simulating I/O backend for tests.
 *
 * Model (after SQLite's test6.c): each file has a durable image and the list
 * of writes made since its last flush.  Reads see every write.  A flush makes
 * the file's pending writes durable.  A crash keeps the durable image plus a
 * random subset of the pending writes, chosen independently per 512-byte
 * file sector, applied in issue order: writes may be reordered, torn at
 * sector boundaries or lost, but a sector is written whole or not at all.
 * Truncations are pending too, and kept or dropped as a unit.
 *
 * A cut armed with vhd_crashsim_cut_after(n) lets n more writes through and
 * then freezes every file: later writes and flushes fail with -EIO, so the
 * workload stops exactly at a write point, and vhd_crashsim_save_crash()
 * materializes what a crash there would leave.
 *
 * Not thread-safe beyond a simulator-wide mutex; meant for tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvhd.h"

struct cs_op {
	uint64_t off;
	size_t len;		/* 0 for a truncate */
	uint64_t new_size;	/* truncate */
	uint8_t *data;
};

struct cs_file {
	char *path;
	uint8_t *cur;		/* what reads see */
	uint64_t cur_size;
	size_t cur_cap;
	uint8_t *dur;		/* durable image */
	uint64_t dur_size;
	struct cs_op *ops;	/* pending since last flush */
	size_t nops, capops;
	int open_count;
	uint64_t ino;
};

struct vhd_crashsim {
	struct vhd_io_factory factory;	/* first: recovers the simulator */
	pthread_mutex_t lock;
	struct cs_file **files;
	size_t nfiles;
	uint64_t rng;
	uint64_t writes;
	uint64_t cut_at;	/* 0 = disarmed */
	int crashed;
	struct vhd_io_ops ops;	/* every file's: punch and copy only once
				 * allowed */
};

struct cs_io {
	struct vhd_io base;
	struct vhd_crashsim *cs;
	struct cs_file *f;
	int writable;
};

static uint64_t cs_rand(struct vhd_crashsim *cs)
{
	/* xorshift64* */
	uint64_t x = cs->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	cs->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int grow(uint8_t **buf, size_t *cap, uint64_t need)
{
	size_t n = *cap ? *cap : 4096;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	memset(p + *cap, 0, n - *cap);
	*buf = p;
	*cap = n;
	return 0;
}

static int set_size(uint8_t **buf, size_t *cap, uint64_t *size, uint64_t nsize)
{
	int rc = grow(buf, cap, nsize);

	if (rc < 0)
		return rc;
	if (nsize < *size)
		memset(*buf + nsize, 0, *size - nsize);
	else if (nsize > *size)
		memset(*buf + *size, 0, nsize - *size);
	*size = nsize;
	return 0;
}

static int write_into(uint8_t **buf, size_t *cap, uint64_t *size,
		      const uint8_t *data, size_t len, uint64_t off)
{
	if (len == 0)
		return 0;
	if (off + len > *size) {
		int rc = set_size(buf, cap, size, off + len);
		if (rc < 0)
			return rc;
	}
	memcpy(*buf + off, data, len);
	return 0;
}

static struct cs_file *find_file(struct vhd_crashsim *cs, const char *path)
{
	for (size_t i = 0; i < cs->nfiles; i++)
		if (!strcmp(cs->files[i]->path, path))
			return cs->files[i];
	return NULL;
}

static struct cs_file *add_file(struct vhd_crashsim *cs, const char *path)
{
	struct cs_file **v, *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->path = strdup(path);
	v = realloc(cs->files, (cs->nfiles + 1) * sizeof(*v));
	if (!f->path || !v) {
		free(f->path);
		free(f);
		if (v)
			cs->files = v;
		return NULL;
	}
	cs->files = v;
	f->ino = cs->nfiles + 1;
	cs->files[cs->nfiles++] = f;
	return f;
}

static void clear_ops(struct cs_file *f)
{
	for (size_t i = 0; i < f->nops; i++)
		free(f->ops[i].data);
	f->nops = 0;
}

static int push_op(struct cs_file *f, const struct cs_op *op)
{
	if (f->nops == f->capops) {
		size_t n = f->capops ? f->capops * 2 : 16;
		struct cs_op *v = realloc(f->ops, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		f->ops = v;
		f->capops = n;
	}
	f->ops[f->nops++] = *op;
	return 0;
}

static ssize_t cs_pread(struct vhd_io *io, void *buf, size_t len, uint64_t off)
{
	struct cs_io *c = (struct cs_io *)io;
	struct cs_file *f = c->f;
	size_t n = 0;

	pthread_mutex_lock(&c->cs->lock);
	if (off < f->cur_size) {
		n = len;
		if (off + n > f->cur_size)
			n = (size_t)(f->cur_size - off);
		memcpy(buf, f->cur + off, n);
	}
	pthread_mutex_unlock(&c->cs->lock);
	return (ssize_t)n;
}

/* Called with the lock held: one more write point; freeze at the cut. */
static int write_point(struct vhd_crashsim *cs)
{
	if (cs->crashed)
		return -EIO;
	if (cs->cut_at && cs->writes >= cs->cut_at) {
		cs->crashed = 1;
		return -EIO;
	}
	cs->writes++;
	return 0;
}

static ssize_t cs_pwrite(struct vhd_io *io, const void *buf, size_t len,
			 uint64_t off)
{
	struct cs_io *c = (struct cs_io *)io;
	struct cs_file *f = c->f;
	struct cs_op op = { .off = off, .len = len };
	size_t cap = f->cur_cap;
	int rc;

	if (!c->writable)
		return -EBADF;
	if (len == 0)
		return 0;
	pthread_mutex_lock(&c->cs->lock);
	rc = write_point(c->cs);
	if (rc < 0)
		goto out;
	op.data = malloc(len);
	if (!op.data) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(op.data, buf, len);
	rc = write_into(&f->cur, &cap, &f->cur_size, buf, len, off);
	f->cur_cap = cap;
	if (rc == 0)
		rc = push_op(f, &op);
	if (rc < 0)
		free(op.data);
out:
	pthread_mutex_unlock(&c->cs->lock);
	return rc < 0 ? rc : (ssize_t)len;
}

static int cs_flush(struct vhd_io *io)
{
	struct cs_io *c = (struct cs_io *)io;
	struct cs_file *f = c->f;
	uint8_t *dur;
	int rc = 0;

	pthread_mutex_lock(&c->cs->lock);
	if (c->cs->crashed) {
		rc = -EIO;
		goto out;
	}
	dur = malloc(f->cur_size ? f->cur_size : 1);
	if (!dur) {
		rc = -ENOMEM;
		goto out;
	}
	if (f->cur_size)
		memcpy(dur, f->cur, f->cur_size);
	free(f->dur);
	f->dur = dur;
	f->dur_size = f->cur_size;
	clear_ops(f);
out:
	pthread_mutex_unlock(&c->cs->lock);
	return rc;
}

static int cs_get_size(struct vhd_io *io, uint64_t *size)
{
	struct cs_io *c = (struct cs_io *)io;

	pthread_mutex_lock(&c->cs->lock);
	*size = c->f->cur_size;
	pthread_mutex_unlock(&c->cs->lock);
	return 0;
}

/* FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: a pending write of zeros
 * inside the file (one write point, torn per sector like any other). */
static int cs_punch(struct vhd_io *io, uint64_t off, uint64_t len)
{
	struct cs_io *c = (struct cs_io *)io;
	uint64_t size;
	uint8_t *zeros;
	ssize_t n;

	cs_get_size(io, &size);
	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = size - off;
	zeros = calloc(1, (size_t)len);
	if (!zeros)
		return -ENOMEM;
	n = cs_pwrite(&c->base, zeros, (size_t)len, off);
	free(zeros);
	return n < 0 ? (int)n : 0;
}

static int cs_truncate(struct vhd_io *io, uint64_t size)
{
	struct cs_io *c = (struct cs_io *)io;
	struct cs_file *f = c->f;
	struct cs_op op = { .new_size = size };
	size_t cap = f->cur_cap;
	int rc;

	if (!c->writable)
		return -EBADF;
	pthread_mutex_lock(&c->cs->lock);
	rc = write_point(c->cs);
	if (rc == 0)
		rc = set_size(&f->cur, &cap, &f->cur_size, size);
	f->cur_cap = cap;
	if (rc == 0)
		rc = push_op(f, &op);
	pthread_mutex_unlock(&c->cs->lock);
	return rc;
}

static int cs_identity(struct vhd_io *io, uint64_t *dev, uint64_t *ino)
{
	struct cs_io *c = (struct cs_io *)io;

	*dev = (uint64_t)(uintptr_t)c->cs;
	*ino = c->f->ino;
	return 0;
}

static void cs_close(struct vhd_io *io)
{
	struct cs_io *c = (struct cs_io *)io;

	pthread_mutex_lock(&c->cs->lock);
	c->f->open_count--;
	pthread_mutex_unlock(&c->cs->lock);
	free(c);
}

/* copy_file_range within the file: one pending write of what reads see at
 * @src (one write point, torn per sector like any other). */
static ssize_t cs_copy(struct vhd_io *io, uint64_t src, uint64_t dst, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	n = cs_pread(io, buf, len, src);
	if (n > 0)
		n = cs_pwrite(io, buf, (size_t)n, dst);
	free(buf);
	return n;
}

static const struct vhd_io_ops cs_ops = {
	.pread = cs_pread,
	.pwrite = cs_pwrite,
	.flush = cs_flush,
	.get_size = cs_get_size,
	.truncate = cs_truncate,
	.close = cs_close,
	.identity = cs_identity,
};

static int cs_open(const struct vhd_io_factory *fac, const char *path,
		   unsigned flags, struct vhd_io **out)
{
	struct vhd_crashsim *cs = (struct vhd_crashsim *)fac;
	struct cs_file *f;
	struct cs_io *c;
	int rc = 0;

	pthread_mutex_lock(&cs->lock);
	f = find_file(cs, path);
	if (flags & VHD_IO_CREATE) {
		if (f) {
			rc = -EEXIST;
			goto out;
		}
		f = add_file(cs, path);
		if (!f) {
			rc = -ENOMEM;
			goto out;
		}
	} else if (!f) {
		rc = -ENOENT;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	c->base.ops = &cs->ops;
	c->cs = cs;
	c->f = f;
	c->writable = !!(flags & (VHD_IO_RDWR | VHD_IO_CREATE));
	f->open_count++;
	*out = &c->base;
out:
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

/* Removing drops the file from the table (its name can be created again);
 * open handles keep working on the old file. */
static int cs_remove(const struct vhd_io_factory *fac, const char *path)
{
	struct vhd_crashsim *cs = (struct vhd_crashsim *)fac;
	int rc = -ENOENT;

	pthread_mutex_lock(&cs->lock);
	for (size_t i = 0; i < cs->nfiles; i++) {
		if (strcmp(cs->files[i]->path, path))
			continue;
		cs->files[i]->path[0] = '\0';	/* unreachable by name */
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

struct vhd_crashsim *vhd_crashsim_new(uint64_t seed)
{
	struct vhd_crashsim *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return NULL;
	cs->factory.open = cs_open;
	cs->factory.remove = cs_remove;
	pthread_mutex_init(&cs->lock, NULL);
	cs->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
	cs->ops = cs_ops;
	return cs;
}

void vhd_crashsim_allow_punch(struct vhd_crashsim *cs)
{
	cs->ops.punch = cs_punch;
}

void vhd_crashsim_allow_copy(struct vhd_crashsim *cs)
{
	cs->ops.copy = cs_copy;
}

void vhd_crashsim_free(struct vhd_crashsim *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->nfiles; i++) {
		struct cs_file *f = cs->files[i];
		clear_ops(f);
		free(f->ops);
		free(f->cur);
		free(f->dur);
		free(f->path);
		free(f);
	}
	free(cs->files);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

const struct vhd_io_factory *vhd_crashsim_factory(struct vhd_crashsim *cs)
{
	return &cs->factory;
}

int vhd_crashsim_load_buf(struct vhd_crashsim *cs, const char *path,
			  const void *buf, size_t len)
{
	struct cs_file *f;
	size_t cap = 0;
	int rc = -ENOMEM;

	pthread_mutex_lock(&cs->lock);
	f = find_file(cs, path);
	if (f) {
		rc = -EEXIST;
		goto out;
	}
	f = add_file(cs, path);
	if (!f)
		goto out;
	rc = write_into(&f->cur, &cap, &f->cur_size, buf, len, 0);
	f->cur_cap = cap;
	cap = 0;
	if (rc == 0)
		rc = write_into(&f->dur, &cap, &f->dur_size, buf, len, 0);
out:
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

int vhd_crashsim_load(struct vhd_crashsim *cs, const char *path,
		      const char *host_path)
{
	int fd = open(host_path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;
		if ((rc = grow(&buf, &cap, len + 65536)) < 0)
			goto out;
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = vhd_crashsim_load_buf(cs, path, buf, len);
out:
	free(buf);
	close(fd);
	return rc;
}

void vhd_crashsim_cut_after(struct vhd_crashsim *cs, uint64_t n)
{
	pthread_mutex_lock(&cs->lock);
	cs->cut_at = n ? cs->writes + n : 0;
	cs->crashed = 0;
	pthread_mutex_unlock(&cs->lock);
}

uint64_t vhd_crashsim_writes(const struct vhd_crashsim *cs)
{
	return __atomic_load_n(&cs->writes, __ATOMIC_RELAXED);
}

int vhd_crashsim_crashed(const struct vhd_crashsim *cs)
{
	return __atomic_load_n(&cs->crashed, __ATOMIC_RELAXED);
}

/* Apply one pending write to @img, keeping each 512-byte sector piece with
 * probability keep_pct. */
static int apply_partial(struct vhd_crashsim *cs, const struct cs_op *op,
			 uint8_t **img, size_t *cap, uint64_t *size,
			 unsigned keep_pct)
{
	uint64_t pos = op->off, end = op->off + op->len;
	int rc = 0;

	if (op->len == 0) {
		if (cs_rand(cs) % 100 < keep_pct)
			rc = set_size(img, cap, size, op->new_size);
		return rc;
	}
	while (pos < end && rc == 0) {
		uint64_t next = (pos / 512 + 1) * 512;
		if (next > end)
			next = end;
		if (cs_rand(cs) % 100 < keep_pct)
			rc = write_into(img, cap, size, op->data + (pos - op->off),
					(size_t)(next - pos), pos);
		pos = next;
	}
	return rc;
}

int vhd_crashsim_save_crash(struct vhd_crashsim *cs, const char *path,
			    const char *host_path, unsigned keep_pct)
{
	uint8_t *img = NULL;
	size_t cap = 0;
	uint64_t size = 0;
	struct cs_file *f;
	int fd, rc;

	pthread_mutex_lock(&cs->lock);
	f = find_file(cs, path);
	if (!f) {
		rc = -ENOENT;
		goto out;
	}
	rc = write_into(&img, &cap, &size, f->dur ? f->dur : (uint8_t *)"",
			(size_t)f->dur_size, 0);
	for (size_t i = 0; i < f->nops && rc == 0; i++)
		rc = apply_partial(cs, &f->ops[i], &img, &cap, &size, keep_pct);
	if (rc < 0)
		goto out;
	fd = open(host_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	for (uint64_t done = 0; done < size;) {
		ssize_t n = write(fd, img + done, (size_t)(size - done));
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		done += (uint64_t)n;
	}
	close(fd);
out:
	pthread_mutex_unlock(&cs->lock);
	free(img);
	return rc;
}
