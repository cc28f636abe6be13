#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: the TypeScript of the tree type-checks in strict mode (tsc -p .:
# the library, the peers, the tests, the benchmarks and tsup's config, as
# tsconfig.json includes them). tsup and tsx strip types without checking them,
# so without this test a type error would reach users unseen.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
tsc=$root/node_modules/.bin/tsc
if [ ! -x "$tsc" ]; then
  [ "${CI:-}" = true ] && { echo "FAIL: node_modules/.bin/tsc missing (npm ci)"; exit 1; }
  echo "SKIP: node_modules/.bin/tsc missing (npm ci)"; exit 77
fi
cd "$root" && "$tsc" -p . || { echo "FAIL: tsc -p . found type errors"; exit 1; }
echo "ok tsc -p ."
