/**
 * NF4 (4-bit NormalFloat, QLoRA / bitsandbytes): 16 fixed levels in [-1, 1] placed at normal
 * quantiles (the exact bitsandbytes table, `NF4_LEVELS`), scaled per block of `block` weights along K
 * by the block's absolute maximum.
 *
 * Storage:
 *   `codes`  u32 [N, ceil(K / 8)]  4-bit level indices, packed as in ../types.ts (8 per word)
 *   `absmax` f32 [N, G]            G = ceil(K / block); f32 as bitsandbytes stores it (no double
 *                                  quantization); an all-zero block stores 1 (its codes are all 0.0)
 *   `lut`    f32 [16]              the level table (a constant; part of the buffers so access gathers it)
 * Dequantization: w = lut[code] * absmax[n, k / block].
 * Quantization: code = the nearest level to x = w / absmax, found as the number of the 15 midpoints
 * between adjacent levels that x exceeds strictly (bitsandbytes' dQuantizeNF4 compares `x > mid` the
 * same way, so a tie goes to the lower level). Midpoints are the f32 midpoints of the f32 levels.
 * Bits per weight: 4 (codes) + 32 / block (absmax) + 16 * 32 / (N * K) (the table), as totalBitsPerWeight
 * counts every buffer: 4.5 + table at the default block of 64.
 */
import { packCodesDSL } from '../pack-dsl.js';
import { compute, lit, reduceMax, select, type IndexExpr } from '../../dsl/compute.js';
import { kernel, tensor } from '../../dsl/kernel.js';
import { fail } from '../../errors.js';
import { bufferSpecs, quantizeBlocks, checkWeights, lutDequantize, packCodes, perWord, totalBitsPerWeight, wordsPerRow, type Format, type QBuffer, type QuantizedMatrix } from '../types.js';

export interface Nf4Params {
  readonly [key: string]: number | string | boolean;
  /** Block size along K (bitsandbytes' blocksize, default 64); 0 means one block per row. */
  readonly block: number;
}

/** The bitsandbytes NF4 table (csrc/kernels.cu `nf4_dequantization_lut`), as f32 values. */
export const NF4_LEVELS: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
].map(Math.fround);

/** The 15 decision thresholds: f32 midpoints of adjacent levels. */
export const NF4_MIDPOINTS: readonly number[] = NF4_LEVELS.slice(1).map((v, i) => Math.fround((NF4_LEVELS[i]! + v) / 2));

const BITS = 4;

export const nf4BlockSize = (p: Pick<Nf4Params, 'block'>, K: number): number => (p.block > 0 ? p.block : K);

function check(p: Nf4Params, N: number, K: number): void {
  if (!Number.isInteger(p.block) || p.block < 0) fail('E_ARG', `nf4 format: block must be a non-negative integer, got ${p.block}`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `nf4 format: bad matrix shape [${N}, ${K}]`);
}

/** The NF4 code of x = w / absmax: how many midpoints x exceeds. */
export function nf4Code(x: number): number {
  let c = 0;
  for (const m of NF4_MIDPOINTS) if (x > m) c++;
  return c;
}

const lutBuffer = (): QBuffer => ({ dtype: 'f32', shape: [16], data: Float32Array.from(NF4_LEVELS) });

/** Builds a QuantizedMatrix from codes [N, K] (0..15) and absmax [N, G]. */
export function nf4Matrix(p: Nf4Params, N: number, K: number, codes: ArrayLike<number>, absmax: ArrayLike<number>): QuantizedMatrix {
  check(p, N, K);
  const G = Math.ceil(K / nf4BlockSize(p, K));
  if (absmax.length !== N * G) fail('E_SHAPE', `nf4 format: ${absmax.length} absmax values for [${N}, ${G}] blocks`);
  return {
    format: 'nf4', N, K, params: { ...p },
    buffers: {
      codes: { dtype: 'u32', shape: [N, wordsPerRow(K, BITS)], data: packCodes(codes, N, K, BITS) },
      absmax: { dtype: 'f32', shape: [N, G], data: Float32Array.from(absmax) },
      lut: lutBuffer(),
    },
  };
}

export const nf4Format: Format<Nf4Params> = {
  name: 'nf4',

  quantize(w, N, K, p) {
    checkWeights('nf4', w, N, K);
    check(p, N, K);
    const g = nf4BlockSize(p, K);
    const absmax = new Float32Array(N * Math.ceil(K / g));
    const codes = quantizeBlocks(w, N, K, g, absmax, (a) => {
      const s = a > 0 ? a : 1; // an f32 value already (max of f32 magnitudes)
      return { scale: s, code: (x) => nf4Code(x / s) };
    });
    return nf4Matrix(p, N, K, codes, absmax);
  },

  dequantize(q) {
    return lutDequantize(q, BITS, nf4BlockSize(q.params as Nf4Params, q.K), 'absmax');
  },

  bitsPerWeight: totalBitsPerWeight,

  specs: bufferSpecs,

  access(h, q, prefix = '') {
    const g = nf4BlockSize(q.params as Nf4Params, q.K);
    const per = perWord(BITS);
    const codes = h[prefix + 'codes']!;
    const absmax = h[prefix + 'absmax']!;
    const lut = h[prefix + 'lut']!;
    return compute([q.N, q.K], (n: IndexExpr, k: IndexExpr) => {
      const code = codes.at(n, k.div(per)).shr(k.mod(per).mul(BITS).cast('u32')).bitand(15).cast('i32');
      return lut.at(code).mul(absmax.at(n, k.div(g)));
    });
  },

  rtnKernel(N, K, p) {
    check(p, N, K);
    const g = nf4BlockSize(p, K);
    const G = Math.ceil(K / g);
    const per = perWord(BITS);
    return kernel('rtn_nf4', { w: tensor('f32', [N, K]) }, ({ w }) => {
      // |w| over block gi, 0 past the row's end (ragged last block)
      const amax = compute([N, G], (n, gi) =>
        reduceMax(g, (j) => {
          const k = gi.mul(g).add(j);
          return select(k.lt(K), w.at(n, k.min(K - 1)).abs(), lit(0));
        }),
      );
      const absmax = compute([N, G], (n, gi) => select(amax.at(n, gi).gt(lit(0)), amax.at(n, gi), lit(1)));
      // branch-free nearest level: the number of midpoints x exceeds
      const code = (n: IndexExpr, k: IndexExpr) => {
        const x = w.at(n, k).div(absmax.at(n, k.div(g)));
        return NF4_MIDPOINTS.map((m) => x.gt(lit(m)).cast('u32')).reduce((a, b) => a.add(b));
      };
      const codes = packCodesDSL(N, K, BITS, code, per);
      return { codes, absmax };
    });
  },

  fromDevice(out, N, K, p) {
    return {
      format: 'nf4', N, K, params: { ...p },
      buffers: {
        codes: { dtype: 'u32', shape: [...out['codes']!.shape], data: out['codes']!.data },
        absmax: { dtype: 'f32', shape: [...out['absmax']!.shape], data: out['absmax']!.data },
        lut: lutBuffer(),
      },
    };
  },

  errorBound(q, w) {
    // x = w / absmax lies in [-1, 1] between two adjacent levels; the nearest is at most half that gap
    // away (plus an f32 ulp or so, since the midpoints are f32-rounded).
    const p = q.params as Nf4Params;
    const { N, K } = q;
    const g = nf4BlockSize(p, K);
    const G = Math.ceil(K / g);
    const s = q.buffers['absmax']!.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const sc = s[n * G + Math.floor(k / g)]!;
        const x = Math.min(1, Math.max(-1, w[n * K + k]! / sc));
        let j = 0;
        while (j < 14 && NF4_LEVELS[j + 1]! < x) j++;
        out[n * K + k] = (sc * (NF4_LEVELS[j + 1]! - NF4_LEVELS[j]!)) / 2 + 1e-6 * sc;
      }
    }
    return out;
  },
};

/** NF4 parameters with bitsandbytes' default block size. */
export const nf4Preset = (block = 64): Nf4Params => ({ block });
