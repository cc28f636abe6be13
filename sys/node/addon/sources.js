// SPDX-License-Identifier: BSD-2-Clause
// sys/node/addon/sources.js - the C sources of the node domain, for binding.gyp.
//
// The addon compiles the same files as the user domain (base.mk: xq/, xseg/,
// sys/user/, drivers/user/) with two exceptions, both replaced by
// sys/node/registry_node.c: sys/user/registry_user.c (built-ins and the .so
// loader) and drivers/user/posix.c (SIGIO: a process-wide signal handler has
// no place in a Node process). Prints one path per line, relative to the root.
'use strict'
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..', '..', '..')
const dirs = ['xq', 'xseg', 'sys/user', 'drivers/user']
const excluded = new Set(['sys/user/registry_user.c', 'drivers/user/posix.c'])
const out = ['sys/node/registry_node.c']

for (const d of dirs) {
  for (const f of fs.readdirSync(path.join(root, d)).sort()) {
    const rel = `${d}/${f}`
    if (f.endsWith('.c') && !excluded.has(rel)) out.push(rel)
  }
}
process.stdout.write(out.join('\n') + '\n')
