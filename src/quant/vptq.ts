/**
 * The VPTQ quantizer (Liu et al., arXiv 2409.17066; reference: microsoft/VPTQ branch `algorithm`,
 * `vptq/vptq.py` fast_vector_quant + vptq, `vptq/quantizer.py` NPVectorQuantizer): fills the
 * ./formats/vptq.ts format for W [N, K] (y = x·Wᵀ) from calibration activations X [T, K], minimising
 * the layer's output error ‖X·Wᵀ − X·Ŵᵀ‖² = Σ_n ΔW[n]·H·ΔW[n]ᵀ with H = XᵀX. Steps:
 *
 *   1. H = XᵀX                                                    DSL matmul kernel on `rt`
 *   2. norm (params.norm): per input column bias = mean, scale = RMS about it (f16, as the format's
 *      baseline; the reference's init_norm takes torch.mean / torch.std, the paper min-max);
 *      W ← (W − bias)/scale and H ← S·H·S (S = diag(scale)), the exact Hessian of the normalised
 *      weight (the reference keeps H unscaled)
 *   3. dead inputs (H_jj = 0): H_jj = 1, W[:, j] = 0; the k-means sample weight of column j is the
 *      diagonal before this fix (0 for a dead column)
 *   4. perm (params.perm): columns sorted by diag(H) descending (ties by index); W and H permuted
 *   5. codebook init, per segment (outlier columns [0, outliers) with v0/k0, main columns with v/k):
 *      Hessian-weighted k-means over the segment's vectors (length v along the output dim within a
 *      column, the last one zero-padded when N % v ≠ 0) with sample weight h_jj of the vector's
 *      column (`hessianWeighted: false`: weight 1). Each Lloyd round is one DSL program
 *      (`kmeansStepKernel`): distances ‖x − c‖² for all vectors × centroids + argmin (assignment),
 *      then the weighted means as a one-hot-weights × vectors matmul over the masses (update); the
 *      objective Σ_r w_r‖x_r − c_{a(r)}‖² is evaluated on the host in float64; stop after `iters`
 *      rounds or when a round improves the objective by ≤ tol (relative). Codebooks rounded to f16.
 *   6. channel-independent second-order update (GPTQ-style; `secondOrder: false` skips the error
 *      feedback): Hinv = upper Cholesky factor of (H + λI)⁻¹, λ = damp·mean(diag H) (./linalg.ts);
 *      for column blocks of `blockSize` (128): for each column c (host, float64, sequential):
 *      every vector of the column goes to its nearest centroid (plain Euclidean — H⁻¹_cc is one
 *      constant for the whole column), err = (w_c − q_c)/Hinv[c, c], later columns of the block
 *      −= err·Hinv[c, ·]; after the block the lazy batch update W[:, rest] −= Err·Hinv[block, rest]
 *      is a DSL matmul kernel on `rt`.
 *   7. residual codebook (kRes > 0), as the reference: Hessian-weighted k-means on the pass-1
 *      quantization error of the main columns (error-updated column minus its quantization, q_err =
 *      w_c − q_c at the time c was quantized), then step 6 again from the original weight with main
 *      + residual codes (main = nearest in cb, residual = nearest in rcb to what the main code left).
 *
 * Not done: VPTQ's codebook groups (one group here), outlier residuals, and the layer-wise /
 * end-to-end fine-tuning of centroids.
 */
import { JSRuntime } from '../backends/js/runtime.js';
import { dim, kernel, tensor } from '../dsl/kernel.js';
import { matmul } from '../dsl/ops.js';
import { fail } from '../errors.js';
import { compile, type CompiledProgram } from '../passes/pipeline.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { execute } from '../runtime/execute.js';
import { f16Round } from '../runtime/f16.js';
import { kmeansInit, kmeansObjective, nearest, normStats, segmentVectors, sortPerm, vptqLayout, vptqMatrix, vqAssign, vqUpdate, type VptqParams, type VptqParts } from './formats/vptq.js';
import { choleskyUpper, inverseSPD } from './linalg.js';
import type { QuantizedMatrix } from './types.js';

export interface VptqOptions {
  /** Where the DSL kernels run (default: a new JSRuntime). */
  readonly rt?: BackendRuntime;
  /** k-means round cap (default params.iters). */
  readonly iters?: number;
  /** Stop k-means when a round improves the objective by at most tol, relative (default 1e-5, the reference's ktol). */
  readonly tol?: number;
  /** k-means init seed (default params.seed). */
  readonly seed?: number;
  /** Columns per lazy-update block (default 128). */
  readonly blockSize?: number;
  /** Relative damping λ / mean(diag H) (default 0.01). */
  readonly damp?: number;
  /** Weight k-means samples by diag(H) (default true); false: plain unweighted k-means. */
  readonly hessianWeighted?: boolean;
  /** The channel-independent second-order update (default true); false: nearest centroid only. */
  readonly secondOrder?: boolean;
}

export interface VptqReport {
  /** Objective per k-means round (non-increasing), per codebook in the order they were built. */
  readonly kmeans: readonly { readonly segment: 'outlier' | 'main' | 'residual'; readonly objective: readonly number[] }[];
  /**
   * Proxy loss tr(ΔW·H·ΔWᵀ) in the normalised, permuted space (undamped H): nearest-centroid codes
   * of the initial codebooks, after pass 1 (main codebook), and final.
   */
  readonly proxy: { readonly init: number; readonly pass1: number; readonly final: number };
}

// ---------------------------------------------------------------------------------------------
// DSL programs (symbolic shapes: each compiles once per process)

/** One weighted Lloyd round: x [R, D], wt [R], cb [C, D] → assign i32 [R] (to cb), next cb [C, D]. */
export function kmeansStepKernel() {
  const R = dim('R');
  const D = dim('D');
  const C = dim('C');
  return kernel('vptq_kmeans_step', { x: tensor('f32', [R, D]), wt: tensor('f32', [R]), cb: tensor('f32', [C, D]) }, ({ x, wt, cb }) => {
    const assign = vqAssign(x, cb);
    return { assign, cb: vqUpdate(x, assign, cb, wt) };
  });
}

/** The k-means assignment step alone: x [R, D], cb [C, D] → nearest centroid (i32 [R], first on ties). */
export function vqAssignKernel() {
  const R = dim('R');
  const D = dim('D');
  const C = dim('C');
  return kernel('vptq_assign', { x: tensor('f32', [R, D]), cb: tensor('f32', [C, D]) }, ({ x, cb }) => vqAssign(x, cb));
}

function hessianKernel() {
  return kernel('vptq_hessian', { x: tensor('f32', [dim('T'), dim('K')]) }, ({ x }) => matmul(x, x, { transA: true }));
}

function lazyUpdateKernel() {
  const B = dim('B');
  return kernel('vptq_lazy_update', { err: tensor('f32', [dim('N'), B]), h: tensor('f32', [B, dim('M')]) }, ({ err, h }) => matmul(err, h));
}

const programs = new Map<string, CompiledProgram>();
function program(name: string, build: () => { program: CompiledProgram['program'] }): CompiledProgram {
  let cp = programs.get(name);
  if (!cp) {
    cp = compile(build().program);
    programs.set(name, cp);
  }
  return cp;
}

/** H = XᵀX for X [T, K] (f32) on `rt`, symmetrised, as float64. */
export async function vptqHessian(rt: BackendRuntime, X: Float32Array, T: number, K: number): Promise<Float64Array> {
  if (!Number.isInteger(T) || T < 1 || X.length !== T * K) fail('E_SHAPE', `vptq: ${X.length} calibration values for [${T}, ${K}]`);
  const out = await execute(program('hessian', hessianKernel), rt, { x: { shape: [T, K], data: X } });
  const H = Float64Array.from(out['out']!.data);
  for (let i = 0; i < K; i++) for (let j = 0; j < i; j++) H[i * K + j] = H[j * K + i] = 0.5 * (H[i * K + j]! + H[j * K + i]!);
  return H;
}

/** Nearest centroids of x [R, D] in cb [C, D] computed by the DSL assignment program on `rt`. */
export async function vqAssignOnDevice(rt: BackendRuntime, x: ArrayLike<number>, R: number, D: number, cb: ArrayLike<number>, C: number): Promise<Int32Array> {
  const out = await execute(program('assign', vqAssignKernel), rt, { x: { shape: [R, D], data: Float32Array.from(x) }, cb: { shape: [C, D], data: Float32Array.from(cb) } });
  return out['out']!.data as Int32Array;
}

/**
 * Weighted k-means (Lloyd) of x [R, D] into C centroids, each round one DSL program on `rt`, from
 * the seeded init of the format (kmeansInit). `objective[t]` is Σ_r wt[r]·‖x_r − cb_t[a_t(r)]‖² of
 * round t's assignment to its input codebook (float64 on the host): it never increases, since the
 * update moves each centroid to its cluster's weighted mean and the next assignment can only lower
 * each term. Stops after `iters` rounds or when a round improves by ≤ tol·(previous objective).
 * Returns the codebook after the last update (f32 values, not yet rounded to f16).
 */
export async function vptqKmeans(
  rt: BackendRuntime, x: ArrayLike<number>, wt: ArrayLike<number> | undefined, R: number, D: number, C: number,
  opts: { readonly iters: number; readonly tol?: number; readonly seed?: number },
): Promise<{ cb: Float64Array; assign: Int32Array; objective: number[] }> {
  const tol = opts.tol ?? 0;
  if (!Number.isInteger(opts.iters) || opts.iters < 0) fail('E_ARG', `vptq k-means: iters must be a non-negative integer, got ${opts.iters}`);
  if (!(tol >= 0)) fail('E_ARG', `vptq k-means: tol must be >= 0, got ${tol}`);
  if (x.length !== R * D || (wt && wt.length !== R)) fail('E_SHAPE', `vptq k-means: ${x.length} values / ${wt?.length} weights for [${R}, ${D}]`);
  const init = kmeansInit(R, C, opts.seed ?? 0);
  let cb: Float64Array = new Float64Array(C * D);
  for (let c = 0; c < C; c++) for (let t = 0; t < D; t++) cb[c * D + t] = x[init.index(c) * D + t]!;
  const xf = Float32Array.from(x);
  const wf = wt ? Float32Array.from(wt) : new Float32Array(R).fill(1);
  const cp = program('kmeans_step', kmeansStepKernel);
  let assign: Int32Array = new Int32Array(R);
  const objective: number[] = [];
  for (let it = 0; it < opts.iters; it++) {
    const cbf = Float32Array.from(cb);
    const out = await execute(cp, rt, { x: { shape: [R, D], data: xf }, wt: { shape: [R], data: wf }, cb: { shape: [C, D], data: cbf } });
    assign = out['assign']!.data as Int32Array;
    const J = kmeansObjective(xf, wf, cbf, assign, R, D);
    objective.push(J);
    cb = Float64Array.from(out['cb']!.data);
    const prev = objective[objective.length - 2];
    if (prev !== undefined && prev - J <= tol * prev) break;
  }
  return { cb, assign, objective };
}

// ---------------------------------------------------------------------------------------------

interface Books {
  readonly cb: Float64Array;
  readonly rcb?: Float64Array;
  readonly ocb?: Float64Array;
}

/**
 * One VPTQ pass over Wp [N, K] (normalised, permuted): quantizes column by column with the fixed
 * codebooks, with the GPTQ error feedback when `hinv` is given. Returns the codes, the quantized
 * matrix and the per-column error q_err = w_c − q_c at quantization time.
 */
async function vptqPass(
  rt: BackendRuntime, wp: Float64Array, p: VptqParams, N: number, K: number, books: Books, hinv: Float64Array | undefined, blockSize: number,
): Promise<{ codes: Uint32Array; rcodes?: Uint32Array; ocodes?: Uint32Array; q: Float64Array; qerr: Float64Array }> {
  const L = vptqLayout(p, N, K);
  const W = Float64Array.from(wp);
  const Q = new Float64Array(N * K);
  const qerr = new Float64Array(N * K);
  const codes = new Uint32Array(L.R * L.Km);
  const rcodes = books.rcb ? new Uint32Array(L.R * L.Km) : undefined;
  const ocodes = L.O > 0 ? new Uint32Array(L.R0 * L.O) : undefined;
  const vec = new Float64Array(Math.max(p.v, p.v0));
  const rem = new Float64Array(p.v);
  for (let b0 = 0; b0 < K; b0 += blockSize) {
    const b1 = Math.min(K, b0 + blockSize);
    const nb = b1 - b0;
    const E = new Float32Array(N * nb);
    for (let c = b0; c < b1; c++) {
      const outlier = c < L.O;
      const vv = outlier ? p.v0 : p.v;
      const rows = outlier ? L.R0 : L.R;
      const book = outlier ? books.ocb! : books.cb;
      const C = outlier ? p.k0 : p.k;
      for (let i = 0; i < rows; i++) {
        for (let t = 0; t < vv; t++) {
          const n = i * vv + t;
          vec[t] = n < N ? W[n * K + c]! : 0;
        }
        const code = nearest(vec, 0, book, C, vv).c;
        for (let t = 0; t < vv; t++) rem[t] = book[code * vv + t]!;
        if (outlier) ocodes![i * L.O + c] = code;
        else {
          codes[i * L.Km + c - L.O] = code;
          if (books.rcb) {
            for (let t = 0; t < vv; t++) vec[t] -= rem[t]!;
            const rc = nearest(vec, 0, books.rcb, p.kRes, vv).c;
            rcodes![i * L.Km + c - L.O] = rc;
            for (let t = 0; t < vv; t++) rem[t] += books.rcb[rc * vv + t]!;
          }
        }
        for (let t = 0; t < vv; t++) {
          const n = i * vv + t;
          if (n < N) Q[n * K + c] = rem[t]!;
        }
      }
      const d = hinv ? hinv[c * K + c]! : 1;
      for (let n = 0; n < N; n++) {
        const e = W[n * K + c]! - Q[n * K + c]!;
        qerr[n * K + c] = e;
        if (!hinv) continue;
        const err = e / d;
        E[n * nb + c - b0] = err;
        for (let c2 = c + 1; c2 < b1; c2++) W[n * K + c2] -= err * hinv[c * K + c2]!;
      }
    }
    const M = K - b1;
    if (hinv && M > 0) {
      const h = new Float32Array(nb * M);
      for (let b = 0; b < nb; b++) for (let j = 0; j < M; j++) h[b * M + j] = hinv[(b0 + b) * K + b1 + j]!;
      const out = await execute(program('lazy_update', lazyUpdateKernel), rt, { err: { shape: [N, nb], data: E }, h: { shape: [nb, M], data: h } });
      const upd = out['out']!.data;
      for (let n = 0; n < N; n++) for (let j = 0; j < M; j++) W[n * K + b1 + j] -= upd[n * M + j]!;
    }
  }
  return { codes, ...(rcodes ? { rcodes } : {}), ...(ocodes ? { ocodes } : {}), q: Q, qerr };
}

/** tr(ΔW·H·ΔWᵀ) for ΔW = A − B [N, K]. */
function proxyLoss(A: Float64Array, B: Float64Array, H: Float64Array, N: number, K: number): number {
  let s = 0;
  const d = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) d[k] = A[n * K + k]! - B[n * K + k]!;
    for (let i = 0; i < K; i++) {
      if (d[i] === 0) continue;
      let r = 0;
      for (let j = 0; j < K; j++) r += H[i * K + j]! * d[j]!;
      s += d[i]! * r;
    }
  }
  return s;
}

/** VPTQ-quantizes W [N, K] with calibration activations X [T, K]; also returns the k-means and proxy-loss report. */
export async function vptqQuantizeReport(
  w: Float32Array, N: number, K: number, X: Float32Array, T: number, params: VptqParams, opts: VptqOptions = {},
): Promise<{ q: QuantizedMatrix; report: VptqReport }> {
  const p = params;
  const L = vptqLayout(p, N, K);
  if (w.length !== N * K) fail('E_SHAPE', `vptq: ${w.length} weights for [${N}, ${K}]`);
  if (!Number.isInteger(T) || T < 1 || X.length !== T * K) fail('E_SHAPE', `vptq: ${X.length} calibration values for [${T}, ${K}]`);
  const blockSize = opts.blockSize ?? 128;
  if (!Number.isInteger(blockSize) || blockSize < 1) fail('E_ARG', `vptq: blockSize must be a positive integer, got ${blockSize}`);
  const damp = opts.damp ?? 0.01;
  if (!(damp >= 0) || !Number.isFinite(damp)) fail('E_ARG', `vptq: damp must be a non-negative number, got ${damp}`);
  const iters = opts.iters ?? p.iters;
  const tol = opts.tol ?? 1e-5;
  const seed = opts.seed ?? p.seed;
  const rt = opts.rt ?? new JSRuntime();

  // 1-2. Hessian, norm
  const H = await vptqHessian(rt, X, T, K);
  const wn = Float64Array.from(w);
  let norm: { scale: Float64Array; bias: Float64Array } | undefined;
  if (p.norm) {
    const s = normStats(w, N, K);
    norm = s;
    for (let i = 0; i < N * K; i++) wn[i] = (wn[i]! - s.bias[i % K]!) / s.scale[i % K]!;
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) H[i * K + j] *= s.scale[i]! * s.scale[j]!;
  }
  // 3. dead inputs; k-means weights from the diagonal before the fix
  const diag = Float64Array.from({ length: K }, (_, j) => H[j * K + j]!);
  for (let j = 0; j < K; j++) {
    if (diag[j] !== 0) continue;
    H[j * K + j] = 1;
    for (let n = 0; n < N; n++) wn[n * K + j] = 0;
  }
  // 4. permutation by diag(H) descending
  const order = p.perm ? sortPerm(diag) : { perm: Int32Array.from({ length: K }, (_, j) => j), invperm: Int32Array.from({ length: K }, (_, j) => j) };
  const P = order.perm;
  const wp = Float64Array.from({ length: N * K }, (_, i) => wn[Math.floor(i / K) * K + P[i % K]!]!);
  const hp = Float64Array.from({ length: K * K }, (_, i) => H[P[Math.floor(i / K)]! * K + P[i % K]!]!);
  const colWeight = Float64Array.from({ length: K }, (_, j) => (opts.hessianWeighted === false ? 1 : diag[P[j]!]!));

  // 5. codebook init: Hessian-weighted k-means per segment
  const kmeans: { segment: 'outlier' | 'main' | 'residual'; objective: number[] }[] = [];
  const vectorWeights = (off: number, W: number, vv: number) => {
    const R = Math.ceil(N / vv);
    return Float64Array.from({ length: R * W }, (_, r) => colWeight[off + (r % W)]!);
  };
  const segmentBook = async (segment: 'outlier' | 'main' | 'residual', src: Float64Array, off: number, W: number, vv: number, C: number) => {
    const R = Math.ceil(N / vv) * W;
    const km = await vptqKmeans(rt, segmentVectors(src, N, K, off, W, vv), vectorWeights(off, W, vv), R, vv, C, { iters, tol, seed });
    kmeans.push({ segment, objective: km.objective });
    return km.cb.map(f16Round);
  };
  const ocb = L.O > 0 ? await segmentBook('outlier', wp, 0, L.O, p.v0, p.k0) : undefined;
  const cb = await segmentBook('main', wp, L.O, L.Km, p.v, p.k);

  // 6. second-order pass with the main (and outlier) codebooks
  let hinv: Float64Array | undefined;
  if (opts.secondOrder !== false) {
    const hd = Float64Array.from(hp);
    let mean = 0;
    for (let j = 0; j < K; j++) mean += hd[j * K + j]!;
    mean /= K;
    for (let j = 0; j < K; j++) hd[j * K + j] += damp * mean;
    hinv = choleskyUpper(inverseSPD(hd, K), K);
  }
  const books: Books = { cb, ...(ocb ? { ocb } : {}) };
  const init = await vptqPass(rt, wp, p, N, K, books, undefined, blockSize);
  let pass = hinv ? await vptqPass(rt, wp, p, N, K, books, hinv, blockSize) : init;
  const pass1 = proxyLoss(wp, pass.q, hp, N, K);

  // 7. residual codebook on the pass-1 error, then the pass again with main + residual codes
  let rcb: Float64Array | undefined;
  if (p.kRes > 0) {
    rcb = await segmentBook('residual', pass.qerr, L.O, L.Km, p.v, p.kRes);
    pass = await vptqPass(rt, wp, p, N, K, { ...books, rcb }, hinv, blockSize);
  }

  const parts: VptqParts = {
    codes: pass.codes,
    cb,
    ...(rcb ? { rcodes: pass.rcodes!, rcb } : {}),
    ...(ocb ? { ocodes: pass.ocodes!, ocb } : {}),
    ...(p.perm ? { invperm: order.invperm } : {}),
    ...(norm ? { scale: norm.scale, bias: norm.bias } : {}),
  };
  const q = vptqMatrix(p, N, K, parts);
  return { q, report: { kmeans, proxy: { init: proxyLoss(wp, init.q, hp, N, K), pass1, final: proxyLoss(wp, pass.q, hp, N, K) } } };
}

/** VPTQ-quantizes W [N, K] with calibration activations X [T, K] into the `vptq` format (see the file comment). */
export async function vptqQuantize(
  w: Float32Array, N: number, K: number, X: Float32Array, T: number, params: VptqParams, opts: VptqOptions = {},
): Promise<QuantizedMatrix> {
  return (await vptqQuantizeReport(w, N, K, X, T, params, opts)).q;
}
