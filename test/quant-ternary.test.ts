/** Ternary (BitNet b1.58 absmean) weights: 2-bit codes {-1, 0, 1} + 1 and one f32 scale (or one per group). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { TERNARY_EPS, packCodes, quantizeOnDevice, ternaryCode, ternaryFormat, ternaryMatrix, unpackCodes, wordsPerRow } from '../src/quant/index.js';
import { describeFormat, randomWeights } from './helpers/quant.js';
import { errorCode } from './helpers/errors.js';

describeFormat(ternaryFormat, [
  { label: 'per-tensor', params: { group: 0 }, shapes: [[8, 64], [5, 100], [3, 33]] },
  { label: 'group 32', params: { group: 32 }, shapes: [[4, 64], [5, 100], [3, 33]] },
]);


describe('ternary codes', () => {
  it('RoundClip(x, -1, 1) + 1 with round half to even: every code and the ties', () => {
    expect([-3, -1, -0.51, -0.5, -0.1, 0, 0.1, 0.5, 0.51, 1, 1.5, 7].map(ternaryCode)).toEqual([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    fc.assert(
      fc.property(fc.double({ min: -4, max: 4, noNaN: true }), (x) => {
        const want = Math.min(1, Math.max(-1, Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x))); // torch.round, then clip
        expect(ternaryCode(x) - 1).toBe(want === 0 ? 0 : want); // -0 == 0
      }),
      { numRuns: 500 },
    );
  });

  it('scale = mean|W| + eps over the whole matrix, codes from w / scale', () => {
    const w = Float32Array.from([0.08, -0.3, 0.02, 0.5, -0.05, 0.13]);
    const q = ternaryFormat.quantize(w, 2, 3, { group: 0 });
    const mean = (0.08 + 0.3 + 0.02 + 0.5 + 0.05 + 0.13) / 6; // 0.18: x = 0.44, -1.67, 0.11, 2.78, -0.28, 0.72
    const s = q.buffers['scale']!.data[0]!;
    expect(s).toBeCloseTo(mean + TERNARY_EPS, 6);
    expect(q.buffers['scale']!.shape).toEqual([1]);
    expect(Array.from(unpackCodes(q.buffers['codes']!.data as Uint32Array, 2, 3, 2))).toEqual([1, 0, 1, 2, 1, 2]);
    expect(Array.from(ternaryFormat.dequantize(q))).toEqual([0, -s, 0, s, 0, s]);
  });

  it('unpack(pack(codes)) == codes for 2-bit codes and ragged K; dequantize is (code - 1) * scale', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 70 }), fc.integer(), fc.double({ min: 0.001, max: 10, noNaN: true }), (N, K, seed, sc) => {
        let s = seed >>> 0;
        const codes = Uint32Array.from({ length: N * K }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % 3);
        const words = packCodes(codes, N, K, 2);
        expect(words.length).toBe(N * wordsPerRow(K, 2));
        expect(Array.from(unpackCodes(words, N, K, 2))).toEqual(Array.from(codes));
        const scale = Math.fround(sc);
        const d = ternaryFormat.dequantize(ternaryMatrix({ group: 0 }, N, K, codes, [scale]));
        for (let i = 0; i < N * K; i++) expect(d[i]).toBe((codes[i]! - 1) * scale);
      }),
      { numRuns: 50 },
    );
  });

  it('the DSL quantizer gives the host codes and scale (per-tensor and grouped)', async () => {
    const js = new JSRuntime({ boundsCheck: true });
    for (const group of [0, 16]) {
      const [N, K] = [6, 45];
      const w = randomWeights(N, K, 31);
      const host = ternaryFormat.quantize(w, N, K, { group });
      const dev = await quantizeOnDevice(ternaryFormat, js, w, N, K, { group });
      expect(dev.buffers['scale']!.shape).toEqual(host.buffers['scale']!.shape);
      const hs = host.buffers['scale']!.data;
      const ds = dev.buffers['scale']!.data;
      for (let i = 0; i < hs.length; i++) expect(Math.abs(ds[i]! - hs[i]!)).toBeLessThanOrEqual(1e-6 * hs[i]!);
      expect(Array.from(dev.buffers['codes']!.data)).toEqual(Array.from(host.buffers['codes']!.data));
    }
  });

  it('counts bits per weight: 2-bit codes plus one f32 scale (per tensor or per group)', () => {
    const q = ternaryFormat.quantize(randomWeights(4, 128, 1), 4, 128, { group: 0 });
    expect(ternaryFormat.bitsPerWeight(q)).toBeCloseTo(2 + 32 / (4 * 128), 9);
    const g = ternaryFormat.quantize(randomWeights(4, 128, 1), 4, 128, { group: 64 });
    expect(ternaryFormat.bitsPerWeight(g)).toBeCloseTo(2 + 32 / 64, 9);
    const r = ternaryFormat.quantize(randomWeights(3, 33, 1), 3, 33, { group: 0 }); // 3 words per row
    expect(ternaryFormat.bitsPerWeight(r)).toBeCloseTo((3 * 3 * 32 + 32) / 99, 9);
  });

  it('rejects bad parameters and bad buffers', () => {
    const w = new Float32Array(64);
    expect(errorCode(() => ternaryFormat.quantize(w, 1, 64, { group: -1 }))).toBe('E_ARG');
    expect(errorCode(() => ternaryFormat.rtnKernel(1, 64, { group: 0.5 }))).toBe('E_ARG');
    expect(errorCode(() => ternaryMatrix({ group: 0 }, 1, 4, [0, 1, 3, 2], [1]))).toBe('E_ARG');
    expect(errorCode(() => ternaryMatrix({ group: 0 }, 1, 4, [0, 1, 2, 2], [1, 2]))).toBe('E_SHAPE');
    expect(errorCode(() => ternaryMatrix({ group: 2 }, 2, 4, [0, 1, 2, 2, 0, 1, 2, 2], [1, 2]))).toBe('E_SHAPE');
  });
});
