/** Gathered tables (codebooks, decode tables) staged in workgroup memory when they fit. */
import { describe, expect, it } from 'vitest';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { FORMATS, qlinearInputs, qlinearKernel, vptqMatrix, vptqParams, type QuantizedMatrix } from '../src/quant/index.js';
import { testBackends } from './helpers/backends.js';
import { refLinear, worst } from './helpers/quant.js';

function randomVptq(N: number, K: number, v: number, k: number): QuantizedMatrix {
  const R = Math.ceil(N / v);
  const codes = Uint32Array.from({ length: R * K }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 7) % k);
  const cb = Float32Array.from({ length: k * v }, (_, i) => Math.sin(i * 1.3) * 0.1);
  return vptqMatrix(vptqParams({ v, k }), N, K, { codes, cb });
}

const staged = (q: QuantizedMatrix, params = {}) => compile(qlinearKernel(FORMATS[q.format]!, q, 2).program, { params }).kernels[0]!.kernel;

describe('staging gathered tables', () => {
  it('copies a codebook that fits into workgroup memory and gathers from the copy', () => {
    const k = staged(randomVptq(16, 24, 4, 256));
    expect(k.shared.map((s) => [s.name, s.size])).toEqual([['w_cb_wg', 1024]]);
    expect(k.body.some((s) => s.k === 'barrier')).toBe(true);
    expect(k.schedule.params['staged']).toBe(1);
  });

  it('leaves a codebook larger than 16 KiB in global memory, and stage: 0 turns staging off', () => {
    expect(staged(randomVptq(16, 24, 2, 4096)).shared).toEqual([]); // 4096 x 2 f32 = 32 KiB
    expect(staged(randomVptq(16, 24, 4, 256), { stage: 0 }).shared).toEqual([]);
  });

  it('does not stage buffers read at computed (not gathered) indices', () => {
    const q = FORMATS['int']!.quantize(new Float32Array(8 * 40).map((_, i) => Math.cos(i)), 8, 40, { bits: 4, group: 32, symmetric: false });
    expect(staged(q).shared).toEqual([]);
  });

  it('gives the same results staged and unstaged on every backend, split-K included', async () => {
    const [N, K, M] = [13, 37, 3];
    const q = randomVptq(N, K, 4, 64);
    const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.3));
    const want = refLinear(x, FORMATS['vptq']!.dequantize(q), M, N, K);
    for (const { rt } of await testBackends()) {
      for (const params of [{}, { stage: 0 }, { coop: 1, tn: 2, workgroupSize: 8 }]) {
        const out = await execute(compile(qlinearKernel(FORMATS['vptq']!, q, M).program, { params }), rt, qlinearInputs(q, x, M));
        expect(worst(out['out']!.data, want, 1e-4, 1e-4), JSON.stringify(params)).toBeLessThanOrEqual(1);
      }
    }
  });
});
