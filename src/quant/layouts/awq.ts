/**
 * The AWQ GEMM checkpoint layout (AutoAWQ `WQLinear_GEMM.from_linear`; vLLM `awq_triton.py`),
 * imported into and exported from Tessera's canonical int format. 4-bit only, asymmetric.
 *
 *   qweight  int32 [K, N/8]   codes packed along N (the output dim), 8 per word, interleaved:
 *                              nibble i (bits 4i..4i+3) of word c in row k holds the code of
 *                              W[8c + AWQ_ORDER[i], k], AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];
 *                              equivalently column 8c + j sits in nibble AWQ_REVERSE_ORDER[j],
 *                              AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7].
 *   qzeros   int32 [G, N/8]   zero points, same packing and interleave; the zero itself (no −1).
 *   scales   f16   [G, N]     (Float32Array of f16 values)
 *
 * W[n, k] = scales[k / group, n] · (code − zero), the canonical asymmetric rule. AWQ requires K to
 * be a multiple of the group size (G = K / group; AutoAWQ's group_size −1 means group = K, the int
 * format's group 0) and N a multiple of 8. There is no g_idx: AWQ has no act-order.
 */
import { fail } from '../../errors.js';
import { f16Round } from '../../runtime/f16.js';
import { groupSize, intMatrix, type IntParams } from '../formats/int.js';
import type { QuantizedMatrix } from '../types.js';
import { intContents } from './gptq.js';

/** Pack order: nibble i holds column AWQ_ORDER[i] of each group of 8. */
export const AWQ_ORDER: readonly number[] = [0, 2, 4, 6, 1, 3, 5, 7];
/** Unpack order: column j of each group of 8 is in nibble AWQ_REVERSE_ORDER[j]. */
export const AWQ_REVERSE_ORDER: readonly number[] = [0, 4, 1, 5, 2, 6, 3, 7];

export interface AwqTensors {
  readonly qweight: ArrayLike<number>;
  readonly qzeros: ArrayLike<number>;
  /** f16 values. */
  readonly scales: ArrayLike<number>;
}

export interface AwqExport {
  readonly qweight: Int32Array;
  readonly qzeros: Int32Array;
  readonly scales: Float32Array;
  readonly shapes: {
    readonly qweight: readonly [number, number];
    readonly qzeros: readonly [number, number];
    readonly scales: readonly [number, number];
  };
  readonly N: number;
  readonly K: number;
  readonly bits: 4;
  /** As the checkpoint's quant_config: −1 for per-channel. */
  readonly groupSize: number;
}

export interface AwqImportOptions {
  readonly N: number;
  readonly K: number;
  /** −1 (or 0) for per-channel. */
  readonly groupSize: number;
  /** Only 4 is accepted (the GEMM layout is 4-bit); default 4. */
  readonly bits?: number;
  /** Import as the symmetric int format (every zero point must be 8); default asymmetric. */
  readonly symmetric?: boolean;
}

function checkAwqShape(who: string, bits: number, N: number, K: number, g: number): void {
  if (bits !== 4) fail('E_ARG', `${who}: the AWQ GEMM layout is 4-bit only, got ${bits} bits`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `${who}: bad matrix shape [N=${N}, K=${K}]`);
  if (N % 8 !== 0) fail('E_SHAPE', `${who}: N=${N} must be a multiple of 8 (8 output channels per int32 word)`);
  if (K % g !== 0) fail('E_SHAPE', `${who}: K=${K} must be a multiple of the group size ${g} (AWQ has no partial groups)`);
}

/** Writes an int-format matrix (4-bit) in the AWQ GEMM layout. */
export function exportAwq(q: QuantizedMatrix): AwqExport {
  const who = 'exportAwq';
  const c = intContents(q, who);
  const { N, K } = q;
  checkAwqShape(who, c.bits, N, K, c.g);
  const G = c.G;
  const NW = N / 8;
  const qweight = new Int32Array(K * NW);
  for (let k = 0; k < K; k++) {
    for (let w = 0; w < NW; w++) {
      let word = 0;
      for (let i = 0; i < 8; i++) word |= c.codes[(8 * w + AWQ_ORDER[i]!) * K + k]! << (4 * i);
      qweight[k * NW + w] = word;
    }
  }
  const qzeros = new Int32Array(G * NW);
  const scales = new Float32Array(G * N);
  for (let gi = 0; gi < G; gi++) {
    for (let w = 0; w < NW; w++) {
      let word = 0;
      for (let i = 0; i < 8; i++) word |= c.zeros[(8 * w + AWQ_ORDER[i]!) * G + gi]! << (4 * i);
      qzeros[gi * NW + w] = word;
    }
    for (let n = 0; n < N; n++) scales[gi * N + n] = c.scales[n * G + gi]!;
  }
  return {
    qweight,
    qzeros,
    scales,
    shapes: { qweight: [K, NW], qzeros: [G, NW], scales: [G, N] },
    N,
    K,
    bits: 4,
    groupSize: c.group === 0 ? -1 : c.group,
  };
}

/** Reads AWQ GEMM tensors into the canonical int format. */
export function importAwq(t: AwqTensors, opts: AwqImportOptions): QuantizedMatrix {
  const who = 'importAwq';
  const { N, K } = opts;
  const bits = opts.bits ?? 4;
  if (!Number.isInteger(opts.groupSize) || opts.groupSize < -1) fail('E_ARG', `${who}: groupSize must be a positive integer or -1 (per-channel), got ${opts.groupSize}`);
  const params: IntParams = { bits, group: opts.groupSize <= 0 ? 0 : opts.groupSize, symmetric: opts.symmetric ?? false };
  const g = groupSize(params, Number.isInteger(K) && K > 0 ? K : 1);
  checkAwqShape(who, bits, N, K, g);
  const G = K / g;
  const NW = N / 8;
  if (t.qweight.length !== K * NW) fail('E_SHAPE', `${who}: qweight has ${t.qweight.length} words, expected [${K}, ${NW}] = ${K * NW}`);
  if (t.qzeros.length !== G * NW) fail('E_SHAPE', `${who}: qzeros has ${t.qzeros.length} words, expected [${G}, ${NW}] = ${G * NW} (G=${G} groups)`);
  if (t.scales.length !== G * N) fail('E_SHAPE', `${who}: scales has ${t.scales.length} values, expected [${G}, ${N}] = ${G * N}`);

  const codes = new Uint32Array(N * K);
  for (let k = 0; k < K; k++) {
    for (let w = 0; w < NW; w++) {
      const word = t.qweight[k * NW + w]! >>> 0;
      for (let j = 0; j < 8; j++) codes[(8 * w + j) * K + k] = (word >>> (4 * AWQ_REVERSE_ORDER[j]!)) & 15;
    }
  }
  const zeros = new Float32Array(N * G);
  const scales = new Float32Array(N * G);
  for (let gi = 0; gi < G; gi++) {
    for (let w = 0; w < NW; w++) {
      const word = t.qzeros[gi * NW + w]! >>> 0;
      for (let j = 0; j < 8; j++) {
        const z = (word >>> (4 * AWQ_REVERSE_ORDER[j]!)) & 15;
        if (params.symmetric && z !== 8) fail('E_ARG', `${who}: symmetric import needs every zero point to be 8, group ${gi} row ${8 * w + j} has ${z}`);
        zeros[(8 * w + j) * G + gi] = z;
      }
    }
    for (let n = 0; n < N; n++) {
      const s = t.scales[gi * N + n]!;
      if (!Number.isFinite(s)) fail('E_ARG', `${who}: scale [${gi}, ${n}] is ${s}`);
      scales[n * G + gi] = f16Round(s);
    }
  }
  return intMatrix(params, N, K, codes, scales, params.symmetric ? undefined : zeros);
}
