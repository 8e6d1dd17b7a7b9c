#!/usr/bin/env bash
# make install into a staging folder, then build and run a program against
# the installed library with pkg-config: the header, libvhd.pc and the
# shared library (which exports the vhd_* API only) work outside the tree.
. "$TOP/tests/functions.sh"
requires make pkg-config cc
make -s -C "$TOP" install DESTDIR="$T/inst" >install.log 2>&1 || { cat install.log; die "make install failed"; }
prefix=$(sed -n 's/^PREFIX = //p' "$TOP/config.mk")
libdir=$(sed -n 's/^LIBDIR = //p' "$TOP/config.mk")
for f in "$prefix/bin/vhdtool" "$prefix/include/libvhd.h" "$libdir/libvhd.so" "$libdir/pkgconfig/libvhd.pc" \
	 "$prefix/share/man/man1/vhdtool.1"; do
	[ -e "$T/inst$f" ] || die "not installed: $f"
done
cat > prog.c <<'C'
#include <stdio.h>
#include <string.h>
#include <libvhd.h>
int main(int argc, char **argv)
{
	struct vhd_create_opts o = { .format = VHD_FMT_VHD, .type = VHD_TYPE_DYNAMIC, .size = 1 << 20 };
	char buf[6] = "";
	vhd_disk *d;
	if (vhd_create(argv[1], &o, &d) < 0 || vhd_pwrite(d, "hello", 5, 1000) != 5 || vhd_close(d) < 0)
		return fprintf(stderr, "%s\n", vhd_errmsg(NULL)), 1;
	if (vhd_open(argv[1], 0, NULL, &d) < 0 || vhd_pread(d, buf, 5, 1000) != 5)
		return fprintf(stderr, "%s\n", vhd_errmsg(NULL)), 1;
	vhd_close(d);
	return strcmp(buf, "hello") != 0;
}
C
export PKG_CONFIG_PATH=$T/inst$libdir/pkgconfig
flags=$(pkg-config --define-prefix --cflags --libs libvhd 2>/dev/null || pkg-config --cflags --libs libvhd)
flags=${flags//$prefix/$T/inst$prefix}
# an instrumented library (./configure --enable-asan) needs an instrumented program
san=$(grep -o -- '-fsanitize=[^ ]*' "$TOP/config.mk" | sort -u | tr '\n' ' ')
cc $san -o prog prog.c -I"$T/inst$prefix/include" -L"$T/inst$libdir" $flags || die "cannot build against the installed library"
LD_LIBRARY_PATH=$T/inst$libdir ./prog made.vhd || die "the program against the installed library failed"
"$VHDTOOL" check -q made.vhd || die "the image made through the installed library does not check"
bad=$(nm -D --defined-only "$T/inst$libdir/libvhd.so" | awk '{print $3}' | grep -v '^vhd_' | grep -v '^_' || true)
[ -z "$bad" ] || die "libvhd.so exports symbols outside vhd_*: $bad"
echo "install ok"
