# passthrough: host block devices as disk handles (uses libvhd's public API).
PT_SRCS := $(wildcard passthrough/*.c)
PT_OBJS := $(PT_SRCS:.c=.o)
PT_A := passthrough/libpassthrough.a
CPPFLAGS += -Ipassthrough/include

$(PT_A): $(PT_OBJS)
	rm -f $@
	ar rcs $@ $^

CLEAN += $(PT_A)
