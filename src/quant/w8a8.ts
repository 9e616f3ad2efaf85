/**
 * W8A8: int8 weights and int8 activations, with an integer GEMM.
 *
 * Weights: per-channel symmetric int8. Row n of W[N, K] has scale sw[n] = max_k |W[n, k]| / 127 and
 * codes q = clamp(round(W / sw), -127, 127) (round half away from zero), stored as signed int8 packed
 * four to a u32 along K: code k of a row in word floor(k / 4), bits 8(k % 4)..8(k % 4)+7, two's
 * complement (the int format stores unsigned offset codes; this packing is what dot4i8 reads). Rows
 * have ceil(K / 4) words; lanes past K are 0, so they add nothing to a dot product.
 *
 * Activations are quantized per token at run time, inside the same DSL program:
 *   sx[m]      = max_k |x[m, k]| / 127                       (1 for an all-zero row)
 *   xq[m, kw]  = the four codes clamp(round(x[m, k] / sx[m]), -127, 127), k = 4kw..4kw+3, packed as above
 *   y[m, n]    = f32(Σ_kw dot4i8(xq[m, kw], wq[n, kw])) · sx[m] · sw[n]   (i32 accumulation)
 * The program compiles to three kernels (row absmax, pack, integer dot) or, with `fusePack`, to two
 * (the pack is recomputed inside the dot kernel's loop instead of written to memory).
 *
 * The host side here is the oracle: `w8a8QuantizeActivations` mirrors the device's f32 steps, and
 * `w8a8Reference` does the integer arithmetic exactly and applies the scales in float64, so a
 * backend's result equals it up to the f32 rounding of the final scale multiply. `w8a8ErrorBound`
 * bounds the distance to the unquantized float linear layer from the two int8 roundings.
 */
import { compute, lit, reduceMax, reduceSum, select, type IndexExpr } from '../dsl/compute.js';
import { dim, kernel, tensor, type KernelDef } from '../dsl/kernel.js';
import type { Tensor } from '../dsl/tensor.js';
import type { Dim } from '../ir/dims.js';
import { fail } from '../errors.js';
import type { HostTensor } from '../runtime/execute.js';
import { f16Round } from '../runtime/f16.js';

/** The largest int8 code magnitude (symmetric: -128 is never produced). */
export const INT8_MAX = 127;

/** u32 words per row of K int8 codes. */
export const int8Words = (K: number): number => Math.ceil(K / 4);

/** Packs signed int8 codes [N, K] (each in -128..127) into u32 words [N, ceil(K / 4)], two's complement, lane k % 4. */
export function packInt8(codes: ArrayLike<number>, N: number, K: number): Uint32Array {
  const W = int8Words(K);
  const out = new Uint32Array(N * W);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const c = codes[n * K + k]!;
      if (!Number.isInteger(c) || c < -128 || c > 127) fail('E_ARG', `code ${c} at [${n}, ${k}] is not an int8`);
      const wi = n * W + (k >> 2);
      out[wi] = (out[wi]! | ((c & 255) << ((k & 3) * 8))) >>> 0;
    }
  }
  return out;
}

/** Inverse of packInt8 (lanes past K are ignored). */
export function unpackInt8(words: Uint32Array, N: number, K: number): Int8Array {
  const W = int8Words(K);
  const out = new Int8Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[n * K + k] = (words[n * W + (k >> 2)]! << (24 - (k & 3) * 8)) >> 24;
  return out;
}

/** Round half away from zero. */
const roundAway = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));
const clampCode = (v: number): number => Math.min(Math.max(v, -INT8_MAX), INT8_MAX);

export interface W8A8Weights {
  readonly N: number;
  readonly K: number;
  /** Codes [N, ceil(K / 4)] (packInt8). */
  readonly wq: Uint32Array;
  /** Per-row scales [N] (f16-representable when quantized with `scale: 'f16'`). */
  readonly sw: Float32Array;
}

export interface W8A8Options {
  /** Round the weight scales to f16 (what a checkpoint storing f16 scales holds); default 'f32'. */
  readonly scale?: 'f32' | 'f16';
}

/** Per-channel symmetric int8 quantization of W[N, K] on the host (float64, codes from the stored scale). */
export function w8a8QuantizeWeights(w: ArrayLike<number>, N: number, K: number, opts: W8A8Options = {}): W8A8Weights {
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `w8a8: bad weight shape [${N}, ${K}]`);
  if (w.length !== N * K) fail('E_SHAPE', `w8a8: ${w.length} weights for [${N}, ${K}]`);
  const round = opts.scale === 'f16' ? f16Round : Math.fround;
  const sw = new Float32Array(N);
  const codes = new Int8Array(N * K);
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(w[n * K + k]!));
    const s = round(amax / INT8_MAX);
    sw[n] = s > 0 ? s : 1;
    for (let k = 0; k < K; k++) codes[n * K + k] = clampCode(roundAway(w[n * K + k]! / sw[n]!));
  }
  return { N, K, wq: packInt8(codes, N, K), sw };
}

/** The dense W the weights stand for, sw[n] · q[n, k], in float64. */
export function w8a8DequantizeWeights(q: W8A8Weights): Float64Array {
  const codes = unpackInt8(q.wq, q.N, q.K);
  return Float64Array.from(codes, (c, i) => c * q.sw[Math.floor(i / q.K)]!);
}

export interface QuantizedActivations {
  /** Per-token scales [M] (f32 values). */
  readonly sx: Float32Array;
  /** Codes [M, K]. */
  readonly codes: Int8Array;
  /** Packed codes [M, ceil(K / 4)]. */
  readonly xq: Uint32Array;
}

/**
 * Per-token activation quantization as the DSL program does it, step by step in f32: sx = f32(amax / 127),
 * v = f32(x / sx), code = clamp(round half away from zero of v). A backend's f32 division may differ
 * from this in the last bit, which changes a code only when v is within an ulp of a rounding tie.
 */
export function w8a8QuantizeActivations(x: ArrayLike<number>, M: number, K: number): QuantizedActivations {
  if (x.length !== M * K) fail('E_SHAPE', `w8a8: ${x.length} activations for [${M}, ${K}]`);
  const sx = new Float32Array(M);
  const codes = new Int8Array(M * K);
  for (let m = 0; m < M; m++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(Math.fround(x[m * K + k]!)));
    sx[m] = amax > 0 ? Math.fround(amax / INT8_MAX) : 1;
    for (let k = 0; k < K; k++) {
      const v = Math.fround(Math.fround(x[m * K + k]!) / sx[m]!);
      const r = v < 0 ? -Math.floor(Math.fround(-v + 0.5)) : Math.floor(Math.fround(v + 0.5));
      codes[m * K + k] = clampCode(r);
    }
  }
  return { sx, codes, xq: packInt8(codes, M, K) };
}

/**
 * The W8A8 linear layer y[M, N] on the host: the exact integer dot products of the codes, times
 * sx[m] · sw[n] in float64.
 */
export function w8a8Reference(x: ArrayLike<number>, q: W8A8Weights, M: number): Float64Array {
  const { N, K } = q;
  const a = w8a8QuantizeActivations(x, M, K);
  const wc = unpackInt8(q.wq, N, K);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a.codes[m * K + k]! * wc[n * K + k]!;
      out[m * N + n] = acc * a.sx[m]! * q.sw[n]!;
    }
  }
  return out;
}

/** Most one element moves when rounded to the grid of step s with codes clamped to ±127 (amax: the row's largest |value|). */
function roundingError(amax: number, s: number): number {
  return Math.max(s / 2, amax - INT8_MAX * s) + 1e-6 * amax;
}

/**
 * A worst-case bound on |y_w8a8[m, n] - (x W^T)[m, n]| from quantizing both operands: with
 * x = x̂ + ex and w = ŵ + ew (|ex| <= εx[m], |ew| <= εw[n], each half a step unless clamping costs
 * more), x w - x̂ ŵ = ex w + x̂ ew, so the error is at most Σ_k εx |w[n, k]| + (|x[m, k]| + εx) εw,
 * plus 1e-5 of Σ_k |x w| for f32 arithmetic (scales, the final multiply).
 */
export function w8a8ErrorBound(x: ArrayLike<number>, w: ArrayLike<number>, q: W8A8Weights, M: number): Float64Array {
  const { N, K } = q;
  const a = w8a8QuantizeActivations(x, M, K);
  const ex = new Float64Array(M);
  const ew = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(x[m * K + k]!));
    ex[m] = roundingError(amax, a.sx[m]!);
  }
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(w[n * K + k]!));
    ew[n] = roundingError(amax, q.sw[n]!);
  }
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let b = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const xv = Math.abs(x[m * K + k]!);
        const wv = Math.abs(w[n * K + k]!);
        b += ex[m]! * wv + (xv + ex[m]!) * ew[n]!;
        mag += xv * wv;
      }
      out[m * N + n] = b + 1e-5 * mag;
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// The DSL program

/** round half away from zero, then clamp to ±127, as i32; `v` is f32. */
function int8Code(v: IndexExpr): IndexExpr {
  const r = select(v.lt(lit(0)), v.neg().add(lit(0.5)).un('floor').neg(), v.add(lit(0.5)).un('floor'));
  return r.max(lit(-INT8_MAX)).min(lit(INT8_MAX)).cast('i32');
}

export interface W8A8Activations {
  /** Per-token scales [M], f32. */
  readonly sx: Tensor;
  /** Packed codes [M, ceil(K / 4)], u32. */
  readonly xq: Tensor;
}

/**
 * Per-token int8 quantization of x [M, K] in the DSL: the row absmax scale and the packed codes.
 * `fusePack` writes the pack without a reduction, so fusion inlines it into its consumer rather than
 * materializing it (fewer kernels, but the pack is recomputed wherever xq is read).
 */
export function w8a8QuantizeActivationsDSL(x: Tensor, K: number, fusePack = false): W8A8Activations {
  const M = x.shape[0]!;
  const KW = int8Words(K);
  const sx = compute([M], (m) => {
    const amax = reduceMax(K, (k) => x.at(m, k).abs());
    return select(amax.gt(lit(0)), amax.div(lit(INT8_MAX)), lit(1));
  });
  // lane j of word kw: the two's-complement byte of code (m, 4kw + j), shifted into place; 0 past K
  const lane = (m: IndexExpr, kw: IndexExpr, j: IndexExpr | number): IndexExpr => {
    const k = kw.mul(4).add(j);
    const code = int8Code(x.at(m, k.min(K - 1)).div(sx.at(m))).bitand(255).cast('u32');
    const shifted = typeof j === 'number' ? (j === 0 ? code : code.shl(lit(8 * j, 'u32'))) : code.shl(j.mul(8).cast('u32'));
    // only lanes of the last word can fall past K
    const mayOverflow = typeof j === 'number' ? K % 4 !== 0 && j >= K % 4 : K % 4 !== 0;
    return mayOverflow ? select(k.lt(K), shifted, lit(0, 'u32')) : shifted;
  };
  const xq = fusePack
    ? compute([M, KW], (m, kw) => lane(m, kw, 0).bitor(lane(m, kw, 1)).bitor(lane(m, kw, 2)).bitor(lane(m, kw, 3)))
    : compute([M, KW], (m, kw) => reduceSum(4, (j) => lane(m, kw, j)));
  return { sx, xq };
}

export interface W8A8KernelOptions {
  readonly name?: string;
  /** Inline the activation pack into the dot kernel (two kernels instead of three). */
  readonly fusePack?: boolean;
}

/**
 * `y[M, N] = x[M, K] · W^T` with W8A8: inputs x f32 [M, K], wq u32 [N, ceil(K / 4)] (packInt8 codes),
 * sw f32 [N]; output `out` f32 [M, N]. M may be a number or the name of a symbolic dim.
 */
export function w8a8LinearKernel(N: number, K: number, M: number | string, opts: W8A8KernelOptions = {}): KernelDef {
  const KW = int8Words(K);
  const m: Dim = typeof M === 'string' ? dim(M) : M;
  const params = { x: tensor('f32', [m, K]), wq: tensor('u32', [N, KW]), sw: tensor('f32', [N]) };
  return kernel(opts.name ?? 'w8a8_linear', params, ({ x, wq, sw }) => {
    const { sx, xq } = w8a8QuantizeActivationsDSL(x, K, opts.fusePack === true);
    return compute([m, N], (i, n) =>
      reduceSum(KW, (kw) => xq.at(i, kw).dot4i8(wq.at(n, kw))).cast('f32').mul(sx.at(i)).mul(sw.at(n)),
    );
  });
}

/** The activation quantization alone, as a program: outputs `sx` f32 [M] and `xq` u32 [M, ceil(K / 4)]. */
export function w8a8ActivationKernel(K: number, M: number | string, name = 'w8a8_quantize_x'): KernelDef {
  const m: Dim = typeof M === 'string' ? dim(M) : M;
  return kernel(name, { x: tensor('f32', [m, K]) }, ({ x }) => {
    const { sx, xq } = w8a8QuantizeActivationsDSL(x, K);
    return { sx, xq };
  });
}

/** Host inputs for w8a8LinearKernel. */
export function w8a8Inputs(q: W8A8Weights, x: Float32Array, M: number): Record<string, HostTensor> {
  return {
    x: { shape: [M, q.K], data: x },
    wq: { shape: [q.N, int8Words(q.K)], data: q.wq },
    sw: { shape: [q.N], data: q.sw },
  };
}

/** Storage bits per weight: 8 for the codes (plus padding of a ragged K) and 32 per row for the scale. */
export function w8a8BitsPerWeight(q: W8A8Weights): number {
  return (q.wq.length * 32 + q.sw.length * 32) / (q.N * q.K);
}
