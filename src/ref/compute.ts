/**
 * Reference `compute`: out[i...] = expr evaluated at output index i, by direct interpretation of the
 * index expression (src/ir/index-expr.ts).
 *
 * - Types: idx, rvar and dim are i32; num has its own dtype; at has its argument's dtype; un/bin/
 *   where follow the elementwise rules (operands converted to their promoted dtype, compares give
 *   bool); cast converts; red has its body's dtype. Every integer or bool intermediate is rounded
 *   (i32 arithmetic wraps, division truncates), floats stay float64.
 * - at: each index is converted to i32 and clamped to [0, n-1] on its axis.
 * - red {fn, name, extent, body}: sum/max/min of body for name = 0 .. extent-1 (max/min propagate
 *   NaN); an empty range gives the identity (0, -Inf/+Inf, or the integer type's min/max).
 * - The body's value is converted to the node dtype as by cast.
 */
import { isFloat, type DType } from '../ir/dtype.js';
import { evalDim, type DimBindings } from '../ir/dims.js';
import type { IExpr } from '../ir/index-expr.js';
import { fail } from '../errors.js';
import { binaryScalar, binaryType, castScalar, operandType, reduceIdentity, unaryScalar, unaryType } from './scalar.js';
import { ravel, roundTo, stridesOf, unravel, zeros, type RefTensor } from './tensor.js';

export function refCompute(
  expr: IExpr,
  args: readonly RefTensor[],
  outShape: readonly number[],
  dtype: DType,
  dims: DimBindings = {},
): RefTensor {
  const types = new Map<IExpr, DType>();
  const argStrides = args.map((a) => stridesOf(a.shape));
  const rvars = new Map<string, number>();
  let out: number[] = [];

  function typeOf(e: IExpr): DType {
    let t = types.get(e);
    if (t !== undefined) return t;
    switch (e.k) {
      case 'idx': case 'rvar': case 'dim': t = 'i32'; break;
      case 'num': t = e.dtype; break;
      case 'at': t = arg(e.arg).dtype; break;
      case 'un': t = unaryType(e.op, typeOf(e.a)); break;
      case 'bin': t = binaryType(e.op, typeOf(e.a), typeOf(e.b)); break;
      case 'where': t = operandType(typeOf(e.a), typeOf(e.b)); break;
      case 'cast': t = e.dtype; break;
      case 'red': t = typeOf(e.body); break;
    }
    types.set(e, t);
    return t;
  }

  function arg(i: number): RefTensor {
    const a = args[i];
    if (a === undefined) fail('E_VERIFY', `compute reads argument ${i} of ${args.length}`);
    return a;
  }

  /** Value of `e` converted to dtype `t`. */
  function valueAs(e: IExpr, t: DType): number {
    return castScalar(value(e), typeOf(e), t);
  }

  function value(e: IExpr): number {
    switch (e.k) {
      case 'idx': {
        const v = out[e.i];
        if (v === undefined) fail('E_VERIFY', `compute reads output index ${e.i} of a rank-${outShape.length} output`);
        return v;
      }
      case 'rvar': {
        const v = rvars.get(e.name);
        if (v === undefined) fail('E_VERIFY', `compute reads reduction variable '${e.name}' outside its reduction`);
        return v;
      }
      case 'num': return isFloat(e.dtype) ? e.v : roundTo(e.dtype, e.v);
      case 'dim': return roundTo('i32', evalDim(e.d, dims));
      case 'at': {
        const a = arg(e.arg);
        if (e.idx.length !== a.shape.length) fail('E_VERIFY', `compute reads argument ${e.arg} of rank ${a.shape.length} with ${e.idx.length} indices`);
        const ii = e.idx.map((ix, axis) => {
          const n = a.shape[axis]!;
          if (n === 0) fail('E_SHAPE', `compute reads argument ${e.arg}, which is empty on axis ${axis}`);
          return Math.min(Math.max(valueAs(ix, 'i32'), 0), n - 1);
        });
        return a.data[ravel(ii, argStrides[e.arg]!)]!;
      }
      case 'un': return unaryScalar(e.op, value(e.a), typeOf(e.a));
      case 'bin': {
        const t = operandType(typeOf(e.a), typeOf(e.b));
        return binaryScalar(e.op, valueAs(e.a, t), valueAs(e.b, t), t);
      }
      case 'where': {
        const t = typeOf(e);
        return value(e.c) !== 0 ? valueAs(e.a, t) : valueAs(e.b, t);
      }
      case 'cast': return valueAs(e.a, e.dtype);
      case 'red': {
        const t = typeOf(e);
        const extent = evalDim(e.extent, dims);
        const outer = rvars.get(e.name); // a reduction may shadow an outer one of the same name
        let acc = reduceIdentity(e.fn, t);
        for (let r = 0; r < extent; r++) {
          rvars.set(e.name, r);
          acc = binaryScalar(e.fn === 'sum' ? 'add' : e.fn === 'max' ? 'maximum' : 'minimum', acc, value(e.body), t);
        }
        if (outer === undefined) rvars.delete(e.name);
        else rvars.set(e.name, outer);
        return acc;
      }
    }
  }

  const result = zeros(dtype, outShape);
  const bodyType = typeOf(expr);
  for (let o = 0; o < result.data.length; o++) {
    out = unravel(o, result.shape);
    result.data[o] = castScalar(value(expr), bodyType, dtype);
  }
  return result;
}
