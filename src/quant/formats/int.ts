/**
 * Integer group-wise quantization: b-bit codes (2..8) with one scale per group of g weights along K
 * (g = K: per-channel), symmetric or asymmetric with a zero point. Covers int8 per-channel (W8A16),
 * int4 group-wise as GPTQ and AWQ ship it, and the 2/3-bit grids used as baselines.
 *
 * Storage: `codes` u32 [N, ceil(K / per)] (packed as in ../types.ts), `scales` f16 [N, G], and for
 * asymmetric `zeros` f16 [N, G] holding integer zero points. Dequantization:
 *   symmetric:  w = (q - 2^(b-1)) * s        (codes store q = round(w / s) + 2^(b-1), s = absmax / (2^(b-1) - 1))
 *   asymmetric: w = (q - z) * s              (s = (max - min) / (2^b - 1) with min <= 0 <= max, z = round(-min / s))
 * Codes round half up (floor(x + 0.5)), as the DSL quantizer does; the scale is rounded to f16 before
 * the codes are computed, so codes and stored scales agree.
 */
import { packCodesDSL } from '../pack-dsl.js';
import { compute, lit, reduceMax, reduceMin, select, type IndexExpr } from '../../dsl/compute.js';
import { kernel, tensor } from '../../dsl/kernel.js';
import type { Tensor } from '../../dsl/tensor.js';
import { f16Round } from '../../runtime/f16.js';
import { fail } from '../../errors.js';
import { bufferSpecs, checkWeights, packCodes, perWord, totalBitsPerWeight, unpackCodes, wordsPerRow, type Format, type QuantizedMatrix } from '../types.js';

export interface IntParams {
  readonly [key: string]: number | string | boolean;
  /** Bits per code, 2..8. */
  readonly bits: number;
  /** Group size along K; 0 means one group per row (per-channel). */
  readonly group: number;
  readonly symmetric: boolean;
}

/** The group size actually used for a row of K weights. */
export const groupSize = (p: Pick<IntParams, 'group'>, K: number): number => (p.group > 0 ? p.group : K);

function check(p: IntParams, N: number, K: number): void {
  if (!Number.isInteger(p.bits) || p.bits < 2 || p.bits > 8) fail('E_ARG', `int format: bits must be 2..8, got ${p.bits}`);
  if (!Number.isInteger(p.group) || p.group < 0) fail('E_ARG', `int format: group must be a non-negative integer, got ${p.group}`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `int format: bad matrix shape [${N}, ${K}]`);
}

function params(q: QuantizedMatrix): IntParams {
  return q.params as IntParams;
}

/** Scale (f16-rounded) and zero point for one group's values, following the format's rule. */
export function groupScale(values: ArrayLike<number>, bits: number, symmetric: boolean): { s: number; z: number } {
  let lo = 0;
  let hi = 0;
  let amax = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
    amax = Math.max(amax, Math.abs(v));
  }
  if (symmetric) {
    const s = f16Round(amax / (2 ** (bits - 1) - 1));
    return { s: s > 0 ? s : 1, z: 2 ** (bits - 1) };
  }
  const s = f16Round((hi - lo) / (2 ** bits - 1));
  const ss = s > 0 ? s : 1;
  return { s: ss, z: Math.min(Math.max(Math.floor(-lo / ss + 0.5), 0), 2 ** bits - 1) };
}

/** The code for w under scale s and zero z (round half up, clamped to the grid). */
export const intCode = (w: number, s: number, z: number, bits: number): number => Math.min(Math.max(Math.floor(w / s + 0.5) + z, 0), 2 ** bits - 1);

/** Builds a QuantizedMatrix from codes [N, K], scales and zeros [N, G] (what GPTQ and importers produce). */
export function intMatrix(p: IntParams, N: number, K: number, codes: ArrayLike<number>, scales: ArrayLike<number>, zeros?: ArrayLike<number>): QuantizedMatrix {
  check(p, N, K);
  const G = Math.ceil(K / groupSize(p, K));
  if (scales.length !== N * G) fail('E_SHAPE', `int format: ${scales.length} scales for [${N}, ${G}] groups`);
  const buffers: Record<string, QuantizedMatrix['buffers'][string]> = {
    codes: { dtype: 'u32', shape: [N, wordsPerRow(K, p.bits)], data: packCodes(codes, N, K, p.bits) },
    scales: { dtype: 'f16', shape: [N, G], data: Float32Array.from(scales, f16Round) },
  };
  if (!p.symmetric) {
    if (!zeros || zeros.length !== N * G) fail('E_SHAPE', `int format: asymmetric needs [${N}, ${G}] zeros`);
    buffers['zeros'] = { dtype: 'f16', shape: [N, G], data: Float32Array.from(zeros) };
  }
  return { format: 'int', N, K, params: { ...p }, buffers };
}

export const intFormat: Format<IntParams> = {
  name: 'int',

  quantize(w, N, K, p) {
    checkWeights('int', w, N, K);
    check(p, N, K);
    const g = groupSize(p, K);
    const G = Math.ceil(K / g);
    const codes = new Uint32Array(N * K);
    const scales = new Float32Array(N * G);
    const zeros = new Float32Array(N * G);
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < G; gi++) {
        const k0 = gi * g;
        const k1 = Math.min(K, k0 + g);
        const { s, z } = groupScale(w.subarray(n * K + k0, n * K + k1), p.bits, p.symmetric);
        scales[n * G + gi] = s;
        zeros[n * G + gi] = z;
        for (let k = k0; k < k1; k++) codes[n * K + k] = intCode(w[n * K + k]!, s, p.symmetric ? 2 ** (p.bits - 1) : z, p.bits);
      }
    }
    return intMatrix(p, N, K, codes, scales, p.symmetric ? undefined : zeros);
  },

  dequantize(q) {
    const p = params(q);
    const { N, K } = q;
    const g = groupSize(p, K);
    const G = Math.ceil(K / g);
    const codes = unpackCodes(q.buffers['codes']!.data as Uint32Array, N, K, p.bits);
    const s = q.buffers['scales']!.data;
    const z = q.buffers['zeros']?.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const gi = n * G + Math.floor(k / g);
        out[n * K + k] = (codes[n * K + k]! - (p.symmetric ? 2 ** (p.bits - 1) : z![gi]!)) * s[gi]!;
      }
    }
    return out;
  },

  bitsPerWeight: totalBitsPerWeight,

  specs: bufferSpecs,

  access(h, q, prefix = '') {
    const p = params(q);
    const per = perWord(p.bits);
    const g = groupSize(p, q.K);
    const codes = h[prefix + 'codes']!;
    const scales = h[prefix + 'scales']!;
    const zeros = h[prefix + 'zeros'];
    return compute([q.N, q.K], (n: IndexExpr, k: IndexExpr) => {
      const code = unpackCode(codes, n, k, p.bits, per);
      const gi = k.div(g);
      const zero = p.symmetric ? lit(2 ** (p.bits - 1)) : zeros!.at(n, gi).cast('f32');
      return code.sub(zero).mul(scales.at(n, gi).cast('f32'));
    });
  },

  rtnKernel(N, K, p) {
    check(p, N, K);
    const g = groupSize(p, K);
    const G = Math.ceil(K / g);
    const top = 2 ** p.bits - 1;
    const mid = 2 ** (p.bits - 1);
    return kernel(`rtn_int${p.bits}`, { w: tensor('f32', [N, K]) }, ({ w }) => {
      // w[n, k] for k in group gi, or 0 past the row's end (ragged last group); 0 is inside every range
      const inGroup = (n: IndexExpr, gi: IndexExpr, j: IndexExpr) => {
        const k = gi.mul(g).add(j);
        return select(k.lt(K), w.at(n, k.min(K - 1)), lit(0));
      };
      const hi = compute([N, G], (n, gi) => reduceMax(g, (j) => inGroup(n, gi, j)));
      const lo = compute([N, G], (n, gi) => reduceMin(g, (j) => inGroup(n, gi, j)));
      const raw = p.symmetric
        ? compute([N, G], (n, gi) => hi.at(n, gi).max(lo.at(n, gi).neg()).div(lit(mid - 1)))
        : compute([N, G], (n, gi) => hi.at(n, gi).sub(lo.at(n, gi)).div(lit(top)));
      const scales = compute([N, G], (n, gi) => select(raw.at(n, gi).gt(lit(0)), raw.at(n, gi), lit(1))).cast('f16');
      const zeros = compute([N, G], (n, gi) => lo.at(n, gi).neg().div(scales.at(n, gi).cast('f32')).add(lit(0.5)).un('floor').max(lit(0)).min(lit(top))).cast('f16');
      const code = (n: IndexExpr, k: IndexExpr) => {
        const gi = k.div(g);
        const z = p.symmetric ? lit(mid) : zeros.at(n, gi).cast('f32');
        return w.at(n, k).div(scales.at(n, gi).cast('f32')).add(lit(0.5)).un('floor').add(z).max(lit(0)).min(lit(top)).cast('u32');
      };
      const codes = packCodesDSL(N, K, p.bits, code);
      const outs: Record<string, Tensor> = { codes, scales };
      if (!p.symmetric) outs['zeros'] = zeros;
      return outs;
    });
  },

  fromDevice(out, N, K, p) {
    const buffers: Record<string, QuantizedMatrix['buffers'][string]> = {
      codes: { dtype: 'u32', shape: [...out['codes']!.shape], data: out['codes']!.data },
      scales: { dtype: 'f16', shape: [...out['scales']!.shape], data: out['scales']!.data },
    };
    if (!p.symmetric) buffers['zeros'] = { dtype: 'f16', shape: [...out['zeros']!.shape], data: out['zeros']!.data };
    return { format: 'int', N, K, params: { ...p }, buffers };
  },

  errorBound(q, w) {
    // Half a step per element, plus what rounding the scale to f16 can push past the clamped grid.
    const p = params(q);
    const { N, K } = q;
    const g = groupSize(p, K);
    const G = Math.ceil(K / g);
    const s = q.buffers['scales']!.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < G; gi++) {
        const k0 = gi * g;
        const k1 = Math.min(K, k0 + g);
        const { s: exact } = groupScale(w.subarray(n * K + k0, n * K + k1), p.bits, p.symmetric);
        const step = s[n * G + gi]!;
        const slack = Math.abs(exact - step) * 2 ** p.bits;
        for (let k = k0; k < k1; k++) out[n * K + k] = 0.5 * step + slack + 1e-6 * Math.abs(w[n * K + k]!);
      }
    }
    return out;
  },
};

/** The b-bit code of element (n, k) from packed words [N, ceil(K / per)], as f32. */
export function unpackCode(codes: Tensor, n: IndexExpr, k: IndexExpr, bits: number, per = perWord(bits)): IndexExpr {
  return codes.at(n, k.div(per)).shr(k.mod(per).mul(bits).cast('u32')).bitand((1 << bits) - 1).cast('i32').cast('f32');
}

/** An int format's parameters by common name: int8 per-channel, int4 g128 asymmetric (GPTQ/AWQ), ... */
export const intPreset = (bits: number, group: number, symmetric = false): IntParams => ({ bits, group, symmetric });
