VHDTOOL_SRCS := $(wildcard vhdtool/*.c)
VHDTOOL_OBJS := $(VHDTOOL_SRCS:.c=.o)
BINS += vhdtool/vhdtool

vhdtool/cmd_mount.o: CPPFLAGS += $(FUSE3_CFLAGS)

vhdtool/vhdtool: $(VHDTOOL_OBJS) $(PT_A) $(LIBVHD_A)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(VHDTOOL_OBJS) $(PT_A) $(LIBVHD_A) $(FUSE3_LIBS) $(LIBVHD_LIBS)
