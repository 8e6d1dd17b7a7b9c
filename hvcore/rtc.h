/*
 * rtc.h -- MC146818 CMOS clock (ports 0x70 index, 0x71 data), read only:
 * the host's UTC time in BCD, 24-hour mode, never "update in progress", so
 * a kernel reading the clock at boot never waits.  Other CMOS bytes read 0.
 */
#ifndef HVCORE_RTC_H
#define HVCORE_RTC_H

#include "vm.h"

int rtc_init(struct vm *vm);

#endif /* HVCORE_RTC_H */
