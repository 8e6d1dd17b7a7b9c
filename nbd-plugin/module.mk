# nbd-plugin: nbdkit-vhd-plugin.so (libvhd linked in statically).
ifeq ($(HAVE_NBDKIT),1)
NBD_PLUGIN := nbd-plugin/nbdkit-vhd-plugin.so
NBD_PLUGIN_OBJS := nbd-plugin/vhd-plugin.o

nbd-plugin/%.o: CPPFLAGS += $(NBDKIT_CFLAGS)
nbd-plugin/vhd-plugin.o: CFLAGS += -fvisibility=hidden

$(NBD_PLUGIN): $(NBD_PLUGIN_OBJS) $(PT_A) $(LIBVHD_A) nbd-plugin/plugin.syms
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,--version-script=nbd-plugin/plugin.syms \
		-o $@ $(NBD_PLUGIN_OBJS) $(PT_A) $(LIBVHD_A) $(LIBVHD_LIBS)

PLUGINS += $(NBD_PLUGIN)
CLEAN += $(NBD_PLUGIN)
endif
