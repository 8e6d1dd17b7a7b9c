# vhdkit -- one non-recursive Makefile; each folder adds a module.mk.
# Run ./configure first (it writes config.mk and config.h).

ifeq ($(wildcard config.mk),)
$(error config.mk is missing: run ./configure first (./configure --install-deps on a fresh machine))
endif
include config.mk

.DEFAULT_GOAL := all
.PHONY: all check demo install clean bench check-layering fuzz

CPPFLAGS += -I. -Ilibvhd/include
BUILD_CFLAGS = $(CFLAGS) $(CPPFLAGS) -MMD -MP

BINS :=
PLUGINS :=
TEST_BINS :=
CLEAN :=

%.o: %.c config.h
	$(CC) $(BUILD_CFLAGS) -fPIC -c -o $@ $<

include libvhd/module.mk
include passthrough/module.mk
include vhdtool/module.mk
include nbd-plugin/module.mk
include hvcore/module.mk
include tests/module.mk
include bench/module.mk

all: $(LIBVHD_A) $(LIBVHD_SO) $(PT_A) $(BINS) $(PLUGINS) libvhd/libvhd.pc

check: all $(TEST_BINS)
	@tests/run-tests.sh

demo: all
	@tests/demo.sh

bench: all $(BENCH_BINS)
	@bench/run.sh

# No module includes a sibling's private headers: libvhd only its own files;
# front ends only public headers (libvhd/include).
check-layering:
	@! grep -n '#include "\.\./' $$(git ls-files '*.c' '*.h') || \
		{ echo "layering: relative includes across folders"; exit 1; }
	@! grep -ln '#include "\(disk\|vhd_image\|vhd_codec\|io\)\.h"' vhdtool/*.c || \
		{ echo "layering: vhdtool includes libvhd internals"; exit 1; }
	@! grep -ln '#include "\(disk\|vhd_image\|vhd_codec\|io\|pt_internal\)\.h"' hvcore/*.[ch] || \
		{ echo "layering: hvcore includes libvhd or passthrough internals"; exit 1; }
	@echo "layering ok"

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(LIBVHD_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIBVHD_SO) $(DESTDIR)$(LIBDIR)/libvhd.so.$(LIBVHD_SOVER)
	ln -sf libvhd.so.$(LIBVHD_SOVER) $(DESTDIR)$(LIBDIR)/libvhd.so
	install -m 644 libvhd/include/libvhd.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 libvhd/libvhd.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 644 man/vhdtool.1 man/hvcore.1 $(DESTDIR)$(MANDIR)/man1/
ifeq ($(HAVE_NBDKIT),1)
	install -d $(DESTDIR)$(NBDKIT_PLUGINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(NBD_PLUGIN) $(DESTDIR)$(NBDKIT_PLUGINDIR)/
	install -m 644 man/nbdkit-vhd-plugin.1 $(DESTDIR)$(MANDIR)/man1/
endif

clean:
	rm -f $(CLEAN) $(BINS) $(TEST_BINS)
	find . -name '*.o' -o -name '*.d' | xargs rm -f
	rm -rf tests/tmp

-include $(shell find . -name '*.d' 2>/dev/null)
