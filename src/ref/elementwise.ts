/** Reference elementwise ops: const, unary, binary, where, cast. Operands have equal shapes. */
import { isFloat, type DType } from '../ir/dtype.js';
import type { BinaryOp, UnaryOp } from '../ir/ops.js';
import { fail } from '../errors.js';
import { binaryScalar, binaryType, castScalar, operandType, unaryScalar, unaryType } from './scalar.js';
import { roundTo, sameShape, showShape, zeros, type RefTensor } from './tensor.js';

function requireSameShape(op: string, a: RefTensor, b: RefTensor): void {
  if (!sameShape(a.shape, b.shape)) fail('E_SHAPE', `${op}: operand shapes ${showShape(a.shape)} and ${showShape(b.shape)} differ`);
}

/** A scalar (shape []) of `dtype`; integer and bool values are rounded, float values kept. */
export function refConst(value: number, dtype: DType): RefTensor {
  const t = zeros(dtype, []);
  t.data[0] = isFloat(dtype) ? value : roundTo(dtype, value);
  return t;
}

export function refUnary(op: UnaryOp, x: RefTensor): RefTensor {
  const out = zeros(unaryType(op, x.dtype), x.shape);
  for (let i = 0; i < x.data.length; i++) out.data[i] = unaryScalar(op, x.data[i]!, x.dtype);
  return out;
}

/** Operands of different dtypes are first converted to their promoted dtype. */
export function refBinary(op: BinaryOp, a: RefTensor, b: RefTensor): RefTensor {
  requireSameShape(op, a, b);
  const t = operandType(a.dtype, b.dtype);
  const out = zeros(binaryType(op, a.dtype, b.dtype), a.shape);
  for (let i = 0; i < a.data.length; i++) {
    out.data[i] = binaryScalar(op, castScalar(a.data[i]!, a.dtype, t), castScalar(b.data[i]!, b.dtype, t), t);
  }
  return out;
}

/** where(c, a, b)[i] = c[i] != 0 ? a[i] : b[i]. */
export function refWhere(c: RefTensor, a: RefTensor, b: RefTensor): RefTensor {
  requireSameShape('where', c, a);
  requireSameShape('where', a, b);
  const t = operandType(a.dtype, b.dtype);
  const out = zeros(t, a.shape);
  for (let i = 0; i < a.data.length; i++) {
    out.data[i] = c.data[i] !== 0 ? castScalar(a.data[i]!, a.dtype, t) : castScalar(b.data[i]!, b.dtype, t);
  }
  return out;
}

export function refCast(x: RefTensor, dtype: DType): RefTensor {
  const out = zeros(dtype, x.shape);
  for (let i = 0; i < x.data.length; i++) out.data[i] = castScalar(x.data[i]!, x.dtype, dtype);
  return out;
}
