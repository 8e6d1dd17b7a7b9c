/*
 * layer_copy.c -- copy what one layer of a chain stores itself into another
 * disk (merge.c's copy into an ancestor, convert_chain.c's copy into a new
 * differencing output).  Ranges the layer takes from its parent are not
 * copied; ranges it stores as zeros over a parent are zeroed in the target.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk.h"
#include "io.h"

static int copy_cb(void *opaque, uint64_t off, uint64_t len, enum layer_extent what)
{
	struct layer_copy *c = opaque;
	int rc;

	if (what == LAYER_PARENT || (what == LAYER_ZERO && !c->layer_has_parent))
		return 0;
	if (what == LAYER_ZERO) {
		rc = vhd_zero(c->target, off, len, 0);
		return rc < 0 ? rc : 0;
	}
	while (len) {
		size_t n = len < LAYER_COPY_CHUNK ? (size_t)len : LAYER_COPY_CHUNK;
		ssize_t r = c->layer->ops->pread(c->layer, c->buf, n, off);
		if (r < 0)
			return (int)r;
		r = vhd_pwrite(c->target, c->buf, n, off);
		if (r < 0)
			return (int)r;
		off += n;
		len -= n;
		c->done += n;
		if (c->progress && c->progress(c->opaque, c->done, c->total))
			return -ECANCELED;
	}
	return 0;
}

/*
 * The copy walks a layer in virtual order, but a layer's blocks lie in the
 * file in the order they were written: the reads land all over the file.
 * A reader thread runs through the file front to back meanwhile (bounded by
 * half the free memory), so the copy mostly finds its blocks in the page
 * cache, read at sequential speed.
 */
struct warmer {
	pthread_t thread;
	struct vhd_io *io;
	uint64_t size;
	bool stop;		/* atomic */
	bool running;
};

static void *warm_file(void *opaque)
{
	struct warmer *w = opaque;
	uint8_t *buf = malloc(LAYER_COPY_CHUNK);

	for (uint64_t off = 0; buf && off < w->size; off += LAYER_COPY_CHUNK) {
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			break;
		if (w->io->ops->pread(w->io, buf, LAYER_COPY_CHUNK, off) <= 0)
			break;
	}
	free(buf);
	return NULL;
}

static void warm_start(struct warmer *w, vhd_disk *layer)
{
	long pages = sysconf(_SC_AVPHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t room = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 2 : 0;

	memset(w, 0, sizeof(*w));
	w->io = layer->io;
	if (io_size(layer->io, &w->size) < 0)
		return;
	if (w->size > room)
		w->size = room;
	w->running = pthread_create(&w->thread, NULL, warm_file, w) == 0;
}

static void warm_stop(struct warmer *w)
{
	if (!w->running)
		return;
	__atomic_store_n(&w->stop, true, __ATOMIC_RELAXED);
	pthread_join(w->thread, NULL);
	w->running = false;
}

int layer_copy(struct layer_copy *c)
{
	struct warmer w;
	int rc;

	warm_start(&w, c->layer);
	rc = c->layer->ops->extents(c->layer, 0, c->layer->size, copy_cb, c);
	warm_stop(&w);
	return rc;
}
