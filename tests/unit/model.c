/*
 * model.c -- the independent disk model of model.h.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

uint64_t model_rand(uint64_t *rng)
{
	uint64_t x = *rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void model_fill_random(uint8_t *buf, size_t len, uint64_t *rng)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = model_rand(rng);
		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

int model_init(struct model *m, uint64_t size, const uint8_t *initial)
{
	memset(m, 0, sizeof(*m));
	m->size = size;
	m->cur = calloc(1, size);
	m->durable = calloc(1, size);
	if (!m->cur || !m->durable)
		return -1;
	if (initial) {
		memcpy(m->cur, initial, size);
		memcpy(m->durable, initial, size);
	}
	return 0;
}

static void clear_log(struct model *m)
{
	for (size_t i = 0; i < m->nlog; i++)
		free(m->log[i].data);
	m->nlog = 0;
}

void model_free(struct model *m)
{
	clear_log(m);
	free(m->log);
	free(m->cur);
	free(m->durable);
}

void model_write(struct model *m, uint64_t off, const void *buf, size_t len)
{
	struct model_write *w;

	memcpy(m->cur + off, buf, len);
	if (m->nlog == m->caplog) {
		m->caplog = m->caplog ? m->caplog * 2 : 16;
		m->log = realloc(m->log, m->caplog * sizeof(*m->log));
	}
	w = &m->log[m->nlog++];
	w->off = off;
	w->len = len;
	w->data = malloc(len);
	memcpy(w->data, buf, len);
}

void model_flush(struct model *m)
{
	memcpy(m->durable, m->cur, m->size);
	clear_log(m);
}

static uint8_t *read_all(const struct model *m, vhd_disk *d)
{
	uint8_t *buf = malloc(m->size);

	if (!buf)
		return NULL;
	for (uint64_t off = 0; off < m->size;) {
		size_t n = m->size - off > (1u << 20) ? (1u << 20) : (size_t)(m->size - off);
		if (vhd_pread(d, buf + off, n, off) != (ssize_t)n) {
			free(buf);
			return NULL;
		}
		off += n;
	}
	return buf;
}

uint64_t model_compare(const struct model *m, vhd_disk *d)
{
	uint8_t *buf = read_all(m, d);
	uint64_t bad = UINT64_MAX;

	if (!buf)
		return 0;
	for (uint64_t i = 0; i < m->size; i++)
		if (buf[i] != m->cur[i]) {
			bad = i;
			break;
		}
	free(buf);
	return bad;
}

static bool logged(const struct model *m, uint64_t off, uint8_t v)
{
	for (size_t i = 0; i < m->nlog; i++) {
		const struct model_write *w = &m->log[i];
		if (off >= w->off && off < w->off + w->len && w->data[off - w->off] == v)
			return true;
	}
	return false;
}

uint64_t model_check_crash(const struct model *m, vhd_disk *d)
{
	uint8_t *buf = read_all(m, d);
	uint64_t bad = UINT64_MAX;

	if (!buf)
		return 0;
	for (uint64_t i = 0; i < m->size; i++) {
		if (buf[i] == m->durable[i] || logged(m, i, buf[i]))
			continue;
		bad = i;
		break;
	}
	free(buf);
	return bad;
}
