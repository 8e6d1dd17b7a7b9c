/*
 * util.h -- small helpers shared by hvcore's files: the error message of
 * the calling thread (like pt_errmsg), size parsing, eventfds.
 */
#ifndef HVCORE_UTIL_H
#define HVCORE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/** Record "message" for this thread and return @err (a negative errno). */
int hv_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** This thread's last message ("" if none). */
const char *hv_errmsg(void);

/** Sizes: digits with an optional K, M, G, T suffix (powers of 1024).
 *  Returns 0 or -EINVAL (also on overflow). */
int hv_parse_size(const char *s, uint64_t *out);

/** Monotonic clock in nanoseconds. */
uint64_t hv_now_ns(void);

/** New eventfd (non-blocking when @nonblock), or -errno. */
int hv_eventfd(bool nonblock);
/** Add 1 to an eventfd (wakes its reader). */
void hv_eventfd_signal(int fd);
/** Drain an eventfd; returns the count (0 when none, non-blocking fd). */
uint64_t hv_eventfd_drain(int fd);

#endif /* HVCORE_UTIL_H */
