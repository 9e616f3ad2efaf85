/**
 * Low-bit weights: formats (host codec + DSL access function + DSL round-to-nearest quantizer), the
 * registry that names them, and helpers to run them on a backend.
 */
import { fail } from '../errors.js';
import { intFormat } from './formats/int.js';
import type { Format } from './types.js';

export * from './types.js';
export * from './device.js';
export { intFormat, intMatrix, intPreset, type IntParams } from './formats/int.js';

export const FORMATS: Readonly<Record<string, Format<any>>> = {
  int: intFormat,
};

export function formatOf(name: string): Format<any> {
  const f = FORMATS[name];
  if (!f) fail('E_ARG', `unknown quantization format '${name}' (known: ${Object.keys(FORMATS).join(', ')})`);
  return f;
}
