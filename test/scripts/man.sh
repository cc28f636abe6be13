#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the manual pages and make uninstall. `make install` into a
# temporary prefix puts xseg(1), xseg-tool(1), nbdkit-xseg-plugin(1),
# libxseg(3), blockd(8), filed(8), mapperd(8), vlmcd(8) and radosd(8) under
# share/man/man<section>/; each
# renders without a warning (man --warnings -l at 80 columns, groff -ww) and
# names every long option its program's --help lists; libxseg(3)'s example
# compiles against the installed headers. Then `make uninstall`
# leaves the prefix exactly as it was: every file and folder that was there
# before (foreign files in the folders install shares with other packages
# included) and nothing else.
set -eu
home=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*"; [ "${CI:-}" = true ] && exit 1; exit 77; }
for t in man groff; do command -v "$t" >/dev/null || skip "$t not found (tools/install-deps check)"; done
tmp=$(mktemp -d /tmp/xseg-man.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A prefix as a real one looks: the shared folders install writes to exist
# (learnt from an install into a scratch prefix: every folder not named xseg),
# with a file of another package in each.
make -s -C "$home" install DESTDIR="$tmp/scratch" PREFIX=/usr >/dev/null
( cd "$tmp/scratch" && find . -type d ! -path '*xseg*' ) | while read -r d; do
  mkdir -p "$tmp/root/$d"
  [ "$d" = . ] || echo other > "$tmp/root/$d/other-package.file"
done
snap() { ( cd "$tmp/root" && find . -printf '%y %m %p\n' | sort ); }
snap > "$tmp/before"

make -s -C "$home" install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
mandir=$tmp/root/usr/share/man
for page in xseg.1 xseg-tool.1 nbdkit-xseg-plugin.1 libxseg.3 blockd.8 filed.8 mapperd.8 vlmcd.8 radosd.8; do
  f=$mandir/man${page##*.}/$page
  [ -f "$f" ] || fail "make install did not install $page (looked for ${f#"$tmp/root"})"
  w=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null) || fail "man -l $page failed: $w"
  [ -z "$w" ] || fail "man --warnings -l $page: $w"
  w=$(groff -ww -z -man "$f" 2>&1) || fail "groff $page failed: $w"
  [ -z "$w" ] || fail "groff -ww $page: $w"
  MANWIDTH=80 man -l "$f" 2>/dev/null | grep -q '^NAME' || fail "$page renders without a NAME section"
done

# Every long option a C program's --help lists is in its page.
for pair in blockd:blockd.8 filed:filed.8 mapperd:mapperd.8 vlmcd:vlmcd.8 radosd:radosd.8 xseg-tool:xseg-tool.1; do
  prog=${pair%%:*} page=${pair#*:}
  src=$(sed 's/\\-/-/g' "$home/docs/man/$page")
  opts=$("$home/lib/user/bin/$prog" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u) || true
  [ -n "$opts" ] || fail "$prog --help lists no long options"
  for o in $opts; do
    grep -q -- "$o" <<<"$src" || fail "$page does not mention $o (from $prog --help)"
  done
done

# libxseg(3)'s example program compiles against the installed headers with
# nothing but pkg-config's flags (the page keeps up with the API).
awk '/^\.EX/ { ex = 1; buf = ""; next } /^\.EE/ { if (buf ~ /#include <xseg\/xseg.h>/) printf "%s", buf; ex = 0; next }
     ex { buf = buf $0 "\n" }' "$mandir/man3/libxseg.3" |
  sed -e 's/\\e/\\/g' -e 's/\\-/-/g' > "$tmp/example.c"
[ -s "$tmp/example.c" ] || fail "libxseg.3 has no example program"
if command -v pkg-config >/dev/null; then
  flags=$(PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_LIBDIR="$tmp/root/usr/lib/pkgconfig" pkg-config --cflags --libs xseg)
  cc -std=c11 -Wall -Werror -o "$tmp/example" "$tmp/example.c" $flags ||
    fail "the example of libxseg(3) does not compile against the installed headers"
fi

make -s -C "$home" uninstall DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
snap > "$tmp/after"
if ! diff -u "$tmp/before" "$tmp/after" > "$tmp/diff"; then
  cat "$tmp/diff"
  fail "make uninstall did not leave the prefix as it was (- before, + after)"
fi
echo "ok: 6 pages render without warnings; uninstall restored $(wc -l < "$tmp/before") entries exactly"
