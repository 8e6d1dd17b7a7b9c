/*
 * cmd_readwrite.c -- vhdtool write / read: copy bytes between a file (or
 * stdin/stdout) and a range of an image, through the whole chain; vhdtool
 * discard: give a range's blocks back.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdtool.h"

#define IO_CHUNK (1u << 20)

static int run_write(int argc, char **argv);
static int run_read(int argc, char **argv);
static int run_discard(int argc, char **argv);

const struct verb verb_write = {
	"write", run_write, "write a file's bytes into an image at an offset",
	"[--offset OFF] IMAGE [FILE|-]\n"
	"  Writes FILE (default: standard input) into IMAGE at byte OFF\n"
	"  (K/M/G suffixes allowed), then flushes.  A differencing image keeps\n"
	"  the write; its parents are never written.",
};

const struct verb verb_read = {
	"read", run_read, "copy a range of an image to standard output or a file",
	"[--offset OFF] [--length LEN] [-o FILE] IMAGE\n"
	"  Reads LEN bytes (default: to the end of the disk) at OFF.",
};

const struct verb verb_discard = {
	"discard", run_discard, "give back the blocks of a range (like TRIM), then flush",
	"--offset OFF --length LEN IMAGE\n"
	"  Blocks of a dynamic or differencing image wholly inside the range are\n"
	"  unallocated (they read as zeros, or as the parent's data); in a\n"
	"  dynamic image the whole sectors of the range in partly covered blocks\n"
	"  read as zeros too, while a differencing image keeps them.  A fixed or\n"
	"  raw image gets the range punched out of the file where the file\n"
	"  system can.\n"
	"  `vhdtool compact` then gives the space back to the file system.",
};

static int parse_range_opts(const struct verb *v, int argc, char **argv,
			    uint64_t *off, uint64_t *len, const char **out)
{
	static const struct option opts[] = {
		{ "offset", required_argument, NULL, 'O' },
		{ "length", required_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'O':
			if (parse_size(optarg, off) < 0)
				return usage_error(v, "invalid offset '%s'", optarg);
			break;
		case 'l':
			if (!len || parse_size(optarg, len) < 0)
				return usage_error(v, "invalid length '%s'", optarg);
			break;
		case 'o':
			if (!out)
				return bad_option(v, argv);
			*out = optarg;
			break;
		default:
			return bad_option(v, argv);
		}
	}
	return 0;
}

static int run_write(int argc, char **argv)
{
	uint64_t off = 0, done = 0;
	const char *src = "-";
	struct stat st;
	uint8_t *buf = NULL;
	vhd_disk *d;
	int fd = 0, rc;

	rc = parse_range_opts(&verb_write, argc, argv, &off, NULL, NULL);
	if (rc)
		return rc;
	if (optind == argc - 2)
		src = argv[optind + 1];
	else if (optind != argc - 1)
		return usage_error(&verb_write, "expected IMAGE [FILE]");
	if (strcmp(src, "-") && (fd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return fail("%s: cannot open: %s", src, strerror(errno));
	rc = open_disk(argv[optind], VHD_OPEN_RDWR, NULL, &d);
	if (rc < 0) {
		rc = EXIT_FAIL;
		goto out_fd;
	}
	/* Refuse a range past the end before writing any of it. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (off > vhd_size(d) || (uint64_t)st.st_size > vhd_size(d) - off)) {
		rc = fail("%s: writing %llu bytes at %llu would go past the end of the disk (%llu bytes)",
			  argv[optind], (unsigned long long)st.st_size,
			  (unsigned long long)off, (unsigned long long)vhd_size(d));
		goto out_close;
	}
	buf = malloc(IO_CHUNK);
	for (;;) {
		ssize_t n = buf ? read(fd, buf, IO_CHUNK) : -1;
		if (n < 0) {
			rc = fail("%s: read error: %s", src, strerror(buf ? errno : ENOMEM));
			goto out_close;
		}
		if (n == 0)
			break;
		if (vhd_pwrite(d, buf, (size_t)n, off + done) < 0) {
			rc = fail_lib(d, -EIO);
			goto out_close;
		}
		done += (uint64_t)n;
	}
	rc = vhd_flush(d) < 0 ? fail_lib(d, -EIO) : EXIT_OK;
out_close:
	if (vhd_close(d) < 0 && rc == EXIT_OK)
		rc = fail_lib(NULL, -EIO);
	free(buf);
out_fd:
	if (fd > 0)
		close(fd);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int run_discard(int argc, char **argv)
{
	uint64_t off = UINT64_MAX, len = UINT64_MAX;
	vhd_disk *d;
	int rc;

	rc = parse_range_opts(&verb_discard, argc, argv, &off, &len, NULL);
	if (rc)
		return rc;
	if (optind != argc - 1)
		return usage_error(&verb_discard, "expected IMAGE");
	if (off == UINT64_MAX || len == UINT64_MAX)
		return usage_error(&verb_discard, "give the range: --offset and --length");
	if (open_disk(argv[optind], VHD_OPEN_RDWR, NULL, &d) < 0)
		return EXIT_FAIL;
	/* (a range past the end is refused by vhd_discard, naming the file) */
	rc = vhd_discard(d, off, len);
	if (rc == 0)
		rc = vhd_flush(d);
	rc = rc < 0 ? fail_lib(d, rc) : EXIT_OK;
	if (vhd_close(d) < 0 && rc == EXIT_OK)
		rc = fail_lib(NULL, -EIO);
	return rc;
}

static int run_read(int argc, char **argv)
{
	uint64_t off = 0, len = UINT64_MAX;
	const char *out = NULL;
	uint8_t *buf;
	vhd_disk *d;
	int fd = 1, rc;

	rc = parse_range_opts(&verb_read, argc, argv, &off, &len, &out);
	if (rc)
		return rc;
	if (optind != argc - 1)
		return usage_error(&verb_read, "expected IMAGE");
	if (open_disk(argv[optind], 0, NULL, &d) < 0)
		return EXIT_FAIL;
	if (off > vhd_size(d)) {
		vhd_close(d);
		return fail("%s: offset %llu is past the end of the disk (%llu bytes)",
			    argv[optind], (unsigned long long)off,
			    (unsigned long long)vhd_size(d));
	}
	if (len > vhd_size(d) - off)
		len = vhd_size(d) - off;
	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		vhd_close(d);
		return fail("%s: cannot create: %s", out, strerror(errno));
	}
	buf = malloc(IO_CHUNK);
	rc = buf ? EXIT_OK : fail("out of memory");
	while (rc == EXIT_OK && len) {
		size_t n = len < IO_CHUNK ? (size_t)len : IO_CHUNK;
		int w;
		if (vhd_pread(d, buf, n, off) < 0) {
			rc = fail_lib(d, -EIO);
			break;
		}
		w = write_all(fd, buf, n);
		if (w < 0)
			rc = fail("%s: write error: %s", out ? out : "stdout", strerror(-w));
		off += n;
		len -= n;
	}
	free(buf);
	if (out)
		close(fd);
	vhd_close(d);
	return rc;
}
