# libvhd: the engine.  Static archive for the in-tree tools and tests, shared
# library (hidden visibility, version script) for installation.
LIBVHD_SRCS := $(wildcard libvhd/*.c)
LIBVHD_OBJS := $(LIBVHD_SRCS:.c=.o)
LIBVHD_A := libvhd/libvhd.a
LIBVHD_SO := libvhd/libvhd.so
LIBVHD_SOVER := 0
LIBVHD_LIBS := $(AIO_LIBS) $(XXHASH_LIBS) -lz -pthread

$(LIBVHD_OBJS): CFLAGS += -fvisibility=hidden

$(LIBVHD_A): $(LIBVHD_OBJS)
	rm -f $@
	ar rcs $@ $^

$(LIBVHD_SO): $(LIBVHD_OBJS) libvhd/libvhd.syms
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libvhd.so.$(LIBVHD_SOVER) \
		-Wl,--version-script=libvhd/libvhd.syms -o $@ $(LIBVHD_OBJS) $(LIBVHD_LIBS)

libvhd/libvhd.pc: libvhd/libvhd.pc.in config.mk
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

CLEAN += $(LIBVHD_A) $(LIBVHD_SO) libvhd/libvhd.pc
