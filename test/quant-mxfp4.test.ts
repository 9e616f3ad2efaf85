/** OCP MXFP4: E2M1 elements in blocks of 32 with a shared E8M0 scale. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { E2M1_VALUES, decodeE2M1, decodeE8M0, e8m0Code, encodeE2M1, mxfp4Format, mxfp4Matrix, packCodes, quantizeOnDevice, unpackCodes } from '../src/quant/index.js';
import { Rng } from '../src/fuzz/rng.js';
import { testBackends } from './helpers/backends.js';
import { describeFormat, randomWeights } from './helpers/quant.js';
import { errorCode } from './helpers/errors.js';

describeFormat(mxfp4Format, [
  { label: 'ocp', params: {}, shapes: [[8, 64], [5, 100], [3, 33]] },
  { label: 'ocp, full scale words', params: {}, shapes: [[2, 256], [4, 40]] },
]);


/** Nearest E2M1 code of x's sign by brute force; ties to the even code. */
function bruteE2M1(x: number): number {
  let best = -1;
  let bd = Infinity;
  for (let c = 0; c < 16; c++) {
    if ((c >= 8) !== (x < 0 || Object.is(x, -0))) continue;
    const d = Math.abs(decodeE2M1(c) - x);
    if (d < bd || (d === bd && (c & 1) === 0)) {
      best = c;
      bd = d;
    }
  }
  return best;
}

describe('mxfp4 codes', () => {
  it('all 16 E2M1 codes decode to the OCP values and encode back', () => {
    expect(Array.from({ length: 16 }, (_, c) => decodeE2M1(c))).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);
    for (let c = 0; c < 16; c++) expect(encodeE2M1(decodeE2M1(c))).toBe(c);
  });

  it('E2M1 encode is round to nearest, ties to even, saturating at ±6', () => {
    const mids = E2M1_VALUES.slice(1).map((v, i) => (v + E2M1_VALUES[i]!) / 2);
    expect(mids.map(encodeE2M1)).toEqual([0, 2, 2, 4, 4, 6, 6]); // 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4
    for (const m of mids) expect(encodeE2M1(-m)).toBe(bruteE2M1(-m));
    expect(encodeE2M1(7.99)).toBe(7);
    expect(encodeE2M1(-100)).toBe(15);
    fc.assert(
      fc.property(fc.double({ min: -9, max: 9, noNaN: true }), (x) => {
        expect(encodeE2M1(x)).toBe(bruteE2M1(x));
      }),
      { numRuns: 1000 },
    );
  });

  it('E8M0 scale codes: X = floor(log2(absmax)) - 2, clamped, biased by 127', () => {
    expect(e8m0Code(6)).toBe(127); // 6 = 1.5 * 2^2: scale 1
    expect(e8m0Code(4)).toBe(127);
    expect(e8m0Code(3.999)).toBe(126);
    expect(e8m0Code(1)).toBe(125);
    expect(e8m0Code(0)).toBe(0);
    expect(e8m0Code(1e-45)).toBe(0); // clamped at X = -127
    expect(e8m0Code(3.4e38)).toBe(252); // floor(log2) = 127
    for (let e = -120; e <= 120; e++) {
      expect(e8m0Code(2 ** e)).toBe(e - 2 + 127);
      expect(e8m0Code(2 ** e * 1.9999)).toBe(e - 2 + 127);
      expect(e8m0Code(2 ** e * 0.9999)).toBe(e - 3 + 127);
    }
    expect(decodeE8M0(127)).toBe(1);
    expect(decodeE8M0(0)).toBe(2 ** -127);
    expect(decodeE8M0(254)).toBe(2 ** 127);
    expect(Number.isNaN(decodeE8M0(255))).toBe(true);
  });

  it('unpack(pack()) round trips element and scale codes, and dequantize is lut[code] * 2^(e - 127)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 140 }), fc.integer(), (N, K, seed) => {
        const rng = new Rng(seed);
        const G = Math.ceil(K / 32);
        const codes = Uint32Array.from({ length: N * K }, () => rng.int(0, 15));
        const sc = Uint32Array.from({ length: N * G }, () => rng.int(100, 150));
        expect(Array.from(unpackCodes(packCodes(codes, N, K, 4), N, K, 4))).toEqual(Array.from(codes));
        expect(Array.from(unpackCodes(packCodes(sc, N, G, 8), N, G, 8))).toEqual(Array.from(sc));
        const d = mxfp4Format.dequantize(mxfp4Matrix(N, K, codes, sc));
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) expect(d[n * K + k]).toBe(decodeE2M1(codes[n * K + k]!) * 2 ** (sc[n * G + Math.floor(k / 32)]! - 127));
      }),
      { numRuns: 40 },
    );
  });

  it('a block at absmax 7.9 clips to 6 (the spec rule), and a block at absmax 6 is exact', () => {
    const w = new Float32Array(64);
    w[0] = 7.9;
    w[1] = -0.75;
    w[32] = 6;
    w[33] = 2.5;
    const q = mxfp4Format.quantize(w, 1, 64, {});
    const d = mxfp4Format.dequantize(q);
    expect([d[0], d[1], d[32], d[33]]).toEqual([6, -1, 6, 2]);
  });

  it('the DSL quantizer equals the host quantizer bit for bit, over a wide exponent range, on every backend', async () => {
    const N = 4;
    const K = 96;
    const rng = new Rng(3);
    const w = randomWeights(N, K, 9);
    for (let b = 0; b < (N * K) / 32; b++) {
      const e = rng.int(-100, 100); // per-block magnitude; every value stays a normal f32
      for (let j = 0; j < 32; j++) w[b * 32 + j] = Math.fround(w[b * 32 + j]! * 2 ** e);
    }
    // exact ties and saturation inside one block of scale 1 (absmax 6 or 7.5)
    [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 7.5, -0.25, -5, 6, 0].forEach((v, j) => (w[j] = v));
    w.fill(0, 64, 96); // an all-zero block
    const host = mxfp4Format.quantize(w, N, K, {});
    for (const b of await testBackends()) {
      const dev = await quantizeOnDevice(mxfp4Format, b.rt, w, N, K, {});
      expect(Array.from(dev.buffers['scales']!.data), b.name).toEqual(Array.from(host.buffers['scales']!.data));
      expect(Array.from(dev.buffers['codes']!.data), b.name).toEqual(Array.from(host.buffers['codes']!.data));
    }
  });

  it('counts bits per weight: 4.25 plus the two tables', () => {
    const q = mxfp4Format.quantize(new Float32Array(4 * 256), 4, 256, {});
    expect(mxfp4Format.bitsPerWeight(q)).toBeCloseTo(4.25 + (272 * 32) / (4 * 256), 9);
    const r = mxfp4Format.quantize(new Float32Array(3 * 33), 3, 33, {}); // 5 code words, 1 scale word per row
    expect(mxfp4Format.bitsPerWeight(r)).toBeCloseTo((3 * 5 * 32 + 3 * 32 + 272 * 32) / 99, 9);
  });

  it('rejects parameters and mismatched buffers', () => {
    expect(errorCode(() => mxfp4Format.quantize(new Float32Array(64), 1, 64, { block: 16 }))).toBe('E_ARG');
    expect(errorCode(() => mxfp4Format.rtnKernel(1, 64, { bits: 4 }))).toBe('E_ARG');
    expect(errorCode(() => mxfp4Matrix(2, 64, new Uint32Array(128), new Uint32Array(3)))).toBe('E_SHAPE');
    expect(errorCode(() => mxfp4Format.quantize(new Float32Array(64), 0, 64, {}))).toBe('E_SHAPE');
  });
});
