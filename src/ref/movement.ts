/** Reference movement ops: reshape, permute, expand, slice, pad, concat, gather. Values are copied. */
import { fail } from '../errors.js';
import { normAxis, ravel, roundIntegers, showShape, stridesOf, unravel, zeros, type RefTensor } from './tensor.js';

/** Row-major reinterpretation: same elements in the same order, new shape. */
export function refReshape(x: RefTensor, shape: readonly number[]): RefTensor {
  const out = zeros(x.dtype, shape);
  if (out.data.length !== x.data.length) fail('E_SHAPE', `reshape ${showShape(x.shape)} to ${showShape(shape)} changes the element count`);
  out.data.set(x.data);
  return out;
}

/** out.shape[j] = x.shape[perm[j]]; out[o] = x[i] where i[perm[j]] = o[j]. */
export function refPermute(x: RefTensor, perm: readonly number[]): RefTensor {
  const rank = x.shape.length;
  const sorted = [...perm].sort((p, q) => p - q);
  if (perm.length !== rank || sorted.some((p, j) => p !== j)) fail('E_AXIS', `[${perm.join(', ')}] is not a permutation of ${rank} axes`);
  const out = zeros(x.dtype, perm.map((p) => x.shape[p]!));
  const inStrides = stridesOf(x.shape);
  for (let o = 0; o < out.data.length; o++) {
    const oi = unravel(o, out.shape);
    const ii = new Array<number>(rank);
    for (let j = 0; j < rank; j++) ii[perm[j]!] = oi[j]!;
    out.data[o] = x.data[ravel(ii, inStrides)]!;
  }
  return out;
}

/** Same rank; an axis of size 1 is repeated to the target size, other axes must already match. */
export function refExpand(x: RefTensor, shape: readonly number[]): RefTensor {
  const ok = shape.length === x.shape.length && x.shape.every((d, a) => d === shape[a] || d === 1);
  if (!ok) fail('E_SHAPE', `cannot expand ${showShape(x.shape)} to ${showShape(shape)}`);
  const out = zeros(x.dtype, shape);
  const inStrides = stridesOf(x.shape);
  for (let o = 0; o < out.data.length; o++) {
    const ii = unravel(o, out.shape).map((v, a) => (x.shape[a] === 1 ? 0 : v));
    out.data[o] = x.data[ravel(ii, inStrides)]!;
  }
  return out;
}

/** out[i] = x[starts + i * steps] per axis; steps may be negative; every read must be in range. */
export function refSlice(x: RefTensor, starts: readonly number[], steps: readonly number[], outShape: readonly number[]): RefTensor {
  const rank = x.shape.length;
  if (starts.length !== rank || steps.length !== rank || outShape.length !== rank) fail('E_SHAPE', `slice of a rank-${rank} tensor needs ${rank} starts, steps and sizes`);
  for (let a = 0; a < rank; a++) {
    const n = outShape[a]!;
    const first = starts[a]!;
    const last = first + (n - 1) * steps[a]!;
    const inRange = (v: number) => Number.isInteger(v) && v >= 0 && v < x.shape[a]!;
    if (n > 0 && !(inRange(first) && inRange(last))) {
      fail('E_SHAPE', `slice axis ${a}: start ${first}, step ${steps[a]}, size ${n} reads outside [0, ${x.shape[a]})`);
    }
  }
  const out = zeros(x.dtype, outShape);
  const inStrides = stridesOf(x.shape);
  for (let o = 0; o < out.data.length; o++) {
    const ii = unravel(o, out.shape).map((v, a) => starts[a]! + v * steps[a]!);
    out.data[o] = x.data[ravel(ii, inStrides)]!;
  }
  return out;
}

/** out.shape = before + x.shape + after; out[o] = x[o - before] where that is in range, else value. */
export function refPad(x: RefTensor, before: readonly number[], after: readonly number[], value: number): RefTensor {
  const rank = x.shape.length;
  if (before.length !== rank || after.length !== rank) fail('E_SHAPE', `pad of a rank-${rank} tensor needs ${rank} before and after sizes`);
  const out = zeros(x.dtype, x.shape.map((d, a) => before[a]! + d + after[a]!));
  const inStrides = stridesOf(x.shape);
  for (let o = 0; o < out.data.length; o++) {
    const ii = unravel(o, out.shape).map((v, a) => v - before[a]!);
    const inside = ii.every((v, a) => v >= 0 && v < x.shape[a]!);
    out.data[o] = inside ? x.data[ravel(ii, inStrides)]! : value;
  }
  return roundIntegers(out); // the pad value, stored as x's dtype
}

/** Joins tensors along `axis`; all other axes (and the dtypes) must agree. */
export function refConcat(xs: readonly RefTensor[], axis: number): RefTensor {
  if (xs.length === 0) fail('E_ARG', 'concat of no tensors');
  const first = xs[0]!;
  const rank = first.shape.length;
  const ax = normAxis(axis, rank, 'concat axis');
  for (const x of xs) {
    const ok = x.shape.length === rank && x.shape.every((d, a) => a === ax || d === first.shape[a]);
    if (!ok) fail('E_SHAPE', `concat along axis ${ax}: ${showShape(x.shape)} does not match ${showShape(first.shape)}`);
    if (x.dtype !== first.dtype) fail('E_DTYPE', `concat of ${x.dtype} and ${first.dtype}`);
  }
  const outShape = [...first.shape];
  outShape[ax] = xs.reduce((s, x) => s + x.shape[ax]!, 0);
  const out = zeros(first.dtype, outShape);
  const outStrides = stridesOf(outShape);
  let offset = 0; // where the current piece starts along `ax`
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const oi = unravel(i, x.shape);
      oi[ax] = oi[ax]! + offset;
      out.data[ravel(oi, outStrides)] = x.data[i]!;
    }
    offset += x.shape[ax]!;
  }
  return out;
}

/**
 * out = x.shape[:axis] ++ idx.shape ++ x.shape[axis+1:];
 * out[p..., q..., r...] = x[p..., clamp(idx[q...], 0, n-1), r...] with n = x.shape[axis].
 */
export function refGather(x: RefTensor, idx: RefTensor, axis: number): RefTensor {
  const ax = normAxis(axis, x.shape.length, 'gather axis');
  const n = x.shape[ax]!;
  const outShape = [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)];
  const out = zeros(x.dtype, outShape);
  if (out.data.length > 0 && n === 0) fail('E_SHAPE', 'gather from an empty axis');
  const inStrides = stridesOf(x.shape);
  const idxStrides = stridesOf(idx.shape);
  const q = idx.shape.length;
  for (let o = 0; o < out.data.length; o++) {
    const oi = unravel(o, outShape);
    const k = idx.data[ravel(oi.slice(ax, ax + q), idxStrides)]!;
    const clamped = Math.min(Math.max(Math.trunc(k), 0), n - 1);
    const ii = [...oi.slice(0, ax), clamped, ...oi.slice(ax + q)];
    out.data[o] = x.data[ravel(ii, inStrides)]!;
  }
  return out;
}
