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
