/* boot.S -- PVH entry, the switch to long mode, exception stubs.
 *
 * The VMM enters pvh_start in 32-bit protected mode, paging off, flat
 * segments, EBX = physical address of struct hvm_start_info (contract:
 * /work/hvcore-contract.md, "Boot").  Guest kernel-mode code is emulated
 * on kvm_pvm (about 0.65 M instructions/s), so everything here is a
 * handful of instructions: the page tables are static data (an identity
 * map of the first 4 GiB with 2 MiB pages, U/S set so CPL3 may use all of
 * it, the 3-4 GiB MMIO hole uncached), long mode is entered, cpu_setup()
 * (cpu.c) fills the IDT and TSS, and an iretq drops to CPL3 with IOPL 3 at
 * guest_main() (main.c), which does all the real work natively. */
#include "x86.h"

/* The PVH note: XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", 4-byte entry. */
	.section .note.Xen, "a", @note
	.p2align 2
	.long 4, 4, 18
	.asciz "Xen"
	.long pvh_start

	.section .text.boot, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cld
	movl %ebx, start_info_paddr
	movl $kstack_top, %esp
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_WP | CR0_PE), %eax
	movl %eax, %cr0
	lgdt gdt_desc
	ljmp $SEL_KCODE, $long_mode

	.code64
long_mode:
	movw $SEL_KDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	movq $kstack_top, %rsp
	call cpu_setup
	/* To CPL3: SS, RSP, RFLAGS (IOPL 3), CS, RIP. */
	pushq $SEL_UDATA
	pushq $ustack_top
	pushq $USER_RFLAGS
	pushq $SEL_UCODE
	pushq $guest_main
	iretq

/* One 16-byte stub per vector (trap_stubs + 16 * vector), each pushing a
 * zero error code when the CPU does not push one, then the vector. */
	.text
	.p2align 4
	.globl trap_stubs
trap_stubs:
	vec = 0
	.rept 256
	.p2align 4
	.if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
	.else
	pushq $0
	.endif
	pushq $vec
	jmp trap_common
	vec = vec + 1
	.endr

/* Saves the registers as a struct trapframe (cpu.c) and calls trap(). */
trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	call trap
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp		/* vector and error code */
	iretq

	.data
	.globl start_info_paddr
start_info_paddr:
	.long 0

	.p2align 3
	.globl gdt
gdt:
	.quad 0				/* null */
	.quad 0x00af9a000000ffff	/* SEL_KCODE: 64-bit, DPL 0 */
	.quad 0x00cf92000000ffff	/* SEL_KDATA */
	.quad 0x00affa000000ffff	/* SEL_UCODE: 64-bit, DPL 3 */
	.quad 0x00cff2000000ffff	/* SEL_UDATA: DPL 3 */
	.quad 0, 0			/* SEL_TSS: cpu.c */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

/* Identity map of [0, 4 GiB) with 2 MiB pages, readable and writable at
 * CPL3; [3 GiB, 4 GiB) (the MMIO hole) uncached.  paging.c adds pages for
 * BARs above 4 GiB from the spare tables. */
	.section .data.pagetables, "aw"
	.p2align 12
	.globl pml4, pt_spare
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + PTE_TABLE
	.quad pd + 4096 + PTE_TABLE
	.quad pd + 8192 + PTE_TABLE
	.quad pd + 12288 + PTE_TABLE
	.fill 508, 8, 0
pd:
	i = 0
	.rept 2048
	.if i < 1536
	.quad (i << 21) + PTE_2M
	.else
	.quad (i << 21) + PTE_2M_UC
	.endif
	i = i + 1
	.endr
pt_spare:
	.fill 4 * 512, 8, 0

	.section .stack, "aw", @nobits
	.p2align 12
kstack:
	.skip KSTACK_SIZE
	.globl kstack_top
kstack_top:
ustack:
	.skip USTACK_SIZE
ustack_top:
