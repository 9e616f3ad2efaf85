/**
 * The weight formats the low-bit benchmarks run, and the weights they use: a seeded, roughly
 * Gaussian matrix with a few outliers (what trained linear layers look like to a quantizer).
 */
import { mulberry32 } from '../src/fuzz/rng.js';
import { vptqMatrix, vptqParams, type QuantizedMatrix, type QuantParams } from '../src/quant/index.js';

export interface BenchFormat {
  readonly label: string;
  /** Registry name (src/quant/index.ts FORMATS); formats not registered are skipped. */
  readonly format: string;
  readonly params: QuantParams;
  /** Also time the format as a dequantize-then-matmul pair. */
  readonly pair?: boolean;
  /** How to build the benchmark matrix when the format's own quantize is too slow at this size. */
  readonly quantize?: (w: Float32Array, N: number, K: number) => QuantizedMatrix;
}

export const GEMV_FORMATS: BenchFormat[] = [
  { label: 'int8', format: 'int', params: { bits: 8, group: 0, symmetric: true } },
  { label: 'int4 g128', format: 'int', params: { bits: 4, group: 128, symmetric: false }, pair: true },
  { label: 'nf4', format: 'nf4', params: { block: 64 } },
  { label: 'fp8 e4m3', format: 'fp8', params: { variant: 'e4m3', block: 128 } },
  { label: 'mxfp4', format: 'mxfp4', params: {} },
  { label: 'ternary', format: 'ternary', params: { group: 0 } },
  // 2 bits of index per weight; codes and codebook are seeded noise (the kernel's work does not depend
  // on them, and k-means over 16M weights on the host would dominate the run)
  { label: 'vptq v4 k256', format: 'vptq', params: {}, quantize: (_w, N, K) => randomVptq(N, K, 4, 256) },
];

/** A VPTQ matrix with seeded codes and codebook (for timing). */
export function randomVptq(N: number, K: number, v: number, k: number): QuantizedMatrix {
  const R = Math.ceil(N / v);
  const codes = Uint32Array.from({ length: R * K }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 9) % k);
  const cb = Float32Array.from({ length: k * v }, (_, i) => Math.sin(i * 1.7) * 0.05);
  return vptqMatrix(vptqParams({ v, k }), N, K, { codes, cb });
}

/** Seeded weights [N, K]: a sum of three uniforms (bell-shaped), 1% of them 20x larger. */
export function benchMatrix(N: number, K: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  const w = new Float32Array(N * K);
  for (let i = 0; i < w.length; i++) {
    const g = (u() + u() + u() - 1.5) * 0.05;
    w[i] = u() < 0.01 ? g * 20 : g;
  }
  return w;
}
