#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: `make install` into a temporary DESTDIR gives a usable library:
# a program built only against the installed headers and xseg.pc, linked
# once with the shared and once with the static library, creates a segment,
# exchanges a request between two ports and verifies it; the same program
# compiled as C++ (g++) links and runs too (the headers' extern "C"). The
# flags are only `pkg-config --cflags --libs xseg`, with one include root.
set -eu
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not found (tools/install-deps check)"; exit 77; }
home=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/xseg-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make -s -C "$home" install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
cat > "$tmp/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <xseg/xseg.h>
int main(void)
{
	struct xseg_config cfg;
	char err[256];
	int e;
	if (xseg_parse_spec("heap:inst:4:8:4K:0:12", &cfg, err, sizeof(err)) || xseg_create(&cfg, err, sizeof(err)))
		return printf("create: %s\n", err), 1;
	struct xseg *xs = xseg_join("heap", "inst", "futex", NULL, NULL, &e, err, sizeof(err));
	if (!xs || xseg_bind_port(xs, 0, 0) != 0 || xseg_bind_port(xs, 1, 0) != 1)
		return printf("join/bind: %s\n", err), 1;
	struct xseg_request *r = xseg_get_request(xs, 0);
	if (!r || xseg_prep_request(xs, r, "t", 1, 5) || (memcpy(xseg_req_data(xs, r), "hello", 5), 0) ||
	    xseg_submit(xs, r, 1) != 1 || xseg_accept(xs, 1) != r || xseg_respond(xs, r) != 0 ||
	    xseg_receive(xs, 0) != r || memcmp(xseg_req_data(xs, r), "hello", 5) || xseg_put_request(xs, r))
		return printf("request round trip failed\n"), 1;
	if (xseg_verify(xs, NULL, NULL) != 0)
		return printf("verify found problems\n"), 1;
	xseg_destroy(xs);
	xseg_leave(xs);
	printf("ok\n");
	return 0;
}
C
# Compiled with nothing but what pkg-config says (the .pc's prefix is /usr:
# PKG_CONFIG_SYSROOT_DIR resolves it inside DESTDIR).
pc() { PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_LIBDIR="$tmp/root/usr/lib/pkgconfig" pkg-config "$@" xseg; }
cflags=$(pc --cflags) libs=$(pc --libs)
cflags=${cflags% } libs=${libs% }
# One include root: the prefix's include/, under which everything is in xseg/
# (no sys/, xq/ or drivers/ folder beside the system's own headers).
[ "$(echo "$cflags" | tr ' ' '\n' | grep -c '^-I')" = 1 ] || { echo "xseg.pc: Cflags adds more than one include root: $cflags"; exit 1; }
[ "$cflags" = "-I$tmp/root/usr/include" ] || { echo "xseg.pc: the include root is not \${prefix}/include: $cflags"; exit 1; }
[ "$(ls "$tmp/root/usr/include")" = xseg ] || { echo "make install put more than xseg/ in include/: $(ls "$tmp/root/usr/include")"; exit 1; }
if [ -n "$(find "$tmp/root/usr/include/xseg" -mindepth 1 -type d)" ]; then
  echo "include/xseg/ has sub-folders (an #include must not need a second root)"; exit 1
fi
cc -std=c11 -Wall -Werror $cflags -o "$tmp/prog-shared" "$tmp/prog.c" $libs
LD_LIBRARY_PATH="$tmp/root/usr/lib" "$tmp/prog-shared"
cc -std=c11 -Wall -Werror $cflags -o "$tmp/prog-static" "$tmp/prog.c" "$tmp/root/usr/lib/libxseg.a" -lrt -ldl -lpthread
"$tmp/prog-static"
# C++: without extern "C" in the headers the calls are mangled and do not link.
if command -v g++ >/dev/null; then
  g++ -x c++ -std=c++11 -Wall -Wextra -Werror $cflags -o "$tmp/prog-cxx" "$tmp/prog.c" $libs
  LD_LIBRARY_PATH="$tmp/root/usr/lib" "$tmp/prog-cxx"
else
  echo "g++ not found: the C++ check is not run"; [ "${CI:-}" != true ] || exit 1
fi
# Only the public interface is exported.
if nm -D --defined-only "$tmp/root/usr/lib/libxseg.so" | grep -q ' xseg__'; then
  echo "internal xseg__ symbols are exported"; exit 1
fi
test -x "$tmp/root/usr/bin/xseg-tool" && test -x "$tmp/root/usr/bin/patternd"
# xseg-corrupt is a test tool (test/tools/): built for the tests, never installed.
if [ -e "$tmp/root/usr/bin/xseg-corrupt" ]; then echo "make install installed the test tool xseg-corrupt"; exit 1; fi
