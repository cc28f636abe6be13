# SPDX-License-Identifier: BSD-2-Clause
# test/scripts/lib.sh - what the shell tests share. Sourced (not run) by a
# test after `set -u`:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sets
#   home, bin           the tree, and its C tools (lib/user/bin)
#   tag                 "<pid>-<8 random hex>", for every name the test makes
#                       (the pid alone comes round again within one make
#                       check, and could meet a segment a killed run left)
# and gives
#   skip WHY...         "SKIP: WHY", exit 77 (exit 1 under CI=true: there a
#                       missing tool is a failure)
#   need_cmds CMD...    skip unless every command is installed
#   need_bins BIN...    skip unless every lib/user/bin/BIN is built
#   fail WHY...         "FAIL: WHY", exit 1 (a test may define its own after
#                       sourcing, to print logs first)
#   ts_tmp NAME [DIR]   make the test's temporary folder $tmp (mktemp, in
#                       /tmp or DIR), removed at exit
#   pids+=(PID)         children to stop at exit: SIGCONT + SIGTERM, SIGKILL
#                       (to them and their children) after 5 s, then waited for
#   specs+=(SPEC)       segments to destroy at exit (xseg-tool destroy)
#   ts_at_exit FN       a function of the test's to run first at exit
# The exit trap does all of it on every exit path, failures included; a test
# that sets its own EXIT trap loses it.

home=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$home/lib/user/bin
tag=$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
tmp=
pids=()
specs=()
ts_exit_fns=()

skip() {
  echo "SKIP: $*"
  [ "${CI:-}" = true ] && exit 1
  exit 77
}

fail() {
  echo "FAIL: $*"
  exit 1
}

need_cmds() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || skip "$c not found (tools/install-deps check)"
  done
}

need_bins() {
  local b
  for b in "$@"; do
    [ -x "$bin/$b" ] || skip "$bin/$b is not built (make user)"
  done
}

ts_tmp() {
  tmp=$(mktemp -d "${2:-/tmp}/$1.XXXXXX") || fail "mktemp in ${2:-/tmp}"
}

ts_at_exit() {
  ts_exit_fns+=("$1")
}

ts_cleanup() {
  local f p s alive
  for f in "${ts_exit_fns[@]}"; do "$f"; done
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ -x "$bin/xseg-tool" ]; then
    for s in "${specs[@]}"; do "$bin/xseg-tool" destroy "$s" >/dev/null 2>&1; done
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
  return 0
}
trap ts_cleanup EXIT
