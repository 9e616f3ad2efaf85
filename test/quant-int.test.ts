/** Integer group-wise formats (int8 per-channel, int4/int3/int2 group-wise, symmetric and asymmetric). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { intFormat, intMatrix, packCodes, qlinearInputs, qlinearKernel, unpackCodes, wordsPerRow } from '../src/quant/index.js';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { testBackends } from './helpers/backends.js';
import { describeFormat, randomWeights, refLinear, worst } from './helpers/quant.js';

describeFormat(intFormat, [
  { label: 'int8 per-channel symmetric', params: { bits: 8, group: 0, symmetric: true } },
  { label: 'int4 g32 asymmetric', params: { bits: 4, group: 32, symmetric: false }, shapes: [[8, 64], [5, 100], [3, 33]] },
  { label: 'int4 g16 symmetric', params: { bits: 4, group: 16, symmetric: true } },
  { label: 'int3 g32 asymmetric', params: { bits: 3, group: 32, symmetric: false } },
  { label: 'int2 g32 asymmetric', params: { bits: 2, group: 32, symmetric: false } },
]);

describe('int packing', () => {
  it('unpack(pack(codes)) == codes for every width and ragged K', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 70 }), fc.integer(), (bits, N, K, seed) => {
        let s = seed >>> 0;
        const codes = Uint32Array.from({ length: N * K }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % 2 ** bits);
        const words = packCodes(codes, N, K, bits);
        expect(words.length).toBe(N * wordsPerRow(K, bits));
        expect(Array.from(unpackCodes(words, N, K, bits))).toEqual(Array.from(codes));
      }),
      { numRuns: 50 },
    );
  });

  it('rejects codes that do not fit and mismatched scales', () => {
    expect(() => packCodes([16], 1, 1, 4)).toThrow(/^E_ARG: code 16 at \[0, 0\] does not fit in 4 bits/);
    expect(() => intMatrix({ bits: 4, group: 32, symmetric: true }, 2, 64, new Uint32Array(128), new Float32Array(3))).toThrow(/3 scales for \[2, 2\]/);
  });

  it('counts bits per weight with scales and zeros', () => {
    const q = intFormat.quantize(new Float32Array(4 * 128), 4, 128, { bits: 4, group: 32, symmetric: false });
    expect(intFormat.bitsPerWeight(q)).toBeCloseTo(4 + 32 / 32, 6); // f16 scale + f16 zero per 32
  });
});

describe('small-batch GEMM (64 rows)', () => {
  it('int4 g32 and int8 fused linear equal dequantize-then-matmul at M = 64 on every backend, default and split-K schedules', async () => {
    const [N, K, M] = [24, 100, 64];
    const x = Float32Array.from({ length: M * K }, (_, i) => Math.fround(Math.sin(i * 0.13)));
    for (const params of [{ bits: 4, group: 32, symmetric: false }, { bits: 8, group: 0, symmetric: true }]) {
      const q = intFormat.quantize(randomWeights(N, K, 3), N, K, params);
      const want = refLinear(x, intFormat.dequantize(q), M, N, K);
      for (const { name, rt } of await testBackends()) {
        for (const sched of [{}, { coop: 1, tm: 2, tn: 2, workgroupSize: 16 }]) {
          const out = await execute(compile(qlinearKernel(intFormat, q, M).program, { params: sched }), rt, qlinearInputs(q, x, M));
          expect(worst(out['out']!.data, want, 1e-4, 1e-4), `${name} ${params.bits}-bit ${JSON.stringify(sched)}`).toBeLessThanOrEqual(1);
        }
      }
    }
  });
});
