/** `compile --target js` output: standalone ES modules that run with nothing from Tessera. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { printJSModule } from '../src/backends/js/print.js';
import { evalShape, numel } from '../src/ir/dims.js';
import { compile } from '../src/passes/pipeline.js';
import { hostArrayFor, type HostArray } from '../src/runtime/backend.js';
import { mismatch, reference } from './helpers/compare.js';

type Mod = { run: (bufs: HostArray[], dims: Record<string, number>) => void; bindings: string[] };

describe('standalone JS kernel modules', () => {
  it('run a multi-kernel program with f16, bool and i32 buffers and match the reference', async () => {
    const [M, N] = [D.dim('M'), D.dim('N')];
    const def = D.kernel('mod', { x: D.tensor('f32', [M, N]), h: D.tensor('f16', [N]) }, ({ x, h }) => ({
      y: D.softmax(D.matmul(x, D.transpose(x)).mul(0.1)).cast('f16'),
      big: D.gt(x, h.cast('f32')),
      at: D.argmax(x, 1),
    }));
    const cp = compile(def.program);
    const dir = mkdtempSync(join(tmpdir(), 'tessera-js-'));
    const dims = { M: 5, N: 7 };
    const inputs = {
      x: { shape: [5, 7], data: Float32Array.from({ length: 35 }, (_, i) => Math.sin(i)) },
      h: { shape: [7], data: Float32Array.from({ length: 7 }, (_, i) => Math.cos(i) / 3) },
    };
    const arrays = new Map<string, HostArray>();
    for (const b of cp.buffers) arrays.set(b.name, hostArrayFor(b.dtype, numel(evalShape(b.shape, dims))));
    arrays.get('x')!.set(inputs.x.data);
    arrays.get('h')!.set(inputs.h.data.map((v) => Math.round(v * 1024) / 1024)); // f16-exact values
    for (const [i, k] of cp.kernels.entries()) {
      const file = join(dir, `k${i}.mjs`);
      writeFileSync(file, printJSModule(k.kernel));
      const mod = (await import(pathToFileURL(file).href)) as Mod;
      expect(mod.bindings).toEqual(k.bindings);
      mod.run(k.bindings.map((n) => arrays.get(n)!), dims);
    }
    const ref = reference(def.program, { x: inputs.x, h: { shape: [7], data: arrays.get('h')! } }, {});
    for (const o of cp.program.outputs) expect(mismatch(arrays.get(cp.outputs.get(o.name)!)!, ref[o.name]!, { rtol: 2e-3, atol: 1e-5 }), o.name).toBeNull();
  });
});

describe('the manifest\'s versions, followed by hand', () => {
  it('compile writes every build: the first version whose conditions the dims meet, launched from its files, matches the reference', async () => {
    const { buildManifest } = await import('../src/cli/manifest.js');
    const { writeProgram } = await import('../src/cli/compile-cmd.js');
    const { readFileSync } = await import('node:fs');
    const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
    const def = D.kernel('vers', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w: D.tensor('f32', [K, N]) }, ({ x, g, w }) => D.silu(D.matmul(D.rmsnorm(x, g), w)).add(1));
    const cp = compile(def.program);
    const out = mkdtempSync(join(tmpdir(), 'tessera-vers-'));
    await writeProgram(cp, ['js'], out);
    const dir = join(out, 'vers');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ReturnType<typeof buildManifest>;
    expect(manifest.versions!.map((v) => [v.version, v.when, v.kernelCount])).toEqual([
      ['M=1', { equals: { M: 1 } }, 1],
      ['M%16 K%4 N%4', { multipleOf: { M: 16, K: 4, N: 4 } }, 2],
      ['M%16', { multipleOf: { M: 16 } }, 2],
    ]);
    expect(manifest.kernelCount).toBe(2);
    expect(manifest.conventions['versions']).toMatch(/first entry whose when/);
    // a dim expression of the manifest (`K*M`, `cdiv(N, 8)`) at `dims`
    const at = (e: string, dims: Record<string, number>) =>
      Number(new Function('cdiv', ...Object.keys(dims), `return ${e};`)((a: number, b: number) => Math.ceil(a / b), ...Object.values(dims)));
    for (const [m, n, k] of [[1, 12, 8], [16, 12, 8], [5, 12, 8], [16, 10, 6]] as const) {
      const dims = { M: m, N: n, K: k };
      const build = manifest.versions!.find((v) => Object.entries(v.when.equals ?? {}).every(([d, x]) => dims[d as 'M'] === x) && Object.entries(v.when.multipleOf ?? {}).every(([d, x]) => dims[d as 'M'] % x === 0)) ?? manifest;
      expect('version' in build ? build.version : 'general').toBe(m === 1 ? 'M=1' : m % 16 === 0 ? (n % 4 === 0 && k % 4 === 0 ? 'M%16 K%4 N%4' : 'M%16') : 'general');
      const arrays = new Map<string, HostArray>();
      for (const b of build.buffers) arrays.set(b.name, hostArrayFor(b.dtype, at(b.elements, dims)));
      const inputs = {
        x: { shape: [m, k], data: Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.3)) },
        g: { shape: [k], data: Float32Array.from({ length: k }, (_, i) => 1 + i / 10) },
        w: { shape: [k, n], data: Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7) / 2) },
      };
      for (const i of manifest.inputs) arrays.get(i.buffer)!.set(inputs[i.name as 'x'].data);
      for (const kern of build.kernels) {
        const mod = (await import(pathToFileURL(join(dir, kern.files.js!)).href)) as Mod;
        mod.run(kern.bindings.map((b) => arrays.get(b.buffer)!), dims);
      }
      const ref = reference(def.program, inputs, dims);
      for (const o of build.outputs) expect(mismatch(arrays.get(o.buffer)!, ref[o.name]!, { rtol: 1e-4, atol: 1e-5 }), `${o.name} at ${m}x${n}x${k}`).toBeNull();
    }
  });
});
