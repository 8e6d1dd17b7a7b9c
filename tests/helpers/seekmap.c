/*
 * seekmap.c -- list the data runs of a file as lseek(2) SEEK_DATA/SEEK_HOLE
 * report them, for the integration tests (tests/integration/test-fuse-*.sh).
 *
 *   seekmap FILE
 *
 * Prints one line per data run, "START LENGTH" in decimal bytes, in file
 * order; everything else is a hole.  A file without data prints nothing.
 * Also checks the answers for consistency while walking (a hole found inside
 * a run that SEEK_DATA just reported, offsets going backwards, SEEK_HOLE
 * answering past the file size) and fails on any.
 *
 * Exit: 0 done, 1 an lseek failed or answered inconsistently, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	off_t pos = 0, data, hole;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: seekmap FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "seekmap: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while (pos < st.st_size) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;	/* only a hole follows */
			fprintf(stderr, "seekmap: SEEK_DATA at %lld: %s\n",
				(long long)pos, strerror(errno));
			return 1;
		}
		if (data < pos || data >= st.st_size) {
			fprintf(stderr, "seekmap: SEEK_DATA at %lld answered %lld (size %lld)\n",
				(long long)pos, (long long)data, (long long)st.st_size);
			return 1;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			fprintf(stderr, "seekmap: SEEK_HOLE at %lld: %s\n",
				(long long)data, strerror(errno));
			return 1;
		}
		if (hole <= data || hole > st.st_size) {
			fprintf(stderr, "seekmap: SEEK_HOLE at %lld answered %lld (size %lld)\n",
				(long long)data, (long long)hole, (long long)st.st_size);
			return 1;
		}
		printf("%lld %lld\n", (long long)data, (long long)(hole - data));
		pos = hole;
	}
	close(fd);
	return 0;
}
