/* guest.h -- what the parts of the test guest share: port and MMIO
 * accessors, console output, time, the command line and memory map, and
 * the small libc the compiler may call (lib.c).
 *
 * The guest is freestanding: no libc, no interrupts, one CPU.  Everything
 * after boot runs at CPL3 (see boot.S); RAM and MMIO below 4 GiB are
 * identity mapped. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- port I/O (IOPL 3 lets CPL3 use these; cpu.c emulates them if not).
 * Always the DX forms, which cpu.c's emulation decodes. */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "d"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "d"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "d"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "d"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "d"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "d"(port));
	return v;
}

/* ---- MMIO: single plain MOVs, which every VMM's instruction decoder knows */
static inline uint8_t mmio_read8(uint64_t a)
{
	uint8_t v;

	__asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t a)
{
	uint16_t v;

	__asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static inline uint32_t mmio_read32(uint64_t a)
{
	uint32_t v;

	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static inline void mmio_write8(uint64_t a, uint8_t v)
{
	__asm__ volatile("movb %0, (%1)" : : "q"(v), "r"(a) : "memory");
}

static inline void mmio_write16(uint64_t a, uint16_t v)
{
	__asm__ volatile("movw %0, (%1)" : : "r"(v), "r"(a) : "memory");
}

static inline void mmio_write32(uint64_t a, uint32_t v)
{
	__asm__ volatile("movl %0, (%1)" : : "r"(v), "r"(a) : "memory");
}

/* Orders our ring stores before the device sees them (x86 keeps stores in
 * order; this stops the compiler from moving them). */
#define barrier() __asm__ volatile("" : : : "memory")
static inline void mb(void) { __asm__ volatile("mfence" : : : "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause"); }
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define KiB 1024ull
#define MiB (1024ull * 1024)

/* ---- serial.c: COM1 output */
/* Writes n bytes with port I/O at the current privilege level. */
void serial_write(const char *s, size_t n);
/* Set when port I/O from CPL3 traps: a line is then written with one
 * REP OUTSB, which traps once (cpu.c emulates it), instead of two traps per
 * character.  (Not used otherwise: a VMM need not handle string I/O.) */
extern bool console_string_io;
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gvprintf(const char *fmt, va_list ap);
int gsnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int gvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- main.c: end of the run */
/* Prints "GUEST RESULT: FAIL <why>" and resets. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "GUEST FAIL: <why>", keeps the first reason for the RESULT line,
 * returns -1. */
int failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes 0xfe to the i8042 command port (the VMM exits) and spins. */
void machine_reset(void) __attribute__((noreturn));

/* ---- time.c: TSC-based time (tsc_khz from the command line) */
extern uint64_t tsc_khz;
extern bool tsc_khz_given;
uint64_t now_us(void);

/* ---- cmdline.c: hvm_start_info */
extern uint32_t start_info_paddr;	/* boot.S: EBX at entry */
int start_info_parse(void);		/* 0 or -1 (bad magic) */
const char *cmdline(void);		/* "" when none */
/* The value of KEY=VALUE in the command line, or DEF. */
const char *arg_str(const char *key, const char *def);
uint64_t arg_u64(const char *key, uint64_t def);
/* End of the highest RAM range in the memory map (0 when there is none). */
uint64_t ram_end(void);
void memmap_print(void);

/* ---- paging.c: identity mappings above 4 GiB (for 64-bit BARs) */
int map_identity(uint64_t phys, uint64_t len);

/* ---- lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
bool streq(const char *a, const char *b);
uint64_t parse_u64(const char *s, const char **end);
/* xorshift64*: the guest's only random numbers (seeded from the cmdline). */
uint64_t rand64(uint64_t *state);

#endif
