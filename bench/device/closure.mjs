#!/usr/bin/env node
// Prints the node_modules folders (relative to the repository root) that the given packages need at
// run time: the packages and, transitively, their dependencies, optional dependencies and peer
// dependencies as installed on disk (resolved the way Node does, nearest node_modules first).
// bench/device/pack.sh packs exactly these, so bench-only and build-only packages never travel.
//   node bench/device/closure.mjs vitest tsx chevrotain fast-check
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const seen = new Set();
const missing = [];

/** The folder of package `name` as seen from package folder `from` (or the root). */
function find(name, from) {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === dirname(dir)) return undefined;
    dir = dirname(dir);
    // Skip the `node_modules` level itself (and a scope folder) when walking up.
    while (/(^|\/)(node_modules|@[^/]+)$/.test(dir) && dir !== root) dir = dirname(dir);
  }
}

function visit(dir) {
  const rel = relative(root, dir);
  if (seen.has(rel)) return;
  seen.add(rel);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const optional = new Set([...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
  for (const dep of new Set([...Object.keys(pkg.dependencies ?? {}), ...optional])) {
    const at = find(dep, dir);
    if (at) visit(at);
    else if (!optional.has(dep)) missing.push(`${dep} (needed by ${rel})`);
  }
}

const roots = process.argv.slice(2);
if (roots.length === 0) {
  console.error('usage: node bench/device/closure.mjs <package>...');
  process.exit(2);
}
for (const r of roots) {
  const at = find(r, root);
  if (!at) {
    console.error(`closure.mjs: ${r} is not installed (run npm ci)`);
    process.exit(1);
  }
  visit(at);
}
if (missing.length > 0) {
  console.error(`closure.mjs: not installed: ${missing.join(', ')}`);
  process.exit(1);
}
process.stdout.write(`${[...seen].sort().join('\n')}\n`);
