/**
 * Small helpers for the library's float64 references: named input lookup and a fresh f32 output.
 * Only bookkeeping lives here; each op's arithmetic stays in its own reference, in plain loops.
 */
import { fail } from '../src/errors.js';
import { zeros, type RefTensor } from '../src/ref/index.js';
import type { RefInputs } from './spec.js';

export function arg(inputs: RefInputs, name: string): RefTensor {
  return inputs[name] ?? fail('E_BUFFER', `reference needs input '${name}'`);
}

export function f32Out(shape: readonly number[]): RefTensor {
  return zeros('f32', shape);
}

/** Rows of the last axis: [count, length]. */
export function rowsOf(t: RefTensor): [number, number] {
  const n = t.shape[t.shape.length - 1] ?? 1;
  return [n === 0 ? 0 : t.data.length / n, n];
}
