/*
 * main.c -- `hvcore run`: parse the command line, build the machine (RAM,
 * irqchip, PIT, UARTs, i8042, CMOS clock, PCI with one virtio-blk device per
 * --disk), load the kernel, start one thread per vCPU and one per disk
 * queue, and wait for the VM to end.
 *
 * Exit status: 0 guest reset or power-off, 1 VM or setup failure (one line
 * on stderr: the reason, with the exit reason and RIP for KVM failures),
 * 2 usage error, 124 --timeout expired, 130 interrupted (SIGINT/SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "i8042.h"
#include "mptable.h"
#include "pci.h"
#include "rtc.h"
#include "serial.h"
#include "util.h"
#include "vcpu.h"
#include "virtio_blk.h"

#define HV_MAX_DISKS (PCI_MAX_SLOTS - 1)
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 124
#define EXIT_SIGNAL 130
#define MIN_MEM (64ULL << 20)
#define MAX_MEM (1ULL << 40)

#ifndef HVCORE_VERSION
#define HVCORE_VERSION "0"
#endif

struct disk_arg {
	const char *path;
	bool ro;
};

struct opts {
	struct boot_args boot;
	uint64_t mem;
	unsigned cpus;
	struct disk_arg disks[HV_MAX_DISKS];
	unsigned ndisks;
	const char *console;
	double timeout;			/* seconds, 0 = none */
	bool stats;
};

/* The machine: everything main builds and tears down. */
struct machine {
	struct vm vm;
	struct pci_bus pci;
	struct serial com1, com2;
	struct vcpu vcpus[VM_MAX_CPUS];
	unsigned nvcpus;
	struct vblk *blk;		/* ndisks entries */
	unsigned nblk;
	int console_fd, sink_fd;
	uint64_t t0;
};

static volatile sig_atomic_t got_signal;

static const char usage_text[] =
	"usage: hvcore run --kernel bzImage|vmlinux [--initrd FILE] [--cmdline STRING]\n"
	"                  [--mem SIZE] [--cpus N] [--disk IMAGE[,ro]]... \n"
	"                  [--console stdio|FILE] [--timeout SECONDS] [--stats]\n"
	"       hvcore --help | --version\n"
	"\n"
	"Runs a KVM virtual machine.  Each --disk (VHD, VHDX, raw image or host block\n"
	"device, up to 31) is a virtio-blk PCI device, in order from 00:01.0.\n"
	"  --kernel    bzImage (64-bit boot protocol) or ELF vmlinux with a PVH note\n"
	"  --mem       guest RAM (K, M, G suffixes; default 512M)\n"
	"  --cpus      vCPUs (default 1, at most 16)\n"
	"  --console   where COM1 output goes (default stdio: stdout, input from stdin)\n"
	"  --timeout   stop the VM after SECONDS (exit status 124)\n"
	"  --stats     print the time to the first serial byte and, per disk, the\n"
	"              requests served and host CPU time per request on exit\n"
	"Exit status: 0 guest reset/power-off, 1 failure, 2 usage, 124 timeout.\n";

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("hvcore: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static int add_disk(struct opts *o, char *arg)
{
	size_t len = strlen(arg);

	if (o->ndisks == HV_MAX_DISKS)
		return fail(EXIT_USAGE, "too many --disk options (at most %d)", HV_MAX_DISKS);
	if (len >= 3 && !strcmp(arg + len - 3, ",ro")) {
		arg[len - 3] = '\0';
		o->disks[o->ndisks].ro = true;
	}
	if (!*arg)
		return fail(EXIT_USAGE, "--disk needs an image path");
	o->disks[o->ndisks++].path = arg;
	return 0;
}

static int parse_number(const char *opt, const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v <= 0 || v > max)
		return fail(EXIT_USAGE, "%s: invalid value '%s'", opt, s);
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'p' },
		{ "disk", required_argument, NULL, 'd' },
		{ "console", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stats", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double v;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->boot.kernel = optarg; break;
		case 'i': o->boot.initrd = optarg; break;
		case 'c': o->boot.cmdline = optarg; break;
		case 'o': o->console = optarg; break;
		case 's': o->stats = true; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'm':
			if (hv_parse_size(optarg, &o->mem) < 0 || o->mem < MIN_MEM || o->mem > MAX_MEM)
				return fail(EXIT_USAGE, "--mem: invalid size '%s' (64M to 1T)", optarg);
			break;
		case 'p':
			rc = parse_number("--cpus", optarg, VM_MAX_CPUS, &v);
			if (rc)
				return rc;
			if (v != (unsigned)v)
				return fail(EXIT_USAGE, "--cpus: invalid value '%s'", optarg);
			o->cpus = (unsigned)v;
			break;
		case 't':
			rc = parse_number("--timeout", optarg, 1e7, &o->timeout);
			if (rc)
				return rc;
			break;
		case 'd':
			rc = add_disk(o, optarg);
			if (rc)
				return rc;
			break;
		default:
			if (optopt && optopt != '?')
				return fail(EXIT_USAGE, "option needs a value or is unknown: -%c "
					    "(hvcore --help)", optopt);
			return fail(EXIT_USAGE, "unknown option or missing value: %s (hvcore --help)",
				    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(EXIT_USAGE, "unexpected argument: %s (hvcore --help)", argv[optind]);
	if (!o->boot.kernel)
		return fail(EXIT_USAGE, "run: --kernel is required (hvcore --help)");
	return 0;
}

static int open_console(struct machine *m, const char *console)
{
	if (!console || !strcmp(console, "stdio")) {
		m->console_fd = STDOUT_FILENO;
		return 0;
	}
	m->console_fd = open(console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (m->console_fd < 0)
		return hv_fail(-errno, "%s: %m", console);
	return 0;
}

/* Devices that every machine has.  Port 0x80 (POST codes, the kernel's
 * I/O delay) is an ioeventfd nobody reads: the writes never leave KVM. */
static int create_platform(struct machine *m, const struct opts *o)
{
	bool stdio = !o->console || !strcmp(o->console, "stdio");
	int rc;

	rc = pci_bus_init(&m->pci, &m->vm);
	if (rc == 0)
		rc = serial_init(&m->com1, &m->vm, 0x3f8, 4, m->console_fd,
				 stdio ? STDIN_FILENO : -1);
	if (rc == 0)
		rc = serial_init(&m->com2, &m->vm, 0x2f8, 3, -1, -1);
	if (rc == 0)
		rc = i8042_init(&m->vm);
	if (rc == 0)
		rc = rtc_init(&m->vm);
	if (rc < 0)
		return rc;
	m->sink_fd = hv_eventfd(true);
	if (m->sink_fd >= 0)
		vm_ioeventfd(&m->vm, 0x80, 1, m->sink_fd, true, true);
	return 0;
}

static int create_disks(struct machine *m, const struct opts *o)
{
	m->blk = calloc(o->ndisks ? o->ndisks : 1, sizeof(*m->blk));
	if (!m->blk)
		return hv_fail(-ENOMEM, "out of memory");
	for (unsigned i = 0; i < o->ndisks; i++) {
		int rc = vblk_create(&m->blk[i], &m->vm, i, o->disks[i].path, o->disks[i].ro);

		m->nblk = i + 1;
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int create_vcpus(struct machine *m, const struct boot_state *st)
{
	int rc;

	for (unsigned i = 0; i < m->nvcpus; i++) {
		m->vcpus[i].fd = -1;
		rc = vcpu_create(&m->vm, i, &m->vcpus[i]);
		if (rc < 0)
			return rc;
	}
	return vcpu_set_boot_state(&m->vcpus[0], st);
}

static int build(struct machine *m, const struct opts *o)
{
	struct boot_state st;
	int rc;

	rc = open_console(m, o->console);
	if (rc == 0)
		rc = vm_create(&m->vm, o->mem);
	m->vm.ncpus = m->nvcpus;	/* the MP table and CPUID need it */
	m->vm.vcpus = m->vcpus;
	if (rc == 0)
		rc = create_platform(m, o);
	if (rc == 0)
		rc = create_disks(m, o);
	if (rc == 0)
		rc = boot_load(&m->vm, &o->boot, &st);
	if (rc == 0 && mptable_write(&m->vm, m->nblk) < 0)
		rc = hv_fail(-E2BIG, "MP table does not fit");
	if (rc == 0)
		rc = create_vcpus(m, &st);
	return rc;
}

static int start(struct machine *m)
{
	int rc;

	for (unsigned i = 0; i < m->nblk; i++) {
		rc = vblk_start(&m->blk[i]);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < m->nvcpus; i++) {
		rc = vcpu_start(&m->vcpus[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Wait until a thread ends the VM, the timeout passes, or a signal comes. */
static void wait_for_exit(struct machine *m, double timeout)
{
	struct vm *vm = &m->vm;
	uint64_t deadline = timeout > 0 ? m->t0 + (uint64_t)(timeout * 1e9) : 0;

	pthread_mutex_lock(&vm->exit_lock);
	while (!vm->exiting) {
		struct timespec ts;

		if (got_signal) {
			pthread_mutex_unlock(&vm->exit_lock);
			vm_exit(vm, EXIT_SIGNAL, "stopped by signal %d", (int)got_signal);
			return;
		}
		if (deadline && hv_now_ns() >= deadline) {
			pthread_mutex_unlock(&vm->exit_lock);
			vm_exit(vm, EXIT_TIMEOUT, "timeout: stopped the VM after %g s", timeout);
			return;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->exit_cond, &vm->exit_lock, &ts);
	}
	pthread_mutex_unlock(&vm->exit_lock);
}

/* --stats: per disk, requests served and the I/O thread's CPU time per
 * request (notify to completion, host side). */
static void print_disk_stats(const struct vblk *b, unsigned i)
{
	uint64_t n = b->q[0].requests, ns = b->q[0].cpu_ns;

	fprintf(stderr, "hvcore: disk %u: %llu requests, I/O thread %.3f s CPU, %.2f us/request\n",
		i, (unsigned long long)n, ns / 1e9, n ? ns / 1e3 / (double)n : 0.0);
}

static void teardown(struct machine *m, bool stats)
{
	for (unsigned i = 0; i < m->nvcpus; i++)
		vcpu_stop(&m->vcpus[i]);
	for (unsigned i = 0; i < m->nblk; i++) {
		vblk_destroy(&m->blk[i]);
		if (stats)
			print_disk_stats(&m->blk[i], i);
	}
	serial_stop(&m->com1);
	for (unsigned i = 0; i < m->nvcpus; i++)
		if (m->vcpus[i].vm)
			vcpu_destroy(&m->vcpus[i]);
	free(m->blk);
	vm_destroy(&m->vm);
	if (m->sink_fd >= 0)
		close(m->sink_fd);
	if (m->console_fd > STDERR_FILENO)
		close(m->console_fd);
}

static int cmd_run(int argc, char **argv)
{
	static struct machine m;
	struct opts o = { .mem = 512ULL << 20, .cpus = 1 };
	int rc;

	o.boot.cmdline = "";
	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	m.t0 = hv_now_ns();
	m.console_fd = m.sink_fd = -1;
	m.vm.kvm_fd = m.vm.vm_fd = -1;
	m.nvcpus = o.cpus;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	vcpu_init_signals();
	rc = build(&m, &o);
	if (rc == 0)
		rc = start(&m);
	if (rc < 0) {
		vm_exit(&m.vm, EXIT_FAIL, "%s", hv_errmsg());
	} else {
		wait_for_exit(&m, o.timeout);
	}
	teardown(&m, o.stats);
	if (o.stats)
		fprintf(stderr, "hvcore: first serial byte after %.3f ms\n",
			m.com1.first_tx_ns ? (m.com1.first_tx_ns - m.t0) / 1e6 : -1.0);
	if (m.vm.exit_code)
		return fail(m.vm.exit_code, "%s", m.vm.exit_msg[0] ? m.vm.exit_msg : "failed");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("hvcore %s\n", HVCORE_VERSION);
		return 0;
	}
	if (argc < 2)
		return fail(EXIT_USAGE, "missing command: try hvcore run --kernel FILE (hvcore --help)");
	if (strcmp(argv[1], "run"))
		return fail(EXIT_USAGE, "unknown command '%s' (hvcore --help)", argv[1]);
	return cmd_run(argc - 1, argv + 1);
}
