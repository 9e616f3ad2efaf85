/** NF4 (QLoRA / bitsandbytes 4-bit NormalFloat) with an f32 absmax per block and a 16-entry level table. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { NF4_LEVELS, NF4_MIDPOINTS, nf4Code, nf4Format, nf4Matrix, packCodes, quantizeOnDevice, unpackCodes, wordsPerRow } from '../src/quant/index.js';
import { describeFormat } from './helpers/quant.js';
import { errorCode } from './helpers/errors.js';

describeFormat(nf4Format, [
  { label: 'block 64', params: { block: 64 }, shapes: [[8, 64], [5, 100], [3, 33]] },
  { label: 'block 16', params: { block: 16 }, shapes: [[4, 48], [5, 37]] },
  { label: 'per-channel', params: { block: 0 }, shapes: [[6, 40], [3, 33]] },
]);

/** The TesseraError code a call throws. */

describe('nf4 codes', () => {
  it('the level table is bitsandbytes NF4: 16 sorted levels from -1 to 1 with 0 at code 7', () => {
    expect(NF4_LEVELS.length).toBe(16);
    expect(NF4_LEVELS[0]).toBe(-1);
    expect(NF4_LEVELS[7]).toBe(0);
    expect(NF4_LEVELS[15]).toBe(1);
    expect(NF4_LEVELS[1]).toBe(Math.fround(-0.6961928009986877));
    expect(NF4_LEVELS[8]).toBe(Math.fround(0.07958029955625534));
    for (let i = 1; i < 16; i++) expect(NF4_LEVELS[i]!).toBeGreaterThan(NF4_LEVELS[i - 1]!);
    for (const v of NF4_LEVELS) expect(Math.fround(v)).toBe(v);
  });

  it('every level encodes to its own code, and a midpoint tie goes to the lower level (all 16 codes)', () => {
    for (let c = 0; c < 16; c++) expect(nf4Code(NF4_LEVELS[c]!)).toBe(c);
    for (let c = 0; c < 15; c++) expect(nf4Code(NF4_MIDPOINTS[c]!)).toBe(c);
  });

  it('nf4Code picks a nearest level', () => {
    fc.assert(
      fc.property(fc.double({ min: -1, max: 1, noNaN: true }), (x) => {
        const d = Math.abs(NF4_LEVELS[nf4Code(x)]! - x);
        for (const v of NF4_LEVELS) expect(d).toBeLessThanOrEqual(Math.abs(v - x) + 1e-7);
      }),
      { numRuns: 500 },
    );
  });

  it('unpack(pack(codes)) == codes for 4-bit codes and ragged K', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 70 }), fc.integer(), (N, K, seed) => {
        let s = seed >>> 0;
        const codes = Uint32Array.from({ length: N * K }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % 16);
        const words = packCodes(codes, N, K, 4);
        expect(words.length).toBe(N * wordsPerRow(K, 4));
        expect(Array.from(unpackCodes(words, N, K, 4))).toEqual(Array.from(codes));
        const q = nf4Matrix({ block: 16 }, N, K, codes, new Float32Array(N * Math.ceil(K / 16)).fill(2));
        const d = nf4Format.dequantize(q);
        for (let i = 0; i < N * K; i++) expect(d[i]).toBe(2 * NF4_LEVELS[codes[i]!]!);
      }),
      { numRuns: 50 },
    );
  });

  it('the DSL quantizer gives the host codes exactly on levels, midpoints and all-zero blocks', async () => {
    const K = 32;
    const row = [...NF4_LEVELS, ...NF4_MIDPOINTS, 0.5]; // absmax 1: x == w
    const w = Float32Array.from([...row.map((v) => v * 0.25), ...new Array<number>(K).fill(0)]); // 2 rows, block 32
    const host = nf4Format.quantize(w, 2, K, { block: 32 });
    const dev = await quantizeOnDevice(nf4Format, new JSRuntime({ boundsCheck: true }), w, 2, K, { block: 32 });
    expect(Array.from(dev.buffers['codes']!.data)).toEqual(Array.from(host.buffers['codes']!.data));
    expect(Array.from(dev.buffers['absmax']!.data)).toEqual([0.25, 1]);
    expect(Array.from(nf4Format.dequantize(host).slice(K))).toEqual(new Array<number>(K).fill(0));
  });

  it('counts bits per weight: 4-bit codes, an f32 absmax per block and the 16-entry table', () => {
    const q = nf4Format.quantize(new Float32Array(4 * 128), 4, 128, { block: 64 });
    expect(nf4Format.bitsPerWeight(q)).toBeCloseTo(4 + 32 / 64 + (16 * 32) / (4 * 128), 9);
    const r = nf4Format.quantize(new Float32Array(2 * 100), 2, 100, { block: 64 });
    expect(nf4Format.bitsPerWeight(r)).toBeCloseTo((2 * 13 * 32 + 2 * 2 * 32 + 16 * 32) / 200, 9);
  });

  it('rejects bad parameters and mismatched buffers', () => {
    expect(errorCode(() => nf4Format.quantize(new Float32Array(64), 1, 64, { block: -1 }))).toBe('E_ARG');
    expect(errorCode(() => nf4Format.quantize(new Float32Array(64), 1, 64, { block: 1.5 }))).toBe('E_ARG');
    expect(errorCode(() => nf4Format.rtnKernel(1, 64, { block: Number.NaN }))).toBe('E_ARG');
    expect(errorCode(() => nf4Matrix({ block: 32 }, 2, 64, new Uint32Array(128), new Float32Array(3)))).toBe('E_SHAPE');
  });
});
