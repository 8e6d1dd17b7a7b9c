/* serial.c -- console output on the COM1 8250 UART (port 0x3f8) and a
 * small printf.
 *
 * The contract promises only THR (0x3f8) and LSR (0x3fd, THR empty = 0x20),
 * so the UART is not programmed.  Each character costs two port accesses
 * (an exit each; under kvm_pvm a trap to emulated CPL0 besides, see
 * cpu.c), which is why the guest prints lines, not progress bars.
 * Formats: %d %i %u %x %X %p %s %c %%, flags - 0 #, a width, and the
 * length modifiers l, ll, z. */
#include "guest.h"

#define COM1_THR 0x3f8
#define COM1_LSR 0x3fd
#define LSR_THRE 0x20

bool console_string_io;

void serial_write(const char *s, size_t n)
{
	int spin;

	for (; n; n--, s++) {
		for (spin = 0; spin < 100000 && !(inb(COM1_LSR) & LSR_THRE); spin++)
			cpu_relax();
		outb(COM1_THR, *s);
	}
}

static int cpl(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/* Output is collected in a line buffer and written a line at a time. */
struct sink {
	char *buf;	/* NULL: to the UART */
	size_t size, len;
	char line[160];
	size_t used;
};

static void flush(struct sink *s)
{
	if (!s->used)
		return;
	if (console_string_io && cpl() == 3) {
		const char *p = s->line;
		size_t n = s->used;

		__asm__ volatile("rep outsb" : "+S"(p), "+c"(n) : "d"(COM1_THR) : "memory");
	} else
		serial_write(s->line, s->used);
	s->used = 0;
}

static void put(struct sink *s, char c)
{
	if (s->buf) {
		if (s->len + 1 < s->size)
			s->buf[s->len] = c;
		s->len++;
		return;
	}
	if (s->used + 2 > sizeof(s->line))
		flush(s);
	if (c == '\n')
		s->line[s->used++] = '\r';
	s->line[s->used++] = c;
	if (c == '\n')
		flush(s);
}

static void put_num(struct sink *s, uint64_t v, int base, bool upper, bool neg,
		    int width, char pad, bool left, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, len;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + neg + (int)strlen(prefix);
	if (pad == '0' && !left) {
		if (neg)
			put(s, '-');
		while (*prefix)
			put(s, *prefix++);
		for (; len < width; len++)
			put(s, '0');
	} else {
		for (; !left && len < width; len++)
			put(s, ' ');
		if (neg)
			put(s, '-');
		while (*prefix)
			put(s, *prefix++);
	}
	while (n)
		put(s, tmp[--n]);
	for (; left && len < width; len++)
		put(s, ' ');
}

static void format(struct sink *s, const char *f, va_list ap)
{
	for (; *f; f++) {
		bool left = false, alt = false;
		int width = 0, lng = 0, base = 10;
		char pad = ' ', c;
		uint64_t v;

		if (*f != '%') {
			put(s, *f);
			continue;
		}
		for (;; f++) {
			if (f[1] == '-')
				left = true;
			else if (f[1] == '0')
				pad = '0';
			else if (f[1] == '#')
				alt = true;
			else
				break;
		}
		while (f[1] >= '0' && f[1] <= '9')
			width = width * 10 + (*++f - '0');
		while (f[1] == 'l' || f[1] == 'z')
			lng++, f++;
		c = *++f;
		switch (c) {
		case 'd':
		case 'i': {
			int64_t x = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			put_num(s, x < 0 ? -(uint64_t)x : (uint64_t)x, 10, false, x < 0,
				width, pad, left, "");
			break;
		}
		case 'x':
		case 'X':
		case 'u':
		case 'p':
			if (c == 'p')
				v = (uint64_t)va_arg(ap, void *), alt = true;
			else
				v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			if (c != 'u')
				base = 16;
			put_num(s, v, base, c == 'X', false, width, pad, left,
				alt && base == 16 ? "0x" : "");
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			int len;

			if (!str)
				str = "(null)";
			len = strlen(str);
			for (; !left && len < width; len++)
				put(s, ' ');
			while (*str)
				put(s, *str++);
			for (; left && len < width; len++)
				put(s, ' ');
			break;
		}
		case 'c':
			put(s, (char)va_arg(ap, int));
			break;
		case '\0':
			return;
		default:
			put(s, c);
		}
	}
}

void gvprintf(const char *fmt, va_list ap)
{
	struct sink s = { 0 };

	format(&s, fmt, ap);
	flush(&s);
}

void gprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gvprintf(fmt, ap);
	va_end(ap);
}

int gvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .size = size };

	format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return s.len;
}

int gsnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = gvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
