/**
 * Ternary weights, BitNet b1.58 absmean quantization (Ma et al. 2024, "The Era of 1-bit LLMs"):
 *   gamma = mean(|W|),  W~ = RoundClip(W / (gamma + eps), -1, 1),  eps = 1e-5,
 * applied post hoc. The dequantized weight is W~ * (gamma + eps): codes and dequantization use the
 * same stored scale s = gamma + eps (as the reference `weight_quant`, which divides and multiplies by
 * one scale). Round is round-half-to-even as torch.round, so with the clip: |x| > 0.5 -> sign(x), else 0.
 *
 * Storage:
 *   `codes` u32 [N, ceil(K / 16)]  2-bit codes c = W~ + 1 in {0, 1, 2}, packed as in ../types.ts (16 per word)
 *   `scale` f32 [1]                group 0 (the paper's per-tensor scale), or
 *           f32 [N, G]             group g > 0: one absmean scale per g weights along K (G = ceil(K / g);
 *                                  the mean of a ragged last group is over the weights it has)
 * Dequantization: w = (c - 1) * s.
 * Bits per weight: 2 (codes, plus row padding) + 32 / (N * K) for the per-tensor scale (32 / g grouped).
 * Post-hoc ternary is lossy by design: errorBound is the exact worst case given s, max(s / 2, |w| - s).
 */
import { packCodesDSL } from '../pack-dsl.js';
import { compute, lit, reduceSum, select, type IndexExpr } from '../../dsl/compute.js';
import { kernel, tensor } from '../../dsl/kernel.js';
import type { Tensor } from '../../dsl/tensor.js';
import { fail } from '../../errors.js';
import { bufferSpecs, checkWeights, packCodes, perWord, totalBitsPerWeight, unpackCodes, wordsPerRow, type Format, type QuantizedMatrix } from '../types.js';

export interface TernaryParams {
  readonly [key: string]: number | string | boolean;
  /** 0: one scale for the whole matrix (BitNet b1.58); g > 0: one per g weights along K. */
  readonly group: number;
}

/** The epsilon added to the absmean (BitNet b1.58). */
export const TERNARY_EPS = 1e-5;
const BITS = 2;

function check(p: TernaryParams, N: number, K: number): void {
  if (!Number.isInteger(p.group) || p.group < 0) fail('E_ARG', `ternary format: group must be a non-negative integer (0: per-tensor), got ${p.group}`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `ternary format: bad matrix shape [${N}, ${K}]`);
}

/** Shape of the scale buffer. */
const scaleShape = (p: TernaryParams, N: number, K: number): number[] => (p.group > 0 ? [N, Math.ceil(K / p.group)] : [1]);

/** The ternary code (W~ + 1) of x = w / s. */
export const ternaryCode = (x: number): number => (x > 0.5 ? 2 : x < -0.5 ? 0 : 1);

/** The stored scale of a set of weights: f32(mean |w| + eps). */
export function absmeanScale(w: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += Math.abs(w[i]!);
  return Math.fround(sum / w.length + TERNARY_EPS);
}

/** Builds a QuantizedMatrix from codes [N, K] (0, 1, 2) and scales (shape per `group`). */
export function ternaryMatrix(p: TernaryParams, N: number, K: number, codes: ArrayLike<number>, scales: ArrayLike<number>): QuantizedMatrix {
  check(p, N, K);
  const shape = scaleShape(p, N, K);
  const count = shape.reduce((a, b) => a * b, 1);
  if (scales.length !== count) fail('E_SHAPE', `ternary format: ${scales.length} scales for shape [${shape.join(', ')}]`);
  for (let i = 0; i < codes.length; i++) if (codes[i]! > 2) fail('E_ARG', `ternary format: code ${codes[i]} at ${i} is not 0, 1 or 2`);
  return {
    format: 'ternary', N, K, params: { ...p },
    buffers: {
      codes: { dtype: 'u32', shape: [N, wordsPerRow(K, BITS)], data: packCodes(codes, N, K, BITS) },
      scale: { dtype: 'f32', shape, data: Float32Array.from(scales) },
    },
  };
}

/** The scale of element (n, k), from the scale buffer's data. */
function scaleAt(p: TernaryParams, s: ArrayLike<number>, K: number, n: number, k: number): number {
  if (p.group === 0) return s[0]!;
  return s[n * Math.ceil(K / p.group) + Math.floor(k / p.group)]!;
}

export const ternaryFormat: Format<TernaryParams> = {
  name: 'ternary',

  quantize(w, N, K, p) {
    checkWeights('ternary', w, N, K);
    check(p, N, K);
    const codes = new Uint32Array(N * K);
    let scales: Float32Array;
    if (p.group === 0) scales = Float32Array.of(absmeanScale(w.subarray(0, N * K)));
    else {
      const G = Math.ceil(K / p.group);
      scales = new Float32Array(N * G);
      for (let n = 0; n < N; n++) for (let gi = 0; gi < G; gi++) scales[n * G + gi] = absmeanScale(w.subarray(n * K + gi * p.group, n * K + Math.min(K, (gi + 1) * p.group)));
    }
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) codes[n * K + k] = ternaryCode(w[n * K + k]! / scaleAt(p, scales, K, n, k));
    return ternaryMatrix(p, N, K, codes, scales);
  },

  dequantize(q) {
    const p = q.params as TernaryParams;
    const { N, K } = q;
    const codes = unpackCodes(q.buffers['codes']!.data as Uint32Array, N, K, BITS);
    const s = q.buffers['scale']!.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[n * K + k] = (codes[n * K + k]! - 1) * scaleAt(p, s, K, n, k);
    return out;
  },

  bitsPerWeight: totalBitsPerWeight,

  specs: bufferSpecs,

  access(h, q, prefix = '') {
    const p = q.params as TernaryParams;
    const per = perWord(BITS);
    const codes = h[prefix + 'codes']!;
    const scale = h[prefix + 'scale']!;
    return compute([q.N, q.K], (n: IndexExpr, k: IndexExpr) => {
      const c = codes.at(n, k.div(per)).shr(k.mod(per).mul(BITS).cast('u32')).bitand(3).cast('f32');
      return c.sub(lit(1)).mul(p.group === 0 ? scale.at(0) : scale.at(n, k.div(p.group)));
    });
  },

  rtnKernel(N, K, p) {
    check(p, N, K);
    const per = perWord(BITS);
    return kernel(`rtn_ternary${p.group ? `_g${p.group}` : ''}`, { w: tensor('f32', [N, K]) }, ({ w }) => {
      let scale: Tensor;
      let scaleOf: (n: IndexExpr, k: IndexExpr) => IndexExpr;
      if (p.group === 0) {
        // mean |W| over the whole matrix: row sums, then their sum (two parallel-friendly reductions)
        const rows = compute([N], (n) => reduceSum(K, (k) => w.at(n, k).abs()));
        const total = compute([1], () => reduceSum(N, (n) => rows.at(n)));
        scale = compute([1], (i) => total.at(i).div(lit(N * K)).add(lit(TERNARY_EPS)));
        scaleOf = () => scale.at(0);
      } else {
        const g = p.group;
        const G = Math.ceil(K / g);
        const sums = compute([N, G], (n, gi) =>
          reduceSum(g, (j) => {
            const k = gi.mul(g).add(j);
            return select(k.lt(K), w.at(n, k.min(K - 1)).abs(), lit(0));
          }),
        );
        const last = K - (G - 1) * g; // weights in the (possibly ragged) last group
        scale = compute([N, G], (n, gi) => sums.at(n, gi).div(select(gi.lt(G - 1), lit(g), lit(last))).add(lit(TERNARY_EPS)));
        scaleOf = (n, k) => scale.at(n, k.div(g));
      }
      const code = (n: IndexExpr, k: IndexExpr) => {
        const x = w.at(n, k).div(scaleOf(n, k));
        return select(x.gt(lit(0.5)), lit(2, 'u32'), select(x.lt(lit(-0.5)), lit(0, 'u32'), lit(1, 'u32')));
      };
      const codes = packCodesDSL(N, K, BITS, code, per);
      return { codes, scale };
    });
  },

  fromDevice(out, N, K, p) {
    return {
      format: 'ternary', N, K, params: { ...p },
      buffers: {
        codes: { dtype: 'u32', shape: [...out['codes']!.shape], data: out['codes']!.data },
        scale: { dtype: 'f32', shape: [...out['scale']!.shape], data: out['scale']!.data },
      },
    };
  },

  errorBound(q, w) {
    // |w / s| <= 0.5 gives 0 (error |w| <= s / 2); otherwise ±s (error ||w| - s|, which is below s / 2
    // up to |w| = 1.5 s and |w| - s beyond): the exact worst case given s.
    const p = q.params as TernaryParams;
    const { N, K } = q;
    const s = q.buffers['scale']!.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const sc = scaleAt(p, s, K, n, k);
        const a = Math.abs(w[n * K + k]!);
        out[n * K + k] = Math.max(sc / 2, a - sc) + 1e-7 * (sc + a);
      }
    }
    return out;
  },
};
