/**
 * Reference tensors: dense, row-major, every element a float64. The dtype says how values are
 * rounded (see `roundTo`), not how they are stored, so the reference ops can compute in float64 and
 * only round where the op semantics require it (integers and bools; see src/ref/index.ts).
 */
import { isFloat, type DType } from '../ir/dtype.js';
import { bf16Round } from '../runtime/f16.js';
import { numel } from '../ir/dims.js';
import { fail } from '../errors.js';
import type { HostArray } from '../runtime/backend.js';

export interface RefTensor {
  dtype: DType;
  shape: number[];
  data: Float64Array;
}

/** Smallest |x| that rounds to infinity in half precision: halfway between 65504 (the largest half) and 2^16. */
const F16_OVERFLOW = 65520;
const F16_MIN_NORMAL = 2 ** -14;
const F16_SUBNORMAL_STEP = 2 ** -24;

/** Round to the nearest integer, ties to even. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Nearest half-precision value (ties to even), overflowing to ±Infinity; NaN stays NaN. */
export function roundF16(x: number): number {
  if (Number.isNaN(x) || !Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let r: number;
  if (a >= F16_OVERFLOW) {
    r = Infinity;
  } else if (a < F16_MIN_NORMAL) {
    r = roundHalfEven(a / F16_SUBNORMAL_STEP) * F16_SUBNORMAL_STEP;
  } else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    if (2 ** (e + 1) <= a) e++;
    const step = 2 ** (e - 10); // 10 fraction bits; a < F16_OVERFLOW rounds to at most F16_MAX
    r = roundHalfEven(a / step) * step;
  }
  return x < 0 ? -r : r;
}

/**
 * The value `x` takes when stored as `dtype`: f32 rounds with Math.fround, f16 to the nearest half
 * (ties to even, overflow to ±Infinity), bf16 to the nearest bfloat16 (ties to even), i32 and u32 truncate toward zero and wrap modulo 2^32
 * (NaN and ±Infinity give 0), bool is 1 when x != 0 (NaN included) and 0 otherwise.
 */
export function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case 'f32': return Math.fround(x);
    case 'f16': return roundF16(x);
    case 'bf16': return bf16Round(x);
    case 'i32': return x | 0;
    case 'u32': return x >>> 0;
    case 'bool': return x !== 0 ? 1 : 0;
  }
}

/** Rounds integer and bool values in place (floats stay float64); returns `t`. */
export function roundIntegers(t: RefTensor): RefTensor {
  if (isFloat(t.dtype)) return t;
  for (let i = 0; i < t.data.length; i++) t.data[i] = roundTo(t.dtype, t.data[i]!);
  return t;
}

function checkShape(shape: readonly number[]): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) fail('E_SHAPE', `bad tensor shape [${shape.join(', ')}]`);
  }
  return [...shape];
}

/** A zero-filled tensor (the ops fill it in). */
export function zeros(dtype: DType, shape: readonly number[]): RefTensor {
  const s = checkShape(shape);
  return { dtype, shape: s, data: new Float64Array(numel(s)) };
}

/** A tensor holding `values` as stored in `dtype` (each value goes through `roundTo`). */
export function refTensor(dtype: DType, shape: readonly number[], values: ArrayLike<number>): RefTensor {
  const t = zeros(dtype, shape);
  if (values.length !== t.data.length) {
    fail('E_BUFFER', `${values.length} values for a tensor of shape [${shape.join(', ')}] (${t.data.length} elements)`);
  }
  for (let i = 0; i < values.length; i++) t.data[i] = roundTo(dtype, values[i]!);
  return t;
}

/** A tensor from host data as a backend would receive it (f16 and bf16 host values are rounded). */
export function refFromHost(dtype: DType, shape: readonly number[], host: HostArray): RefTensor {
  return refTensor(dtype, shape, host);
}

/** The host array a backend would return for `t` (f32/f16/bf16 as Float32Array, bool as Uint8Array). */
export function refToHost(t: RefTensor): HostArray {
  const n = t.data.length;
  let out: HostArray;
  switch (t.dtype) {
    case 'f32': case 'f16': case 'bf16': out = new Float32Array(n); break;
    case 'i32': out = new Int32Array(n); break;
    case 'u32': out = new Uint32Array(n); break;
    case 'bool': out = new Uint8Array(n); break;
  }
  for (let i = 0; i < n; i++) out[i] = roundTo(t.dtype, t.data[i]!);
  return out;
}

/** Row-major strides: stepping axis a by one moves strides[a] elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let a = shape.length - 1; a >= 0; a--) {
    s[a] = acc;
    acc *= shape[a]!;
  }
  return s;
}

/** The multi-index of flat position `flat` in a row-major tensor of `shape`. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    const n = shape[a]!;
    idx[a] = flat % n;
    flat = Math.floor(flat / n);
  }
  return idx;
}

/** The flat position of multi-index `idx` given row-major `strides`. */
export function ravel(idx: readonly number[], strides: readonly number[]): number {
  let flat = 0;
  for (let a = 0; a < idx.length; a++) flat += idx[a]! * strides[a]!;
  return flat;
}

/** Element of `t` at multi-index `idx` (no bounds check beyond the flat range). */
export function getAt(t: RefTensor, idx: readonly number[]): number {
  return t.data[ravel(idx, stridesOf(t.shape))]!;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function showShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Normalizes a possibly negative axis against `rank`; E_AXIS when out of range. */
export function normAxis(axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) fail('E_AXIS', `${what} ${axis} out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/**
 * Compares `actual` with the reference `expected` element by element: |a - e| <= atol + rtol * |e|,
 * NaN matches only NaN and an infinity only the same infinity. Returns null when all match, else
 * a description of the first mismatch.
 */
export function refMismatch(actual: ArrayLike<number>, expected: RefTensor, rtol = 1e-5, atol = 1e-6): string | null {
  if (actual.length !== expected.data.length) return `length ${actual.length}, expected ${expected.data.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected.data[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) return `at ${showShape(unravel(i, expected.shape))}: got ${a}, expected ${e}`;
  }
  return null;
}
