/*
 * pt_internal.h -- shared within passthrough/.
 */
#ifndef PT_INTERNAL_H
#define PT_INTERNAL_H

#include <stddef.h>

/* Set this thread's message "DEV: ..." and return @err. */
int pt_error(int err, const char *dev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Whether kernel device @name or a partition of it is in use; @why says
 * how and by what. */
int pt_in_use(const char *name, char *why, size_t len);

#endif /* PT_INTERNAL_H */
