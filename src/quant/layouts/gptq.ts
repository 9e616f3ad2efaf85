/**
 * The GPTQ checkpoint layout (AutoGPTQ `QuantLinear.pack`, qlinear_cuda_old / exllama / marlin
 * loaders; GPTQModel), imported into and exported from Tessera's canonical int format.
 *
 * GPTQ stores a linear layer in the [K, N] orientation (in_features first), Tessera in [N, K]:
 *
 *   qweight  int32 [K·bits/32, N]   codes packed along K: column n is the bit stream of W[n, :]'s
 *                                    codes, code k at stream bit k·bits, little-endian within a
 *                                    word (word k·bits/32 >> 5, bit (k·bits) % 32). For 2/4/8 bits
 *                                    that is 32/bits codes per word; for 3 bits 32 codes span 3 words
 *                                    and codes 10 and 21 straddle words (bits 30-31 + bit 0, bit 31 +
 *                                    bits 0-1), exactly AutoGPTQ's 10/1/10/1/10 scheme.
 *   qzeros   int32 [G, N·bits/32]   zero points packed along N with the same stream rule.
 *                                    'v1' (AutoGPTQ, default): the field holds (zero − 1) mod 2^bits;
 *                                    'v2' (GPTQModel): the field holds zero.
 *   scales   f16   [G, N]           (Float32Array of f16 values)
 *   g_idx    int32 [K]              group of each input channel: k // group without act-order.
 *
 * Dequantization: W[n, k] = scales[g, n] · (code(k, n) − zero(g, n)), g = g_idx[k] — the canonical
 * int format's asymmetric rule, so codes, scales and zeros move across unchanged (transposed).
 *
 * v1 and zero = 0: AutoGPTQ packs `zeros − 1` through uint32, so a zero point of 0 becomes −1 and
 * (unmasked) would corrupt the neighbouring fields of its word. Here every field is masked: zero 0
 * is stored as 2^bits − 1, and a v1 field is read back as (field + 1) mod 2^bits. That is the only
 * sensible reading of such a field (a real zero point is at most 2^bits − 1), and it round-trips.
 *
 * Act-order (`desc_act`): GPTQ then quantizes the input channels in a permuted order and g_idx
 * is not monotone. The canonical format's groups are contiguous runs along K, so `importGptq`
 * permutes K: it returns `{ q, perm }` where q's column j is input channel perm[j] (channels
 * stably sorted by group), so y = x·Wᵀ = x[:, perm]·Ŵᵀ — gather the activations with perm (or fold
 * perm into the previous layer) before the quantized matmul. `perm` is undefined when g_idx is
 * the trivial k // group. Every group must hold exactly as many channels as the canonical layout
 * gives it (group, the last one K − (G−1)·group), which GPTQ's act-order satisfies; other g_idx
 * are rejected. `exportGptq(q, { perm })` writes the matching g_idx back.
 *
 * Per-channel: GPTQ's group_size −1 (one group, G = 1) is the int format's group 0.
 * Requirements: bits ∈ {2, 3, 4, 8}; K·bits and N·bits multiples of 32 (4-bit: K, N multiples of
 * 8; 3-bit: multiples of 32). A ragged last group (K not a multiple of group) is allowed.
 */
import { fail } from '../../errors.js';
import { f16Round } from '../../runtime/f16.js';
import { groupSize, intMatrix, type IntParams } from '../formats/int.js';
import { unpackCodes, type QuantizedMatrix } from '../types.js';

export type GptqZeroFormat = 'v1' | 'v2';

export interface GptqTensors {
  readonly qweight: ArrayLike<number>;
  readonly qzeros: ArrayLike<number>;
  /** f16 values. */
  readonly scales: ArrayLike<number>;
  /** Group of each input channel; omitted means k // group. */
  readonly g_idx?: ArrayLike<number>;
}

export interface GptqExport {
  readonly qweight: Int32Array;
  readonly qzeros: Int32Array;
  readonly scales: Float32Array;
  readonly g_idx: Int32Array;
  readonly shapes: {
    readonly qweight: readonly [number, number];
    readonly qzeros: readonly [number, number];
    readonly scales: readonly [number, number];
    readonly g_idx: readonly [number];
  };
  readonly N: number;
  readonly K: number;
  readonly bits: number;
  /** As the checkpoint's quantize_config: −1 for per-channel. */
  readonly groupSize: number;
  readonly zeroFormat: GptqZeroFormat;
}

export interface GptqImportOptions {
  readonly N: number;
  readonly K: number;
  readonly bits: number;
  /** −1 (or 0) for per-channel. */
  readonly groupSize: number;
  /** Default 'v1' (AutoGPTQ checkpoints). */
  readonly zeroFormat?: GptqZeroFormat;
  /** Import as the symmetric int format (every zero point must be 2^(bits−1)); default asymmetric. */
  readonly symmetric?: boolean;
}

export interface GptqExportOptions {
  readonly zeroFormat?: GptqZeroFormat;
  /** q's column j is input channel perm[j] (as importGptq returns for act-order); default identity. */
  readonly perm?: ArrayLike<number>;
}

/** A canonical int matrix's contents, unpacked: codes [N, K], scales and zero points [N, G]. */
export interface IntContents {
  readonly bits: number;
  readonly group: number;
  readonly g: number;
  readonly G: number;
  readonly symmetric: boolean;
  readonly codes: Uint32Array;
  readonly scales: ArrayLike<number>;
  /** Zero points, 2^(bits−1) everywhere for symmetric. */
  readonly zeros: Float64Array;
}

/** Reads an int-format QuantizedMatrix back into codes, scales and zero points. */
export function intContents(q: QuantizedMatrix, who: string): IntContents {
  if (q.format !== 'int') fail('E_ARG', `${who}: expects an int-format matrix, got '${q.format}'`);
  const p = q.params as IntParams;
  const { N, K } = q;
  const g = groupSize(p, K);
  const G = Math.ceil(K / g);
  const codes = unpackCodes(q.buffers['codes']!.data as Uint32Array, N, K, p.bits);
  const scales = q.buffers['scales']!.data;
  const zeros = new Float64Array(N * G);
  if (p.symmetric) zeros.fill(2 ** (p.bits - 1));
  else {
    const z = q.buffers['zeros']!.data;
    for (let i = 0; i < N * G; i++) {
      const v = z[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= 2 ** p.bits) fail('E_ARG', `${who}: zero point ${v} at [${Math.floor(i / G)}, ${i % G}] is not a ${p.bits}-bit integer`);
      zeros[i] = v;
    }
  }
  return { bits: p.bits, group: p.group, g, G, symmetric: p.symmetric, codes, scales, zeros };
}

/** Reads field i (bits wide) of a little-endian bit stream held in words at base + w·stride. */
function readField(words: ArrayLike<number>, base: number, stride: number, i: number, bits: number): number {
  const bit = i * bits;
  const w = bit >>> 5;
  const sh = bit & 31;
  const mask = (1 << bits) - 1;
  let v = (words[base + w * stride]! >>> 0) >>> sh;
  if (sh + bits > 32) v |= (words[base + (w + 1) * stride]! >>> 0) << (32 - sh);
  return v & mask;
}

/** ORs value v into field i of a bit stream (words as uint32 in a Uint32Array). */
function writeField(words: Uint32Array, base: number, stride: number, i: number, bits: number, v: number): void {
  const bit = i * bits;
  const w = bit >>> 5;
  const sh = bit & 31;
  words[base + w * stride] = (words[base + w * stride]! | (v << sh)) >>> 0;
  if (sh + bits > 32) words[base + (w + 1) * stride] = (words[base + (w + 1) * stride]! | (v >>> (32 - sh))) >>> 0;
}

function checkGptqShape(who: string, bits: number, N: number, K: number): void {
  if (![2, 3, 4, 8].includes(bits)) fail('E_ARG', `${who}: GPTQ packs 2, 3, 4 or 8 bits, got ${bits}`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `${who}: bad matrix shape [N=${N}, K=${K}]`);
  if ((K * bits) % 32 !== 0) fail('E_SHAPE', `${who}: K=${K} × ${bits} bits is not a whole number of int32 words (K must be a multiple of ${32 / gcd(32, bits)})`);
  if ((N * bits) % 32 !== 0) fail('E_SHAPE', `${who}: N=${N} × ${bits} bits is not a whole number of int32 words for qzeros (N must be a multiple of ${32 / gcd(32, bits)})`);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function checkZeroFormat(who: string, f: string): void {
  if (f !== 'v1' && f !== 'v2') fail('E_ARG', `${who}: zeroFormat must be 'v1' (AutoGPTQ: stores zero − 1) or 'v2' (GPTQModel: stores zero), got '${f}'`);
}

/** Checks that perm is a permutation of 0..K-1 and returns it with its inverse. */
function checkPerm(who: string, perm: ArrayLike<number>, K: number): { perm: Int32Array; inv: Int32Array } {
  if (perm.length !== K) fail('E_SHAPE', `${who}: perm has ${perm.length} entries for K=${K}`);
  const inv = new Int32Array(K).fill(-1);
  for (let j = 0; j < K; j++) {
    const k = perm[j]!;
    if (!Number.isInteger(k) || k < 0 || k >= K || inv[k] !== -1) fail('E_ARG', `${who}: perm is not a permutation of 0..${K - 1} (entry ${j} = ${k})`);
    inv[k] = j;
  }
  return { perm: Int32Array.from(perm), inv };
}

/** Writes an int-format matrix in the GPTQ layout. */
export function exportGptq(q: QuantizedMatrix, opts: GptqExportOptions = {}): GptqExport {
  const who = 'exportGptq';
  const c = intContents(q, who);
  const { N, K } = q;
  const { bits, g, G } = c;
  checkGptqShape(who, bits, N, K);
  const zeroFormat = opts.zeroFormat ?? 'v1';
  checkZeroFormat(who, zeroFormat);
  const inv = opts.perm ? checkPerm(who, opts.perm, K).inv : undefined;
  const mask = 2 ** bits - 1;

  const KW = (K * bits) / 32;
  const NW = (N * bits) / 32;
  const qweight = new Uint32Array(KW * N);
  const g_idx = new Int32Array(K);
  for (let k = 0; k < K; k++) {
    const j = inv ? inv[k]! : k; // q's column holding input channel k
    g_idx[k] = Math.floor(j / g);
    for (let n = 0; n < N; n++) writeField(qweight, n, N, k, bits, c.codes[n * K + j]!);
  }
  const qzeros = new Uint32Array(G * NW);
  const scales = new Float32Array(G * N);
  for (let gi = 0; gi < G; gi++) {
    for (let n = 0; n < N; n++) {
      const z = c.zeros[n * G + gi]!;
      writeField(qzeros, gi * NW, 1, n, bits, zeroFormat === 'v1' ? (z - 1) & mask : z);
      scales[gi * N + n] = c.scales[n * G + gi]!;
    }
  }
  return {
    qweight: new Int32Array(qweight.buffer),
    qzeros: new Int32Array(qzeros.buffer),
    scales,
    g_idx,
    shapes: { qweight: [KW, N], qzeros: [G, NW], scales: [G, N], g_idx: [K] },
    N,
    K,
    bits,
    groupSize: c.group === 0 ? -1 : c.group,
    zeroFormat,
  };
}

/**
 * Reads GPTQ tensors into the canonical int format. `perm` is undefined unless g_idx is an
 * act-order permutation; then q's column j is input channel perm[j] (see the file comment).
 */
export function importGptq(t: GptqTensors, opts: GptqImportOptions): { q: QuantizedMatrix; perm: Int32Array | undefined } {
  const who = 'importGptq';
  const { N, K, bits } = opts;
  checkGptqShape(who, bits, N, K);
  const zeroFormat = opts.zeroFormat ?? 'v1';
  checkZeroFormat(who, zeroFormat);
  if (!Number.isInteger(opts.groupSize) || opts.groupSize < -1) fail('E_ARG', `${who}: groupSize must be a positive integer or -1 (per-channel), got ${opts.groupSize}`);
  const params: IntParams = { bits, group: opts.groupSize <= 0 ? 0 : opts.groupSize, symmetric: opts.symmetric ?? false };
  const g = groupSize(params, K);
  const G = Math.ceil(K / g);
  const KW = (K * bits) / 32;
  const NW = (N * bits) / 32;
  if (t.qweight.length !== KW * N) fail('E_SHAPE', `${who}: qweight has ${t.qweight.length} words, expected [${KW}, ${N}] = ${KW * N} for K=${K}, N=${N}, ${bits} bits`);
  if (t.qzeros.length !== G * NW) fail('E_SHAPE', `${who}: qzeros has ${t.qzeros.length} words, expected [${G}, ${NW}] = ${G * NW} (G=${G} groups)`);
  if (t.scales.length !== G * N) fail('E_SHAPE', `${who}: scales has ${t.scales.length} values, expected [${G}, ${N}] = ${G * N}`);

  // the canonical column order: channels stably sorted by group
  let perm: Int32Array | undefined;
  if (t.g_idx) {
    const gidx = t.g_idx;
    if (gidx.length !== K) fail('E_SHAPE', `${who}: g_idx has ${gidx.length} entries, expected K=${K}`);
    const count = new Int32Array(G);
    let trivial = true;
    for (let k = 0; k < K; k++) {
      const gi = gidx[k]!;
      if (!Number.isInteger(gi) || gi < 0 || gi >= G) fail('E_ARG', `${who}: g_idx[${k}] = ${gi} is not a group in 0..${G - 1}`);
      count[gi]++;
      if (gi !== Math.floor(k / g)) trivial = false;
    }
    for (let gi = 0; gi < G; gi++) {
      const want = Math.min(K, (gi + 1) * g) - gi * g;
      if (count[gi] !== want) fail('E_ARG', `${who}: g_idx puts ${count[gi]} channels in group ${gi}, the canonical layout needs ${want} (group size ${g}); this g_idx cannot be made contiguous by permuting K`);
    }
    if (!trivial) {
      const next = new Int32Array(G);
      for (let gi = 0; gi < G; gi++) next[gi] = gi * g;
      perm = new Int32Array(K);
      for (let k = 0; k < K; k++) perm[next[gidx[k]!]!++] = k;
    }
  }

  const mask = 2 ** bits - 1;
  const codes = new Uint32Array(N * K);
  for (let j = 0; j < K; j++) {
    const k = perm ? perm[j]! : j;
    for (let n = 0; n < N; n++) codes[n * K + j] = readField(t.qweight, n, N, k, bits);
  }
  const scales = new Float32Array(N * G);
  const zeros = new Float32Array(N * G);
  for (let gi = 0; gi < G; gi++) {
    for (let n = 0; n < N; n++) {
      const f = readField(t.qzeros, gi * NW, 1, n, bits);
      const z = zeroFormat === 'v1' ? (f + 1) & mask : f;
      if (params.symmetric && z !== 2 ** (bits - 1)) fail('E_ARG', `${who}: symmetric import needs every zero point to be ${2 ** (bits - 1)}, group ${gi} row ${n} has ${z}`);
      zeros[n * G + gi] = z;
      const s = t.scales[gi * N + n]!;
      if (!Number.isFinite(s)) fail('E_ARG', `${who}: scale [${gi}, ${n}] is ${s}`);
      scales[n * G + gi] = f16Round(s);
    }
  }
  return { q: intMatrix(params, N, K, codes, scales, params.symmetric ? undefined : zeros), perm };
}
