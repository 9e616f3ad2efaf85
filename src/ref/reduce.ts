/**
 * Reference reductions: sum, mean, max, min over a set of axes; argmax, argmin over one axis.
 * Accumulation is float64 in input order; max/min propagate NaN; argmax/argmin return the first
 * index of the extreme value, a NaN counting as both the maximum and the minimum (first NaN wins).
 * mean of an integer tensor is the sum divided by the count, then truncated and wrapped.
 */
import type { ReduceOp } from '../ir/ops.js';
import { fail } from '../errors.js';
import { binaryScalar, reduceIdentity } from './scalar.js';
import { normAxis, ravel, roundIntegers, stridesOf, unravel, zeros, type RefTensor } from './tensor.js';

/** The result shape, and for each input axis whether it is reduced. */
function reducedShape(shape: readonly number[], axes: readonly number[], keepdims: boolean): { out: number[]; reduced: boolean[] } {
  const reduced = shape.map(() => false);
  for (const ax of axes) {
    const a = normAxis(ax, shape.length, 'reduction axis');
    if (reduced[a]) fail('E_AXIS', `reduction axis ${ax} appears twice`);
    reduced[a] = true;
  }
  const out: number[] = [];
  shape.forEach((d, a) => {
    if (!reduced[a]) out.push(d);
    else if (keepdims) out.push(1);
  });
  return { out, reduced };
}

/** Position in the output of the input element at multi-index `idx`. */
function outIndex(idx: readonly number[], reduced: readonly boolean[], keepdims: boolean): number[] {
  const o: number[] = [];
  idx.forEach((v, a) => {
    if (!reduced[a]) o.push(v);
    else if (keepdims) o.push(0);
  });
  return o;
}

export function refReduce(op: ReduceOp, x: RefTensor, axes: readonly number[], keepdims: boolean): RefTensor {
  if (op === 'argmax' || op === 'argmin') {
    if (axes.length !== 1) fail('E_AXIS', `${op} reduces exactly one axis, got [${axes.join(', ')}]`);
    return refArgReduce(op, x, axes[0]!, keepdims);
  }
  const { out: outShape, reduced } = reducedShape(x.shape, axes, keepdims);
  const out = zeros(x.dtype, outShape);
  const outStrides = stridesOf(outShape);
  const fn = op === 'mean' ? 'sum' : op;
  out.data.fill(reduceIdentity(fn, x.dtype));
  const counts = new Float64Array(out.data.length);

  for (let i = 0; i < x.data.length; i++) {
    const o = ravel(outIndex(unravel(i, x.shape), reduced, keepdims), outStrides);
    const v = x.data[i]!;
    const acc = out.data[o]!;
    if (fn === 'sum') out.data[o] = acc + v;
    else out.data[o] = binaryScalar(fn === 'max' ? 'maximum' : 'minimum', acc, v, x.dtype);
    counts[o]!++;
  }
  if (op === 'mean') for (let o = 0; o < out.data.length; o++) out.data[o] = out.data[o]! / counts[o]!;
  return roundIntegers(out);
}

function refArgReduce(op: 'argmax' | 'argmin', x: RefTensor, axis: number, keepdims: boolean): RefTensor {
  const ax = normAxis(axis, x.shape.length, `${op} axis`);
  const { out: outShape, reduced } = reducedShape(x.shape, [ax], keepdims);
  const out = zeros('i32', outShape);
  const outStrides = stridesOf(outShape);
  const best = new Float64Array(out.data.length);
  const seen = new Uint8Array(out.data.length);

  // Row-major order visits each output's elements in increasing index along `ax`.
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    const o = ravel(outIndex(idx, reduced, keepdims), outStrides);
    const v = x.data[i]!;
    const b = best[o]!;
    let better: boolean;
    if (!seen[o]) better = true;
    else if (Number.isNaN(b)) better = false; // the first NaN is final
    else if (Number.isNaN(v)) better = true;
    else better = op === 'argmax' ? v > b : v < b;
    if (better) {
      best[o] = v;
      out.data[o] = idx[ax]!;
      seen[o] = 1;
    }
  }
  return out;
}
