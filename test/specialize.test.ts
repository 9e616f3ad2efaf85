/** Programs compiled for known dims: constants in the kernels, clamps gone, dispatch checked. */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const mm = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]), c: D.tensor('f32', [N]) }, ({ a, b, c }) => D.matmul(a, b).add(c).relu());
const inputs = (m: number, n: number, k: number) => ({
  a: { shape: [m, k], data: Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37)) },
  b: { shape: [k, n], data: Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.21)) },
  c: { shape: [n], data: Float32Array.from({ length: n }, (_, i) => i * 0.01 - 0.1) },
});

describe('specialized compiles', () => {
  it('match the reference on every backend for every matmul schedule, at dims that divide the tiles and dims that do not', async () => {
    const variants = [{}, { vec: 4, tm: 4, tn: 8 }, { vec: 4, tm: 2, tn: 4, constDims: 0 }, { tm: 3, tn: 5 }, { coop: 1, tn: 2, workgroupSize: 8 }, { tiled: 1, tm: 2, tn: 2, wm: 4, wn: 4, bk: 4 }];
    for (const { name, rt } of await testBackends()) {
      for (const [m, n, k] of [[8, 16, 12], [7, 13, 9]] as const) {
        for (const params of variants) {
          const cp = compile(mm.program, { specialize: { M: m, N: n, K: k }, params });
          expect(await checkOnBackend(cp, rt, inputs(m, n, k), { rtol: 1e-4, atol: 1e-5 }), `${name} ${m}x${n}x${k} ${JSON.stringify(params)}`).toBeNull();
        }
      }
    }
  });

  it('use the dims as constants: no uniforms for them, and no clamps where tiles divide the matrix', () => {
    const cp = compile(mm.program, { specialize: { M: 8, N: 16, K: 12 } });
    const k = cp.kernels[0]!.kernel;
    expect(k.uniforms).toEqual([]);
    expect(printKernel(k)).not.toMatch(/min\(/);
    expect(cp.specialized).toEqual({ M: 8, N: 16, K: 12 });
    expect(compile(mm.program, { specialize: { M: 8 } }).kernels[0]!.kernel.uniforms).toEqual(['K', 'N']);
    // constDims: 0 keeps this kernel's dims uniforms; the program is still specialized (checked at dispatch)
    const kept = compile(mm.program, { specialize: { M: 8, N: 16, K: 12 }, params: { constDims: 0 } });
    expect(kept.kernels[0]!.kernel.uniforms).toEqual(['K', 'M', 'N']);
    expect(kept.specialized).toEqual({ M: 8, N: 16, K: 12 });
  });

  it('refuse other dims at dispatch and unknown dims at compile time', async () => {
    const cp = compile(mm.program, { specialize: { M: 8, N: 16, K: 12 } });
    const { rt } = (await testBackends())[0]!;
    await expect(execute(cp, rt, inputs(4, 16, 12))).rejects.toThrow(/compiled for M = 8 \(specialize\) but is called with M = 4/);
    expect(() => compile(mm.program, { specialize: { Q: 3 } })).toThrow(/E_ARG: specialize: program 'mm' has no dim 'Q'/);
    expect(() => compile(mm.program, { specialize: { M: 0 } })).toThrow(/positive integer/);
  });

  it('a vec4 matmul over constant dims accumulates before it stores (the vector path known to apply at compile time)', async () => {
    const fixed = D.kernel('fixed', { a: D.tensor('f32', [8, 12]), b: D.tensor('f32', [12, 16]), c: D.tensor('f32', [16]) }, ({ a, b, c }) => D.matmul(a, b).add(c).relu());
    const cp = compile(fixed.program, { params: { vec: 4, tm: 4, tn: 8 } });
    for (const { name, rt } of await testBackends()) expect(await checkOnBackend(cp, rt, inputs(8, 16, 12), { rtol: 1e-4, atol: 1e-5 }), name).toBeNull();
  });
});
