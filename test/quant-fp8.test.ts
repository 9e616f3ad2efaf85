/** FP8 E4M3 / E5M2 weights with a per-block f32 scale and a 256-entry decode table. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compute } from '../src/dsl/compute.js';
import { kernel, tensor } from '../src/dsl/kernel.js';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { FP8, FP8_NAN, decodeFp8, encodeFp8, encodeFp8Expr, fp8Format, fp8Matrix, packCodes, unpackCodes, wordsPerRow, type Fp8Variant } from '../src/quant/index.js';
import { Rng } from '../src/fuzz/rng.js';
import { testBackends } from './helpers/backends.js';
import { describeFormat } from './helpers/quant.js';
import { errorCode } from './helpers/errors.js';

const SHAPES: readonly (readonly [number, number])[] = [[8, 64], [5, 100], [3, 33]];
describeFormat(fp8Format, [
  { label: 'e4m3 block 32', params: { variant: 'e4m3', block: 32 }, shapes: SHAPES },
  { label: 'e5m2 block 32', params: { variant: 'e5m2', block: 32 }, shapes: SHAPES },
  { label: 'e4m3 per-channel', params: { variant: 'e4m3', block: 0 }, shapes: [[6, 40], [5, 37]] },
]);

const VARIANTS: readonly Fp8Variant[] = ['e4m3', 'e5m2'];


/** Nearest finite code of x's sign by brute force over all 256 codes; ties to the even code (even mantissa). */
function bruteEncode(x: number, v: Fp8Variant): number {
  let best = -1;
  let bd = Infinity;
  for (let c = 0; c < 256; c++) {
    const d = decodeFp8(c, v);
    if (!Number.isFinite(d) || (c >= 0x80) !== (x < 0 || Object.is(x, -0))) continue;
    const dist = Math.abs(d - x);
    if (dist < bd || (dist === bd && (c & 1) === 0)) {
      best = c;
      bd = dist;
    }
  }
  return best;
}

/** Finite non-negative values of a variant, ascending (codes 0x00 up to max). */
const positives = (v: Fp8Variant): number[] => Array.from({ length: 128 }, (_, c) => decodeFp8(c, v)).filter(Number.isFinite);

describe.each(VARIANTS.map((v) => [v] as const))('fp8 %s codec', (v) => {
  const { mbits, emin, max } = FP8[v];

  it('decodes the landmark codes', () => {
    expect(decodeFp8(0x00, v)).toBe(0);
    expect(Object.is(decodeFp8(0x80, v), -0)).toBe(true);
    expect(decodeFp8(0x01, v)).toBe(2 ** (emin - mbits)); // smallest subnormal
    expect(decodeFp8(1 << mbits, v)).toBe(2 ** emin); // smallest normal
    expect(decodeFp8(v === 'e4m3' ? 0x7e : 0x7b, v)).toBe(max);
    expect(decodeFp8(v === 'e4m3' ? 0xfe : 0xfb, v)).toBe(-max);
    expect(Number.isNaN(decodeFp8(FP8_NAN, v))).toBe(true);
    if (v === 'e5m2') {
      expect(decodeFp8(0x7c, v)).toBe(Infinity);
      expect(decodeFp8(0xfc, v)).toBe(-Infinity);
    }
  });

  it('all 256 codes: NaN count, monotone magnitudes, and encode(decode(c)) == c for every non-NaN code', () => {
    let nans = 0;
    let prev = -1;
    for (let c = 0; c < 256; c++) {
      const d = decodeFp8(c, v);
      if (Number.isNaN(d)) {
        nans++;
        expect(encodeFp8(d, v)).toBe(FP8_NAN);
        continue;
      }
      expect(encodeFp8(d, v), `code 0x${c.toString(16)} = ${d}`).toBe(c);
      if (c < 0x80) {
        expect(d).toBeGreaterThan(prev);
        prev = d;
      } else expect(d).toBe(-decodeFp8(c & 0x7f, v));
    }
    expect(nans).toBe(v === 'e4m3' ? 2 : 6);
    expect(positives(v).length).toBe(v === 'e4m3' ? 127 : 124);
  });

  it('encode matches a brute-force nearest search (random values, subnormals, exact ties, overflow)', () => {
    const pos = positives(v);
    const mids = pos.slice(1).map((x, i) => (x + pos[i]!) / 2);
    for (const m of mids) {
      expect(encodeFp8(m, v)).toBe(bruteEncode(m, v));
      expect(encodeFp8(-m, v)).toBe(bruteEncode(-m, v));
    }
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: emin - mbits - 3, max: Math.ceil(Math.log2(max)) + 2 }), fc.boolean(), (u, k, neg) => {
        const x = (neg ? -1 : 1) * u * 2 ** k;
        expect(encodeFp8(x, v)).toBe(bruteEncode(x, v));
      }),
      { numRuns: 2000 },
    );
    expect(encodeFp8(max * 1.06, v)).toBe(v === 'e4m3' ? 0x7e : 0x7b); // saturates
    expect(encodeFp8(-1e30, v)).toBe(v === 'e4m3' ? 0xfe : 0xfb);
    expect(encodeFp8(Infinity, v)).toBe(v === 'e4m3' ? 0x7e : 0x7c);
  });

  it('the DSL encoder equals encodeFp8 bit for bit on every backend', async () => {
    const pos = positives(v);
    const xs: number[] = [];
    for (const [i, p] of pos.entries()) {
      xs.push(p, -p);
      if (i + 1 < pos.length) xs.push((p + pos[i + 1]!) / 2, -(p + pos[i + 1]!) / 2, Math.fround(p * 1.01), Math.fround(p * 0.99));
    }
    xs.push(Math.fround(max * 1.03), -max * 4, max * 1000);
    const rng = new Rng(7);
    for (let i = 0; i < 400; i++) xs.push(Math.fround(rng.uniform(-1, 1) * 2 ** rng.int(emin - 1, Math.ceil(Math.log2(max)))));
    const data = Float32Array.from(xs);
    expect(Array.from(data)).toEqual(xs); // all exact f32 values
    const L = data.length;
    const def = kernel(`enc_${v}`, { x: tensor('f32', [L]) }, ({ x }) => compute([L], (i) => encodeFp8Expr(x.at(i), v)));
    // the device takes the sign from x < 0, so -0 encodes as +0 there (quantize() does the same on the host)
    const want = xs.map((x) => encodeFp8(x === 0 ? 0 : x, v));
    for (const b of await testBackends()) {
      const out = await execute(compile(def.program), b.rt, { x: { shape: [L], data } });
      const got = Array.from(out['out']!.data);
      const bad = got.flatMap((c, i) => (c === want[i] ? [] : [`${xs[i]}: ${c} != ${want[i]}`]));
      expect(bad, b.name).toEqual([]);
    }
  });
});

describe('fp8 format', () => {
  it('unpack(pack(codes)) == codes for byte codes and ragged K', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 70 }), fc.integer(), (N, K, seed) => {
        let s = seed >>> 0;
        const codes = Uint32Array.from({ length: N * K }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % 256);
        const words = packCodes(codes, N, K, 8);
        expect(words.length).toBe(N * wordsPerRow(K, 8));
        expect(Array.from(unpackCodes(words, N, K, 8))).toEqual(Array.from(codes));
      }),
      { numRuns: 50 },
    );
  });

  it('dequantize reads the table: each of the 256 codes times its block scale', () => {
    for (const v of VARIANTS) {
      const codes = Array.from({ length: 256 }, (_, c) => c);
      const q = fp8Matrix({ variant: v, block: 64 }, 2, 128, codes, [1, 2, 3, 4]);
      const d = fp8Format.dequantize(q);
      for (let c = 0; c < 256; c++) {
        const want = decodeFp8(c, v) * [1, 2, 3, 4][Math.floor(c / 64)]!;
        if (Number.isNaN(want)) expect(Number.isNaN(d[c]!)).toBe(true);
        else expect(d[c]).toBe(want);
      }
    }
  });

  it('a block maximum encodes to ±max finite', () => {
    for (const v of VARIANTS) {
      const w = Float32Array.from([0.3, -1.7, 0.01, 0.5]);
      const q = fp8Format.quantize(w, 1, 4, { variant: v, block: 0 });
      expect(unpackCodes(q.buffers['codes']!.data as Uint32Array, 1, 4, 8)[1]).toBe(v === 'e4m3' ? 0xfe : 0xfb);
      expect(q.buffers['scales']!.data[0]).toBe(Math.fround(1.7 / FP8[v].max));
    }
  });

  it('counts bits per weight: byte codes, an f32 scale per block and the 256-entry table', () => {
    const q = fp8Format.quantize(new Float32Array(4 * 256), 4, 256, { variant: 'e4m3', block: 128 });
    expect(fp8Format.bitsPerWeight(q)).toBeCloseTo(8 + 32 / 128 + (256 * 32) / (4 * 256), 9);
    const r = fp8Format.quantize(new Float32Array(3 * 33), 3, 33, { variant: 'e5m2', block: 0 });
    expect(fp8Format.bitsPerWeight(r)).toBeCloseTo((3 * 9 * 32 + 3 * 32 + 256 * 32) / 99, 9);
  });

  it('rejects bad parameters and mismatched buffers', () => {
    const w = new Float32Array(64);
    expect(errorCode(() => fp8Format.quantize(w, 1, 64, { variant: 'e3m4' as Fp8Variant, block: 32 }))).toBe('E_ARG');
    expect(errorCode(() => fp8Format.quantize(w, 1, 64, { variant: 'e4m3', block: -4 }))).toBe('E_ARG');
    expect(errorCode(() => fp8Format.rtnKernel(1, 64, { variant: 'e5m2', block: 2.5 }))).toBe('E_ARG');
    expect(errorCode(() => fp8Matrix({ variant: 'e4m3', block: 32 }, 2, 64, new Uint32Array(128), new Float32Array(3)))).toBe('E_SHAPE');
  });
});
