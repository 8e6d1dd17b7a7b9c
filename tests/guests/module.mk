# tests/guests -- the freestanding test guest for hvcore (docs/testing.md)
# and its host-side helper.
#
# blkguest.elf is built with the host gcc and binutils, no libc: a PVH ELF
# (boot.S, guest.lds) loaded at 1 MiB.  blkexpect is a host program that
# shares pattern.c and plan.c with the guest, to recompute what the guest
# wrote.
GUEST_ELF := tests/guests/blkguest.elf
GUEST_SRCS := boot.S cpu.c main.c serial.c lib.c time.c cmdline.c paging.c pci.c \
	virtio_pci.c virtq.c blk.c pattern.c plan.c test_rw.c test_bad.c test_bench.c
GUEST_OBJS := $(addprefix tests/guests/build/,$(addsuffix .o,$(basename $(GUEST_SRCS))))
GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
	-Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,tests/guests/guest.lds \
	-Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

tests/guests/build/%.o: tests/guests/%.c
	@mkdir -p $(@D)
	$(CC) $(GUEST_CFLAGS) -MMD -MP -c -o $@ $<

tests/guests/build/%.o: tests/guests/%.S
	@mkdir -p $(@D)
	$(CC) $(GUEST_CFLAGS) -MMD -MP -c -o $@ $<

$(GUEST_ELF): $(GUEST_OBJS) tests/guests/guest.lds
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

GUEST_HOST_BIN := tests/guests/blkexpect
$(GUEST_HOST_BIN): tests/guests/blkexpect.o tests/guests/pattern.o tests/guests/plan.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

all: $(GUEST_ELF) $(GUEST_HOST_BIN)
TEST_BINS += $(GUEST_ELF) $(GUEST_HOST_BIN)
CLEAN += $(GUEST_ELF) $(GUEST_HOST_BIN)
