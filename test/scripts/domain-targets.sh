#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: tools/xseg-domain-targets tells the truth about the tree: it
# names every C peer (peers/user/*.c with a main) and test tool, every kernel
# module of the Kbuild files exactly once, and the node CLI apart from the
# node peers; and `make -C peers/user` builds exactly those peers (from
# scratch, into a temporary output directory).
set -eu
home=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/xseg-domain-targets.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "$*"; fail=1; }

"$home/tools/xseg-domain-targets" > "$tmp/table"
for d in user kernel node; do "$home/tools/xseg-domain-targets" $d > "$tmp/$d"; done
cat "$tmp/table"

# No target twice, in the per-domain lists or in the table.
for d in user kernel node; do
  for t in $(sort "$tmp/$d" | uniq -d); do bad "$d: $t listed twice"; done
  row=$(awk -v d="$d" '$1 == d { $1 = ""; $2 = ""; print }' "$tmp/table" | tr ' ' '\n' | sed '/^$/d')
  [ "$(echo "$row" | sort)" = "$(sort "$tmp/$d")" ] || bad "the table's $d row differs from 'xseg-domain-targets $d'"
done

# The C peers: every peers/user/*.c that defines main.
peers=$(cd "$home/peers/user" && grep -l -E '^int main\(' -- *.c | sed 's/\.c$//' | sort)
[ -n "$peers" ] || bad "found no C peer sources in peers/user/"
for p in $peers; do grep -qx "peer/$p" "$tmp/user" || bad "user: peer/$p (peers/user/$p.c) not listed"; done
for t in $(sed -n 's|^peer/||p' "$tmp/user"); do
  [ -e "$home/peers/user/$t.c" ] || bad "user: peer/$t listed but there is no peers/user/$t.c"
done
for f in "$home"/test/tools/*.c; do
  [ -e "$f" ] || continue
  grep -qx "test-tool/$(basename "$f" .c)" "$tmp/user" || bad "user: test-tool/$(basename "$f" .c) not listed"
done

# Every kernel module named by an obj-m line, each exactly once.
mods=$(cd "$home" && cat sys/kernel/Kbuild sys/kernel/*/Kbuild drivers/kernel/*/Kbuild peers/kernel/*/Kbuild 2>/dev/null |
  grep -o -E '^obj-m.*' | grep -o -E '[A-Za-z0-9_-]+\.o' | sed 's/\.o$//' | sort -u)
[ -n "$mods" ] || bad "found no kernel modules in the Kbuild files"
for m in $mods; do
  [ "$(grep -cx "module/$m" "$tmp/kernel")" = 1 ] || bad "kernel: module/$m not listed exactly once"
done

# The node CLI is not a peer.
if [ -e "$home/peers/node/cli/cli.ts" ]; then
  grep -qx "cli/xseg" "$tmp/node" || bad "node: cli/xseg not listed"
  ! grep -qx "peer/cli" "$tmp/node" || bad "node: the CLI is listed as a peer"
fi

# make -C peers/user: builds every listed peer, nothing else, through base.mk.
make -s -j2 -C "$home/peers/user" USER_OUT="$tmp/out" > "$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; bad "make -C peers/user failed"; }
built=$(ls "$tmp/out/bin" 2>/dev/null | sort)
[ "$built" = "$peers" ] || bad "make -C peers/user built [$(echo $built)], expected [$(echo $peers)]"
listed=$(make -s -C "$home/peers/user" list | sort)
[ "$listed" = "$peers" ] || bad "make -C peers/user list printed [$(echo $listed)], expected [$(echo $peers)]"
for p in $peers; do "$tmp/out/bin/$p" --help >/dev/null 2>&1 || [ $? -lt 126 ] || bad "$tmp/out/bin/$p does not run"; done

[ $fail = 0 ] || exit 1
echo "ok: $(echo $peers | wc -w) C peers, $(echo $mods | wc -w) kernel modules, each listed once"
