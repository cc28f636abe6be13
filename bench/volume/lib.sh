# SPDX-License-Identifier: BSD-2-Clause
# bench/volume/lib.sh - what the xseg-bench volume benches share; sourced (not
# run) after setting $bin (lib/user/bin):
#
#   bench_chain NAME SEGSPEC_TAIL   skip (exit 77) unless filed, mapperd, vlmcd,
#                                   xseg-bench and xseg-tool are built; make $tmp
#                                   (in $TMPDIR, /tmp if unset: on tmpfs filed
#                                   serves writes inline, elsewhere on its I/O
#                                   pool) and the segment $spec
#                                   (posix:NAME<pid>-<random>:SEGSPEC_TAIL); start
#                                   filed on port 1 (its pid in $filed, its store
#                                   $tmp/store) and mapperd on port 2
#   bench_bg PROG ARGS...           start lib/user/bin/PROG in the background;
#                                   its pid in $bg, stopped at exit
# The exit trap stops every peer started, destroys the segment, removes $tmp.

pids=()
tmp=
spec=

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$spec" ] && "$bin/xseg-tool" destroy "$spec" >/dev/null 2>&1
  [ -n "$tmp" ] && rm -rf "$tmp"
}
trap bench_cleanup EXIT

bench_bg() {
  local prog=$1
  shift
  "$bin/$prog" "$@" &
  bg=$!
  pids+=("$bg")
}

bench_chain() {
  local b
  for b in filed mapperd vlmcd xseg-bench xseg-tool; do
    [ -x "$bin/$b" ] || { echo "SKIP: $bin/$b is not built (make user)"; exit 77; }
  done
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/xseg-$1-bench.XXXXXX") || exit 1
  spec="posix:$1$$-$RANDOM:$2"
  "$bin/xseg-tool" create "$spec" >/dev/null || exit 1
  mkdir "$tmp/store"
  bench_bg filed -q -g "$spec" -p 1 --dir "$tmp/store"
  filed=$bg
  sleep 0.3
  bench_bg mapperd -q -g "$spec" -p 2 --storage 1
  sleep 0.3
}
