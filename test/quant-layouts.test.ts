/**
 * GPTQ and AWQ checkpoint layouts <-> the canonical int format: round trips both ways (fast-check),
 * dequantization preserved, act-order g_idx through a K permutation, and hand-built examples whose
 * exact int32 words are written down here independently of the packers (AWQ's nibble interleave,
 * GPTQ v1's stored zero − 1, GPTQ 3-bit words straddling), so a wrong-but-self-consistent
 * pack/unpack pair fails.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../src/errors.js';
import {
  AWQ_ORDER, exportAwq, exportGptq, importAwq, importGptq, intFormat, intMatrix,
  type IntParams, type QuantizedMatrix,
} from '../src/quant/index.js';
import { f16Round } from '../src/runtime/f16.js';

// ---------- helpers ----------

/** A small seeded LCG so properties draw bulk data from one fast-check integer. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Random canonical int matrix with explicit codes/scales/zeros. */
function randomQ(p: IntParams, N: number, K: number, seed: number): QuantizedMatrix {
  const r = lcg(seed);
  const g = p.group > 0 ? p.group : K;
  const G = Math.ceil(K / g);
  const codes = Uint32Array.from({ length: N * K }, () => Math.floor(r() * 2 ** p.bits));
  const scales = Float32Array.from({ length: N * G }, () => f16Round(1e-3 + r()));
  const zeros = Float32Array.from({ length: N * G }, () => Math.floor(r() * 2 ** p.bits));
  return intMatrix(p, N, K, codes, scales, p.symmetric ? undefined : zeros);
}

function expectSameQ(a: QuantizedMatrix, b: QuantizedMatrix): void {
  expect(a.format).toBe(b.format);
  expect([a.N, a.K]).toEqual([b.N, b.K]);
  expect(a.params).toEqual(b.params);
  expect(Object.keys(a.buffers).sort()).toEqual(Object.keys(b.buffers).sort());
  for (const [name, buf] of Object.entries(a.buffers)) {
    const o = b.buffers[name]!;
    expect(buf.dtype, name).toBe(o.dtype);
    expect(buf.shape, name).toEqual(o.shape);
    expect(Array.from(buf.data), name).toEqual(Array.from(o.data));
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isTesseraError(e)) return `${e.code}: ${e.detail}`;
    throw e;
  }
  throw new Error('expected a TesseraError');
}

/** Field i (b bits) of the bit stream formed by words[0], words[1], ... (independent of the packer: BigInt). */
function streamField(words: readonly number[], i: number, b: number): number {
  let big = 0n;
  for (let w = words.length - 1; w >= 0; w--) big = (big << 32n) | BigInt(words[w]! >>> 0);
  return Number((big >> BigInt(i * b)) & ((1n << BigInt(b)) - 1n));
}

/** AutoGPTQ's 3-bit packing loop (qlinear_cuda_old.pack), transcribed: 32 values -> 3 int32 words. */
function autogptqPack3(v: readonly number[]): number[] {
  const q = [0, 0, 0];
  let i = 0;
  for (let j = i; j < i + 10; j++) q[0]! |= v[j]! << (3 * (j - i));
  i += 10;
  q[0]! |= v[i]! << 30;
  q[1]! |= (v[i]! >> 2) & 1;
  i += 1;
  for (let j = i; j < i + 10; j++) q[1]! |= v[j]! << (3 * (j - i) + 1);
  i += 10;
  q[1]! |= v[i]! << 31;
  q[2]! |= (v[i]! >> 1) & 0x3;
  i += 1;
  for (let j = i; j < i + 10; j++) q[2]! |= v[j]! << (3 * (j - i) + 2);
  return q.map((x) => x | 0);
}

const unit = (bits: number) => ({ 2: 16, 3: 32, 4: 8, 8: 8 })[bits as 2 | 3 | 4 | 8];

/** Arbitrary GPTQ-compatible (bits, N, K, group). N is a multiple of 8 (and of 32 for 3-bit). */
const gptqShape = fc
  .record({ bits: fc.constantFrom(2, 3, 4, 8), n: fc.integer({ min: 1, max: 3 }), k: fc.integer({ min: 1, max: 5 }), group: fc.constantFrom(0, 8, 16, 32, 24) })
  .map(({ bits, n, k, group }) => {
    const u = unit(bits);
    return { bits, N: u * n, K: Math.max(u, 16) * k, group };
  });

// ---------- GPTQ ----------

describe('GPTQ layout', () => {
  for (const zeroFormat of ['v1', 'v2'] as const) {
    it(`import(export(q)) == q for random q (${zeroFormat})`, () => {
      fc.assert(
        fc.property(gptqShape, fc.boolean(), fc.integer(), ({ bits, N, K, group }, symmetric, seed) => {
          const p: IntParams = { bits, group, symmetric };
          const q = randomQ(p, N, K, seed);
          const t = exportGptq(q, { zeroFormat });
          expect(t.shapes.qweight).toEqual([(K * bits) / 32, N]);
          expect(t.qweight.length).toBe((K * bits * N) / 32);
          expect(t.qzeros.length).toBe(Math.ceil(K / (group || K)) * ((N * bits) / 32));
          expect(t.groupSize).toBe(group === 0 ? -1 : group);
          const { q: back, perm } = importGptq(t, { N, K, bits, groupSize: t.groupSize, zeroFormat, symmetric });
          expect(perm).toBeUndefined();
          expectSameQ(back, q);
          // imported as the default asymmetric format, it still dequantizes to the same W
          const asym = importGptq(t, { N, K, bits, groupSize: t.groupSize, zeroFormat }).q;
          expect(asym.params['symmetric']).toBe(false);
          expect(Array.from(intFormat.dequantize(asym))).toEqual(Array.from(intFormat.dequantize(q)));
        }),
        { numRuns: 60 },
      );
    });

    it(`export(import(t)) == t for random packed tensors, with and without act-order (${zeroFormat})`, () => {
      fc.assert(
        fc.property(gptqShape, fc.boolean(), fc.integer(), ({ bits, N, K, group }, actOrder, seed) => {
          const r = lcg(seed);
          const g = group || K;
          const G = Math.ceil(K / g);
          const qweight = Int32Array.from({ length: (K * bits * N) / 32 }, () => (r() * 2 ** 32) | 0);
          const qzeros = Int32Array.from({ length: (G * N * bits) / 32 }, () => (r() * 2 ** 32) | 0);
          const scales = Float32Array.from({ length: G * N }, () => f16Round((r() - 0.3) * 4));
          const g_idx = Int32Array.from({ length: K }, (_, k) => Math.floor(k / g));
          if (actOrder) for (let k = K - 1; k > 0; k--) { const j = Math.floor(r() * (k + 1)); [g_idx[k], g_idx[j]] = [g_idx[j]!, g_idx[k]!]; }
          const { q, perm } = importGptq({ qweight, qzeros, scales, g_idx }, { N, K, bits, groupSize: group === 0 ? -1 : group, zeroFormat });
          const out = exportGptq(q, { zeroFormat, perm });
          expect(Array.from(out.qweight)).toEqual(Array.from(qweight));
          expect(Array.from(out.qzeros)).toEqual(Array.from(qzeros));
          expect(Array.from(out.scales)).toEqual(Array.from(scales));
          expect(Array.from(out.g_idx)).toEqual(Array.from(g_idx));
          expect(out.zeroFormat).toBe(zeroFormat);

          // the imported matrix is the checkpoint's W with K permuted by perm: W'[n, j] = W[n, perm[j]],
          // W from the GPTQ formula read directly off the tensors (BigInt bit streams)
          const d = intFormat.dequantize(q);
          const mask = 2 ** bits - 1;
          const KW = (K * bits) / 32;
          const NW = (N * bits) / 32;
          for (let n = 0; n < N; n++) {
            const col = Array.from({ length: KW }, (_, w) => qweight[w * N + n]!);
            for (let j = 0; j < K; j++) {
              const k = perm ? perm[j]! : j;
              const gi = g_idx[k]!;
              const field = streamField(Array.from(qzeros.subarray(gi * NW, gi * NW + NW)), n, bits);
              const zero = zeroFormat === 'v1' ? (field + 1) & mask : field;
              const want = scales[gi * N + n]! * (streamField(col, k, bits) - zero);
              if (d[n * K + j] !== want) expect.fail(`W'[${n}, ${j}] = ${d[n * K + j]}, want W[${n}, ${k}] = ${want}`);
            }
          }
          if (!actOrder) expect(perm).toBeUndefined();
        }),
        { numRuns: 60 },
      );
    });
  }

  it('dequantize(import(export(q))) == dequantize(q) for RTN-quantized weights', () => {
    const r = lcg(7);
    for (const p of [{ bits: 4, group: 32, symmetric: false }, { bits: 3, group: 32, symmetric: false }, { bits: 8, group: 0, symmetric: true }, { bits: 2, group: 16, symmetric: false }] as IntParams[]) {
      const [N, K] = [32, 96];
      const w = Float32Array.from({ length: N * K }, () => Math.fround((r() - 0.5) * 0.2));
      const q = intFormat.quantize(w, N, K, p);
      for (const zeroFormat of ['v1', 'v2'] as const) {
        const t = exportGptq(q, { zeroFormat });
        const back = importGptq(t, { N, K, bits: p.bits, groupSize: t.groupSize, zeroFormat }).q;
        expect(Array.from(intFormat.dequantize(back))).toEqual(Array.from(intFormat.dequantize(q)));
      }
    }
  });

  it('a hand-built 4-bit 8x8 example has the exact words (packed along K, zero − 1 for v1)', () => {
    const [N, K] = [8, 8];
    const codes = Array.from({ length: N * K }, (_, i) => (Math.floor(i / K) + 2 * (i % K)) % 16); // code[n][k] = (n + 2k) % 16
    const zeros = Array.from({ length: N * 2 }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2) + 1 : i === 1 ? 0 : 8)); // [n][0] = n+1; [n][1] = 8, [0][1] = 0
    const scales = Array.from({ length: N * 2 }, (_, i) => (Math.floor(i / 2) + 1) / 8 + (i % 2)); // [n][g] = (n+1)/8 + g
    const q = intMatrix({ bits: 4, group: 4, symmetric: false }, N, K, codes, scales, zeros);

    const v1 = exportGptq(q);
    expect(v1.zeroFormat).toBe('v1');
    expect(v1.shapes).toEqual({ qweight: [1, 8], qzeros: [2, 1], scales: [2, 8], g_idx: [8] });
    // column n of qweight: nibble k = code[n][k]
    expect(Array.from(v1.qweight, (x) => x >>> 0)).toEqual([0xeca86420, 0xfdb97531, 0x0eca8642, 0x1fdb9753, 0x20eca864, 0x31fdb975, 0x420eca86, 0x531fdb97]);
    // row g of qzeros: nibble n = zero[n][g] - 1 (zero 0 wraps to 0xF)
    expect(Array.from(v1.qzeros, (x) => x >>> 0)).toEqual([0x76543210, 0x7777777f]);
    expect(Array.from(v1.scales)).toEqual([0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75, 1.875, 2]);
    expect(Array.from(v1.g_idx)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(v1.qweight[0]).toBe(0xeca86420 | 0); // int32, as torch stores it

    const v2 = exportGptq(q, { zeroFormat: 'v2' });
    expect(Array.from(v2.qweight)).toEqual(Array.from(v1.qweight));
    expect(Array.from(v2.qzeros, (x) => x >>> 0)).toEqual([0x87654321, 0x88888880]);

    // reading the v1 words back gives W[n][k] = s * (code - zero): W[0][0] = 0.125 * (0 - 1), W[0][4] = 1.125 * (8 - 0)
    const d = intFormat.dequantize(importGptq(v1, { N, K, bits: 4, groupSize: 4 }).q);
    expect(d[0]).toBe(-0.125);
    expect(d[4]).toBe(9);
    expect(d[7 * K + 7]).toBe((1 + 1) * (5 - 8)); // n=7, k=7: code (7+14)%16 = 5, group 1: scale 2, zero 8
    // the same words read as v2 mean zero = field
    const d2 = intFormat.dequantize(importGptq(v1, { N, K, bits: 4, groupSize: 4, zeroFormat: 'v2' }).q);
    expect(d2[0]).toBe(0); // zero 0 instead of 1
  });

  it('3-bit words match AutoGPTQ\'s 10/1/10/1/10 packing, including the straddling codes', () => {
    const [N, K] = [32, 64];
    const codes = Array.from({ length: N * K }, (_, i) => (Math.floor(i / K) * 3 + (i % K) * 5 + ((i % K) >> 3)) % 8);
    const zeros = Array.from({ length: N * 2 }, (_, i) => ((i >> 1) * 5 + (i & 1)) % 8);
    const scales = Array.from({ length: N * 2 }, () => 0.5);
    const q = intMatrix({ bits: 3, group: 32, symmetric: false }, N, K, codes, scales, zeros);
    const t = exportGptq(q);
    expect(t.shapes.qweight).toEqual([6, N]);
    for (let n = 0; n < N; n++) {
      for (let blk = 0; blk < 2; blk++) {
        const want = autogptqPack3(Array.from({ length: 32 }, (_, j) => codes[n * K + blk * 32 + j]!));
        expect([0, 1, 2].map((r) => t.qweight[(blk * 3 + r) * N + n])).toEqual(want);
      }
    }
    for (let gi = 0; gi < 2; gi++) {
      const want = autogptqPack3(Array.from({ length: 32 }, (_, n) => (zeros[n * 2 + gi]! - 1) & 7));
      expect(Array.from(t.qzeros.subarray(gi * 3, gi * 3 + 3))).toEqual(want);
    }
    // a literal: column of codes k % 8 -> word 0 is octal 1076543210 plus code 10's low bits (2) at bits 30-31
    const q2 = intMatrix({ bits: 3, group: 0, symmetric: true }, 32, 32, Array.from({ length: 32 * 32 }, (_, i) => i % 8), new Float32Array(32).fill(1));
    const w0 = exportGptq(q2).qweight[0]! >>> 0;
    expect(w0).toBe((0o1076543210 | (2 << 30)) >>> 0);
  });

  it('act-order g_idx imports through a permutation of K that reproduces the layer output', () => {
    const [N, K, g] = [8, 16, 4];
    // desc_act: channels were quantized in the order `order`; g_idx[order[i]] = i // g
    const order = [5, 12, 0, 9, 3, 15, 7, 1, 10, 14, 2, 8, 11, 4, 13, 6];
    const g_idx = new Int32Array(K);
    order.forEach((k, i) => (g_idx[k] = Math.floor(i / g)));
    const src = randomQ({ bits: 4, group: g, symmetric: false }, N, K, 99);
    const t = exportGptq(src, { perm: order });
    expect(Array.from(t.g_idx)).toEqual(Array.from(g_idx));
    const { q, perm } = importGptq(t, { N, K, bits: 4, groupSize: g });
    expect(perm).toBeDefined();
    // channels stably sorted by group
    expect(Array.from(perm!)).toEqual([0, 5, 9, 12, 1, 3, 7, 15, 2, 8, 10, 14, 4, 6, 11, 13]);
    // y = x W^T == x[:, perm] W'^T, with W from the GPTQ tensors
    const W = intFormat.dequantize(src); // src's column i is channel order[i]
    const Wp = intFormat.dequantize(q);
    const x = Array.from({ length: K }, (_, k) => k * 0.25 - 1);
    for (let n = 0; n < N; n++) {
      let y = 0;
      for (let i = 0; i < K; i++) y += x[order[i]!]! * W[n * K + i]!;
      let yp = 0;
      for (let j = 0; j < K; j++) yp += x[perm![j]!]! * Wp[n * K + j]!;
      expect(yp).toBeCloseTo(y, 9);
    }
  });

  it('rejects what the layout cannot hold, with clear errors', () => {
    const q4 = randomQ({ bits: 4, group: 8, symmetric: false }, 8, 16, 1);
    expect(codeOf(() => exportGptq(randomQ({ bits: 5, group: 0, symmetric: false }, 32, 32, 1)))).toMatch(/^E_ARG: .*2, 3, 4 or 8 bits, got 5/);
    expect(codeOf(() => exportGptq(randomQ({ bits: 4, group: 0, symmetric: false }, 8, 12, 1)))).toMatch(/^E_SHAPE: .*K=12/);
    expect(codeOf(() => exportGptq(randomQ({ bits: 4, group: 0, symmetric: false }, 12, 16, 1)))).toMatch(/^E_SHAPE: .*N=12/);
    expect(codeOf(() => exportGptq(randomQ({ bits: 3, group: 0, symmetric: false }, 16, 32, 1)))).toMatch(/^E_SHAPE: .*N=16.*multiple of 32/);
    expect(codeOf(() => exportGptq({ ...q4, format: 'nf4' }))).toMatch(/^E_ARG: .*int-format/);
    expect(codeOf(() => exportGptq(q4, { perm: [0, 0, ...Array.from({ length: 14 }, (_, i) => i + 2)] }))).toMatch(/^E_ARG: .*not a permutation/);
    expect(codeOf(() => exportGptq(q4, { zeroFormat: 'v3' as 'v1' }))).toMatch(/^E_ARG: .*zeroFormat/);

    const t = exportGptq(q4);
    const o = { N: 8, K: 16, bits: 4, groupSize: 8 };
    expect(codeOf(() => importGptq({ ...t, qweight: t.qweight.subarray(1) }, o))).toMatch(/^E_SHAPE: .*qweight has 15 words, expected \[2, 8\]/);
    expect(codeOf(() => importGptq({ ...t, qzeros: t.qzeros.subarray(1) }, o))).toMatch(/^E_SHAPE: .*qzeros/);
    expect(codeOf(() => importGptq({ ...t, scales: t.scales.subarray(1) }, o))).toMatch(/^E_SHAPE: .*scales/);
    expect(codeOf(() => importGptq(t, { ...o, bits: 6 }))).toMatch(/^E_ARG: .*got 6/);
    expect(codeOf(() => importGptq(t, { ...o, groupSize: -2 }))).toMatch(/^E_ARG: .*groupSize/);
    expect(codeOf(() => importGptq({ ...t, g_idx: new Int32Array(15) }, o))).toMatch(/^E_SHAPE: .*g_idx has 15/);
    expect(codeOf(() => importGptq({ ...t, g_idx: Int32Array.from({ length: 16 }, (_, k) => (k < 9 ? 0 : 1)) }, o))).toMatch(/^E_ARG: .*9 channels in group 0.*needs 8/);
    expect(codeOf(() => importGptq({ ...t, g_idx: Int32Array.from({ length: 16 }, (_, k) => (k < 8 ? 0 : 2)) }, o))).toMatch(/^E_ARG: .*g_idx\[8\] = 2/);
    expect(codeOf(() => importGptq(t, { ...o, symmetric: true }))).toMatch(/^E_ARG: .*symmetric import needs every zero point to be 8/);
  });
});

// ---------- AWQ ----------

const awqShape = fc
  .record({ n: fc.integer({ min: 1, max: 4 }), G: fc.integer({ min: 1, max: 4 }), group: fc.constantFrom(0, 8, 16, 32, 64, 128) })
  .map(({ n, G, group }) => ({ N: 8 * n, K: group === 0 ? 8 * G : group * G, group }));

describe('AWQ GEMM layout', () => {
  it('import(export(q)) == q for random q', () => {
    fc.assert(
      fc.property(awqShape, fc.boolean(), fc.integer(), ({ N, K, group }, symmetric, seed) => {
        const q = randomQ({ bits: 4, group, symmetric }, N, K, seed);
        const t = exportAwq(q);
        expect(t.shapes).toEqual({ qweight: [K, N / 8], qzeros: [K / (group || K), N / 8], scales: [K / (group || K), N] });
        expectSameQ(importAwq(t, { N, K, groupSize: t.groupSize, symmetric }), q);
        const asym = importAwq(t, { N, K, groupSize: t.groupSize });
        expect(Array.from(intFormat.dequantize(asym))).toEqual(Array.from(intFormat.dequantize(q)));
      }),
      { numRuns: 80 },
    );
  });

  it('export(import(t)) == t for random packed tensors', () => {
    fc.assert(
      fc.property(awqShape, fc.integer(), ({ N, K, group }, seed) => {
        const r = lcg(seed);
        const G = K / (group || K);
        const qweight = Int32Array.from({ length: (K * N) / 8 }, () => (r() * 2 ** 32) | 0);
        const qzeros = Int32Array.from({ length: (G * N) / 8 }, () => (r() * 2 ** 32) | 0);
        const scales = Float32Array.from({ length: G * N }, () => f16Round((r() - 0.3) * 4));
        const q = importAwq({ qweight, qzeros, scales }, { N, K, groupSize: group === 0 ? -1 : group });
        const out = exportAwq(q);
        expect(Array.from(out.qweight)).toEqual(Array.from(qweight));
        expect(Array.from(out.qzeros)).toEqual(Array.from(qzeros));
        expect(Array.from(out.scales)).toEqual(Array.from(scales));
        // W[n, k] from the AWQ formula, unpacking with AWQ_REVERSE_ORDER written out here
        const rev = [0, 4, 1, 5, 2, 6, 3, 7];
        const d = intFormat.dequantize(q);
        for (let n = 0; n < N; n++) {
          for (let k = 0; k < K; k++) {
            const gi = Math.floor(k / (group || K));
            const code = (qweight[k * (N / 8) + (n >> 3)]! >>> (4 * rev[n & 7]!)) & 15;
            const zero = (qzeros[gi * (N / 8) + (n >> 3)]! >>> (4 * rev[n & 7]!)) & 15;
            if (d[n * K + k] !== scales[gi * N + n]! * (code - zero)) expect.fail(`W[${n}, ${k}]`);
          }
        }
      }),
      { numRuns: 80 },
    );
  });

  it('dequantize(import(export(q))) == dequantize(q) for RTN-quantized weights', () => {
    const r = lcg(3);
    const [N, K] = [24, 256];
    const w = Float32Array.from({ length: N * K }, () => Math.fround((r() - 0.5) * 0.2));
    for (const p of [{ bits: 4, group: 128, symmetric: false }, { bits: 4, group: 64, symmetric: true }, { bits: 4, group: 0, symmetric: false }] as IntParams[]) {
      const q = intFormat.quantize(w, N, K, p);
      const t = exportAwq(q);
      expect(Array.from(intFormat.dequantize(importAwq(t, { N, K, groupSize: t.groupSize })))).toEqual(Array.from(intFormat.dequantize(q)));
    }
  });

  it('a hand-built 8x8 example has the exact interleaved words (no zero − 1)', () => {
    const [N, K] = [8, 8];
    // code[n][k]: row k=0 holds n, row k=1 holds 15 - n, other rows (3n + k) % 16
    const codes = Array.from({ length: N * K }, (_, i) => {
      const [n, k] = [Math.floor(i / K), i % K];
      return k === 0 ? n : k === 1 ? 15 - n : (3 * n + k) % 16;
    });
    const zeros = Array.from({ length: N * 2 }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2) + 1 : 15 - Math.floor(i / 2))); // [n][0] = n+1, [n][1] = 15-n
    const scales = Array.from({ length: N * 2 }, (_, i) => 0.5 + (i % 2));
    const q = intMatrix({ bits: 4, group: 4, symmetric: false }, N, K, codes, scales, zeros);
    const t = exportAwq(q);
    expect(t.shapes).toEqual({ qweight: [8, 1], qzeros: [2, 1], scales: [2, 8] });
    // nibble i of a word holds column [0, 2, 4, 6, 1, 3, 5, 7][i]
    expect(t.qweight[0]! >>> 0).toBe(0x75316420);
    expect(t.qweight[1]! >>> 0).toBe(0x8ace9bdf);
    expect(t.qzeros[0]! >>> 0).toBe(0x86427531);
    expect(t.qzeros[1]! >>> 0).toBe(0x8ace9bdf);
    expect(Array.from(t.scales)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]);
    // every row against AutoAWQ's from_linear loop, transcribed
    for (let k = 0; k < K; k++) {
      let word = 0;
      for (let i = 0; i < 8; i++) word |= codes[[0, 2, 4, 6, 1, 3, 5, 7][i]! * K + k]! << (i * 4);
      expect(t.qweight[k]).toBe(word);
    }
    expect(AWQ_ORDER).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
    // reading back: W[2][1] = 0.5 * ((15 - 2) - 3)
    const d = intFormat.dequantize(importAwq(t, { N, K, groupSize: 4 }));
    expect(d[2 * K + 1]).toBe(0.5 * (13 - 3));
  });

  it('rejects what the layout cannot hold, with clear errors', () => {
    expect(codeOf(() => exportAwq(randomQ({ bits: 3, group: 32, symmetric: false }, 8, 64, 1)))).toMatch(/^E_ARG: .*4-bit only, got 3/);
    expect(codeOf(() => exportAwq(randomQ({ bits: 4, group: 32, symmetric: false }, 8, 40, 1)))).toMatch(/^E_SHAPE: .*K=40 must be a multiple of the group size 32/);
    expect(codeOf(() => exportAwq(randomQ({ bits: 4, group: 32, symmetric: false }, 12, 64, 1)))).toMatch(/^E_SHAPE: .*N=12 must be a multiple of 8/);
    const t = exportAwq(randomQ({ bits: 4, group: 32, symmetric: false }, 8, 64, 1));
    const o = { N: 8, K: 64, groupSize: 32 };
    expect(codeOf(() => importAwq(t, { ...o, bits: 8 }))).toMatch(/^E_ARG: .*4-bit only, got 8/);
    expect(codeOf(() => importAwq({ ...t, qweight: t.qweight.subarray(1) }, o))).toMatch(/^E_SHAPE: .*qweight has 63 words, expected \[64, 1\]/);
    expect(codeOf(() => importAwq({ ...t, qzeros: t.qzeros.subarray(1) }, o))).toMatch(/^E_SHAPE: .*qzeros/);
    expect(codeOf(() => importAwq({ ...t, scales: t.scales.subarray(1) }, o))).toMatch(/^E_SHAPE: .*scales/);
    expect(codeOf(() => importAwq(t, { ...o, groupSize: 48 }))).toMatch(/^E_SHAPE: .*multiple of the group size 48/);
    expect(codeOf(() => importAwq(t, { ...o, symmetric: true }))).toMatch(/^E_ARG: .*zero point to be 8/);
  });
});
