/**
 * FP8 weights (OCP 8-bit floating point): E4M3 (bias 7, max 448, no infinities, NaN = S.1111.111)
 * and E5M2 (bias 15, max 57344, IEEE-style infinities S.11111.00 and NaNs S.11111.{01,10,11}), with
 * one f32 scale per block of `block` weights along K (0: one per row, per-channel).
 *
 * Storage:
 *   `codes`  u32 [N, ceil(K / 4)]  8-bit codes, packed as in ../types.ts (4 per word)
 *   `scales` f32 [N, G]            G = ceil(K / block); scale = absmax / maxFinite (1 for an all-zero
 *                                  block). f32, not f16: E5M2 scales (absmax / 57344) underflow f16.
 *   `lut`    f32 [256]             decodeFp8 of every code (a constant table; NaN codes hold NaN,
 *                                  E5M2 infinities hold ±Infinity; the quantizer never emits either)
 * Dequantization: w = lut[code] * scales[n, k / block].
 * Quantization: code = encodeFp8(w / scale): round to nearest, ties to even, saturating to ±maxFinite
 * (so a finite weight never encodes to an infinity or NaN). The DSL quantizer finds the exponent with
 * a balanced tree of comparisons against exact powers of two (`exponentSelect`), never log2, so it is
 * exact on every backend.
 * Bits per weight: 8 (codes) + 32 / block (scales) + 256 * 32 / (N * K) (the table): every buffer counts.
 */
import { packCodesDSL } from '../pack-dsl.js';
import { compute, lit, reduceMax, select, type IndexExpr } from '../../dsl/compute.js';
import { kernel, tensor } from '../../dsl/kernel.js';
import { fail } from '../../errors.js';
import { bufferSpecs, quantizeBlocks, checkWeights, lutDequantize, packCodes, totalBitsPerWeight, wordsPerRow, type Format, type QBuffer, type QuantizedMatrix } from '../types.js';

export type Fp8Variant = 'e4m3' | 'e5m2';

export interface Fp8Params {
  readonly [key: string]: number | string | boolean;
  readonly variant: Fp8Variant;
  /** Block size along K (default 128); 0 means one scale per row. */
  readonly block: number;
}

export interface Fp8Spec {
  readonly mbits: number;
  readonly bias: number;
  /** Exponent of the smallest normal (1 - bias). */
  readonly emin: number;
  /** Exponent of the largest finite value. */
  readonly emax: number;
  /** Largest finite magnitude. */
  readonly max: number;
}

export const FP8: Readonly<Record<Fp8Variant, Fp8Spec>> = {
  e4m3: { mbits: 3, bias: 7, emin: -6, emax: 8, max: 448 },
  e5m2: { mbits: 2, bias: 15, emin: -14, emax: 15, max: 57344 },
};

/** The canonical NaN code (S.1111.111 in E4M3, S.11111.11 in E5M2). */
export const FP8_NAN = 0x7f;

/** floor(log2(a)) for a > 0, exact (Math.log2 can be off by one near powers of two). */
export function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/** The value of an FP8 code (0..255). */
export function decodeFp8(byte: number, variant: Fp8Variant): number {
  const { mbits, bias, emin } = FP8[variant];
  const sign = byte & 0x80 ? -1 : 1;
  const ef = (byte & 0x7f) >> mbits;
  const m = byte & ((1 << mbits) - 1);
  if (variant === 'e4m3' && ef === 15 && m === 7) return NaN;
  if (variant === 'e5m2' && ef === 31) return m === 0 ? sign * Infinity : NaN;
  if (ef === 0) return sign * m * 2 ** (emin - mbits);
  return sign * (1 + m / 2 ** mbits) * 2 ** (ef - bias);
}

/**
 * The FP8 code of x: round to nearest, ties to even, saturating finite overflow to ±max. NaN gives
 * FP8_NAN; ±Infinity gives E5M2's infinity and E4M3's ±max (it has none). -0 keeps its sign bit.
 */
export function encodeFp8(x: number, variant: Fp8Variant): number {
  const { mbits, bias, emin, emax, max } = FP8[variant];
  if (Number.isNaN(x)) return FP8_NAN;
  const s = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  if (variant === 'e5m2' && Math.abs(x) === Infinity) return s | 0x7c;
  const a = Math.min(Math.abs(x), max);
  const e = a > 0 ? Math.min(Math.max(floorLog2(a), emin), emax) : emin;
  const m = a * 2 ** (mbits - e); // in [0, 2^(mbits+1)): exact in float64
  const f = Math.floor(m);
  const rem = m - f;
  const r = rem > 0.5 || (rem === 0.5 && f % 2 === 1) ? f + 1 : f;
  // ((e + bias - 1) << mbits) + r: r's leading bit adds the implicit one, and a carry out of the
  // mantissa (r == 2^(mbits+1)) lands in the exponent, so subnormals and rounding up need no cases.
  return s | (((e + bias - 1) << mbits) + r);
}

/**
 * A balanced tree of selects on `a >= 2^t`: `leaf(e)` where e = clamp(floor(log2(a)), lo, hi) (lo
 * when a < 2^(lo+1), including 0). Thresholds are exact f32 powers of two (lo + 1 >= -125), so the
 * result is exact on every backend; with hi - lo comparisons and depth log2(hi - lo + 1).
 */
export function exponentSelect(a: IndexExpr, lo: number, hi: number, leaf: (e: number) => IndexExpr): IndexExpr {
  if (lo < -126 || hi > 127) fail('E_ARG', `exponentSelect: [${lo}, ${hi}] is outside f32's normal exponents`);
  const rec = (l: number, h: number): IndexExpr => {
    if (l === h) return leaf(l);
    const mid = Math.floor((l + h + 1) / 2);
    return select(a.ge(lit(2 ** mid)), rec(mid, h), rec(l, mid - 1));
  };
  return rec(lo, hi);
}

/**
 * encodeFp8 as a DSL expression on an f32 value x (whose sign is taken from x < 0, so -0 encodes as +0).
 * Returns the u32 code.
 */
export function encodeFp8Expr(x: IndexExpr, variant: Fp8Variant): IndexExpr {
  const { mbits, bias, emin, emax, max } = FP8[variant];
  const a = x.abs().min(lit(max));
  const inv = exponentSelect(a, emin, emax, (e) => lit(2 ** (mbits - e)));
  const base = exponentSelect(a, emin, emax, (e) => lit((e + bias - 1) << mbits, 'u32'));
  const m = a.mul(inv); // exact: a power-of-two scaling into [0, 2^(mbits+1))
  const f = m.un('floor');
  const rem = m.sub(f);
  const fu = f.cast('u32');
  const up = rem.gt(lit(0.5)).or(rem.eq(lit(0.5)).and(fu.bitand(1).eq(lit(1, 'u32'))));
  const r = fu.add(select(up, lit(1, 'u32'), lit(0, 'u32')));
  return base.add(r).bitor(select(x.lt(lit(0)), lit(0x80, 'u32'), lit(0, 'u32')));
}

const BITS = 8;
const PER = 4;

export const fp8BlockSize = (p: Pick<Fp8Params, 'block'>, K: number): number => (p.block > 0 ? p.block : K);

function check(p: Fp8Params, N: number, K: number): void {
  if (p.variant !== 'e4m3' && p.variant !== 'e5m2') fail('E_ARG', `fp8 format: variant must be 'e4m3' or 'e5m2', got '${String(p.variant)}'`);
  if (!Number.isInteger(p.block) || p.block < 0) fail('E_ARG', `fp8 format: block must be a non-negative integer, got ${p.block}`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `fp8 format: bad matrix shape [${N}, ${K}]`);
}

/** The 256-entry decode table of a variant. */
export const fp8Table = (variant: Fp8Variant): Float32Array => Float32Array.from({ length: 256 }, (_, c) => decodeFp8(c, variant));

const lutBuffer = (variant: Fp8Variant): QBuffer => ({ dtype: 'f32', shape: [256], data: fp8Table(variant) });

/** The scale of a block with absolute maximum `absmax`, as stored (f32). */
export const fp8Scale = (absmax: number, variant: Fp8Variant): number => (absmax > 0 ? Math.fround(absmax / FP8[variant].max) : 1);

/** Builds a QuantizedMatrix from codes [N, K] (bytes) and scales [N, G]. */
export function fp8Matrix(p: Fp8Params, N: number, K: number, codes: ArrayLike<number>, scales: ArrayLike<number>): QuantizedMatrix {
  check(p, N, K);
  const G = Math.ceil(K / fp8BlockSize(p, K));
  if (scales.length !== N * G) fail('E_SHAPE', `fp8 format: ${scales.length} scales for [${N}, ${G}] blocks`);
  return {
    format: 'fp8', N, K, params: { ...p },
    buffers: {
      codes: { dtype: 'u32', shape: [N, wordsPerRow(K, BITS)], data: packCodes(codes, N, K, BITS) },
      scales: { dtype: 'f32', shape: [N, G], data: Float32Array.from(scales) },
      lut: lutBuffer(p.variant),
    },
  };
}

export const fp8Format: Format<Fp8Params> = {
  name: 'fp8',

  quantize(w, N, K, p) {
    checkWeights('fp8', w, N, K);
    check(p, N, K);
    const g = fp8BlockSize(p, K);
    const scales = new Float32Array(N * Math.ceil(K / g));
    const codes = quantizeBlocks(w, N, K, g, scales, (a) => {
      const s = fp8Scale(a, p.variant);
      return {
        scale: s,
        code: (x) => {
          const v = x / s;
          return encodeFp8(v === 0 ? 0 : v, p.variant); // -0 encodes as +0, as on the device
        },
      };
    });
    return fp8Matrix(p, N, K, codes, scales);
  },

  dequantize(q) {
    return lutDequantize(q, BITS, fp8BlockSize(q.params as Fp8Params, q.K), 'scales');
  },

  bitsPerWeight: totalBitsPerWeight,

  specs: bufferSpecs,

  access(h, q, prefix = '') {
    const g = fp8BlockSize(q.params as Fp8Params, q.K);
    const codes = h[prefix + 'codes']!;
    const scales = h[prefix + 'scales']!;
    const lut = h[prefix + 'lut']!;
    return compute([q.N, q.K], (n: IndexExpr, k: IndexExpr) => {
      const code = codes.at(n, k.div(PER)).shr(k.mod(PER).mul(BITS).cast('u32')).bitand(255).cast('i32');
      return lut.at(code).mul(scales.at(n, k.div(g)));
    });
  },

  rtnKernel(N, K, p) {
    check(p, N, K);
    const g = fp8BlockSize(p, K);
    const G = Math.ceil(K / g);
    const { max } = FP8[p.variant];
    return kernel(`rtn_fp8_${p.variant}`, { w: tensor('f32', [N, K]) }, ({ w }) => {
      const amax = compute([N, G], (n, gi) =>
        reduceMax(g, (j) => {
          const k = gi.mul(g).add(j);
          return select(k.lt(K), w.at(n, k.min(K - 1)).abs(), lit(0));
        }),
      );
      const scales = compute([N, G], (n, gi) => select(amax.at(n, gi).gt(lit(0)), amax.at(n, gi).div(lit(max)), lit(1)));
      const code = (n: IndexExpr, k: IndexExpr) => encodeFp8Expr(w.at(n, k).div(scales.at(n, k.div(g))), p.variant);
      const codes = packCodesDSL(N, K, BITS, code, PER);
      return { codes, scales };
    });
  },

  fromDevice(out, N, K, p) {
    return {
      format: 'fp8', N, K, params: { ...p },
      buffers: {
        codes: { dtype: 'u32', shape: [...out['codes']!.shape], data: out['codes']!.data },
        scales: { dtype: 'f32', shape: [...out['scales']!.shape], data: out['scales']!.data },
        lut: lutBuffer(p.variant),
      },
    };
  },

  errorBound(q, w) {
    // |x| <= max(1 + tiny) after scaling; round to nearest is within half a quantum of x, the quantum
    // being 2^(e - mbits) at x's exponent (clamped to the subnormal range); saturation adds at most
    // the f32 rounding of the scale (|x| exceeds max by a few ulps at most).
    const p = q.params as Fp8Params;
    const { mbits, emin, max } = FP8[p.variant];
    const { N, K } = q;
    const g = fp8BlockSize(p, K);
    const G = Math.ceil(K / g);
    const s = q.buffers['scales']!.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const sc = s[n * G + Math.floor(k / g)]!;
        const a = Math.abs(w[n * K + k]! / sc);
        const e = a > 0 ? Math.max(floorLog2(Math.min(a, max)), emin) : emin;
        out[n * K + k] = sc * (2 ** (e - mbits) / 2 + Math.max(0, a - max)) + 1e-6 * sc;
      }
    }
    return out;
  },
};

/** FP8 parameters: E4M3 with a scale per 128 weights by default. */
export const fp8Preset = (variant: Fp8Variant = 'e4m3', block = 128): Fp8Params => ({ variant, block });
