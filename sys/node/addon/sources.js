// SPDX-License-Identifier: BSD-2-Clause
// sys/node/addon/sources.js - the C sources of the node domain, for binding.gyp.
//
// The addon compiles the user domain's files (base.mk: xq/, xseg/, sys/user/,
// segtypes/, sys/user/segtypes/) and, of drivers/user/, the drivers that the node
// domain's list of built-ins names (sys/node/builtins.h: posixfd, futex and
// segdev, not posix, whose SIGIO handler has no place in a Node process). binding.gyp
// defines XSEG_DOMAIN_NODE, which selects that list (xseg/registry.c) and
// turns off the loading of xseg_<name>.so (sys/user/loader.c). Prints one
// path per line, relative to the root.
'use strict'
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..', '..', '..')
const dirs = ['xq', 'xseg', 'sys/user', 'sys/user/segtypes']
const out = []

for (const d of dirs) {
  for (const f of fs.readdirSync(path.join(root, d)).sort()) {
    if (f.endsWith('.c')) out.push(`${d}/${f}`)
  }
}
const list = fs.readFileSync(path.join(root, 'sys/node/builtins.h'), 'utf8')
const drivers = [...list.matchAll(/^XSEG_BUILTIN_DRIVER\((\w+)\)/gm)].map((m) => m[1])
if (drivers.length === 0) throw new Error('sys/node/builtins.h lists no driver')
for (const n of drivers) {
  const f = `drivers/user/${n}.c`
  if (!fs.existsSync(path.join(root, f))) throw new Error(`sys/node/builtins.h: driver '${n}' has no ${f}`)
  out.push(f)
}
process.stdout.write(out.join('\n') + '\n')
