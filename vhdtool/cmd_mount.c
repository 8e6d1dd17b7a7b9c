/*
 * cmd_mount.c -- vhdtool mount / umount: an image (its whole chain) as one
 * file, MOUNTPOINT/disk, through FUSE.
 *
 * The image is opened before the mount and held for its lifetime: read-write
 * mounts lock it exclusively (a second read-write mount is refused), read-
 * only mounts share it (VHD_OPEN_SHARED: allowed even beside a writer).  The
 * file supports SEEK_DATA/SEEK_HOLE (from the chain's extents), fsync (a
 * libvhd flush) and fallocate PUNCH_HOLE/ZERO_RANGE (deallocation).  Data is
 * flushed on fsync and at unmount.  The kernel page cache is kept (the mount
 * is the image's only writer), requests run on libfuse's thread pool, and
 * reads and writes go up to 1 MiB.
 */
#include "config.h"

#ifdef HAVE_FUSE3
#define FUSE_USE_VERSION 35
#include <fuse3/fuse.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vhdtool.h"

static int run_mount(int argc, char **argv);
static int run_umount(int argc, char **argv);

const struct verb verb_mount = {
	"mount", run_mount, "show an image (whole chain) as a file through FUSE",
	"[--readonly] [--foreground] [--snapshot N] [--name NAME] [--keep-layout]\n"
	"       IMAGE MOUNTPOINT\n"
	"  MOUNTPOINT/disk (or NAME) is the virtual disk, read-write unless\n"
	"  --readonly.  --snapshot N shows layer N of the chain (0 = IMAGE),\n"
	"  read-only.  A VHD block whose data is not 4 KiB aligned (qemu-img's\n"
	"  layout) moves to an aligned place at its first write below 64 KiB,\n"
	"  unless --keep-layout.  Unmount with vhdtool umount MOUNTPOINT (waits\n"
	"  for the final flush) or fusermount3 -u.",
};

const struct verb verb_umount = {
	"umount", run_umount, "unmount a vhdtool mount and wait for its flush",
	"MOUNTPOINT",
};

/* Where a mount's daemon PID is kept, for umount to wait on. */
static void pidfile_path(const char *mountpoint, char *out, size_t len)
{
	char real[PATH_MAX];
	const char *dir = getenv("XDG_RUNTIME_DIR");
	size_t n;

	if (!dir || !*dir)
		dir = access("/run", W_OK) == 0 ? "/run" : "/tmp";
	if (!realpath(mountpoint, real))
		snprintf(real, sizeof(real), "%s", mountpoint);
	n = (size_t)snprintf(out, len, "%s/vhdkit-mount-", dir);
	for (const char *p = real; *p && n + 2 < len; p++)
		out[n++] = *p == '/' ? '_' : *p;
	snprintf(out + n, len - n, ".pid");
}

/* A process that exited but was not reaped yet (a zombie) is gone. */
static bool alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool zombie = false;

	if (kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		zombie = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return !zombie;
}

static int run_umount(int argc, char **argv)
{
	char pidfile[PATH_MAX + 64];
	pid_t pid = 0;
	FILE *f;
	int status;

	if (argc != 2)
		return usage_error(&verb_umount, "expected MOUNTPOINT");
	pidfile_path(argv[1], pidfile, sizeof(pidfile));
	f = fopen(pidfile, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	pid_t child = fork();
	if (child == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDERR_FILENO);	/* one line: ours */
		execlp("fusermount3", "fusermount3", "-u", argv[1], (char *)NULL);
		_exit(127);
	}
	if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return fail("%s: unmount failed (not a vhdtool mount, or still in use)", argv[1]);
	/* The daemon flushes and closes the image after the unmount. */
	for (int i = 0; pid > 0 && i < 600 && alive(pid); i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (pid > 0 && alive(pid))
		return fail("%s: unmounted, but the daemon (pid %d) has not exited after 60 s",
			    argv[1], (int)pid);
	unlink(pidfile);
	return EXIT_OK;
}

#ifdef HAVE_FUSE3

struct mount_state {
	vhd_disk *top, *disk;
	const char *name;	/* "/disk" */
	bool readonly;
	bool keep_layout;
	time_t mtime;
	char pidfile[PATH_MAX + 64];
};

static struct mount_state *state(void)
{
	return fuse_get_context()->private_data;
}

static int is_file(const char *path)
{
	return !strcmp(path, state()->name);
}

static void *m_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct mount_state *s = fuse_get_context()->private_data;

	cfg->kernel_cache = 1;
	cfg->attr_timeout = 3600;
	cfg->entry_timeout = 3600;
	cfg->negative_timeout = 3600;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	/* Data stored as it is in the image file moves between it and
	 * /dev/fuse through a pipe (splice), never through our memory. */
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	return s;
}

static void m_destroy(void *data)
{
	struct mount_state *s = data;

	if (s->top && vhd_close(s->top) < 0)
		fprintf(stderr, "vhdtool: %s\n", vhd_errmsg(NULL));
	s->top = s->disk = NULL;
	unlink(s->pidfile);
}

static int m_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct mount_state *s = state();

	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = s->mtime;
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!is_file(path))
		return -ENOENT;
	st->st_mode = S_IFREG | (s->readonly ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_size = (off_t)vhd_size(s->disk);
	st->st_blocks = st->st_size / 512;
	st->st_blksize = 4096;
	return 0;
}

static int m_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		     struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/"))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, state()->name + 1, NULL, 0, 0);
	return 0;
}

static int m_open(const char *path, struct fuse_file_info *fi)
{
	if (!is_file(path))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && state()->readonly)
		return -EROFS;
	fi->keep_cache = 1;
	return 0;
}

static int m_read(const char *path, char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	vhd_disk *d = state()->disk;
	uint64_t dsize = vhd_size(d);
	ssize_t n;

	if ((uint64_t)off >= dsize)
		return 0;
	if (size > dsize - (uint64_t)off)
		size = (size_t)(dsize - (uint64_t)off);
	n = vhd_pread(d, buf, size, (uint64_t)off);
	return n < 0 ? -EIO : (int)n;
}

/*
 * Reads: a range stored contiguously in the image file is answered with a
 * buffer that names the file and offset, which libfuse splices to the
 * kernel; anything else is read into memory.
 */
static int m_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size,
		      off_t off, struct fuse_file_info *fi)
{
	vhd_disk *d = state()->disk;
	uint64_t dsize = vhd_size(d), pos;
	struct fuse_bufvec *bv;
	int64_t run;
	int fd, rc;

	if ((uint64_t)off >= dsize)
		size = 0;
	else if (size > dsize - (uint64_t)off)
		size = (size_t)(dsize - (uint64_t)off);
	bv = malloc(sizeof(*bv));
	if (!bv)
		return -ENOMEM;
	*bv = FUSE_BUFVEC_INIT(size);
	run = size ? vhd_map_file(d, (uint64_t)off, size, 0, &fd, &pos) : 0;
	if (run == (int64_t)size && size) {
		bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
		bv->buf[0].fd = fd;
		bv->buf[0].pos = (off_t)pos;
		*bufp = bv;
		return 0;
	}
	bv->buf[0].mem = malloc(size ? size : 1);
	if (!bv->buf[0].mem) {
		free(bv);
		return -ENOMEM;
	}
	rc = m_read(path, bv->buf[0].mem, size, off, fi);
	if (rc < 0) {
		free(bv->buf[0].mem);
		free(bv);
		return rc;
	}
	bv->buf[0].size = (size_t)rc;
	*bufp = bv;
	return 0;
}

static int lib_errno(int rc)
{
	if (rc <= -VHD_E_BASE)
		return -EIO;
	return rc;
}

static int m_write(const char *path, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	vhd_disk *d = state()->disk;
	uint64_t dsize = vhd_size(d);
	ssize_t n;

	if ((uint64_t)off >= dsize)
		return -ENOSPC;
	if (size > dsize - (uint64_t)off)
		size = (size_t)(dsize - (uint64_t)off);
	n = vhd_pwrite(d, buf, size, (uint64_t)off);
	return n < 0 ? lib_errno((int)n) : (int)n;
}

/* Writes: spliced straight into the image file when the range is stored
 * there already (an allocated block being overwritten, a raw or fixed
 * disk); otherwise copied into memory and written through libvhd. */
static int m_write_buf(const char *path, struct fuse_bufvec *src, off_t off,
		       struct fuse_file_info *fi)
{
	vhd_disk *d = state()->disk;
	size_t size = fuse_buf_size(src);
	uint64_t dsize = vhd_size(d), pos;
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	ssize_t n;
	int64_t run;
	int fd;

	if ((uint64_t)off >= dsize)
		return -ENOSPC;
	if (size > dsize - (uint64_t)off)
		size = (size_t)(dsize - (uint64_t)off);
	dst.buf[0].size = size;
	run = vhd_map_file(d, (uint64_t)off, size, VHD_MAP_WRITE, &fd, &pos);
	if (run < 0)
		return lib_errno((int)run);
	if (run == (int64_t)size) {
		dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
		dst.buf[0].fd = fd;
		dst.buf[0].pos = (off_t)pos;
		n = fuse_buf_copy(&dst, src, 0);
		return n < 0 ? (int)n : (int)n;
	}
	dst.buf[0].mem = malloc(size ? size : 1);
	if (!dst.buf[0].mem)
		return -ENOMEM;
	n = fuse_buf_copy(&dst, src, FUSE_BUF_NO_SPLICE);
	if (n >= 0)
		n = m_write(path, dst.buf[0].mem, (size_t)n, off, fi);
	free(dst.buf[0].mem);
	return (int)n;
}

static int m_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	return lib_errno(vhd_flush(state()->disk));
}

static int m_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	/* A disk has a fixed size: accept only "truncate" to that size
	 * (O_TRUNC opens); vhdtool resize changes it. */
	return (uint64_t)size == vhd_size(state()->disk) ? 0 : -EPERM;
}

static int m_fallocate(const char *path, int mode, off_t off, off_t len,
		       struct fuse_file_info *fi)
{
	vhd_disk *d = state()->disk;

	if (off < 0 || len <= 0 || (uint64_t)off + (uint64_t)len > vhd_size(d))
		return (mode & FALLOC_FL_KEEP_SIZE) ? -EINVAL : -EOPNOTSUPP;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return lib_errno(vhd_zero(d, (uint64_t)off, (uint64_t)len, 0));
	if ((mode & ~FALLOC_FL_KEEP_SIZE) == 0)
		return 0;	/* inside the disk: nothing to allocate */
	return -EOPNOTSUPP;
}

struct seek_ctx {
	int want_data;
	uint64_t found;
};

static int seek_cb(void *opaque, const struct vhd_extent *e)
{
	struct seek_ctx *c = opaque;

	if ((e->type == VHD_EXT_DATA) == c->want_data) {
		c->found = e->offset;
		return 1;
	}
	return 0;
}

static off_t m_lseek(const char *path, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	vhd_disk *d = state()->disk;
	uint64_t size = vhd_size(d);
	struct seek_ctx c = { whence == SEEK_DATA, UINT64_MAX };
	int rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0 || (uint64_t)off >= size)
		return -ENXIO;
	rc = vhd_extents(d, (uint64_t)off, size - (uint64_t)off, seek_cb, &c);
	if (rc < 0)
		return lib_errno(rc);
	if (c.found != UINT64_MAX)
		return (off_t)(c.found > (uint64_t)off ? c.found : (uint64_t)off);
	return whence == SEEK_DATA ? -ENXIO : (off_t)size;
}

static int m_statfs(const char *path, struct statvfs *st)
{
	uint64_t size = vhd_size(state()->disk);

	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = size / 4096;
	st->f_files = 2;
	st->f_namemax = 255;
	return 0;
}

static const struct fuse_operations mount_ops = {
	.init = m_init,
	.destroy = m_destroy,
	.getattr = m_getattr,
	.readdir = m_readdir,
	.open = m_open,
	.read = m_read,
	.read_buf = m_read_buf,
	.write = m_write,
	.write_buf = m_write_buf,
	.fsync = m_fsync,
	.truncate = m_truncate,
	.fallocate = m_fallocate,
	.lseek = m_lseek,
	.statfs = m_statfs,
};

static int open_image(struct mount_state *s, const char *image, const char *snap)
{
	unsigned flags = s->readonly ? VHD_OPEN_SHARED :
			 VHD_OPEN_RDWR | (s->keep_layout ? 0 : VHD_OPEN_REALIGN);

	if (open_disk(image, flags, NULL, &s->top) < 0)
		return EXIT_FAIL;
	s->disk = s->top;
	if (snap) {
		char *end;
		long n = strtol(snap, &end, 10);
		if (!*snap || *end || n < 0)
			return fail("--snapshot takes a layer number (0 = %s)", image);
		for (long i = 0; i < n && s->disk; i++)
			s->disk = vhd_parent(s->disk);
		if (!s->disk)
			return fail("%s: the chain has no layer %ld", image, n);
	}
	return EXIT_OK;
}

static int ready_pipe = -1;

/* Into the background: the parent returns (exits 0) once the child has
 * written its pidfile and called daemonize_done(), or exits 1 if it died. */
static int daemonize(void)
{
	int fds[2], null;
	pid_t pid;
	char c;

	if (pipe(fds) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(fds[1]);
		_exit(read(fds[0], &c, 1) == 1 ? 0 : 1);
	}
	close(fds[0]);
	ready_pipe = fds[1];
	setsid();
	if (chdir("/") < 0)
		return -1;
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return 0;
}

static void daemonize_done(void)
{
	if (ready_pipe >= 0 && write(ready_pipe, "", 1) == 1)
		close(ready_pipe);
	ready_pipe = -1;
}

static void write_pidfile(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	char buf[32];
	int n;

	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n)
		unlink(path);
	close(fd);
}

static int run_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "readonly", no_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "name", required_argument, NULL, 'n' },
		{ "keep-layout", no_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	static struct mount_state s;
	struct fuse_loop_config loop = { .clone_fd = 0, .max_idle_threads = 16 };
	char *fargv[] = { "vhdtool", "-o", "fsname=vhdkit,subtype=vhd", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	const char *snap = NULL, *name = "disk";
	char namebuf[NAME_MAX + 2];
	int c, foreground = 0, rc;
	struct fuse *fuse;
	struct stat st;

	while ((c = getopt_long(argc, argv, "rf", opts, NULL)) != -1) {
		switch (c) {
		case 'r': s.readonly = true; break;
		case 'f': foreground = 1; break;
		case 'S': snap = optarg; s.readonly = true; break;
		case 'n': name = optarg; break;
		case 'K': s.keep_layout = true; break;
		default: return bad_option(&verb_mount, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error(&verb_mount, "expected IMAGE and MOUNTPOINT");
	if (!*name || strchr(name, '/') || strlen(name) > NAME_MAX ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return usage_error(&verb_mount, "invalid file name '%s'", name);
	if (stat(argv[optind + 1], &st) < 0)
		return fail("%s: cannot mount: %s", argv[optind + 1], strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("%s: cannot mount: not a folder", argv[optind + 1]);
	snprintf(namebuf, sizeof(namebuf), "/%s", name);
	s.name = namebuf;
	s.mtime = time(NULL);
	rc = open_image(&s, argv[optind], snap);
	if (rc != EXIT_OK)
		goto out_close;
	fuse = fuse_new(&args, &mount_ops, sizeof(mount_ops), &s);
	if (!fuse) {
		rc = fail("%s: cannot set up FUSE", argv[optind + 1]);
		goto out_close;
	}
	if (fuse_mount(fuse, argv[optind + 1]) != 0) {
		rc = fail("%s: cannot mount (is it a folder? is /dev/fuse usable?)",
			  argv[optind + 1]);
		goto out_destroy;
	}
	pidfile_path(argv[optind + 1], s.pidfile, sizeof(s.pidfile));
	if ((!foreground && daemonize() != 0) ||
	    fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		rc = fail("%s: cannot start the FUSE daemon", argv[optind + 1]);
		goto out_unmount;
	}
	/* Written before `vhdtool mount` returns (daemonize waits for it),
	 * so that umount can always wait for this process. */
	write_pidfile(s.pidfile);
	if (!foreground)
		daemonize_done();
	rc = fuse_loop_mt(fuse, &loop) == 0 ? EXIT_OK : EXIT_FAIL;
	fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);	/* calls m_destroy (flush + close) if mounted */
out_close:
	if (s.top)
		vhd_close(s.top);
	fuse_opt_free_args(&args);
	return rc;
}

#else /* !HAVE_FUSE3 */

static int run_mount(int argc, char **argv)
{
	return fail("this vhdtool was built without FUSE (install libfuse3-dev and rebuild)");
}

#endif
