/**
 * Low-bit weights: formats (host codec + DSL access function + DSL round-to-nearest quantizer), the
 * registry that names them, and helpers to run them on a backend.
 */
import { fail } from '../errors.js';
import { intFormat } from './formats/int.js';
import { nf4Format } from './formats/nf4.js';
import { fp8Format } from './formats/fp8.js';
import { mxfp4Format } from './formats/mxfp4.js';
import { ternaryFormat } from './formats/ternary.js';
import { vptqFormat } from './formats/vptq.js';
import type { AnyFormat } from './types.js';

export * from './types.js';
export * from './device.js';
export { intFormat, intMatrix, intPreset, type IntParams } from './formats/int.js';
export { nf4Format, nf4Matrix, nf4Preset, nf4Code, NF4_LEVELS, NF4_MIDPOINTS, type Nf4Params } from './formats/nf4.js';
export { fp8Format, fp8Matrix, fp8Preset, fp8Table, fp8Scale, encodeFp8, decodeFp8, encodeFp8Expr, exponentSelect, floorLog2, FP8, FP8_NAN, type Fp8Params, type Fp8Variant, type Fp8Spec } from './formats/fp8.js';
export { mxfp4Format, mxfp4Matrix, encodeE2M1, decodeE2M1, e8m0Code, decodeE8M0, E2M1_VALUES, MX_BLOCK, type Mxfp4Params } from './formats/mxfp4.js';
export { ternaryFormat, ternaryMatrix, ternaryCode, absmeanScale, TERNARY_EPS, type TernaryParams } from './formats/ternary.js';
export { vptqFormat, vptqParams, vptqMatrix, vptqLayout, vptqBits, vptqIndexBits, vptqCodes, checkVptq, type VptqParams, type VptqParts, type VptqLayout } from './formats/vptq.js';
export { vptqQuantize, vptqQuantizeReport, vptqKmeans, type VptqOptions, type VptqReport } from './vptq.js';

export const FORMATS: Readonly<Record<string, AnyFormat>> = {
  int: intFormat,
  nf4: nf4Format,
  fp8: fp8Format,
  mxfp4: mxfp4Format,
  ternary: ternaryFormat,
  vptq: vptqFormat,
};

export function formatOf(name: string): AnyFormat {
  const f = FORMATS[name];
  if (!f) fail('E_ARG', `unknown quantization format '${name}' (known: ${Object.keys(FORMATS).join(', ')})`);
  return f;
}
export * from './linalg.js';
export * from './gptq.js';
export * from './layouts/gptq.js';
export * from './layouts/awq.js';
export * from './w8a8.js';
