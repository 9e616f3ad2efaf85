/**
 * Quantized weight matrices: what every low-bit format shares.
 *
 * A weight matrix is W[N, K] (N outputs, K inputs, row-major, as a linear layer stores it; y = x W^T).
 * An *encoding* is storage buffers plus an element access function (docs/DESIGN.md): the host holds
 * the buffers as a `QuantizedMatrix`; in the DSL, `format.access(handles, q)` is a `compute([N, K], ...)`
 * tensor that reads those buffers and yields W's f32 elements. Fusion inlines it into the matmul that
 * reads W, so a kernel reads packed words and scales and never writes a dense copy.
 *
 * Packing convention (all formats unless a format says otherwise): b-bit codes are packed along K,
 * `perWord(b) = floor(32 / b)` codes per u32 word, code k of a row in word `floor(k / per)` at bit
 * `(k % per) * b`; each row starts a new word (rows have `ceil(K / per)` words; unused bits are 0).
 * Groups run along K: group size g gives `ceil(K / g)` groups per row; the last one may be partial.
 */
import type { DType } from '../ir/dtype.js';
import type { Tensor } from '../dsl/tensor.js';
import { tensor, type KernelDef, type TensorSpec } from '../dsl/kernel.js';
import { fail } from '../errors.js';
import type { HostArray } from '../runtime/backend.js';

/** One storage buffer of an encoding, with concrete shape and host data (f16 values as Float32Array). */
export interface QBuffer {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: HostArray;
}

/** A format's parameter record (bits, group size, variant, ...): JSON-serialisable. */
export type QuantParams = Readonly<Record<string, number | string | boolean>>;

export interface QuantizedMatrix {
  /** The format's name in the registry (`int`, `nf4`, `fp8`, `mxfp4`, `ternary`, `vptq`). */
  readonly format: string;
  readonly N: number;
  readonly K: number;
  /** The format's parameters (bits, group size, ...), JSON-serialisable. */
  readonly params: QuantParams;
  /** Storage, by buffer name. */
  readonly buffers: Readonly<Record<string, QBuffer>>;
}

/**
 * A format: host codec (quantize, dequantize) and device access. `P` is its parameter record.
 * Everything a DSL program needs to read a quantized W is `specs(q)` (the kernel parameters, shapes
 * concrete) and `access(handles, q)`.
 */
export interface Format<P extends QuantParams> {
  readonly name: string;
  /** Round-to-nearest quantization on the host, in float64 (the reference the DSL quantizer matches). */
  quantize(w: Float32Array, N: number, K: number, params: P): QuantizedMatrix;
  /** The dense W the encoding stands for, in float64 (the reference every kernel is checked against). */
  dequantize(q: QuantizedMatrix): Float64Array;
  /** Storage bits per weight, counting every buffer (codes, scales, zeros, codebooks, tables). */
  bitsPerWeight(q: QuantizedMatrix): number;
  /** Kernel parameters for q's buffers, named `${prefix}${buffer}`. */
  specs(q: QuantizedMatrix, prefix?: string): Record<string, TensorSpec>;
  /** W[N, K] as a DSL tensor over the handles of `specs(q, prefix)`. */
  access(handles: Readonly<Record<string, Tensor>>, q: QuantizedMatrix, prefix?: string): Tensor;
  /** A worst-case bound on |dequantize(quantize(w)) - w| per element, given the group's values. */
  errorBound?(q: QuantizedMatrix, w: Float32Array): Float64Array;
  /**
   * Round-to-nearest quantization as a DSL program, so it runs on any backend: input `w` f32 [N, K];
   * outputs are storage buffers (by buffer name) that `fromDevice` assembles into a QuantizedMatrix.
   */
  rtnKernel(N: number, K: number, params: P): KernelDef;
  /** The QuantizedMatrix from rtnKernel's outputs (adding constant tables the program does not produce). */
  fromDevice(outputs: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: HostArray }>>, N: number, K: number, params: P): QuantizedMatrix;
}

/** Fails unless `w` holds exactly the N x K weights a quantizer was told it holds. */
export function checkWeights(format: string, w: ArrayLike<number>, N: number, K: number): void {
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) fail('E_SHAPE', `${format}: bad matrix shape [${N}, ${K}]`);
  if (w.length !== N * K) fail('E_SHAPE', `${format}: ${w.length} weights for a [${N}, ${K}] matrix (expected ${N * K})`);
}

/** Any format, whatever its parameter record (what registries and generic helpers hold). */
export type AnyFormat = Format<QuantParams>;

/**
 * Block-absmax quantization on the host: for each block of g weights along K, `block(absmax)` gives
 * the scale to store (into `scales`, [N, ceil(K / g)]) and the code of each weight of the block.
 * Returns the codes [N, K].
 */
export function quantizeBlocks(
  w: ArrayLike<number>, N: number, K: number, g: number, scales: Float32Array | Uint32Array,
  block: (absmax: number) => { scale: number; code: (w: number) => number },
): Uint32Array {
  const G = Math.ceil(K / g);
  const codes = new Uint32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < G; gi++) {
      const k0 = n * K + gi * g;
      const k1 = n * K + Math.min(K, (gi + 1) * g);
      let a = 0;
      for (let k = k0; k < k1; k++) a = Math.max(a, Math.abs(w[k]!));
      const { scale, code } = block(a);
      scales[n * G + gi] = scale;
      for (let k = k0; k < k1; k++) codes[k] = code(w[k]!);
    }
  }
  return codes;
}

/** Codes per u32 word for b-bit codes. */
export const perWord = (bits: number): number => Math.floor(32 / bits);
/** u32 words per row of K b-bit codes. */
export const wordsPerRow = (K: number, bits: number): number => Math.ceil(K / perWord(bits));

/** Packs codes[N, K] (each < 2^bits) into u32 words [N, wordsPerRow(K, bits)]. */
export function packCodes(codes: ArrayLike<number>, N: number, K: number, bits: number): Uint32Array {
  const per = perWord(bits);
  const W = wordsPerRow(K, bits);
  const out = new Uint32Array(N * W);
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const c = codes[n * K + k]!;
      if (!Number.isInteger(c) || c < 0 || c > mask) fail('E_ARG', `code ${c} at [${n}, ${k}] does not fit in ${bits} bits`);
      const wi = n * W + Math.floor(k / per);
      out[wi] = (out[wi]! | (c << ((k % per) * bits))) >>> 0;
    }
  }
  return out;
}

/** Inverse of packCodes. */
export function unpackCodes(words: Uint32Array, N: number, K: number, bits: number): Uint32Array {
  const per = perWord(bits);
  const W = wordsPerRow(K, bits);
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const out = new Uint32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[n * K + k] = (words[n * W + Math.floor(k / per)]! >>> ((k % per) * bits)) & mask;
  return out;
}

/** Bytes of storage a buffer takes on a device (f16 2 bytes, everything else 4). */
export function storageBits(b: QBuffer): number {
  return b.data.length * (b.dtype === 'f16' ? 16 : 32);
}

/** Kernel parameters for every buffer of q, named `${prefix}${buffer}` (what most formats' `specs` is). */
export function bufferSpecs(q: QuantizedMatrix, prefix = ''): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  for (const [name, b] of Object.entries(q.buffers)) out[prefix + name] = tensor(b.dtype, b.shape);
  return out;
}

/**
 * The dense W of a table-driven format: W[n, k] = lut[code] * scale[n, k / g], codes `bits` wide in
 * buffer `codes`, scales [N, ceil(K / g)] in buffer `scaleBuffer`, the table in buffer `lut`.
 */
export function lutDequantize(q: QuantizedMatrix, bits: number, g: number, scaleBuffer: string): Float64Array {
  const { N, K } = q;
  const G = Math.ceil(K / g);
  const codes = unpackCodes(q.buffers['codes']!.data as Uint32Array, N, K, bits);
  const s = q.buffers[scaleBuffer]!.data;
  const lut = q.buffers['lut']!.data;
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[n * K + k] = lut[codes[n * K + k]!]! * s[n * G + Math.floor(k / g)]!;
  return out;
}

/** Sum of every buffer's storage bits over N*K: the honest bits per weight. */
export function totalBitsPerWeight(q: QuantizedMatrix): number {
  return Object.values(q.buffers).reduce((s, b) => s + storageBits(b), 0) / (q.N * q.K);
}

/** Round half away from zero, as the DSL's `floor(x + 0.5)` does for x >= 0 (used where codes are non-negative). */
export const roundHalfUp = (x: number): number => Math.floor(x + 0.5);
