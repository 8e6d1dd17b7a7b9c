/* pattern.c -- see pattern.h.  No libc: built for the guest and the host. */
#include "pattern.h"

static uint64_t mix(uint64_t x)	/* splitmix64's finalizer */
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t word(const struct pattern_key *k, unsigned gen, uint64_t sector, unsigned i)
{
	if (gen == 0)
		return 0;
	if (i == 0)
		return 0x50474b56ull | (uint64_t)(k->disk & 0xff) << 32 |	/* "VKGP" */
		       (uint64_t)(gen & 0xff) << 40;
	if (i == 1)
		return sector;
	return mix(mix(k->seed ^ (uint64_t)k->disk << 48 ^ (uint64_t)gen << 40) + sector * 64 + i);
}

void pattern_fill(void *buf, const struct pattern_key *k, unsigned gen, uint64_t sector,
		  uint64_t nsectors)
{
	uint64_t *w = buf, s;
	unsigned i;

	for (s = 0; s < nsectors; s++)
		for (i = 0; i < 64; i++)
			*w++ = word(k, gen, sector + s, i);
}

int64_t pattern_check(const void *buf, const struct pattern_key *k, unsigned gen,
		      uint64_t sector, uint64_t nsectors)
{
	const uint64_t *w = buf;
	uint64_t s;
	unsigned i;

	for (s = 0; s < nsectors; s++)
		for (i = 0; i < 64; i++, w++)
			if (*w != word(k, gen, sector + s, i))
				return (int64_t)((const char *)w - (const char *)buf);
	return -1;
}
