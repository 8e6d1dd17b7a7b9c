/*
 * cmd_serve.c -- vhdtool serve: export an image over NBD by running nbdkit
 * with vhdkit's plugin, for users who do not want nbdkit's command line.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "passthrough.h"
#include "vhdtool.h"

static int run(int argc, char **argv);

const struct verb verb_serve = {
	"serve", run, "export an image over NBD (runs nbdkit with the vhd plugin)",
	"[--socket PATH | --port N [--listen ADDR]] [--readonly] [--snapshot N|PATH]\n"
	"       [--background [--pidfile FILE]] [--threads N] [--keep-layout] IMAGE\n"
	"  Serves IMAGE (its whole chain) until interrupted.  Default: a TCP port\n"
	"  10809 on 127.0.0.1.  Connect with nbd+unix:///?socket=PATH or\n"
	"  nbd://HOST:PORT (nbdinfo, nbdcopy, qemu, nbd-client).  A VHD block\n"
	"  whose data is not 4 KiB aligned (qemu-img's layout) moves to an\n"
	"  aligned place at its first write below 64 KiB, unless --keep-layout.",
};

/* The plugin next to this binary in a build tree, else the installed one. */
static void plugin_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		char *slash;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/../nbd-plugin/nbdkit-vhd-plugin.so", self);
			if (access(out, R_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "%s/nbdkit-vhd-plugin.so", NBDKIT_PLUGINDIR);
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "background", no_argument, NULL, 'b' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "threads", required_argument, NULL, 't' },
		{ "keep-layout", no_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *port = NULL, *listen = "127.0.0.1";
	const char *snapshot = NULL, *pidfile = NULL, *threads = NULL;
	char plugin[PATH_MAX + 64], file_arg[PATH_MAX + 8], snap_arg[PATH_MAX + 16];
	int c, readonly = 0, background = 0, keep_layout = 0;
	char *args[32];
	int n = 0;

	while ((c = getopt_long(argc, argv, "r", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'p': port = optarg; break;
		case 'l': listen = optarg; break;
		case 'r': readonly = 1; break;
		case 'S': snapshot = optarg; break;
		case 'b': background = 1; break;
		case 'P': pidfile = optarg; break;
		case 't': threads = optarg; break;
		case 'K': keep_layout = 1; break;
		default: return bad_option(&verb_serve, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error(&verb_serve, "expected one IMAGE");
	if (sock && port)
		return usage_error(&verb_serve, "--socket and --port exclude each other");
	if (port && (atoi(port) <= 0 || atoi(port) > 65535))
		return usage_error(&verb_serve, "invalid port '%s'", port);
	if (access(argv[optind], R_OK) < 0)
		return fail("%s: cannot open: %s", argv[optind], strerror(errno));
	plugin_path(plugin, sizeof(plugin));
	if (access(plugin, R_OK) < 0)
		return fail("%s: the nbdkit plugin is missing (build with nbdkit-plugin-dev installed)",
			    plugin);

	args[n++] = "nbdkit";
	if (!background)
		args[n++] = "-f";
	if (pidfile) {
		args[n++] = "-P";
		args[n++] = (char *)pidfile;
	}
	if (sock) {
		args[n++] = "-U";
		args[n++] = (char *)sock;
	} else {
		args[n++] = "-i";
		args[n++] = (char *)listen;
		args[n++] = "-p";
		args[n++] = (char *)(port ? port : "10809");
	}
	if (threads) {
		args[n++] = "-t";
		args[n++] = (char *)threads;
	}
	if (readonly)
		args[n++] = "-r";
	args[n++] = plugin;
	snprintf(file_arg, sizeof(file_arg), "%s=%s",
		 pt_is_block_device(argv[optind]) ? "device" : "file", argv[optind]);
	args[n++] = file_arg;
	if (readonly)
		args[n++] = "readonly=true";
	if (keep_layout && !pt_is_block_device(argv[optind]))
		args[n++] = "realign=false";
	if (snapshot) {
		snprintf(snap_arg, sizeof(snap_arg), "snapshot=%s", snapshot);
		args[n++] = snap_arg;
	}
	args[n] = NULL;
	execvp("nbdkit", args);
	return fail("cannot run nbdkit: %s (install the nbdkit package)", strerror(errno));
}
