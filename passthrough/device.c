/*
 * device.c -- what the kernel says about a block device: geometry from
 * ioctls, details from sysfs, and whether it is in use (mounted, swap,
 * held, the root filesystem's device), for it or any of its partitions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "passthrough.h"
#include "pt_internal.h"

static __thread char errbuf[1024];

const char *pt_errmsg(void)
{
	return errbuf;
}

int pt_error(int err, const char *dev, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(errbuf, sizeof(errbuf), "%s: %s", dev, msg);
	return err;
}

int pt_is_block_device(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISBLK(st.st_mode);
}

/* Read a sysfs attribute of block device @name (trimmed). */
static int sysfs_read(const char *name, const char *attr, char *out, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/block/%s/%s", name, attr);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	while (*out && out[strlen(out) - 1] == ' ')
		out[strlen(out) - 1] = '\0';
	return 0;
}

static uint64_t sysfs_u64(const char *name, const char *attr)
{
	char buf[64];

	return sysfs_read(name, attr, buf, sizeof(buf)) == 0 ? strtoull(buf, NULL, 10) : 0;
}

/* Kernel name of device number @rdev ("sda1"), from /sys/dev/block. */
static int name_of(dev_t rdev, char *out, size_t len)
{
	char link[128], target[512];
	ssize_t n;
	const char *slash;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	slash = strrchr(target, '/');
	snprintf(out, len, "%.63s", slash ? slash + 1 : target);
	return 0;
}

/* The device numbers of @name and, for a whole disk, its partitions. */
static int family(const char *name, dev_t *devs, char names[][64], int max)
{
	char path[512], buf[64];
	struct dirent *e;
	unsigned ma, mi;
	int n = 0;
	DIR *dir;

	if (sysfs_read(name, "dev", buf, sizeof(buf)) < 0 || sscanf(buf, "%u:%u", &ma, &mi) != 2)
		return -ENODEV;
	devs[n] = makedev(ma, mi);
	snprintf(names[n++], 64, "%s", name);
	snprintf(path, sizeof(path), "/sys/class/block/%s", name);
	dir = opendir(path);
	if (!dir)
		return n;
	while ((e = readdir(dir)) && n < max) {
		char sub[600];
		if (strncmp(e->d_name, name, strlen(name)))
			continue;	/* partitions are named after the disk */
		snprintf(sub, sizeof(sub), "%s/partition", e->d_name);
		if (sysfs_read(name, sub, buf, sizeof(buf)) < 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/dev", e->d_name);
		if (sysfs_read(name, sub, buf, sizeof(buf)) < 0 ||
		    sscanf(buf, "%u:%u", &ma, &mi) != 2)
			continue;
		devs[n] = makedev(ma, mi);
		snprintf(names[n++], 64, "%.63s", e->d_name);
	}
	closedir(dir);
	return n;
}

/* A mount of one of @devs, from /proc/self/mountinfo: fills @why. */
static int find_mount(const dev_t *devs, char names[][64], int n, char *why, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned ma, mi;
		char mnt[2048];
		if (sscanf(line, "%*u %*u %u:%u %*s %2047s", &ma, &mi, mnt) != 3)
			continue;
		for (int i = 0; i < n; i++) {
			if (devs[i] != makedev(ma, mi))
				continue;
			snprintf(why, len, "%s is mounted on %.400s%s", names[i], mnt,
				 !strcmp(mnt, "/") ? " (the host's root filesystem)" : "");
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

static int find_swap(const dev_t *devs, char names[][64], int n, char *why, size_t len)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[1024], path[1024];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		struct stat st;
		if (sscanf(line, "%1023s", path) != 1 || path[0] != '/' ||
		    stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
			continue;
		for (int i = 0; i < n; i++)
			if (devs[i] == st.st_rdev) {
				snprintf(why, len, "%s is in use as swap", names[i]);
				found = 1;
			}
	}
	fclose(f);
	return found;
}

static int find_holder(char names[][64], int n, char *why, size_t len)
{
	for (int i = 0; i < n; i++) {
		char path[512];
		struct dirent *e;
		DIR *dir;
		snprintf(path, sizeof(path), "/sys/class/block/%.63s/holders", names[i]);
		dir = opendir(path);
		if (!dir)
			continue;
		while ((e = readdir(dir))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(why, len, "%.63s is held by %.200s (device mapper, md or another stacked device)",
				 names[i], e->d_name);
			closedir(dir);
			return 1;
		}
		closedir(dir);
	}
	return 0;
}

/* The device holding "/" (for loop devices backed by it, mount covers). */
static int holds_root(const dev_t *devs, char names[][64], int n, char *why, size_t len)
{
	struct stat st;

	if (stat("/", &st) < 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (devs[i] == st.st_dev) {
			snprintf(why, len, "%s holds the host's root filesystem", names[i]);
			return 1;
		}
	return 0;
}

int pt_in_use(const char *name, char *why, size_t len)
{
	dev_t devs[128];
	char names[128][64];
	int n = family(name, devs, names, 128);

	if (n < 0)
		return 0;
	return find_mount(devs, names, n, why, len) || find_swap(devs, names, n, why, len) ||
	       find_holder(names, n, why, len) || holds_root(devs, names, n, why, len);
}

int pt_probe(const char *dev, struct pt_info *info)
{
	struct stat st;
	int fd, ro = 0;

	memset(info, 0, sizeof(*info));
	snprintf(info->path, sizeof(info->path), "%s", dev);
	if (stat(dev, &st) < 0)
		return pt_error(-errno, dev, "cannot open: %s", strerror(errno));
	if (!S_ISBLK(st.st_mode))
		return pt_error(-ENOTBLK, dev, "not a block device");
	if (name_of(st.st_rdev, info->name, sizeof(info->name)) < 0)
		snprintf(info->name, sizeof(info->name), "%u:%u", major(st.st_rdev),
			 minor(st.st_rdev));
	/* sysfs first (readable even where opening the device is not
	 * allowed), then the ioctls when the device opens. */
	info->size = sysfs_u64(info->name, "size") * 512;
	info->logical_sector = (uint32_t)sysfs_u64(info->name, "queue/logical_block_size");
	info->physical_sector = (uint32_t)sysfs_u64(info->name, "queue/physical_block_size");
	info->read_only = (int)sysfs_u64(info->name, "ro");
	fd = open(dev, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		int ls = 0;
		unsigned ps = 0;
		if (ioctl(fd, BLKGETSIZE64, &info->size) < 0)
			info->size = 0;
		if (ioctl(fd, BLKSSZGET, &ls) == 0)
			info->logical_sector = (uint32_t)ls;
		if (ioctl(fd, BLKPBSZGET, &ps) == 0)
			info->physical_sector = ps;
		if (ioctl(fd, BLKROGET, &ro) == 0)
			info->read_only = ro;
		close(fd);
	} else {
		snprintf(info->why, sizeof(info->why), "cannot open: %s", strerror(errno));
	}
	if (!info->logical_sector)
		info->logical_sector = 512;
	if (!info->physical_sector)
		info->physical_sector = info->logical_sector;
	info->partition = sysfs_u64(info->name, "partition") > 0;
	info->rotational = (int)sysfs_u64(info->name, "queue/rotational");
	info->discard_granularity = sysfs_u64(info->name, "queue/discard_granularity");
	info->discard_max = sysfs_u64(info->name, "queue/discard_max_bytes");
	if (sysfs_read(info->name, "device/model", info->model, sizeof(info->model)) < 0)
		info->model[0] = '\0';
	if (sysfs_read(info->name, "device/serial", info->serial, sizeof(info->serial)) < 0 &&
	    sysfs_read(info->name, "serial", info->serial, sizeof(info->serial)) < 0)
		info->serial[0] = '\0';
	if (info->why[0])
		info->usable = 0;	/* cannot open */
	else
		info->usable = !pt_in_use(info->name, info->why, sizeof(info->why));
	if (info->usable && info->size == 0) {
		info->usable = 0;
		snprintf(info->why, sizeof(info->why), "no medium (size 0)");
	}
	return 0;
}

int pt_list(struct pt_info **out, size_t *count)
{
	DIR *dir = opendir("/sys/class/block");
	struct pt_info *v = NULL;
	struct dirent *e;
	size_t n = 0;

	*out = NULL;
	*count = 0;
	if (!dir)
		return pt_error(-errno, "/sys/class/block", "cannot list: %s", strerror(errno));
	while ((e = readdir(dir))) {
		char path[300];
		struct pt_info *nv;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/dev/%s", e->d_name);
		if (!pt_is_block_device(path))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		if (pt_probe(path, &v[n]) == 0)
			n++;
	}
	closedir(dir);
	*out = v;
	*count = n;
	return 0;
}
