/**
 * GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers"): quantize a linear layer's W [N, K] column by column, pushing each column's
 * rounding error onto the not-yet-quantized columns through the inverse Hessian of the layer's
 * reconstruction loss ‖X·Wᵀ − X·Ŵᵀ‖², H = 2·XᵀX / T over calibration activations X [T, K].
 * Follows the reference `fasterquant` (IST-DASLab/gptq `gptq.py`, as AutoGPTQ ships it):
 *
 *   1. H = 2·XᵀX/T                                         (DSL matmul kernel on `rt`)
 *   2. dead inputs (H_ii = 0): H_ii = 1, W[:, i] = 0
 *   3. H += λ·I with λ = damp · mean(diag H)  (damp = 0.01)
 *   4. Hinv = upper Cholesky factor of H⁻¹                 (host, float64, ./linalg.ts)
 *   5. for each block of `blockSize` (128) columns [i1, i2):
 *        for each column i (sequential, host float64):
 *          entering a new group: scale/zero from that group's columns as they are now
 *          q = quant(w_i); err = (w_i − q) / Hinv[i, i]; W[:, i:i2] −= err ⊗ Hinv[i, i:i2]
 *        lazy batch update W[:, i2:] −= Err_block · Hinv[i1:i2, i2:]   (DSL matmul kernel on `rt`)
 *
 * The tensor programs (the Hessian and the lazy batch update, where the FLOPs are) are DSL
 * kernels and run on any backend; the K×K factorisations and the per-column loop inside a block
 * are host code in float64 — that loop is inherently sequential (each column's error changes the
 * next column before it is rounded) and is O(N·blockSize²) per block.
 *
 * The grid is exactly the int format's (../formats/int.ts `groupScale`/`intCode`: f16-rounded
 * scales, round-half-up codes, clamped zero points), so the result is an int-format
 * QuantizedMatrix with the same params as round-to-nearest: a drop-in replacement.
 *
 * Group statistics. With groups (g < K), the reference recomputes the group's scale and zero when
 * its first column comes up, from `W[:, c:c+g]` — the full matrix, which has the lazy updates of
 * earlier blocks but *not* the in-block updates of the current block's earlier columns (those live
 * in the block copy W1). For groups that start at a block boundary both agree. The default here,
 * `groupStats: 'updated'`, reads the current, error-updated values (W1 inside the block) — the
 * weights that are actually about to be rounded; `groupStats: 'reference'` reproduces the
 * reference's stale read. Per-channel (group 0) takes the scale from W after step 2, as the
 * reference's `find_params(W)` before the loop does. Act-order (`desc_act`) is not done here.
 */
import { JSRuntime } from '../backends/js/runtime.js';
import { kernel, tensor, dim } from '../dsl/kernel.js';
import { matmul } from '../dsl/ops.js';
import { fail } from '../errors.js';
import { compile, type CompiledProgram } from '../passes/pipeline.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { execute } from '../runtime/execute.js';
import { groupScale, groupSize, intCode, intMatrix, type IntParams } from './formats/int.js';
import { choleskyUpper, inverseSPD } from './linalg.js';
import type { QuantizedMatrix } from './types.js';

export interface GptqOptions {
  /** Where the DSL kernels run (default: a new JSRuntime). */
  readonly rt?: BackendRuntime;
  /** Columns per lazy-update block (default 128, as the reference). */
  readonly blockSize?: number;
  /** Relative damping λ / mean(diag H) (default 0.01, the reference's `percdamp`). */
  readonly damp?: number;
  /** Which weights a group's scale/zero come from; see the file comment (default 'updated'). */
  readonly groupStats?: 'updated' | 'reference';
}

/** H = 2·XᵀX / T for X [T, K] (f32), as a DSL program. */
export function hessianKernel(T: number, K: number) {
  return kernel('gptq_hessian', { x: tensor('f32', [T, K]) }, ({ x }) => matmul(x, x, { transA: true }).mul(2 / T));
}

/**
 * The lazy batch update W[:, rest] − Err · Hinv[block, rest] as a DSL program: `w` [N, R], `err`
 * [N, B], `h` [B, R], R symbolic (it shrinks block by block; one compiled program serves all).
 */
export function lazyUpdateKernel(N: number, B: number) {
  const R = dim('R');
  return kernel('gptq_lazy_update', { w: tensor('f32', [N, R]), err: tensor('f32', [N, B]), h: tensor('f32', [B, R]) }, ({ w, err, h }) =>
    w.sub(matmul(err, h)),
  );
}

const compiled = new Map<string, CompiledProgram>();
function cached(key: string, build: () => CompiledProgram): CompiledProgram {
  let cp = compiled.get(key);
  if (!cp) {
    if (compiled.size > 64) compiled.clear();
    cp = build();
    compiled.set(key, cp);
  }
  return cp;
}

/** The GPTQ Hessian 2·XᵀX/T of calibration activations X [T, K], computed on `rt`, as float64. */
export async function gptqHessian(X: Float32Array, T: number, K: number, rt: BackendRuntime = new JSRuntime()): Promise<Float64Array> {
  if (!Number.isInteger(T) || !Number.isInteger(K) || T < 1 || K < 1) fail('E_SHAPE', `gptq: bad calibration shape [${T}, ${K}]`);
  if (X.length !== T * K) fail('E_SHAPE', `gptq: ${X.length} calibration values for [${T}, ${K}]`);
  const cp = cached(`h:${T}x${K}`, () => compile(hessianKernel(T, K).program));
  const out = await execute(cp, rt, { x: { shape: [T, K], data: X } });
  const H = Float64Array.from(out['out']!.data);
  // the product is symmetric in exact arithmetic; make it so in floating point
  for (let i = 0; i < K; i++) for (let j = 0; j < i; j++) H[i * K + j] = H[j * K + i] = 0.5 * (H[i * K + j]! + H[j * K + i]!);
  return H;
}

/**
 * GPTQ-quantizes W [N, K] (row-major, y = x·Wᵀ) with calibration activations X [T, K] into the int
 * format with `params` (bits, group, symmetric), like `intFormat.quantize` but error-compensated.
 */
export async function gptqQuantize(
  w: Float32Array, N: number, K: number, X: Float32Array, T: number, params: IntParams, opts: GptqOptions = {},
): Promise<QuantizedMatrix> {
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `gptq: bad weight shape [${N}, ${K}]`);
  if (w.length !== N * K) fail('E_SHAPE', `gptq: ${w.length} weights for [${N}, ${K}]`);
  const blockSize = opts.blockSize ?? 128;
  if (!Number.isInteger(blockSize) || blockSize < 1) fail('E_ARG', `gptq: blockSize must be a positive integer, got ${blockSize}`);
  const damp = opts.damp ?? 0.01;
  if (!(damp >= 0) || !Number.isFinite(damp)) fail('E_ARG', `gptq: damp must be a non-negative number, got ${damp}`);
  const stats = opts.groupStats ?? 'updated';
  if (!Number.isInteger(params.bits) || params.bits < 2 || params.bits > 8) fail('E_ARG', `gptq: bits must be 2..8, got ${params.bits}`);
  if (!Number.isInteger(params.group) || params.group < 0) fail('E_ARG', `gptq: group must be a non-negative integer, got ${params.group}`);
  const rt = opts.rt ?? new JSRuntime();

  const H = await gptqHessian(X, T, K, rt);
  const W = Float64Array.from(w);
  for (let i = 0; i < K; i++) {
    if (H[i * K + i] === 0) {
      H[i * K + i] = 1;
      for (let n = 0; n < N; n++) W[n * K + i] = 0;
    }
  }
  let mean = 0;
  for (let i = 0; i < K; i++) mean += H[i * K + i]!;
  mean /= K;
  for (let i = 0; i < K; i++) H[i * K + i] += damp * mean;
  const Hinv = choleskyUpper(inverseSPD(H, K), K);

  const { bits, symmetric } = params;
  const g = groupSize(params, K);
  const G = Math.ceil(K / g);
  const codes = new Uint32Array(N * K);
  const scales = new Float32Array(N * G);
  const zeros = new Float32Array(N * G);
  const s = new Float64Array(N);
  const z = new Float64Array(N);
  const groupVals = new Float64Array(g);

  for (let i1 = 0; i1 < K; i1 += blockSize) {
    const i2 = Math.min(i1 + blockSize, K);
    const B = i2 - i1;
    const W1 = new Float64Array(N * B);
    for (let n = 0; n < N; n++) for (let j = 0; j < B; j++) W1[n * B + j] = W[n * K + i1 + j]!;
    const Err = new Float32Array(N * B);

    for (let i = 0; i < B; i++) {
      const col = i1 + i;
      if (col % g === 0) {
        const gi = col / g;
        const c1 = Math.min(K, col + g);
        for (let n = 0; n < N; n++) {
          for (let c = col; c < c1; c++) groupVals[c - col] = stats === 'updated' && c < i2 ? W1[n * B + c - i1]! : W[n * K + c]!;
          const p = groupScale(groupVals.subarray(0, c1 - col), bits, symmetric);
          s[n] = p.s;
          z[n] = p.z;
          scales[n * G + gi] = p.s;
          zeros[n * G + gi] = p.z;
        }
      }
      const d = Hinv[col * K + col]!;
      const hrow = col * K + i1;
      for (let n = 0; n < N; n++) {
        const wv = W1[n * B + i]!;
        const code = intCode(wv, s[n]!, z[n]!, bits);
        codes[n * K + col] = code;
        const err = (wv - (code - z[n]!) * s[n]!) / d;
        Err[n * B + i] = err;
        for (let j = i; j < B; j++) W1[n * B + j] -= err * Hinv[hrow + j]!;
      }
    }

    const R = K - i2;
    if (R > 0) {
      const rest = new Float32Array(N * R);
      for (let n = 0; n < N; n++) for (let j = 0; j < R; j++) rest[n * R + j] = W[n * K + i2 + j]!;
      const h = new Float32Array(B * R);
      for (let b = 0; b < B; b++) for (let j = 0; j < R; j++) h[b * R + j] = Hinv[(i1 + b) * K + i2 + j]!;
      const cp = cached(`u:${N}x${B}`, () => compile(lazyUpdateKernel(N, B).program));
      const out = await execute(cp, rt, { w: { shape: [N, R], data: rest }, err: { shape: [N, B], data: Err }, h: { shape: [B, R], data: h } });
      const upd = out['out']!.data;
      for (let n = 0; n < N; n++) for (let j = 0; j < R; j++) W[n * K + i2 + j] = upd[n * R + j]!;
    }
  }
  return intMatrix(params, N, K, codes, scales, symmetric ? undefined : zeros);
}
