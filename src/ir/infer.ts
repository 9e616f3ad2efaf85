/**
 * Result types of graph-IR ops: one function shared by the DSL (which adds broadcasting and call
 * sites on top), the text-form parser and the verifier, so all three agree on what is well-typed.
 */
import { fail } from '../errors.js';
import { isFloat, isInt, type DType } from './dtype.js';
import { dimAdd, dimCdiv, dimEq, dimKey, dimProduct, dimSub, shapeEq, shapeToString, type Dim, type Shape } from './dims.js';
import type { Attrs, AttrValue } from './graph.js';
import type { IExpr } from './index-expr.js';
import { isBinary, isBitwise, isCompare, isPacked, isReduce, isUnary, type OpName } from './ops.js';

export interface TypeOf {
  readonly dtype: DType;
  readonly shape: Shape;
}

const numList = (v: AttrValue | undefined, what: string): number[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) fail('E_ARG', `${what} must be a list of integers`);
  return v as number[];
};

export function checkAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail('E_AXIS', `axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

const FLOAT_ONLY = new Set(['exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'gelu_tanh', 'gelu_erf', 'silu', 'reciprocal', 'floor', 'ceil', 'pow']);

/** Infers the result type of `op` applied to `args`; throws E_SHAPE / E_DTYPE / E_AXIS / E_ARG. */
export function inferType(op: OpName, args: readonly TypeOf[], attrs: Attrs): TypeOf {
  const arity = (n: number) => {
    if (args.length !== n) fail('E_ARG', `${op} takes ${n} operand(s), got ${args.length}`);
  };
  const a0 = args[0]!;
  if (isUnary(op)) {
    arity(1);
    if (op === 'not') {
      if (a0.dtype !== 'bool') fail('E_DTYPE', `not expects bool, got ${a0.dtype}`);
    } else if (a0.dtype === 'bool') fail('E_DTYPE', `${op} does not accept bool`);
    else if (FLOAT_ONLY.has(op) && !isFloat(a0.dtype)) fail('E_DTYPE', `${op} expects a float tensor, got ${a0.dtype}; cast it first`);
    return a0;
  }
  if (isBinary(op)) {
    arity(2);
    const b = args[1]!;
    if (a0.dtype !== b.dtype) fail('E_DTYPE', `${op} operands have different dtypes: ${a0.dtype} and ${b.dtype}`);
    if (!shapeEq(a0.shape, b.shape)) fail('E_SHAPE', `${op} operands have different shapes: ${shapeToString(a0.shape)} and ${shapeToString(b.shape)}`);
    if (op === 'and' || op === 'or') {
      if (a0.dtype !== 'bool') fail('E_DTYPE', `${op} expects bool operands, got ${a0.dtype}`);
      return a0;
    }
    if (isBitwise(op)) {
      if (!isInt(a0.dtype)) fail('E_DTYPE', `${op} expects i32 or u32 operands, got ${a0.dtype}; cast it first`);
      return a0;
    }
    if (isPacked(op)) {
      if (a0.dtype !== 'u32') fail('E_DTYPE', `${op} expects u32 operands (four packed int8 lanes each), got ${a0.dtype}; cast it first`);
      return { dtype: 'i32', shape: a0.shape };
    }
    if (a0.dtype === 'bool' && op !== 'eq' && op !== 'ne') fail('E_DTYPE', `${op} does not accept bool operands`);
    if (FLOAT_ONLY.has(op) && !isFloat(a0.dtype)) fail('E_DTYPE', `${op} expects float operands, got ${a0.dtype}`);
    return isCompare(op) ? { dtype: 'bool', shape: a0.shape } : a0;
  }
  if (isReduce(op)) {
    arity(1);
    const rank = a0.shape.length;
    const axes = numList(attrs.axes, `${op} axes`).map((x) => checkAxis(x, rank));
    if (new Set(axes).size !== axes.length) fail('E_AXIS', `${op} axes repeat: [${axes.join(', ')}]`);
    if ((op === 'argmax' || op === 'argmin') && axes.length !== 1) fail('E_AXIS', `${op} reduces exactly one axis, got ${axes.length}`);
    if (a0.dtype === 'bool') fail('E_DTYPE', `${op} does not accept bool; cast to i32 first`);
    if (op === 'mean' && !isFloat(a0.dtype)) fail('E_DTYPE', `mean expects a float tensor, got ${a0.dtype}`);
    const keep = attrs.keepdims === true;
    const shape = keep ? a0.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : a0.shape.filter((_, i) => !axes.includes(i));
    return { dtype: op === 'argmax' || op === 'argmin' ? 'i32' : a0.dtype, shape };
  }
  switch (op) {
    case 'input':
    case 'const':
      fail('E_INTERNAL', `${op} has no operands to infer from`);
    case 'cast':
      arity(1);
      if (typeof attrs.to !== 'string') fail('E_ARG', 'cast needs attrs.to');
      return { dtype: attrs.to as DType, shape: a0.shape };
    case 'where': {
      arity(3);
      const [c, a, b] = args as [TypeOf, TypeOf, TypeOf];
      if (c.dtype !== 'bool') fail('E_DTYPE', `where's condition must be bool, got ${c.dtype}`);
      if (a.dtype !== b.dtype) fail('E_DTYPE', `where's branches have different dtypes: ${a.dtype} and ${b.dtype}`);
      if (!shapeEq(c.shape, a.shape) || !shapeEq(a.shape, b.shape))
        fail('E_SHAPE', `where's operands have different shapes: ${[c, a, b].map((t) => shapeToString(t.shape)).join(', ')}`);
      return a;
    }
    case 'matmul': {
      arity(2);
      const [a, b] = args as [TypeOf, TypeOf];
      if (a.dtype !== b.dtype) fail('E_DTYPE', `matmul operands have different dtypes: ${a.dtype} and ${b.dtype}`);
      if (!isFloat(a.dtype) && a.dtype !== 'i32') fail('E_DTYPE', `matmul expects float or i32 operands, got ${a.dtype}`);
      if (a.shape.length < 2 || a.shape.length !== b.shape.length) fail('E_SHAPE', `matmul expects operands of equal rank >= 2, got ${shapeToString(a.shape)} and ${shapeToString(b.shape)}`);
      const r = a.shape.length;
      if (!dimEq(a.shape[r - 1]!, b.shape[r - 2]!))
        fail('E_SHAPE', `matmul inner dims differ: ${shapeToString(a.shape)} x ${shapeToString(b.shape)} (${dimKey(a.shape[r - 1]!)} vs ${dimKey(b.shape[r - 2]!)})`);
      if (!shapeEq(a.shape.slice(0, r - 2), b.shape.slice(0, r - 2))) fail('E_SHAPE', `matmul batch dims differ: ${shapeToString(a.shape)} x ${shapeToString(b.shape)}`);
      return { dtype: a.dtype, shape: [...a.shape.slice(0, r - 1), b.shape[r - 1]!] };
    }
    case 'reshape': {
      arity(1);
      const to = attrs.shape as Shape | undefined;
      if (!Array.isArray(to)) fail('E_ARG', 'reshape needs attrs.shape');
      if (!dimEq(dimProduct(a0.shape), dimProduct(to)))
        fail('E_SHAPE', `reshape cannot change the element count: ${shapeToString(a0.shape)} to ${shapeToString(to)}`);
      return { dtype: a0.dtype, shape: to };
    }
    case 'permute': {
      arity(1);
      const perm = numList(attrs.perm, 'permute perm');
      const r = a0.shape.length;
      if (perm.length !== r || [...perm].sort((x, y) => x - y).some((p, i) => p !== i))
        fail('E_AXIS', `permute needs a permutation of 0..${r - 1}, got [${perm.join(', ')}]`);
      return { dtype: a0.dtype, shape: perm.map((p) => a0.shape[p]!) };
    }
    case 'expand': {
      arity(1);
      const to = attrs.shape as Shape | undefined;
      if (!Array.isArray(to)) fail('E_ARG', 'expand needs attrs.shape');
      if (to.length !== a0.shape.length) fail('E_SHAPE', `expand keeps the rank: ${shapeToString(a0.shape)} to ${shapeToString(to)}`);
      a0.shape.forEach((d, i) => {
        if (d !== 1 && !dimEq(d, to[i]!)) fail('E_SHAPE', `cannot expand ${shapeToString(a0.shape)} to ${shapeToString(to)}: axis ${i} is ${dimKey(d)}, not 1`);
      });
      return { dtype: a0.dtype, shape: to };
    }
    case 'slice': {
      arity(1);
      const starts = attrs.starts as readonly Dim[];
      const steps = numList(attrs.steps, 'slice steps');
      const sizes = attrs.sizes as readonly Dim[];
      if (!Array.isArray(starts) || !Array.isArray(sizes) || starts.length !== a0.shape.length || steps.length !== a0.shape.length || sizes.length !== a0.shape.length)
        fail('E_ARG', `slice needs starts, steps and sizes for each of ${a0.shape.length} axes`);
      if (steps.some((s) => s === 0 || !Number.isInteger(s))) fail('E_ARG', 'slice steps must be non-zero integers');
      return { dtype: a0.dtype, shape: sizes };
    }
    case 'pad': {
      arity(1);
      const before = numList(attrs.before, 'pad before');
      const after = numList(attrs.after, 'pad after');
      if (before.length !== a0.shape.length || after.length !== a0.shape.length) fail('E_ARG', `pad needs before/after for each of ${a0.shape.length} axes`);
      if ([...before, ...after].some((p) => p < 0 || !Number.isInteger(p))) fail('E_ARG', 'pad amounts must be non-negative integers');
      return { dtype: a0.dtype, shape: a0.shape.map((d, i) => dimAdd(dimAdd(d, before[i]!), after[i]!)) };
    }
    case 'concat': {
      if (args.length < 1) fail('E_ARG', 'concat needs at least one operand');
      const axis = checkAxis(Number(attrs.axis), a0.shape.length);
      let total: Dim = 0;
      for (const t of args) {
        if (t.dtype !== a0.dtype) fail('E_DTYPE', `concat operands have different dtypes: ${a0.dtype} and ${t.dtype}`);
        if (t.shape.length !== a0.shape.length || t.shape.some((d, i) => i !== axis && !dimEq(d, a0.shape[i]!)))
          fail('E_SHAPE', `concat operands differ outside axis ${axis}: ${shapeToString(a0.shape)} and ${shapeToString(t.shape)}`);
        total = dimAdd(total, t.shape[axis]!);
      }
      return { dtype: a0.dtype, shape: a0.shape.map((d, i) => (i === axis ? total : d)) };
    }
    case 'gather': {
      arity(2);
      const idx = args[1]!;
      const axis = checkAxis(Number(attrs.axis), a0.shape.length);
      if (idx.dtype !== 'i32') fail('E_DTYPE', `gather indices must be i32, got ${idx.dtype}`);
      return { dtype: a0.dtype, shape: [...a0.shape.slice(0, axis), ...idx.shape, ...a0.shape.slice(axis + 1)] };
    }
    case 'compute': {
      const shape = attrs.shape as Shape | undefined;
      if (!Array.isArray(shape)) fail('E_ARG', 'compute needs attrs.shape');
      const expr = attrs.expr as IExpr | undefined;
      if (!expr) fail('E_ARG', 'compute needs attrs.expr');
      return { dtype: iexprType(expr, args, shape.length), shape };
    }
  }
  fail('E_UNKNOWN_OP', `unknown op '${op}'`);
}

/** Dtype of an index expression; checks arg numbers, ranks and operand dtypes. */
export function iexprType(e: IExpr, args: readonly TypeOf[], rank: number): DType {
  const rec = (x: IExpr): DType => iexprType(x, args, rank);
  switch (e.k) {
    case 'idx':
      if (e.i < 0 || e.i >= rank) fail('E_AXIS', `index variable ${e.i} is out of range for a compute of rank ${rank}`);
      return 'i32';
    case 'rvar':
    case 'dim':
      return 'i32';
    case 'num':
      return e.dtype;
    case 'at': {
      const t = args[e.arg];
      if (!t) fail('E_ARG', `compute reads operand ${e.arg}, but only ${args.length} were given`);
      if (e.idx.length !== t.shape.length) fail('E_SHAPE', `operand ${e.arg} has rank ${t.shape.length} but is indexed with ${e.idx.length} indices`);
      for (const i of e.idx) if (rec(i) !== 'i32') fail('E_DTYPE', 'indices must be i32');
      return t.dtype;
    }
    case 'un':
      return inferType(e.op, [{ dtype: rec(e.a), shape: [] }], {}).dtype;
    case 'bin':
      return inferType(e.op, [{ dtype: rec(e.a), shape: [] }, { dtype: rec(e.b), shape: [] }], {}).dtype;
    case 'where':
      return inferType('where', [{ dtype: rec(e.c), shape: [] }, { dtype: rec(e.a), shape: [] }, { dtype: rec(e.b), shape: [] }], {}).dtype;
    case 'cast':
      rec(e.a);
      return e.dtype;
    case 'red': {
      const t = rec(e.body);
      if (t === 'bool') fail('E_DTYPE', `${e.fn} over bool; cast to i32 first`);
      return t;
    }
  }
}

/** Number of elements a slice takes from `start` toward `end` (exclusive) with `step`. */
export function sliceSize(start: Dim, end: Dim, step: number): Dim {
  if (step > 0) return dimCdiv(dimSub(end, start), step);
  return dimCdiv(dimSub(start, end), -step);
}

