/**
 * VPTQ (Liu et al., "VPTQ: Extreme Low-bit Vector Post-Training Quantization for Large Language
 * Models", arXiv 2409.17066): vector quantization with codebooks, the format only. The quantizer
 * that fills it from calibration data (Hessian-weighted k-means, channel-independent second-order
 * update, residual codebook) is ../vptq.ts; `quantize`/`rtnKernel` here are the plain baseline.
 *
 * Layout. W is [N, K] (N outputs, K inputs). After an optional column permutation (VPTQ sorts the
 * inputs by diag(H) descending), the first `outliers` columns are the outlier segment and the rest
 * (Km = K − outliers) the main segment. Vectors run along the OUTPUT dim within one column: vector
 * (i, j) of the main segment is Wp[i·v + t, outliers + j] for t < v, i < R = ceil(N / v). Ragged N
 * (N not a multiple of v): the last vector row is padded with zeros when quantizing and the padded
 * entries are never read back (the access function only asks for n < N).
 *
 *   idx     u32 [R, ceil(Km / per(b))]    main codes, b = log2(k) bits, packed along the column axis
 *                                         as ../types.ts packs along K (row i = vector row i)
 *   cb      f16 [k, v]                    main codebook (f16, as VPTQ stores centroids)
 *   ridx    u32 [R, ceil(Km / per(br))]   residual codes, br = log2(kRes)        (kRes > 0)
 *   rcb     f16 [kRes, v]                 residual codebook                      (kRes > 0)
 *   oidx    u32 [R0, ceil(O / per(b0))]   outlier codes, R0 = ceil(N / v0),
 *                                         b0 = log2(k0)                          (outliers > 0)
 *   ocb     f16 [k0, v0]                  outlier codebook                       (outliers > 0)
 *   invperm i32 [K]                       column k of W is column invperm[k] of Wp (perm)
 *   scale   f16 [K], bias f16 [K]         per input column (VPTQ enable_norm)    (norm)
 *
 * Dequantization (the reference `dequant()` order: codebooks → concat outliers → inverse perm on
 * columns → W·scale + bias per column):
 *   j = perm ? invperm[k] : k
 *   Wp[n, j] = j < O ? ocb[oidx[n / v0, j]][n % v0]
 *                    : cb[idx[n / v, j − O]][n % v] + (kRes ? rcb[ridx[n / v, j − O]][n % v] : 0)
 *   W[n, k]  = norm ? Wp[n, j]·scale[k] + bias[k] : Wp[n, j]
 * (VPTQ's shipped format merges main and residual codes into one bitstream and supports several
 * codebook groups; here they are separate buffers and there is one group.)
 *
 * Fusion into `matmul(x, access(W).T)` (../../passes/fuse.ts: decode cost per element <= 40, and
 * at most 8 bindings per kernel counting x and the output). Access cost: 11 for the main codebook,
 * +12 residual, +2 perm, +7 norm, +19 outliers. One kernel: the main codebook alone or with one of
 * residual / outliers / perm / norm, and the pairs residual + perm, residual + norm, perm + norm,
 * outliers + perm, outliers + norm. Not one kernel: residual + outliers (cost 46), and the triples
 * (9-11 bindings): fusion then materializes the permuted decode (the access is two compute nodes
 * so that this compiles) and the product takes 2-3 kernels.
 *
 * Baseline quantizer (`quantize` on the host in float64, `rtnKernel` the same algorithm as one DSL
 * program): per input column, with norm, bias = mean_n W[n, k] and scale = RMS of W[:, k] − bias
 * (population; 1 when 0), both rounded to f16 before normalising; with perm, columns are sorted by
 * ‖W[:, k]‖² descending (ties by index) — the no-calibration stand-in for diag(H); then plain
 * unweighted k-means (Lloyd) per segment: `iters` iterations from a seeded, deterministic "random"
 * init (centroid c starts at vector (c·stride + seed) mod #vectors, stride coprime to #vectors),
 * empty clusters keep their centroid; the codebook is rounded to f16 and every vector assigned to
 * its nearest f16 centroid; with kRes, k-means again on the residuals x − cb[code]. The DSL program
 * unrolls the iterations (assignment = distances + argmin, update = one-hot matmul / counts), so it
 * needs only `w` and runs on any backend; f32 arithmetic there can round a near-tie or an f16
 * centroid the other way, so it agrees with the host closely but not bit for bit.
 */
import { packCodesDSL } from '../pack-dsl.js';
import { compute, lit, reduceSum, select, type IndexExpr } from '../../dsl/compute.js';
import { kernel, tensor } from '../../dsl/kernel.js';
import { argmin, matmul } from '../../dsl/ops.js';
import type { Tensor } from '../../dsl/tensor.js';
import type { Dim } from '../../ir/dims.js';
import { f16Round } from '../../runtime/f16.js';
import { fail } from '../../errors.js';
import { bufferSpecs, checkWeights, packCodes, perWord, totalBitsPerWeight, unpackCodes, wordsPerRow, type Format, type QBuffer, type QuantizedMatrix } from '../types.js';

export interface VptqParams {
  readonly [key: string]: number | string | boolean;
  /** Vector length along the output dim (>= 1). */
  readonly v: number;
  /** Main codebook size, a power of 2 in [2, 65536]. */
  readonly k: number;
  /** Residual codebook size: 0 (none) or a power of 2 in [2, 65536]. */
  readonly kRes: number;
  /** Outlier input columns (first after the permutation) with their own codebook: 0 <= outliers < K. */
  readonly outliers: number;
  /** Outlier vector length and codebook size (used when outliers > 0). */
  readonly v0: number;
  readonly k0: number;
  /** Per-input-column scale and bias. */
  readonly norm: boolean;
  /** Column permutation (stored as invperm). */
  readonly perm: boolean;
  /** k-means iterations of the baseline quantizer (and the default cap of ../vptq.ts). */
  readonly iters: number;
  /** k-means initialisation seed. */
  readonly seed: number;
}

/** Parameters with defaults: no residual, no outliers (v0 = v, k0 = k), no norm/perm, 10 iterations, seed 0. */
export function vptqParams(p: Partial<VptqParams> & Pick<VptqParams, 'v' | 'k'>): VptqParams {
  return { kRes: 0, outliers: 0, v0: p.v, k0: p.k, norm: false, perm: false, iters: 10, seed: 0, ...p };
}

const isPow2 = (x: number) => Number.isInteger(x) && x >= 2 && x <= 65536 && (x & (x - 1)) === 0;

/** Validates parameters (and the shape when given): TesseraError E_ARG / E_SHAPE. */
export function checkVptq(p: VptqParams, N?: number, K?: number): void {
  if (N !== undefined && K !== undefined && (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1)) fail('E_SHAPE', `vptq format: bad matrix shape [${N}, ${K}]`);
  if (!Number.isInteger(p.v) || p.v < 1) fail('E_ARG', `vptq format: vector length v must be an integer >= 1, got ${p.v}`);
  if (!isPow2(p.k)) fail('E_ARG', `vptq format: codebook size k must be a power of 2 in [2, 65536], got ${p.k}`);
  if (p.kRes !== 0 && !isPow2(p.kRes)) fail('E_ARG', `vptq format: residual codebook size kRes must be 0 or a power of 2 in [2, 65536], got ${p.kRes}`);
  if (!Number.isInteger(p.outliers) || p.outliers < 0) fail('E_ARG', `vptq format: outliers must be a non-negative integer, got ${p.outliers}`);
  if (K !== undefined && p.outliers >= K) fail('E_ARG', `vptq format: outliers (${p.outliers}) must be < K (${K}): the main codebook needs at least one column`);
  if (p.outliers > 0) {
    if (!Number.isInteger(p.v0) || p.v0 < 1) fail('E_ARG', `vptq format: outlier vector length v0 must be an integer >= 1, got ${p.v0}`);
    if (!isPow2(p.k0)) fail('E_ARG', `vptq format: outlier codebook size k0 must be a power of 2 in [2, 65536], got ${p.k0}`);
  }
  if (typeof p.norm !== 'boolean' || typeof p.perm !== 'boolean') fail('E_ARG', 'vptq format: norm and perm must be booleans');
  if (!Number.isInteger(p.iters) || p.iters < 0) fail('E_ARG', `vptq format: iters must be a non-negative integer, got ${p.iters}`);
  if (!Number.isInteger(p.seed)) fail('E_ARG', `vptq format: seed must be an integer, got ${p.seed}`);
}

/** Sizes of the segments and code streams for a [N, K] matrix. */
export interface VptqLayout {
  readonly N: number;
  readonly K: number;
  /** Outlier columns, main columns. */
  readonly O: number;
  readonly Km: number;
  /** Vector rows of the main / outlier segment. */
  readonly R: number;
  readonly R0: number;
  /** Code bits: main, residual (0 = none), outlier (0 = none). */
  readonly bits: number;
  readonly rbits: number;
  readonly obits: number;
}

export function vptqLayout(p: VptqParams, N: number, K: number): VptqLayout {
  checkVptq(p, N, K);
  const O = p.outliers;
  return {
    N, K, O, Km: K - O,
    R: Math.ceil(N / p.v),
    R0: O > 0 ? Math.ceil(N / p.v0) : 0,
    bits: Math.log2(p.k),
    rbits: p.kRes > 0 ? Math.log2(p.kRes) : 0,
    obits: O > 0 ? Math.log2(p.k0) : 0,
  };
}

/** Index bits per weight as the paper counts them: log2(k)/v (+ log2(kRes)/v). */
export function vptqIndexBits(p: Pick<VptqParams, 'v' | 'k' | 'kRes'>): number {
  return Math.log2(p.k) / p.v + (p.kRes > 0 ? Math.log2(p.kRes) / p.v : 0);
}

/**
 * Bits per weight by the formula of docs TECHNIQUES §8, split into parts: index bits over the main
 * and outlier segments, codebooks at 16 bits per entry ((v0·k0 + v·(k + kRes))·16 / (N·K)), and
 * perm (i32 per column) and scale/bias (f16 per column each). `total` equals the storage count
 * `totalBitsPerWeight` when no code word or vector row is padded (N % v = 0, N % v0 = 0 and the
 * segment widths multiples of the codes per word); padding only adds to the storage count.
 */
export function vptqBits(p: VptqParams, N: number, K: number): { index: number; codebook: number; extra: number; total: number } {
  const L = vptqLayout(p, N, K);
  const index = ((L.Km * (L.bits + L.rbits)) / p.v + (L.O > 0 ? (L.O * L.obits) / p.v0 : 0)) / K;
  const codebook = ((L.O > 0 ? p.v0 * p.k0 : 0) + p.v * (p.k + p.kRes)) * 16 / (N * K);
  const extra = ((p.perm ? 32 : 0) + (p.norm ? 32 : 0)) / N;
  return { index, codebook, extra, total: index + codebook + extra };
}

/** The pieces a VPTQ matrix is made of (codes unpacked, row-major), as a quantizer produces them. */
export interface VptqParts {
  /** Main codes [R, Km] (vector row i, main column j). */
  readonly codes: ArrayLike<number>;
  /** Main codebook [k, v]. */
  readonly cb: ArrayLike<number>;
  readonly rcodes?: ArrayLike<number>;
  readonly rcb?: ArrayLike<number>;
  /** Outlier codes [R0, O] and codebook [k0, v0]. */
  readonly ocodes?: ArrayLike<number>;
  readonly ocb?: ArrayLike<number>;
  /** [K]: column k of W is column invperm[k] of the permuted matrix. */
  readonly invperm?: ArrayLike<number>;
  readonly scale?: ArrayLike<number>;
  readonly bias?: ArrayLike<number>;
}

/** Builds a QuantizedMatrix from unpacked parts, checking every size (codebooks rounded to f16). */
export function vptqMatrix(p: VptqParams, N: number, K: number, parts: VptqParts): QuantizedMatrix {
  const L = vptqLayout(p, N, K);
  const need = (name: string, a: ArrayLike<number> | undefined, n: number): ArrayLike<number> => {
    if (!a || a.length !== n) fail('E_SHAPE', `vptq format: '${name}' needs ${n} values, got ${a ? a.length : 'none'}`);
    return a;
  };
  const codes = (name: string, a: ArrayLike<number> | undefined, n: number, size: number): ArrayLike<number> => {
    const c = need(name, a, n);
    for (let i = 0; i < n; i++) if (!Number.isInteger(c[i]) || c[i]! < 0 || c[i]! >= size) fail('E_ARG', `vptq format: ${name}[${i}] = ${c[i]} is not a code of a ${size}-entry codebook`);
    return c;
  };
  const f16 = (a: ArrayLike<number>) => Float32Array.from(a, f16Round);
  const buffers: Record<string, QBuffer> = {
    idx: { dtype: 'u32', shape: [L.R, wordsPerRow(L.Km, L.bits)], data: packCodes(codes('codes', parts.codes, L.R * L.Km, p.k), L.R, L.Km, L.bits) },
    cb: { dtype: 'f16', shape: [p.k, p.v], data: f16(need('cb', parts.cb, p.k * p.v)) },
  };
  if (p.kRes > 0) {
    buffers['ridx'] = { dtype: 'u32', shape: [L.R, wordsPerRow(L.Km, L.rbits)], data: packCodes(codes('rcodes', parts.rcodes, L.R * L.Km, p.kRes), L.R, L.Km, L.rbits) };
    buffers['rcb'] = { dtype: 'f16', shape: [p.kRes, p.v], data: f16(need('rcb', parts.rcb, p.kRes * p.v)) };
  }
  if (L.O > 0) {
    buffers['oidx'] = { dtype: 'u32', shape: [L.R0, wordsPerRow(L.O, L.obits)], data: packCodes(codes('ocodes', parts.ocodes, L.R0 * L.O, p.k0), L.R0, L.O, L.obits) };
    buffers['ocb'] = { dtype: 'f16', shape: [p.k0, p.v0], data: f16(need('ocb', parts.ocb, p.k0 * p.v0)) };
  }
  if (p.perm) {
    const ip = Int32Array.from(need('invperm', parts.invperm, K));
    const seen = new Uint8Array(K);
    for (const j of ip) {
      if (j < 0 || j >= K || seen[j]) fail('E_ARG', `vptq format: invperm is not a permutation of 0..${K - 1}`);
      seen[j] = 1;
    }
    buffers['invperm'] = { dtype: 'i32', shape: [K], data: ip };
  }
  if (p.norm) {
    buffers['scale'] = { dtype: 'f16', shape: [K], data: f16(need('scale', parts.scale, K)) };
    buffers['bias'] = { dtype: 'f16', shape: [K], data: f16(need('bias', parts.bias, K)) };
  }
  return { format: 'vptq', N, K, params: { ...p }, buffers };
}

/** The unpacked codes of q: main [R, Km], residual [R, Km], outlier [R0, O]. */
export function vptqCodes(q: QuantizedMatrix): { codes: Uint32Array; rcodes?: Uint32Array; ocodes?: Uint32Array } {
  const p = q.params as VptqParams;
  const L = vptqLayout(p, q.N, q.K);
  const out: { codes: Uint32Array; rcodes?: Uint32Array; ocodes?: Uint32Array } = { codes: unpackCodes(q.buffers['idx']!.data as Uint32Array, L.R, L.Km, L.bits) };
  if (p.kRes > 0) out.rcodes = unpackCodes(q.buffers['ridx']!.data as Uint32Array, L.R, L.Km, L.rbits);
  if (L.O > 0) out.ocodes = unpackCodes(q.buffers['oidx']!.data as Uint32Array, L.R0, L.O, L.obits);
  return out;
}

// ---------------------------------------------------------------------------------------------
// k-means pieces shared by the host baseline, its DSL program and the VPTQ quantizer.

/** Deterministic "random" init: centroid c starts at vector (c·stride + offset) mod R. */
export function kmeansInit(R: number, C: number, seed: number): { stride: number; offset: number; index: (c: number) => number } {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let stride = Math.max(1, Math.round(R * 0.6180339887498949));
  while (gcd(stride, R) !== 1) stride++;
  stride %= R;
  if (stride === 0) stride = 1 % Math.max(R, 1);
  const offset = ((seed % R) + R) % R;
  return { stride, offset, index: (c) => (((c % R) * stride) % R + offset) % R };
}

/** Index of the nearest centroid (first on ties) to x[r] over cb [C, D], and its squared distance. */
export function nearest(x: ArrayLike<number>, r: number, cb: ArrayLike<number>, C: number, D: number): { c: number; d: number } {
  let best = 0;
  let bd = Infinity;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let t = 0; t < D; t++) {
      const e = x[r * D + t]! - cb[c * D + t]!;
      s += e * e;
    }
    if (s < bd) {
      bd = s;
      best = c;
    }
  }
  return { c: best, d: bd };
}

/** Σ_r wt[r]·‖x[r] − cb[assign[r]]‖² in float64 (wt = 1 when absent). */
export function kmeansObjective(x: ArrayLike<number>, wt: ArrayLike<number> | undefined, cb: ArrayLike<number>, assign: ArrayLike<number>, R: number, D: number): number {
  let J = 0;
  for (let r = 0; r < R; r++) {
    const c = assign[r]!;
    let s = 0;
    for (let t = 0; t < D; t++) {
      const e = x[r * D + t]! - cb[c * D + t]!;
      s += e * e;
    }
    J += (wt ? wt[r]! : 1) * s;
  }
  return J;
}

/** One Lloyd update: the (weighted) mean of each cluster; an empty (zero-mass) cluster keeps its centroid. */
export function kmeansUpdate(x: ArrayLike<number>, wt: ArrayLike<number> | undefined, assign: ArrayLike<number>, cb: ArrayLike<number>, R: number, D: number, C: number): Float64Array {
  const sums = new Float64Array(C * D);
  const mass = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    const c = assign[r]!;
    const w = wt ? wt[r]! : 1;
    mass[c] += w;
    for (let t = 0; t < D; t++) sums[c * D + t] += w * x[r * D + t]!;
  }
  const out = new Float64Array(C * D);
  for (let c = 0; c < C; c++) for (let t = 0; t < D; t++) out[c * D + t] = mass[c]! > 0 ? sums[c * D + t]! / mass[c]! : cb[c * D + t]!;
  return out;
}

/**
 * Host k-means (Lloyd) in float64 over x [R, D] with optional sample weights: `iters` rounds of
 * assign + update from kmeansInit, then the codebook rounded to f16 and a final assignment to it.
 * `objective[t]` is the (weighted) objective of the t-th assignment.
 */
export function kmeansHost(x: ArrayLike<number>, wt: ArrayLike<number> | undefined, R: number, D: number, C: number, iters: number, seed: number): { cb: Float64Array; assign: Int32Array; objective: number[] } {
  const init = kmeansInit(R, C, seed);
  let cb: Float64Array = new Float64Array(C * D);
  for (let c = 0; c < C; c++) for (let t = 0; t < D; t++) cb[c * D + t] = x[init.index(c) * D + t]!;
  const assign = new Int32Array(R);
  const objective: number[] = [];
  const assignAll = () => {
    for (let r = 0; r < R; r++) assign[r] = nearest(x, r, cb, C, D).c;
  };
  for (let it = 0; it < iters; it++) {
    assignAll();
    objective.push(kmeansObjective(x, wt, cb, assign, R, D));
    cb = kmeansUpdate(x, wt, assign, cb, R, D, C);
  }
  cb = cb.map(f16Round);
  assignAll();
  return { cb, assign, objective };
}

/** Vectors of one segment: x[(i·W + j)·vv + t] = Wp[i·vv + t, off + j] (0 past row N), i < ceil(N / vv), j < W. */
export function segmentVectors(wp: ArrayLike<number>, N: number, K: number, off: number, W: number, vv: number): Float64Array {
  const R = Math.ceil(N / vv);
  const x = new Float64Array(R * W * vv);
  for (let i = 0; i < R; i++) for (let j = 0; j < W; j++) for (let t = 0; t < vv; t++) {
    const n = i * vv + t;
    if (n < N) x[(i * W + j) * vv + t] = wp[n * K + off + j]!;
  }
  return x;
}

/** Per-column bias (mean) and scale (RMS about the bias, 1 when 0), f16-rounded: VPTQ's norm for the baseline. */
export function normStats(w: ArrayLike<number>, N: number, K: number): { scale: Float64Array; bias: Float64Array } {
  const scale = new Float64Array(K);
  const bias = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += w[n * K + k]!;
    const b = f16Round(s / N);
    let ss = 0;
    for (let n = 0; n < N; n++) ss += (w[n * K + k]! - b) ** 2;
    const sc = f16Round(Math.sqrt(ss / N));
    bias[k] = b;
    scale[k] = sc > 0 ? sc : 1;
  }
  return { scale, bias };
}

/** The permutation sorting `key` descending (ties by index) and its inverse (invperm[k] = rank of k). */
export function sortPerm(key: ArrayLike<number>): { perm: Int32Array; invperm: Int32Array } {
  const K = key.length;
  const perm = Int32Array.from({ length: K }, (_, i) => i).sort((a, b) => key[b]! - key[a]! || a - b);
  const invperm = new Int32Array(K);
  perm.forEach((k, j) => (invperm[k] = j));
  return { perm, invperm };
}

// ---------------------------------------------------------------------------------------------
// DSL building blocks (shapes may be symbolic).

/** dist[r, c] = ‖x[r] − cb[c]‖² for x [R, D], cb [C, D]. */
export function vqDistances(x: Tensor, cb: Tensor): Tensor {
  const [R, D] = x.shape as [Dim, Dim];
  const C = cb.shape[0]!;
  return compute([R, C], (r, c) => reduceSum(D, (t) => {
    const e = x.at(r, t).sub(cb.at(c, t));
    return e.mul(e);
  }));
}

/** Nearest centroid of each row of x (i32 [R], first on ties): the k-means assignment step. */
export function vqAssign(x: Tensor, cb: Tensor): Tensor {
  return argmin(vqDistances(x, cb), 1);
}

/**
 * The k-means update step: centroid c = Σ_{r: a[r] = c} wt[r]·x[r] / Σ wt[r] (one-hot weighted
 * matmul), or the old centroid when its cluster has no mass. `wt` [R] is optional (unweighted).
 */
export function vqUpdate(x: Tensor, assign: Tensor, cb: Tensor, wt?: Tensor): Tensor {
  const R = x.shape[0]!;
  const [C, D] = cb.shape as [Dim, Dim];
  const member = (c: IndexExpr, r: IndexExpr) => select(assign.at(r).eq(c), wt ? wt.at(r) : lit(1), lit(0));
  const onehot = compute([C, R], (c, r) => member(c, r));
  const sums = matmul(onehot, x);
  const mass = compute([C], (c) => reduceSum(R, (r) => member(c, r)));
  return compute([C, D], (c, t) => select(mass.at(c).gt(lit(0)), sums.at(c, t).div(mass.at(c)), cb.at(c, t)));
}

/** The seeded init codebook [C, D] gathered from x [R, D] (R, C, D constants). */
function vqInit(x: Tensor, R: number, C: number, D: number, seed: number): Tensor {
  const { stride, offset } = kmeansInit(R, C, seed);
  if (C * R >= 2 ** 31) fail('E_ARG', `vptq rtnKernel: ${C} centroids x ${R} vectors overflow i32 index arithmetic`);
  return compute([C, D], (c, t) => x.at(c.mul(stride).mod(R).add(offset).mod(R), t));
}

/** `iters` unrolled Lloyd rounds, then the f16 codebook and the assignment to it. */
function vqKmeans(x: Tensor, R: number, C: number, D: number, iters: number, seed: number): { cb16: Tensor; cb: Tensor; assign: Tensor } {
  let cb = vqInit(x, R, C, D, seed);
  for (let it = 0; it < iters; it++) cb = vqUpdate(x, vqAssign(x, cb), cb);
  const cb16 = cb.cast('f16');
  const cbf = cb16.cast('f32');
  return { cb16, cb: cbf, assign: vqAssign(x, cbf) };
}

/** Packs codes a[i·W + j] (i < rows, j < W, i32) into u32 words [rows, ceil(W / per)] per ../types.ts. */
function packExpr(a: Tensor, rows: number, W: number, bits: number): Tensor {
  return packCodesDSL(rows, W, bits, (i, col) => a.at(i.mul(W).add(col)));
}

/**
 * Codebook element for code stream `words` (packed along columns) at output row n, segment column
 * c: book[code][n % vv]. The word is reinterpreted as i32 before the shift (arithmetic shift, then
 * masked), which saves the cast of the code back to an index.
 */
function lookup(words: Tensor, book: Tensor, n: IndexExpr, c: IndexExpr, vv: number, bits: number): IndexExpr {
  const per = perWord(bits);
  const code = words.at(n.div(vv), c.div(per)).cast('i32').shr(c.mod(per).mul(bits)).bitand((1 << bits) - 1);
  return book.at(code, n.mod(vv)).cast('f32');
}

const asF32 = (e: IndexExpr, dtype: string) => (dtype === 'f32' ? e : e.cast('f32'));

export const vptqFormat: Format<VptqParams> = {
  name: 'vptq',

  quantize(w, N, K, p) {
    checkWeights('vptq', w, N, K);
    const L = vptqLayout(p, N, K);
    let wn: ArrayLike<number> = w;
    let norm: { scale: Float64Array; bias: Float64Array } | undefined;
    if (p.norm) {
      const s = normStats(w, N, K);
      norm = s;
      wn = Float64Array.from(w, (x, i) => (x - s.bias[i % K]!) / s.scale[i % K]!);
    }
    let order: { perm: Int32Array; invperm: Int32Array } | undefined;
    let wp: ArrayLike<number> = wn;
    if (p.perm) {
      const key = new Float64Array(K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) key[k] += w[n * K + k]! ** 2;
      const o = sortPerm(key);
      order = o;
      wp = Float64Array.from({ length: N * K }, (_, i) => wn[Math.floor(i / K) * K + o.perm[i % K]!]!);
    }
    const main = segmentVectors(wp, N, K, L.O, L.Km, p.v);
    const km = kmeansHost(main, undefined, L.R * L.Km, p.v, p.k, p.iters, p.seed);
    const parts: { -readonly [P in keyof VptqParts]: VptqParts[P] } = { codes: km.assign, cb: km.cb };
    if (p.kRes > 0) {
      const res = main.map((x, i) => x - km.cb[km.assign[Math.floor(i / p.v)]! * p.v + (i % p.v)]!);
      const kr = kmeansHost(res, undefined, L.R * L.Km, p.v, p.kRes, p.iters, p.seed);
      parts.rcodes = kr.assign;
      parts.rcb = kr.cb;
    }
    if (L.O > 0) {
      const out = segmentVectors(wp, N, K, 0, L.O, p.v0);
      const ko = kmeansHost(out, undefined, L.R0 * L.O, p.v0, p.k0, p.iters, p.seed);
      parts.ocodes = ko.assign;
      parts.ocb = ko.cb;
    }
    if (order) parts.invperm = order.invperm;
    if (norm) {
      parts.scale = norm.scale;
      parts.bias = norm.bias;
    }
    return vptqMatrix(p, N, K, parts);
  },

  dequantize(q) {
    const p = q.params as VptqParams;
    const { N, K } = q;
    const L = vptqLayout(p, N, K);
    const { codes, rcodes, ocodes } = vptqCodes(q);
    const cb = q.buffers['cb']!.data;
    const rcb = q.buffers['rcb']?.data;
    const ocb = q.buffers['ocb']?.data;
    const ip = q.buffers['invperm']?.data;
    const scale = q.buffers['scale']?.data;
    const bias = q.buffers['bias']?.data;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const j = ip ? ip[k]! : k;
        let x: number;
        if (j < L.O) x = ocb![ocodes![Math.floor(n / p.v0) * L.O + j]! * p.v0 + (n % p.v0)]!;
        else {
          const ci = Math.floor(n / p.v) * L.Km + (j - L.O);
          x = cb[codes[ci]! * p.v + (n % p.v)]!;
          if (rcb) x += rcb[rcodes![ci]! * p.v + (n % p.v)]!;
        }
        out[n * K + k] = scale ? x * scale[k]! + bias![k]! : x;
      }
    }
    return out;
  },

  bitsPerWeight: totalBitsPerWeight,

  specs: bufferSpecs,

  access(h, q, prefix = '') {
    const p = q.params as VptqParams;
    const L = vptqLayout(p, q.N, q.K);
    const b = (name: string) => h[prefix + name]!;
    const dt = (name: string) => q.buffers[name]!.dtype;
    // Wp[n, j] from the code streams and codebooks
    const decode = (n: IndexExpr, j: IndexExpr): IndexExpr => {
      // main segment column (clamped to 0 where the outlier branch is taken: both branches are evaluated)
      const c = L.O > 0 ? j.sub(L.O).max(0) : j;
      let x = lookup(b('idx'), b('cb'), n, c, p.v, L.bits);
      if (p.kRes > 0) x = x.add(lookup(b('ridx'), b('rcb'), n, c, p.v, L.rbits));
      if (L.O > 0) x = select(j.lt(L.O), lookup(b('oidx'), b('ocb'), n, j.min(L.O - 1), p.v0, L.obits), x);
      return x;
    };
    if (!p.perm && !p.norm) return compute([q.N, q.K], decode);
    // Two compute nodes, so that when one kernel cannot bind every buffer (8 with x and the output)
    // fusion can materialize the permuted decode and still compile; fused, they cost one extra load.
    const wp = compute([q.N, q.K], decode);
    return compute([q.N, q.K], (n: IndexExpr, k: IndexExpr) => {
      const x = wp.at(n, p.perm ? b('invperm').at(k) : k);
      return p.norm ? x.mul(asF32(b('scale').at(k), dt('scale'))).add(asF32(b('bias').at(k), dt('bias'))) : x;
    });
  },

  rtnKernel(N, K, p) {
    const L = vptqLayout(p, N, K);
    return kernel('rtn_vptq', { w: tensor('f32', [N, K]) }, ({ w }) => {
      const outs: Record<string, Tensor> = {};
      let wn = (n: IndexExpr, k: IndexExpr) => w.at(n, k);
      if (p.norm) {
        const bias = compute([K], (k) => reduceSum(N, (n) => w.at(n, k)).div(lit(N))).cast('f16');
        const b32 = (k: IndexExpr) => bias.at(k).cast('f32');
        const rms = compute([K], (k) => reduceSum(N, (n) => {
          const e = w.at(n, k).sub(b32(k));
          return e.mul(e);
        }).div(lit(N)).sqrt()).cast('f16');
        const scale = compute([K], (k) => select(rms.at(k).cast('f32').gt(lit(0)), rms.at(k).cast('f32'), lit(1))).cast('f16');
        const norm = compute([N, K], (n, k) => w.at(n, k).sub(b32(k)).div(scale.at(k).cast('f32')));
        wn = (n, k) => norm.at(n, k);
        outs['scale'] = scale;
        outs['bias'] = bias;
      }
      let wp = wn;
      if (p.perm) {
        const key = compute([K], (k) => reduceSum(N, (n) => w.at(n, k).mul(w.at(n, k))));
        // rank of column k in (key desc, index asc) order = where it goes = invperm[k]
        const rank = compute([K], (k) => reduceSum(K, (j) => select(key.at(j).gt(key.at(k)).or(key.at(j).eq(key.at(k)).and(j.lt(k))), lit(1, 'i32'), lit(0, 'i32'))));
        const perm = compute([K], (j) => reduceSum(K, (k) => select(rank.at(k).eq(j), k, lit(0, 'i32'))));
        wp = (n, j) => wn(n, perm.at(j));
        outs['invperm'] = rank;
      }
      const vectors = (off: number, W: number, vv: number) => {
        const R = Math.ceil(N / vv);
        return compute([R * W, vv], (r, t) => {
          const nn = r.div(W).mul(vv).add(t);
          return select(nn.lt(N), wp(nn.min(N - 1), r.mod(W).add(off)), lit(0));
        });
      };
      const main = vectors(L.O, L.Km, p.v);
      const RV = L.R * L.Km;
      const km = vqKmeans(main, RV, p.k, p.v, p.iters, p.seed);
      outs['idx'] = packExpr(km.assign, L.R, L.Km, L.bits);
      outs['cb'] = km.cb16;
      if (p.kRes > 0) {
        const res = compute([RV, p.v], (r, t) => main.at(r, t).sub(km.cb.at(km.assign.at(r), t)));
        const kr = vqKmeans(res, RV, p.kRes, p.v, p.iters, p.seed);
        outs['ridx'] = packExpr(kr.assign, L.R, L.Km, L.rbits);
        outs['rcb'] = kr.cb16;
      }
      if (L.O > 0) {
        const ko = vqKmeans(vectors(0, L.O, p.v0), L.R0 * L.O, p.k0, p.v0, p.iters, p.seed);
        outs['oidx'] = packExpr(ko.assign, L.R0, L.O, L.obits);
        outs['ocb'] = ko.cb16;
      }
      return outs;
    });
  },

  fromDevice(out, N, K, p) {
    vptqLayout(p, N, K);
    const names: Record<string, QBuffer['dtype']> = { idx: 'u32', cb: 'f16', ridx: 'u32', rcb: 'f16', oidx: 'u32', ocb: 'f16', invperm: 'i32', scale: 'f16', bias: 'f16' };
    const buffers: Record<string, QBuffer> = {};
    for (const [name, dtype] of Object.entries(names)) {
      const o = out[name];
      if (o) buffers[name] = { dtype, shape: [...o.shape], data: o.data };
    }
    return { format: 'vptq', N, K, params: { ...p }, buffers };
  },
};
