// SPDX-License-Identifier: BSD-2-Clause
// The node domain's TypeScript build, into lib/node/ (git-ignored; shipped
// by npm pack): the library as dual ESM (.mjs) / CommonJS (.js) with type
// declarations, and the `xseg` command (CommonJS, the package's bin).
import { defineConfig, type Options } from 'tsup'

const common: Options = {
  outDir: 'lib/node',
  target: 'node20',
  platform: 'node',
  shims: true,
  sourcemap: false,
  clean: false, // lib/node/README stays
  splitting: false,
  external: ['node-gyp-build'],
}

export default defineConfig([
  { ...common, entry: { index: 'sys/node/ts/index.ts' }, format: ['esm', 'cjs'], dts: true },
  { ...common, entry: { cli: 'peers/node/cli/cli.ts' }, format: ['cjs'] },
])
