// `npm ci` / `npm install` run this (package.json "install"): builds the CUDA driver addon from the
// root binding.gyp with node-gyp. The addon is only needed to run kernels on an NVIDIA GPU, so on a
// machine without a C++ toolchain the install still succeeds and says what is missing; in CI
// (CI=true) a failed build fails the install, so the build itself stays tested.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const gyp = process.env.npm_config_node_gyp || (() => {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
})();
// Build against the headers of the Node that runs npm (never download them).
const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild'];
if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const r = gyp ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' }) : { status: 1 };
if (r.status === 0) process.exit(0);
const why = gyp ? `node-gyp exited with ${r.status}` : 'node-gyp was not found';
const msg = `tessera: the CUDA driver addon was not built (${why}; it needs g++, make and python3).\n` +
  'tessera: everything works without it except running kernels on an NVIDIA GPU; `npm run build:cuda` retries.';
if (process.env.CI === 'true' || process.env.CI === '1') {
  console.error(msg);
  process.exit(1);
}
console.warn(msg);
