/* time.c -- microseconds from the TSC.  The guest cannot calibrate the TSC
 * cheaply (no timer interrupts, kernel mode is emulated), so the host passes
 * tsc_khz= on the command line; without it timeouts assume a fast 4 GHz TSC
 * (they then last longer, never shorter, than asked) and the bench prints
 * cycles instead of IOPS. */
#include "guest.h"

uint64_t tsc_khz = 4000000;
bool tsc_khz_given;

uint64_t now_us(void)
{
	return rdtsc() * 1000 / tsc_khz;
}
