#!/usr/bin/env node
// The `tessera` command: runs the TypeScript CLI (src/cli/main.ts) through tsx, so there is no build
// step. Both hooks are registered: user files outside an ESM package load as CommonJS TypeScript.
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

register();
registerCjs();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv.slice(2)));
