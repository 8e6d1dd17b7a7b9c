/*
 * aiobench.c -- drive a disk handle through libvhd's asynchronous queue
 * (vhd_aio_*) the way fio drives a device with ioengine=libaio: a fixed
 * number of requests kept in flight, random or sequential offsets aligned to
 * the block size, for a fixed time.  Block devices are opened through
 * passthrough/ (O_DIRECT, exclusive), images with vhd_open (O_DIRECT with
 * --direct).  Prints one JSON line: {"iops": N, "mbps": N, "ios": N, ...}.
 *
 *   aiobench --rw randread|randwrite|read|write --bs 4k --iodepth 32
 *            --runtime 8 [--size BYTES] [--direct] TARGET
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "libvhd.h"
#include "passthrough.h"

struct slot {
	struct vhd_aio a;
	struct iovec iov;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': return v << 10;
	case 'm': case 'M': return v << 20;
	case 'g': case 'G': return v << 30;
	default: return v;
	}
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "iodepth", required_argument, NULL, 'd' },
		{ "runtime", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "direct", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rw = "randread", *target;
	uint64_t bs = 4096, size = 0, seq = 0, rng = 0x9e3779b97f4a7c15ull, ios = 0;
	unsigned depth = 32, flags = 0;
	double runtime = 8, t0, t1;
	struct slot *slots;
	struct vhd_aio **done;
	struct stat st;
	vhd_aioq *q;
	vhd_disk *d;
	bool write, rnd;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rw = optarg; break;
		case 'b': bs = parse_size(optarg); break;
		case 'd': depth = (unsigned)atoi(optarg); break;
		case 't': runtime = atof(optarg); break;
		case 's': size = parse_size(optarg); break;
		case 'D': flags |= VHD_OPEN_DIRECT; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || bs == 0 || depth == 0) {
		fprintf(stderr, "usage: aiobench --rw MODE --bs N --iodepth N --runtime S "
				"[--size N] [--direct] TARGET\n");
		return 2;
	}
	target = argv[optind];
	write = strstr(rw, "write") != NULL;
	rnd = !strncmp(rw, "rand", 4);
	if (stat(target, &st) == 0 && S_ISBLK(st.st_mode))
		rc = pt_open(target, write ? PT_RDWR : 0, &d);
	else
		rc = vhd_open(target, flags | (write ? VHD_OPEN_RDWR : 0), NULL, &d);
	if (rc < 0) {
		fprintf(stderr, "aiobench: %s\n",
			S_ISBLK(st.st_mode) ? pt_errmsg() : vhd_errmsg(NULL));
		return 1;
	}
	if (!size || size > vhd_size(d))
		size = vhd_size(d);
	size -= size % bs;
	slots = calloc(depth, sizeof(*slots));
	done = calloc(depth, sizeof(*done));
	rc = vhd_aioq_new(d, depth, &q);
	if (rc < 0 || !slots || !done || size < bs) {
		fprintf(stderr, "aiobench: setup failed: %s\n", vhd_errmsg(d));
		return 1;
	}
	for (unsigned i = 0; i < depth; i++) {
		void *buf;
		if (posix_memalign(&buf, 4096, bs))
			return 1;
		memset(buf, 0x5a ^ (int)i, bs);
		slots[i].iov = (struct iovec){ buf, bs };
		slots[i].a = (struct vhd_aio){ .op = write ? VHD_AIO_WRITE : VHD_AIO_READ,
					       .iov = &slots[i].iov, .iovcnt = 1,
					       .opaque = &slots[i] };
	}
	t0 = now();
	t1 = t0;
	for (unsigned i = 0; i < depth; i++)
		done[i] = &slots[i].a;
	for (unsigned n = depth;;) {
		/* re-aim and resubmit the n requests that just completed */
		for (unsigned i = 0; i < n; i++) {
			if (rnd) {
				done[i]->offset = xorshift(&rng) % (size / bs) * bs;
			} else {
				done[i]->offset = seq;
				seq = (seq + bs) % size;
			}
		}
		if (vhd_aio_submit(q, done, n) != (int)n) {
			fprintf(stderr, "aiobench: submit failed\n");
			return 1;
		}
		rc = vhd_aio_reap(q, done, 1, depth);
		if (rc < 0) {
			fprintf(stderr, "aiobench: reap: %s\n", vhd_strerror(rc));
			return 1;
		}
		for (int i = 0; i < rc; i++)
			if (done[i]->result != (ssize_t)bs) {
				fprintf(stderr, "aiobench: I/O failed: %s (%s)\n",
					vhd_strerror((int)done[i]->result), vhd_errmsg(d));
				return 1;
			}
		ios += (uint64_t)rc;
		n = (unsigned)rc;
		if ((ios & 255) < (uint64_t)rc && (t1 = now()) - t0 >= runtime)
			break;
	}
	while (vhd_aioq_inflight(q)) {
		rc = vhd_aio_reap(q, done, 1, depth);
		if (rc <= 0)
			break;
	}
	t1 = now();
	vhd_aioq_free(q);
	vhd_close(d);
	printf("{\"target\": \"%s\", \"rw\": \"%s\", \"bs\": %llu, \"iodepth\": %u, "
	       "\"ios\": %llu, \"seconds\": %.3f, \"iops\": %.0f, \"mbps\": %.1f}\n",
	       target, rw, (unsigned long long)bs, depth, (unsigned long long)ios,
	       t1 - t0, ios / (t1 - t0), ios * (double)bs / (t1 - t0) / 1e6);
	return 0;
}
