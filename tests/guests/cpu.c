/* cpu.c -- the only C code that runs at CPL0: IDT and TSS setup, and the
 * trap handler.
 *
 * Kernel-mode code is emulated on kvm_pvm, so this file does as little as
 * possible.  trap() has two jobs:
 *   - a #GP from CPL3 on an IN/OUT instruction: the VMM did not honour
 *     IOPL 3 (kvm_pvm does not: ~140 us per access, measured), so the port
 *     access is done here and the instruction skipped (counted in
 *     port_io_trapped, which main.c reports).  REP OUTSB is emulated too:
 *     serial.c then writes a whole line with one trap.  (A software
 *     interrupt gate would do, but kvm_pvm raises #UD for INT n at CPL3.)
 *   - anything else: print the CPU state on COM1, "GUEST RESULT: FAIL" and
 *     reset through the i8042.  Interrupts are never enabled, so a vector
 *     >= 32 is reported as unexpected too. */
#include "guest.h"
#include "x86.h"

struct trapframe {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;	/* pushed by the CPU */
};

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;	/* 0x8e: present, DPL 0, 64-bit interrupt gate */
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");

/* The 64-bit TSS: only rsp0 is used (the stack for traps from CPL3). */
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1, ist[7], reserved2;
	uint16_t reserved3, iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "TSS is 104 bytes");

/* In .data, not .bss: guest_main() clears .bss after these are set up. */
static struct idt_gate idt[256] __attribute__((section(".data")));
static struct tss tss __attribute__((section(".data")));
volatile uint64_t port_io_trapped __attribute__((section(".data")));

extern char trap_stubs[], kstack_top[];
extern uint64_t gdt[];

void cpu_setup(void);
void trap(struct trapframe *tf);

void cpu_setup(void)
{
	uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;
	int v;

	for (v = 0; v < 256; v++) {
		uint64_t h = (uint64_t)(trap_stubs + 16 * v);

		idt[v] = (struct idt_gate){ .off_lo = h, .sel = SEL_KCODE, .type = 0x8e,
					    .off_mid = h >> 16, .off_hi = h >> 32 };
	}
	tss.rsp[0] = (uint64_t)kstack_top;
	tss.iomap_base = sizeof(tss);	/* no I/O bitmap: IOPL decides */
	/* 64-bit available TSS descriptor (type 9, present). */
	gdt[SEL_TSS / 8] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
			   ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (uint64_t)idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
}

/* REP OUTSB (F3 6E): rcx bytes from rsi to port dx. */
static void emulate_rep_outsb(struct trapframe *tf)
{
	const uint8_t *src = (const uint8_t *)tf->rsi;

	for (; tf->rcx; tf->rcx--)
		outb(tf->rdx, *src++);
	tf->rsi = (uint64_t)src;
	tf->rip += 2;
	port_io_trapped++;
}

/* Emulates IN/OUT (DX or imm8 port, 8/16/32 bits) and REP OUTSB at
 * tf->rip.  Returns false when the instruction is something else. */
static bool emulate_port_io(struct trapframe *tf)
{
	const uint8_t *p = (const uint8_t *)tf->rip;
	int len = 1, size = 4;
	uint16_t port = tf->rdx;
	uint8_t op;

	if (p[0] == 0xf3 && p[1] == 0x6e) {
		emulate_rep_outsb(tf);
		return true;
	}
	if (p[0] == 0x66) {
		size = 2;
		p++, len++;
	}
	op = p[0];
	if (op >= 0xe4 && op <= 0xe7) {
		port = p[1];
		len++;
	} else if (op < 0xec || op > 0xef) {
		return false;
	}
	if (!(op & 1))
		size = 1;
	if (op & 2) {	/* OUT */
		if (size == 1)
			outb(port, tf->rax);
		else if (size == 2)
			outw(port, tf->rax);
		else
			outl(port, tf->rax);
	} else if (size == 1) {
		tf->rax = (tf->rax & ~0xffull) | inb(port);
	} else if (size == 2) {
		tf->rax = (tf->rax & ~0xffffull) | inw(port);
	} else {
		tf->rax = inl(port);	/* a 32-bit write zero-extends */
	}
	tf->rip += len;
	port_io_trapped++;
	return true;
}

void trap(struct trapframe *tf)
{
	uint64_t cr2;

	if (tf->vector == 13 && (tf->cs & 3) == 3 && emulate_port_io(tf))
		return;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	gprintf("GUEST FAULT: vector %lu error %#lx at rip %#lx (cs %#lx, rflags %#lx) "
		"rsp %#lx cr2 %#lx\n", tf->vector, tf->error, tf->rip, tf->cs, tf->rflags,
		tf->rsp, cr2);
	gprintf("GUEST FAULT: rax %#lx rbx %#lx rcx %#lx rdx %#lx rsi %#lx rdi %#lx\n",
		tf->rax, tf->rbx, tf->rcx, tf->rdx, tf->rsi, tf->rdi);
	gprintf("GUEST RESULT: FAIL cpu exception %lu\n", tf->vector);
	machine_reset();
}
