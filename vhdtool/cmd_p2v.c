/*
 * cmd_p2v.c -- vhdtool p2v: a physical disk (or partition, or loop device)
 * into a VHD or VHDX, copying only used data.
 *
 * A device that is not in use is opened exclusively.  When it (or a
 * partition on it) is mounted, the copy is refused unless every such mount
 * point is named with --freeze: those filesystems are then frozen
 * (FIFREEZE) for the copy, so the image is a consistent point in time, and
 * always thawed -- at the end, on error, on a signal, at --freeze-timeout,
 * and, through a guardian process, even if vhdtool is killed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <signal.h>
#include <time.h>

#include "freeze.h"
#include "passthrough.h"
#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_p2v = {
	"p2v", run, "copy a physical disk into a VHD/VHDX (only used data)",
	"[-O vhd|vhdx] [--type dynamic|fixed] [--freeze MOUNTPOINT]...\n"
	"       [--freeze-timeout SECONDS] [-p] [-q] [--json] DEVICE OUTPUT\n"
	"  A mounted device is refused unless each of its mount points is\n"
	"  given with --freeze; they stay frozen (writers wait) during the copy\n"
	"  and are always thawed (default timeout 600 s).",
};

/* Mount points of @dev and its partitions, from /proc/self/mountinfo. */
static int mounts_of(const char *dev, char ***out, int *n)
{
	struct pt_info info;
	char line[4096], base[64];
	FILE *f;

	*out = NULL;
	*n = 0;
	if (pt_probe(dev, &info) < 0)
		return fail("%s", pt_errmsg());
	snprintf(base, sizeof(base), "%s", info.name);
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return EXIT_OK;
	while (fgets(line, sizeof(line), f)) {
		unsigned ma, mi;
		char mnt[2048], name[128], link[64], target[256];
		ssize_t k;
		if (sscanf(line, "%*u %*u %u:%u %*s %2047s", &ma, &mi, mnt) != 3)
			continue;
		snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", ma, mi);
		k = readlink(link, target, sizeof(target) - 1);
		if (k < 0)
			continue;
		target[k] = '\0';
		snprintf(name, sizeof(name), "%.127s", strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
		/* the device itself, or a partition named after it */
		if (strcmp(name, base) && (strncmp(name, base, strlen(base)) ||
					   !strstr(target, base)))
			continue;
		char **v = realloc(*out, (size_t)(*n + 1) * sizeof(*v));
		if (!v)
			break;
		*out = v;
		(*out)[(*n)++] = strdup(mnt);
	}
	fclose(f);
	return EXIT_OK;
}

/* Set by SIGINT/SIGTERM/SIGHUP/SIGALRM: stop the copy, thaw, clean up. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct p2v_progress {
	struct progress bar;
};

static int p2v_progress(void *opaque, uint64_t done, uint64_t total)
{
	if (stop_signal)
		return 1;	/* vhd_convert cancels and removes the output */
	return progress_update(&((struct p2v_progress *)opaque)->bar, done, total);
}

static void catch_signals(unsigned timeout_s)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	alarm(timeout_s);
}

static int same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "freeze", required_argument, NULL, 'F' },
		{ "freeze-timeout", required_argument, NULL, 'T' },
		{ "type", required_argument, NULL, 't' },
		{ "progress", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	/* pass-through devices are O_DIRECT: keep reads in flight */
	struct vhd_convert_opts co = { .sparse_zeros = 1, .direct_source = 1 };
	char **freeze_list = NULL, **mounted = NULL;
	int c, nf = 0, nm = 0, rc = EXIT_FAIL, quiet = 0, json = 0, want_progress = 0;
	unsigned timeout_s = 600;
	struct freeze fz = { 0 };
	struct p2v_progress prog;
	vhd_disk *src = NULL;
	double t0;

	co.out.format = VHD_FMT_AUTO;
	co.out.type = VHD_TYPE_DYNAMIC;
	while ((c = getopt_long(argc, argv, "O:t:pq", opts, NULL)) != -1) {
		switch (c) {
		case 'F': {
			char **v = realloc(freeze_list, (size_t)(nf + 1) * sizeof(*v));
			if (!v)
				return fail("out of memory");
			freeze_list = v;
			freeze_list[nf++] = optarg;
			break;
		}
		case 'T': timeout_s = (unsigned)atoi(optarg); break;
		case 'O':
			if (parse_format(optarg, &co.out.format) < 0 || co.out.format == VHD_FMT_RAW)
				return usage_error(&verb_p2v, "output format must be vhd or vhdx");
			break;
		case 't':
			if (parse_type(optarg, &co.out.type) < 0 || co.out.type == VHD_TYPE_DIFF)
				return usage_error(&verb_p2v, "type must be dynamic or fixed");
			break;
		case 'p': want_progress = 1; break;
		case 'q': quiet = 1; break;
		case 'j': json = 1; break;
		default: return bad_option(&verb_p2v, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error(&verb_p2v, "expected DEVICE and OUTPUT");
	if (!timeout_s)
		return usage_error(&verb_p2v, "--freeze-timeout must be positive");
	if (!pt_is_block_device(argv[optind]))
		return fail("%s: not a block device (use convert for image files)", argv[optind]);
	if (co.out.format == VHD_FMT_AUTO) {
		const char *dot = strrchr(argv[optind + 1], '.');
		co.out.format = dot && !strcmp(dot, ".vhdx") ? VHD_FMT_VHDX : VHD_FMT_VHD;
	}
	if (mounts_of(argv[optind], &mounted, &nm) != EXIT_OK)
		goto out;
	for (int i = 0; i < nm; i++) {
		int listed = 0;
		for (int k = 0; k < nf; k++)
			listed |= same_dir(mounted[i], freeze_list[k]);
		if (!listed) {
			fail("%s: refused: mounted on %s (name it with --freeze to copy it frozen)",
			     argv[optind], mounted[i]);
			goto out;
		}
	}
	for (int k = 0; k < nf; k++) {
		int found = 0;
		for (int i = 0; i < nm; i++)
			found |= same_dir(mounted[i], freeze_list[k]);
		if (!found) {
			fail("%s: not a mount point of %s", freeze_list[k], argv[optind]);
			goto out;
		}
	}
	/* Mounted and frozen: read it shared; otherwise exclusively. */
	if (pt_open(argv[optind], nm ? PT_SHARED : 0, &src) < 0) {
		fail("%s", pt_errmsg());
		goto out;
	}
	if (nf) {
		catch_signals(timeout_s);
		if (freeze_begin(&fz, freeze_list, nf, timeout_s) != EXIT_OK)
			goto out;
	}
	/* Test and demo hook: hold the freeze this many seconds first. */
	if (nf && getenv("VHDTOOL_P2V_HOLD")) {
		struct timespec ts = { atoi(getenv("VHDTOOL_P2V_HOLD")), 0 };
		while (nanosleep(&ts, &ts) < 0 && !stop_signal)
			;
	}
	progress_init(&prog.bar, want_progress && !quiet, "p2v");
	co.progress = p2v_progress;
	co.opaque = &prog;
	t0 = now_seconds();
	rc = stop_signal ? -ECANCELED : vhd_convert(src, argv[optind + 1], &co);
	freeze_end(&fz);	/* thaw first, report after */
	alarm(0);
	if (rc < 0) {
		if (prog.bar.enabled)
			fputc('\n', stderr);
		if (stop_signal)
			fail("%s: %s: the filesystems were thawed; no image was kept",
			     argv[optind], stop_signal == SIGALRM ? "freeze timeout" : "interrupted");
		else
			fail_lib(NULL, rc);
		rc = EXIT_FAIL;
		goto out;
	}
	progress_finish(&prog.bar, vhd_size(src));
	if (json)
		printf("{\"device\": \"%s\", \"output\": \"%s\", \"bytes\": %llu, \"frozen\": %d, "
		       "\"seconds\": %.3f}\n", argv[optind], argv[optind + 1],
		       (unsigned long long)vhd_size(src), nf, now_seconds() - t0);
	else if (!quiet)
		printf("copied %s -> %s%s\n", argv[optind], argv[optind + 1],
		       nf ? " (filesystems frozen during the copy, now thawed)" : "");
	rc = EXIT_OK;
out:
	freeze_end(&fz);
	if (src)
		vhd_close(src);
	for (int i = 0; i < nm; i++)
		free(mounted[i]);
	free(mounted);
	free(freeze_list);
	return rc;
}
