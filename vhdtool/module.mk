VHDTOOL_SRCS := $(wildcard vhdtool/*.c)
VHDTOOL_OBJS := $(VHDTOOL_SRCS:.c=.o)
BINS += vhdtool/vhdtool

vhdtool/vhdtool: $(VHDTOOL_OBJS) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(VHDTOOL_OBJS) $(LIBVHD_A) $(LIBVHD_LIBS)
