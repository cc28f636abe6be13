#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: tools/ceph/cluster starts although the free port it picked for
# the monitor is taken before the monitor binds it (two fixtures picking the
# same port at the same instant): the port is held by a listener of this
# test and forced as the first try (XSEG_CEPH_TEST_PORT); the cluster must
# come up on another port, usable, and stop. The listener (by pid), the
# cluster and the temporary directory are removed on every exit path.
set -u
home=$(cd "$(dirname "$0")/../.." && pwd)
skip() {
  echo "SKIP: $*"
  [ "${CI:-}" = true ] && exit 1
  exit 77
}
for t in ceph-mon ceph-osd rados python3; do
  command -v $t >/dev/null || skip "$t is not installed (tools/install-deps check)"
done
tmp=$(mktemp -d /tmp/xseg-ceph-port.XXXXXX)
cluster=$tmp/cluster
holder=""
cleanup() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
  [ -d "$cluster" ] && "$home/tools/ceph/cluster" stop "$cluster" --rm
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
fail() { echo "FAIL: $*"; [ -f "$cluster/log/start.log" ] && tail -20 "$cluster/log/start.log"; exit 1; }

# Hold a port on 127.0.0.1 (listening, as a mon of another cluster would).
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True: time.sleep(60)' "$tmp/port" &
holder=$!
for ((i = 0; i < 200; i++)); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port" 2>/dev/null)
[[ $port =~ ^[0-9]+$ ]] || fail "the port holder did not start"

conf=$(XSEG_CEPH_TEST_PORT=$port "$home/tools/ceph/cluster" start "$cluster" --timeout 90) ||
  fail "the cluster did not start when its first port ($port) was taken"
grep -q "^mon host = \[v2:127.0.0.1:$port\]" "$conf" && fail "the mon host is still the taken port $port"
grep -q "port $port: the mon did not come up" "$cluster/log/start.log" || fail "start.log does not say port $port was retried"
echo hello >"$tmp/obj"
rados -c "$conf" -p xseg --rados-osd-op-timeout=10 put probe "$tmp/obj" || fail "the cluster is not writable"
[ "$(rados -c "$conf" -p xseg --rados-osd-op-timeout=10 get probe - 2>/dev/null)" = hello ] || fail "read back differs"
"$home/tools/ceph/cluster" stop "$cluster" --rm || fail "stop failed"
echo "ok: started on another port after $port was taken"
