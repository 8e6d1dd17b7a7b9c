/*
 * rtc.c -- see rtc.h.
 */
#include <string.h>
#include <time.h>

#include "rtc.h"
#include "util.h"

static uint8_t rtc_index;	/* one CMOS per process; guarded by the ports' nature */

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t cmos_read(uint8_t idx)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (idx) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd(tm.tm_year / 100 + 19);	/* century */
	case 0x0a: return 0x26;		/* divider on, 1024 Hz, UIP clear */
	case 0x0b: return 0x02;		/* 24-hour, BCD, no interrupts */
	case 0x0d: return 0x80;		/* battery good */
	default: return 0;
	}
}

static void rtc_io(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		   bool write)
{
	(void)opaque;
	if (write) {
		if (off == 0)
			__atomic_store_n(&rtc_index, data[0] & 0x7f, __ATOMIC_RELAXED);
		return;
	}
	memset(data, 0, len);
	if (off == 1)
		data[0] = cmos_read(__atomic_load_n(&rtc_index, __ATOMIC_RELAXED));
	else
		data[0] = 0xff;
}

int rtc_init(struct vm *vm)
{
	int rc = iobus_add(&vm->pio, 0x70, 2, rtc_io, NULL);

	return rc < 0 ? hv_fail(rc, "rtc: cannot register its ports") : 0;
}
