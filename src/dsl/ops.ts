/**
 * The DSL's op builders. Each turns tensor handles into one graph node (or a few, for numpy-style
 * broadcasting and scalar operands) and reports mistakes at the author's call site.
 */
import { isDType, isFloat, type DType } from '../ir/dtype.js';
import { dimEq, dimKey, isDim, dimProduct, dimDiv, isConst, shapeToString, simplifyDim, type Dim, type Shape } from '../ir/dims.js';
import type { Node } from '../ir/graph.js';
import { checkAxis, sliceSize } from '../ir/infer.js';
import type { BinaryOp, ReduceOp, UnaryOp } from '../ir/ops.js';
import { atCallSite, buildNode, dslError, leafNode } from './build.js';
import { axesArg, boolArg, describe, dtypeArg, intArg, intsArg, numberArg, shapeArg, tensorArg, tensorLikeArg, tensorsArg } from './args.js';
import { Tensor, type Axes, type TensorLike } from './tensor.js';

const wrap = <D extends DType = DType>(n: Node) => new Tensor<D>(n);

/** A scalar constant of `dtype`, shape []. */
export function scalar(value: number | boolean, dtype: DType = 'f32'): Tensor {
  if (typeof value !== 'number' && typeof value !== 'boolean') throw dslError('E_ARG', `scalar: value must be a number or a boolean, got ${describe(value)}`);
  dtypeArg('scalar', 'dtype', dtype);
  const v = typeof value === 'boolean' ? Number(value) : value;
  return wrap(leafNode('const', dtype, [], { value: v }));
}

/** A constant filled with `value`, broadcast to `shape`. */
export function full(shape: readonly Dim[], value: number, dtype: DType = 'f32'): Tensor {
  shapeArg('full', 'shape', shape);
  numberArg('full', 'value', value);
  return expandTo(scalar(value, dtype), shape);
}

function asTensor(x: TensorLike, like: Tensor): Tensor {
  return typeof x === 'number' ? scalar(x, like.dtype) : x;
}

/** Prepends size-1 axes then expands, as numpy broadcasting does. */
function expandTo(t: Tensor, shape: Shape): Tensor {
  let x = t;
  if (x.rank > shape.length) throw dslError('E_SHAPE', `cannot broadcast ${shapeToString(x.shape)} to ${shapeToString(shape)}`);
  if (x.rank < shape.length) x = reshape(x, [...Array<Dim>(shape.length - x.rank).fill(1), ...x.shape]);
  if (x.shape.every((d, i) => dimEq(d, shape[i]!))) return x;
  return wrap(buildNode('expand', [x.node], { shape: [...shape] }));
}

export function broadcastShapes(a: Shape, b: Shape): Shape {
  shapeArg('broadcastShapes', 'a', a);
  shapeArg('broadcastShapes', 'b', b);
  return broadcastShapesOf(a, b);
}

/** broadcastShapes for shapes the DSL made (tensors' own), which need no checks. */
function broadcastShapesOf(a: Shape, b: Shape): Shape {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (dimEq(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw dslError('E_SHAPE', `shapes ${shapeToString(a)} and ${shapeToString(b)} do not broadcast: axis ${i} is ${dimKey(da)} vs ${dimKey(db)}`);
  }
  return out;
}

/** Broadcasts tensors (and numbers, which take the first tensor's dtype) to one shape. */
export function broadcast(...xs: TensorLike[]): Tensor[] {
  xs.forEach((x, i) => tensorLikeArg('broadcast', `operand ${i}`, x));
  return broadcastOf(xs);
}

/** broadcast for operands an op has checked already. */
function broadcastOf(xs: readonly TensorLike[]): Tensor[] {
  const like = xs.find((x): x is Tensor => typeof x !== 'number');
  if (!like) throw dslError('E_ARG', 'at least one operand must be a tensor');
  const ts = xs.map((x) => asTensor(x, like));
  const shape = ts.reduce<Shape>((s, t) => broadcastShapesOf(s, t.shape), []);
  return ts.map((t) => expandTo(t, shape));
}

function unary(op: UnaryOp, x: Tensor): Tensor {
  tensorArg(op, 'x', x);
  return wrap(buildNode(op, [x.node]));
}
export const neg = (x: Tensor) => unary('neg', x);
export const abs = (x: Tensor) => unary('abs', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const relu = (x: Tensor) => unary('relu', x);
export const silu = (x: Tensor) => unary('silu', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
export const floor = (x: Tensor) => unary('floor', x);
export const ceil = (x: Tensor) => unary('ceil', x);
export const not = (x: Tensor) => unary('not', x) as Tensor<'bool'>;
/** GELU, exact (erf) by default or with the tanh approximation. */
export function gelu(x: Tensor, approximate: 'tanh' | 'none' = 'none'): Tensor {
  if (approximate !== 'tanh' && approximate !== 'none') throw dslError('E_ARG', `gelu: approximate must be 'tanh' or 'none', got ${describe(approximate)}`);
  return unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);
}

export function cast<T extends DType>(x: Tensor, to: T): Tensor<T> {
  tensorArg('cast', 'x', x);
  if (!isDType(to)) throw dslError('E_DTYPE', `unknown dtype '${String(to)}'`);
  if (x.dtype === to) return x as Tensor<T>;
  return wrap<T>(buildNode('cast', [x.node], { to }));
}

function binary(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  tensorLikeArg(op, 'a', a);
  tensorLikeArg(op, 'b', b);
  const [x, y] = broadcastOf([a, b]) as [Tensor, Tensor];
  return wrap(buildNode(op, [x.node, y.node]));
}
export const add = (a: TensorLike, b: TensorLike) => binary('add', a, b);
export const sub = (a: TensorLike, b: TensorLike) => binary('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike) => binary('mul', a, b);
export const div = (a: TensorLike, b: TensorLike) => binary('div', a, b);
export const mod = (a: TensorLike, b: TensorLike) => binary('mod', a, b);
export const pow = (a: TensorLike, b: TensorLike) => binary('pow', a, b);
export const maximum = (a: TensorLike, b: TensorLike) => binary('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike) => binary('minimum', a, b);
/** Bitwise ops on i32/u32 tensors (shift amounts modulo 32; `shr` is arithmetic on i32, logical on u32). */
export const bitand = (a: TensorLike, b: TensorLike) => binary('bitand', a, b);
export const bitor = (a: TensorLike, b: TensorLike) => binary('bitor', a, b);
export const bitxor = (a: TensorLike, b: TensorLike) => binary('bitxor', a, b);
export const shl = (a: TensorLike, b: TensorLike) => binary('shl', a, b);
export const shr = (a: TensorLike, b: TensorLike) => binary('shr', a, b);
/**
 * Packed int8 dot product of u32 tensors: each word holds four signed int8 lanes (lane i in bits
 * 8i..8i+7); the i32 result is Σ_i a_i · b_i (WGSL dot4I8Packed, CUDA __dp4a).
 */
export const dot4i8 = (a: TensorLike, b: TensorLike) => binary('dot4i8', a, b) as Tensor<'i32'>;
export const eq = (a: TensorLike, b: TensorLike) => binary('eq', a, b) as Tensor<'bool'>;
export const ne = (a: TensorLike, b: TensorLike) => binary('ne', a, b) as Tensor<'bool'>;
export const lt = (a: TensorLike, b: TensorLike) => binary('lt', a, b) as Tensor<'bool'>;
export const le = (a: TensorLike, b: TensorLike) => binary('le', a, b) as Tensor<'bool'>;
export const gt = (a: TensorLike, b: TensorLike) => binary('gt', a, b) as Tensor<'bool'>;
export const ge = (a: TensorLike, b: TensorLike) => binary('ge', a, b) as Tensor<'bool'>;
export const and = (a: TensorLike, b: TensorLike) => binary('and', a, b) as Tensor<'bool'>;
export const or = (a: TensorLike, b: TensorLike) => binary('or', a, b) as Tensor<'bool'>;

/** `cond ? a : b` elementwise, with broadcasting. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  tensorArg('where', 'cond', cond);
  tensorLikeArg('where', 'a', a);
  tensorLikeArg('where', 'b', b);
  const like = typeof a !== 'number' ? a : typeof b !== 'number' ? b : undefined;
  if (!like) throw dslError('E_ARG', 'where needs at least one tensor branch');
  const [c, x, y] = broadcastOf([cond, asTensor(a, like), asTensor(b, like)]) as [Tensor, Tensor, Tensor];
  return wrap(buildNode('where', [c.node, x.node, y.node]));
}

function normAxes(x: Tensor, axes: Axes | undefined): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  return atCallSite(() => list.map((a) => checkAxis(a, x.rank))).sort((p, q) => p - q);
}

function reduce(op: ReduceOp, x: Tensor, axes: Axes | undefined, keepdims: boolean): Tensor {
  tensorArg(op, 'x', x);
  if (axes !== undefined) axesArg(op, op === 'argmax' || op === 'argmin' ? 'axis' : 'axes', axes);
  boolArg(op, 'keepdims', keepdims);
  return wrap(buildNode(op, [x.node], { axes: normAxes(x, axes), keepdims }));
}
export const sum = (x: Tensor, axes?: Axes, keepdims = false) => reduce('sum', x, axes, keepdims);
export const mean = (x: Tensor, axes?: Axes, keepdims = false) => reduce('mean', x, axes, keepdims);
export const max = (x: Tensor, axes?: Axes, keepdims = false) => reduce('max', x, axes, keepdims);
export const min = (x: Tensor, axes?: Axes, keepdims = false) => reduce('min', x, axes, keepdims);
export const argmax = (x: Tensor, axis = -1, keepdims = false) => reduce('argmax', x, axis, keepdims) as Tensor<'i32'>;
export const argmin = (x: Tensor, axis = -1, keepdims = false) => reduce('argmin', x, axis, keepdims) as Tensor<'i32'>;

/** Row-major reshape; one entry may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly (Dim | -1)[]): Tensor {
  tensorArg('reshape', 'x', x);
  if (!Array.isArray(shape)) throw dslError('E_ARG', `reshape: the shape must be an array of dims, got ${describe(shape)}`);
  for (const d of shape) {
    if (!isDim(d)) throw dslError('E_ARG', `reshape: each entry of the shape is a dim or -1, got ${Array.isArray(d) ? 'an array (x.reshape takes the dims as separate arguments: x.reshape(1, N); D.reshape(x, [1, N]) takes an array)' : String(d)}`);
  }
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1) throw dslError('E_ARG', `reshape takes at most one -1, got ${holes}`);
  let to = shape as Dim[];
  if (holes === 1) {
    const known = dimProduct(shape.filter((d): d is Dim => d !== -1));
    const rest = simplifyDim(dimDiv(dimProduct(x.shape), known));
    to = shape.map((d) => (d === -1 ? rest : d));
  }
  if (to.length === x.rank && to.every((d, i) => dimEq(d, x.shape[i]!))) return x;
  return wrap(buildNode('reshape', [x.node], { shape: to }));
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  tensorArg('permute', 'x', x);
  intsArg('permute', 'perm', perm);
  const p = atCallSite(() => perm.map((a) => checkAxis(a, x.rank)));
  if (p.every((v, i) => v === i) && p.length === x.rank) return x;
  return wrap(buildNode('permute', [x.node], { perm: p }));
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  tensorArg('transpose', 'x', x);
  intArg('transpose', 'a', a);
  intArg('transpose', 'b', b);
  if (x.rank < 2) throw dslError('E_SHAPE', `transpose needs rank >= 2, got ${shapeToString(x.shape)}`);
  const [i, j] = atCallSite(() => [checkAxis(a, x.rank), checkAxis(b, x.rank)]);
  const perm = x.shape.map((_, k) => (k === i ? j : k === j ? i : k));
  return permute(x, perm);
}

export function expand(x: Tensor, shape: readonly Dim[]): Tensor {
  tensorArg('expand', 'x', x);
  shapeArg('expand', 'shape', shape);
  return expandTo(x, shape);
}

export interface SliceSpec {
  start?: Dim;
  end?: Dim;
  step?: number;
}

/** Per-axis slices with numpy semantics (negative constant start/end count from the end). */
export function slice(x: Tensor, specs: readonly (SliceSpec | undefined)[]): Tensor {
  tensorArg('slice', 'x', x);
  if (!Array.isArray(specs)) throw dslError('E_ARG', `slice: specs must be an array of { start, end, step } (one per axis), got ${describe(specs)}`);
  specs.forEach((s: unknown, i) => {
    if (s === undefined) return;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw dslError('E_ARG', `slice: specs[${i}] must be { start?, end?, step? }, got ${describe(s)}`);
    const { start, end } = s as SliceSpec;
    for (const [k, v] of [['start', start], ['end', end]] as const) {
      if (v !== undefined && !(typeof v === 'number' ? Number.isInteger(v) : isDim(v))) throw dslError('E_ARG', `slice: specs[${i}].${k} must be an integer or a dim, got ${describe(v)}`);
    }
  });
  if (specs.length > x.rank) throw dslError('E_AXIS', `slice got ${specs.length} axes for a tensor of rank ${x.rank}`);
  const starts: Dim[] = [];
  const steps: number[] = [];
  const sizes: Dim[] = [];
  x.shape.forEach((n, i) => {
    const s = specs[i] ?? {};
    const step = s.step ?? 1;
    if (!Number.isInteger(step) || step === 0) throw dslError('E_ARG', `slice step must be a non-zero integer, got ${step}`);
    const resolve = (v: Dim | undefined, dflt: Dim): Dim => {
      if (v === undefined) return dflt;
      if (isConst(v) && v < 0) return simplifyDim({ op: '+', a: n, b: v });
      return v;
    };
    const clampConst = (v: Dim, lo: number, hi: Dim): Dim => (isConst(v) && isConst(hi) ? Math.min(Math.max(v, lo), hi) : v);
    let start: Dim;
    let end: Dim;
    if (step > 0) {
      start = clampConst(resolve(s.start, 0), 0, n);
      end = clampConst(resolve(s.end, n), 0, n);
    } else {
      start = clampConst(resolve(s.start, simplifyDim({ op: '-', a: n, b: 1 })), -1, isConst(n) ? n - 1 : n);
      end = s.end === undefined ? -1 : clampConst(resolve(s.end, -1), -1, isConst(n) ? n - 1 : n);
    }
    let size = sliceSize(start, end, step);
    if (isConst(size)) size = Math.max(0, size);
    starts.push(start);
    steps.push(step);
    sizes.push(size);
  });
  if (sizes.some((d) => d === 0)) throw dslError('E_SHAPE', `slice of ${shapeToString(x.shape)} is empty`);
  return wrap(buildNode('slice', [x.node], { starts, steps, sizes }));
}

export function pad(x: Tensor, widths: readonly (readonly [number, number])[], value = 0): Tensor {
  tensorArg('pad', 'x', x);
  if (!Array.isArray(widths)) throw dslError('E_ARG', `pad: widths must be an array of [before, after] pairs, got ${describe(widths)}`);
  widths.forEach((w: unknown, i) => {
    if (!Array.isArray(w) || w.length !== 2) throw dslError('E_ARG', `pad: widths[${i}] must be a pair [before, after], got ${describe(w)}`);
    w.forEach((v, j) => intArg('pad', `widths[${i}][${j}]`, v));
  });
  numberArg('pad', 'value', value);
  if (widths.length !== x.rank) throw dslError('E_ARG', `pad needs [before, after] for each of ${x.rank} axes, got ${widths.length}`);
  return wrap(buildNode('pad', [x.node], { before: widths.map((w) => w[0]), after: widths.map((w) => w[1]), value }));
}

export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  tensorsArg('concat', 'xs', xs);
  intArg('concat', 'axis', axis);
  if (xs.length === 0) throw dslError('E_ARG', 'concat needs at least one tensor');
  const a = atCallSite(() => checkAxis(axis, xs[0]!.rank));
  if (xs.length === 1) return xs[0]!;
  return wrap(buildNode('concat', xs.map((t) => t.node), { axis: a }));
}

/** numpy `take`: out = x.shape[:axis] ++ idx.shape ++ x.shape[axis+1:]; indices are clamped. */
export function gather(x: Tensor, idx: Tensor, axis = 0): Tensor {
  tensorArg('gather', 'x', x);
  tensorArg('gather', 'idx', idx);
  intArg('gather', 'axis', axis);
  const a = atCallSite(() => checkAxis(axis, x.rank));
  return wrap(buildNode('gather', [x.node, idx.node], { axis: a }));
}

/**
 * Batched matmul with numpy semantics: 1-D operands are promoted (and the added axis removed),
 * batch dims broadcast. `transA`/`transB` transpose the last two axes first.
 */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  tensorArg('matmul', 'a', a);
  tensorArg('matmul', 'b', b);
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw dslError('E_ARG', `matmul: opts must be { transA?, transB? }, got ${describe(opts)}`);
  for (const k of ['transA', 'transB'] as const) if (opts[k] !== undefined) boolArg('matmul', `opts.${k}`, opts[k]);
  if (a.rank === 0 || b.rank === 0) throw dslError('E_SHAPE', 'matmul does not take scalars; use mul');
  let x = opts.transA ? transpose(a) : a;
  let y = opts.transB ? transpose(b) : b;
  const vecA = x.rank === 1;
  const vecB = y.rank === 1;
  if (vecA) x = reshape(x, [1, x.shape[0]!]);
  if (vecB) y = reshape(y, [y.shape[0]!, 1]);
  if (x.dtype !== y.dtype) throw dslError('E_DTYPE', `matmul operands have different dtypes: ${x.dtype} and ${y.dtype}`);
  if (!isFloat(x.dtype) && x.dtype !== 'i32') throw dslError('E_DTYPE', `matmul expects float or i32 operands, got ${x.dtype}`);
  const k1 = x.shape[x.rank - 1]!;
  const k2 = y.shape[y.rank - 2]!;
  if (!dimEq(k1, k2)) throw dslError('E_SHAPE', `matmul inner dims differ: ${shapeToString(x.shape)} x ${shapeToString(y.shape)}`);
  const batch = broadcastShapesOf(x.shape.slice(0, -2), y.shape.slice(0, -2));
  x = expandTo(x, [...batch, ...x.shape.slice(-2)]);
  y = expandTo(y, [...batch, ...y.shape.slice(-2)]);
  let out = wrap(buildNode('matmul', [x.node, y.node]));
  if (vecA || vecB) {
    const s = out.shape;
    out = reshape(out, [...s.slice(0, -2), ...(vecA ? [] : [s[s.length - 2]!]), ...(vecB ? [] : [s[s.length - 1]!])]);
  }
  return out;
}
