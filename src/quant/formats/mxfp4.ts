/**
 * MXFP4 (OCP Microscaling Formats v1.0): blocks of 32 weights along K share one E8M0 scale; each
 * weight is an FP4 E2M1 element (magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6; code = sign << 3 | magnitude).
 *
 * Storage:
 *   `codes`   u32 [N, ceil(K / 8)]   4-bit E2M1 codes, packed as in ../types.ts (8 per word)
 *   `scales`  u32 [N, ceil(G / 4)]   8-bit E8M0 codes e (scale 2^(e - 127); 255 = NaN, never emitted),
 *                                    packed along the G = ceil(K / 32) blocks of a row, 4 per word
 *   `lut`     f32 [16]               E2M1 values by code (a constant table)
 *   `exp_lut` f32 [256]              2^(e - 127) by E8M0 code, NaN at 255 (a constant table; exact,
 *                                    including 2^-127, which is subnormal in f32: a device that flushes
 *                                    subnormals reads 0 there, which only a block with absmax < 2^-124 uses)
 * Dequantization: w = lut[code] * exp_lut[e of block k / 32].
 * Quantization (OCP MX v1.0 section 6.3): X = floor(log2(absmax)) - 2 (2 = emax of E2M1, 6 = 1.5 * 2^2),
 * clamped to [-127, 127] (an all-zero block gets X = -127); e = X + 127; each element is x = w / 2^X
 * rounded to the nearest E2M1 value, ties to even, saturating at ±6 (x can reach 8: the spec's
 * clipping of the top of each block). The DSL quantizer finds floor(log2) by comparisons against exact
 * powers of two (fp8.ts `exponentSelect`), so it agrees with the host bit for bit.
 * Bits per weight: 4 (codes) + 8 / 32 (scales) = 4.25, plus the tables, 272 * 32 / (N * K), which
 * totalBitsPerWeight counts too (and rows whose K or G does not fill words pay for the padding).
 */
import { packCodesDSL } from '../pack-dsl.js';
import { compute, lit, reduceMax, select, type IndexExpr } from '../../dsl/compute.js';
import { kernel, tensor } from '../../dsl/kernel.js';
import { fail } from '../../errors.js';
import { bufferSpecs, quantizeBlocks, checkWeights, packCodes, totalBitsPerWeight, unpackCodes, wordsPerRow, type Format, type QBuffer, type QuantizedMatrix } from '../types.js';
import { exponentSelect, floorLog2 } from './fp8.js';

/** MXFP4 has no parameters: block 32, E2M1 elements and E8M0 scales are fixed by the spec. */
export interface Mxfp4Params {
  readonly [key: string]: number | string | boolean;
}

export const MX_BLOCK = 32;
/** E2M1 magnitudes by 3-bit magnitude code. */
export const E2M1_VALUES: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
/** emax of E2M1 (6 = 1.5 * 2^2). */
const EMAX_ELEM = 2;

/**
 * Round-to-nearest-even decision points between adjacent magnitudes: x above `t` (or at it, when
 * `up`: the upper neighbour has the even code) moves up one code.
 */
const THRESHOLDS: readonly { t: number; up: boolean }[] = [
  { t: 0.25, up: false }, { t: 0.75, up: true }, { t: 1.25, up: false }, { t: 1.75, up: true },
  { t: 2.5, up: false }, { t: 3.5, up: true }, { t: 5, up: false },
];

/** The E2M1 value of a 4-bit code. */
export const decodeE2M1 = (code: number): number => (code & 8 ? -1 : 1) * E2M1_VALUES[code & 7]!;

/** The E2M1 code of x: nearest value, ties to even, saturating at ±6; -0 keeps its sign. */
export function encodeE2M1(x: number): number {
  const a = Math.abs(x);
  let m = 0;
  for (const { t, up } of THRESHOLDS) if (a > t || (up && a === t)) m++;
  return (x < 0 || Object.is(x, -0) ? 8 : 0) | m;
}

/** The scale of a block with absolute maximum absmax, as its E8M0 code (X + 127). */
export function e8m0Code(absmax: number): number {
  if (!(absmax > 0)) return 0;
  return Math.min(Math.max(floorLog2(absmax) - EMAX_ELEM, -127), 127) + 127;
}

/** 2^(e - 127), NaN at 255. */
export const decodeE8M0 = (e: number): number => (e === 255 ? NaN : 2 ** (e - 127));

function check(p: Mxfp4Params, N: number, K: number): void {
  const extra = Object.keys(p);
  if (extra.length) fail('E_ARG', `mxfp4 format: takes no parameters (blocks of ${MX_BLOCK}, E2M1 elements and E8M0 scales are fixed by OCP MX v1.0), got '${extra.join("', '")}'`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `mxfp4 format: bad matrix shape [${N}, ${K}]`);
}

const tables = (): Record<string, QBuffer> => ({
  lut: { dtype: 'f32', shape: [16], data: Float32Array.from({ length: 16 }, (_, c) => decodeE2M1(c)) },
  exp_lut: { dtype: 'f32', shape: [256], data: Float32Array.from({ length: 256 }, (_, e) => decodeE8M0(e)) },
});

/** Builds a QuantizedMatrix from E2M1 codes [N, K] and E8M0 codes [N, G]. */
export function mxfp4Matrix(N: number, K: number, codes: ArrayLike<number>, scaleCodes: ArrayLike<number>): QuantizedMatrix {
  check({}, N, K);
  const G = Math.ceil(K / MX_BLOCK);
  if (scaleCodes.length !== N * G) fail('E_SHAPE', `mxfp4 format: ${scaleCodes.length} scales for [${N}, ${G}] blocks`);
  return {
    format: 'mxfp4', N, K, params: {},
    buffers: {
      codes: { dtype: 'u32', shape: [N, wordsPerRow(K, 4)], data: packCodes(codes, N, K, 4) },
      scales: { dtype: 'u32', shape: [N, wordsPerRow(G, 8)], data: packCodes(scaleCodes, N, G, 8) },
      ...tables(),
    },
  };
}

export const mxfp4Format: Format<Mxfp4Params> = {
  name: 'mxfp4',

  quantize(w, N, K, p) {
    checkWeights('mxfp4', w, N, K);
    check(p, N, K);
    const scales = new Uint32Array(N * Math.ceil(K / MX_BLOCK));
    const codes = quantizeBlocks(w, N, K, MX_BLOCK, scales, (a) => {
      const e = e8m0Code(a);
      const inv = 2 ** (127 - e);
      return {
        scale: e,
        code: (x) => {
          const v = x * inv; // exact: a power-of-two scaling
          return encodeE2M1(v === 0 ? 0 : v); // -0 encodes as +0, as on the device
        },
      };
    });
    return mxfp4Matrix(N, K, codes, scales);
  },

  dequantize(q) {
    const { N, K } = q;
    const G = Math.ceil(K / MX_BLOCK);
    const codes = unpackCodes(q.buffers['codes']!.data as Uint32Array, N, K, 4);
    const scales = unpackCodes(q.buffers['scales']!.data as Uint32Array, N, G, 8);
    const lut = q.buffers['lut']!.data;
    const exp = q.buffers['exp_lut']!.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[n * K + k] = lut[codes[n * K + k]!]! * exp[scales[n * G + Math.floor(k / MX_BLOCK)]!]!;
    return out;
  },

  bitsPerWeight: totalBitsPerWeight,

  specs: bufferSpecs,

  access(h, q, prefix = '') {
    const codes = h[prefix + 'codes']!;
    const scales = h[prefix + 'scales']!;
    const lut = h[prefix + 'lut']!;
    const exp = h[prefix + 'exp_lut']!;
    return compute([q.N, q.K], (n: IndexExpr, k: IndexExpr) => {
      const code = codes.at(n, k.div(8)).shr(k.mod(8).mul(4).cast('u32')).bitand(15).cast('i32');
      const gi = k.div(MX_BLOCK);
      const e = scales.at(n, gi.div(4)).shr(gi.mod(4).mul(8).cast('u32')).bitand(255).cast('i32');
      return lut.at(code).mul(exp.at(e));
    });
  },

  rtnKernel(N, K, p) {
    check(p, N, K);
    const G = Math.ceil(K / MX_BLOCK);
    return kernel('rtn_mxfp4', { w: tensor('f32', [N, K]) }, ({ w }) => {
      // 2^-X per block, X = clamp(floor(log2(absmax)) - 2, -127, 127): one reduction compute, so it
      // is materialized once per block (2^-X spans 2^-125 .. 2^127, all normal f32)
      const inv = compute([N, G], (n, gi) => {
        const amax = reduceMax(MX_BLOCK, (j) => {
          const k = gi.mul(MX_BLOCK).add(j);
          return select(k.lt(K), w.at(n, k.min(K - 1)).abs(), lit(0));
        });
        return exponentSelect(amax, -125, 127, (e) => lit(2 ** (EMAX_ELEM - e)));
      });
      // e = X + 127 = 127 - log2(2^-X), read off the exact power of two
      const ecode = (n: IndexExpr, gi: IndexExpr) => exponentSelect(inv.at(n, gi), -125, 127, (e) => lit(127 - e, 'u32'));
      const code = (n: IndexExpr, k: IndexExpr) => {
        const x = w.at(n, k).mul(inv.at(n, k.div(MX_BLOCK)));
        const a = x.abs();
        const mag = THRESHOLDS.map(({ t, up }) => (up ? a.ge(lit(t)) : a.gt(lit(t))).cast('u32')).reduce((s, b) => s.add(b));
        return mag.bitor(select(x.lt(lit(0)), lit(8, 'u32'), lit(0, 'u32')));
      };
      return { codes: packCodesDSL(N, K, 4, code, 8), scales: packCodesDSL(N, G, 8, ecode, 4) };
    });
  },

  fromDevice(out, N, K, p) {
    return {
      format: 'mxfp4', N, K, params: { ...p },
      buffers: {
        codes: { dtype: 'u32', shape: [...out['codes']!.shape], data: out['codes']!.data },
        scales: { dtype: 'u32', shape: [...out['scales']!.shape], data: out['scales']!.data },
        ...tables(),
      },
    };
  },

  errorBound(q, w) {
    // x = w / 2^X has |x| < 8: within [0, 6] the nearest E2M1 value is at most half the local gap
    // away; above 6 it saturates (error |x| - 6, up to a quarter of the block's absmax).
    const { N, K } = q;
    const G = Math.ceil(K / MX_BLOCK);
    const scales = unpackCodes(q.buffers['scales']!.data as Uint32Array, N, G, 8);
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const s = decodeE8M0(scales[n * G + Math.floor(k / MX_BLOCK)]!);
        const a = Math.abs(w[n * K + k]!) / s;
        let j = 0;
        while (j < 6 && E2M1_VALUES[j + 1]! < a) j++;
        const half = (E2M1_VALUES[j + 1]! - E2M1_VALUES[j]!) / 2;
        out[n * K + k] = s * (half + Math.max(0, a - 6)) + 1e-12 * s;
      }
    }
    return out;
  },
};
