/* main.c -- the guest's CPL3 entry: clear .bss, read the command line,
 * run the test it names, print "GUEST RESULT: PASS" or "GUEST RESULT:
 * FAIL <the first failure>" and reset through the i8042.
 *
 * Command line words (key=value):
 *   test=rw|bad|bench   what to do (default rw)
 *   seed=N              pattern seed (default 1)
 *   tsc_khz=N           TSC frequency, for timeouts and IOPS
 *   disks=N             fail unless exactly N virtio-blk devices are found
 *   bench: rw=read|write iodepth=N ops=N disk=N */
#include "tests.h"

extern char __bss_start[], __bss_end[];
extern volatile uint64_t port_io_trapped;	/* cpu.c */
void guest_main(void) __attribute__((noreturn));

static char reason[160];

int failf(const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	gvsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gprintf("GUEST FAIL: %s\n", msg);
	if (!reason[0])
		memcpy(reason, msg, sizeof(reason));
	return -1;
}

void machine_reset(void)
{
	outb(0x64, 0xfe);
	for (;;)
		cpu_relax();
}

void fail(const char *fmt, ...)
{
	va_list ap;

	gprintf("GUEST RESULT: FAIL ");
	va_start(ap, fmt);
	gvprintf(fmt, ap);
	va_end(ap);
	gprintf("\n");
	machine_reset();
}

/* Port I/O at CPL3 relies on IOPL 3; cpu.c emulates it if the VMM traps. */
static void report_port_io(void)
{
	uint64_t before = port_io_trapped;

	(void)inb(0x3fd);
	console_string_io = port_io_trapped != before;
	if (!console_string_io)
		gprintf("GUEST port I/O at CPL3: direct (IOPL 3)\n");
	else
		gprintf("GUEST port I/O at CPL3: traps (#GP), emulated at CPL0\n");
}

void guest_main(void)
{
	const char *test;
	int rc;

	memset(__bss_start, 0, __bss_end - __bss_start);
	gprintf("GUEST vhdkit test guest: long mode, work at CPL3\n");
	if (start_info_parse())
		fail("no hvm_start_info at %#x (bad magic)", start_info_paddr);
	gprintf("GUEST cmdline: %s\n", cmdline());
	memmap_print();
	report_port_io();
	tsc_khz_given = arg_u64("tsc_khz", 0) != 0;
	if (tsc_khz_given)
		tsc_khz = arg_u64("tsc_khz", 0);
	test = arg_str("test", "rw");
	if (streq(test, "rw"))
		rc = test_rw();
	else if (streq(test, "bad"))
		rc = test_bad();
	else if (streq(test, "bench"))
		rc = test_bench();
	else
		fail("unknown test=%s (rw, bad, bench)", test);
	if (rc)
		fail("%s", reason[0] ? reason : "(no reason recorded)");
	gprintf("GUEST RESULT: PASS\n");
	machine_reset();
}
