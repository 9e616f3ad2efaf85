/**
 * The quantization schemes the quality table compares: round-to-nearest for every format, GPTQ for
 * the integer grids, and VPTQ at about 2 bits (with and without a residual codebook). Codebooks are
 * per matrix; on these small models their storage is a visible part of the bits (counted).
 */
import { gptqQuantize } from '../src/quant/gptq.js';
import { vptqQuantize } from '../src/quant/vptq.js';
import { vptqParams } from '../src/quant/formats/vptq.js';
import { FORMATS, type QuantizedMatrix, type QuantParams } from '../src/quant/index.js';
import type { IntParams } from '../src/quant/formats/int.js';

/** A layer's calibration activations X [T, K] (its inputs in the float model). */
export type Calibration = (layer: string) => { X: Float32Array; T: number; K: number };

export interface QualityScheme {
  readonly label: string;
  /** The registry name of the format it produces. */
  readonly format: string;
  quantize(w: Float32Array, N: number, K: number, calib: { X: Float32Array; T: number }): Promise<QuantizedMatrix> | QuantizedMatrix;
}

const rtn = (label: string, format: string, params: QuantParams): QualityScheme => ({
  label: `${label} RTN`,
  format,
  quantize: (w, N, K) => FORMATS[format]!.quantize(w, N, K, params),
});

const gptq = (label: string, params: IntParams): QualityScheme => ({
  label: `${label} GPTQ`,
  format: 'int',
  quantize: (w, N, K, c) => gptqQuantize(w, N, K, c.X, c.T, params),
});

/** VPTQ with the calibration Hessian: weighted k-means (20 rounds) and the second-order update. */
const vptq = (label: string, p: { v: number; k: number; kRes?: number }): QualityScheme => ({
  label,
  format: 'vptq',
  quantize: (w, N, K, c) => vptqQuantize(w, N, K, c.X, c.T, vptqParams({ ...p, iters: 20 })),
});

const int = (bits: number, group: number, symmetric = false): IntParams => ({ bits, group, symmetric });

export const QUALITY_SCHEMES: readonly QualityScheme[] = [
  rtn('int8 per-channel', 'int', int(8, 0, true)),
  rtn('fp8 e4m3 b128', 'fp8', { variant: 'e4m3', block: 128 }),
  rtn('fp8 e5m2 b128', 'fp8', { variant: 'e5m2', block: 128 }),
  rtn('int4 g32', 'int', int(4, 32)),
  gptq('int4 g32', int(4, 32)),
  rtn('nf4 b64', 'nf4', { block: 64 }),
  rtn('mxfp4', 'mxfp4', {}),
  rtn('int3 g32', 'int', int(3, 32)),
  gptq('int3 g32', int(3, 32)),
  rtn('int2 g32', 'int', int(2, 32)),
  gptq('int2 g32', int(2, 32)),
  rtn('int2 g64', 'int', int(2, 64)),
  rtn('ternary', 'ternary', { group: 0 }),
  vptq('VPTQ v2 k16', { v: 2, k: 16 }),
  vptq('VPTQ v3 k64', { v: 3, k: 64 }),
  vptq('VPTQ v4 k64 + res k16', { v: 4, k: 64, kRes: 16 }),
];
