/* blkexpect -- the host side of the test guest (tests/guests/).
 *
 *   blkexpect apply [--bad] FILE GUEST DISK N key=value...
 *       Applies to FILE (a raw copy of the disk's content before the run)
 *       what the guest's test=rw (or, with --bad, test=bad) did to disk N,
 *       given the guest's "GUEST DISK" line: FILE then holds exactly what
 *       the image must hold after the run.  Uses the guest's own plan.c and
 *       pattern.c.  A read-only disk (ro=1) leaves FILE as it is.
 *   blkexpect tsc-khz
 *       Prints this machine's TSC frequency in kHz (measured over 200 ms),
 *       for the guest's tsc_khz= (the guest sees the host's TSC under KVM).
 *
 * Exit 0 on success, 1 with one line on stderr otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "pattern.h"
#include "plan.h"

static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "blkexpect: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static uint64_t ns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int tsc_khz(void)
{
	uint64_t t0 = ns_now(), c0 = __rdtsc(), t1, c1;
	struct timespec d = { 0, 200000000 };

	nanosleep(&d, NULL);
	t1 = ns_now();
	c1 = __rdtsc();
	printf("%llu\n", (unsigned long long)((c1 - c0) * 1000000 / (t1 - t0)));
	return 0;
}

struct disk_line {
	long disk;
	uint64_t sectors, seed;
	long blk, ro, discard, wzeroes;
};

/* Parses the words of "GUEST DISK N sectors=... blk=... ...". */
static void parse_line(int argc, char **argv, struct disk_line *l)
{
	int i;

	*l = (struct disk_line){ .disk = -1, .blk = -1, .ro = -1, .discard = -1, .wzeroes = -1 };
	for (i = 0; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!strcmp(argv[i], "DISK") && i + 1 < argc)
			l->disk = strtol(argv[++i], NULL, 0);
		else if (!v)
			continue;
		else if (!strncmp(argv[i], "sectors=", 8))
			l->sectors = strtoull(v + 1, NULL, 0);
		else if (!strncmp(argv[i], "seed=", 5))
			l->seed = strtoull(v + 1, NULL, 0);
		else if (!strncmp(argv[i], "blk=", 4))
			l->blk = strtol(v + 1, NULL, 0);
		else if (!strncmp(argv[i], "ro=", 3))
			l->ro = strtol(v + 1, NULL, 0);
		else if (!strncmp(argv[i], "discard=", 8))
			l->discard = strtol(v + 1, NULL, 0);
		else if (!strncmp(argv[i], "wzeroes=", 8))
			l->wzeroes = strtol(v + 1, NULL, 0);
	}
	if (l->disk < 0 || !l->sectors || l->blk < 512 || l->ro < 0 || l->discard < 0 || l->wzeroes < 0)
		die("%s", "incomplete GUEST DISK line (want DISK N sectors= blk= ro= discard= wzeroes= seed=)");
}

static void apply_step(int fd, const struct plan_step *s, const struct pattern_key *k)
{
	static char buf[PLAN_CHUNK];
	uint64_t o;

	if (s->op == PLAN_FLUSH || s->op == PLAN_DISCARD)
		return;	/* a discarded range is always written again later */
	for (o = 0; o < s->len; o += PLAN_CHUNK) {
		uint64_t n = s->len - o < PLAN_CHUNK ? s->len - o : PLAN_CHUNK;

		if (s->op == PLAN_WRITE)
			pattern_fill(buf, k, s->gen, (s->off + o) / 512, n / 512);
		else
			memset(buf, 0, n);
		if (pwrite(fd, buf, n, s->off + o) != (ssize_t)n)
			die("write: %s", strerror(errno));
	}
}

static int apply(int argc, char **argv)
{
	struct plan_step steps[PLAN_MAX];
	struct pattern_key key;
	struct disk_line l;
	struct plan_disk pd;
	int bad = 0, fd, n, i;
	off_t size;

	if (argc > 0 && !strcmp(argv[0], "--bad"))
		bad = 1, argc--, argv++;
	if (argc < 2)
		die("%s", "usage: blkexpect apply [--bad] FILE GUEST DISK N key=value...");
	parse_line(argc - 1, argv + 1, &l);
	if (l.ro)
		return 0;
	fd = open(argv[0], O_RDWR);
	if (fd < 0)
		die("%s: cannot open", argv[0]);
	size = lseek(fd, 0, SEEK_END);
	if ((uint64_t)size != l.sectors * 512)
		die("%s: size differs from the guest's sectors= (a wrong file for this disk?)", argv[0]);
	pd = (struct plan_disk){ l.sectors * 512, l.blk, l.discard, l.wzeroes };
	key = (struct pattern_key){ l.seed, l.disk };
	n = bad ? plan_bad(&pd, steps) : plan_rw(&pd, steps);
	for (i = 0; i < n; i++)
		apply_step(fd, &steps[i], &key);
	if (fsync(fd) || close(fd))
		die("%s: fsync/close failed", argv[0]);
	printf("%s: applied %d steps for disk %ld\n", argv[0], n, l.disk);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "apply"))
		return apply(argc - 2, argv + 2);
	if (argc == 2 && !strcmp(argv[1], "tsc-khz"))
		return tsc_khz();
	fprintf(stderr, "usage: blkexpect apply [--bad] FILE GUEST DISK N key=value... | blkexpect tsc-khz\n");
	return 1;
}
