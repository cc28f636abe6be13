#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the core (xseg/) and the Node addon (sys/node/addon/) use the
# named atomic operations of sys/domain.h (xa_*) and the layout accessors,
# never a raw __atomic_ builtin. xseg/signal_area.h is exempt: it is an
# installed header the drivers share (they keep xq/'s xq_* operations) and
# does not include sys/domain.h. Fails naming each file:line.
# Usage: atomics.sh [tree] (default: this tree).
set -eu
home=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$home"
files=$(ls xseg/*.c xseg/*.h sys/node/addon/*.c sys/node/addon/*.cc sys/node/addon/*.h 2>/dev/null |
	grep -v -x 'xseg/signal_area.h' || true)
[ -n "$files" ] || { echo "no core or addon sources under $home"; exit 1; }
# Comments may name the builtins; code may not.
hits=$(grep -n '__atomic_' $files | grep -v -E ':[0-9]+:[[:space:]]*(/?\*|//)' || true)
if [ -n "$hits" ]; then
  echo "raw __atomic_ builtins (use the xa_* operations of sys/domain.h):"
  echo "$hits"
  exit 1
fi
echo "no raw __atomic_ in $(echo "$files" | wc -l) core and addon files"
