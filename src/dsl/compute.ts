/**
 * Index expressions, for what tensor algebra says badly (codebook gathers, custom contractions):
 * `compute([M, N], (i, j) => sum(K, (k) => a.at(i, k).mul(b.at(k, j))))`. The result is one
 * `compute` node whose body the lowering inlines like any elementwise producer.
 */
import type { DType } from '../ir/dtype.js';
import type { Dim } from '../ir/dims.js';
import type { Node } from '../ir/graph.js';
import type { IExpr } from '../ir/index-expr.js';
import { iexprType } from '../ir/infer.js';
import type { BinaryOp, UnaryOp } from '../ir/ops.js';
import { describe, dimArg, dtypeArg, numberArg, shapeArg } from './args.js';
import { atCallSite, buildNode, dslError } from './build.js';
import { Tensor } from './tensor.js';

/** While building, `at` nodes name the tensor's graph node; compute() numbers them. */
type Draft =
  | Exclude<IExpr, { k: 'at' } | { k: 'un' } | { k: 'bin' } | { k: 'where' } | { k: 'cast' } | { k: 'red' }>
  | { k: 'at'; node: Node; idx: Draft[] }
  | { k: 'un'; op: UnaryOp; a: Draft }
  | { k: 'bin'; op: BinaryOp; a: Draft; b: Draft }
  | { k: 'where'; c: Draft; a: Draft; b: Draft }
  | { k: 'cast'; dtype: DType; a: Draft }
  | { k: 'red'; fn: 'sum' | 'max' | 'min'; name: string; extent: Dim; body: Draft };

export type IndexLike = IndexExpr | number;

function lift(x: IndexLike, dtype: DType = 'i32'): IndexExpr {
  if (typeof x === 'number') return new IndexExpr({ k: 'num', v: x, dtype });
  if (!(x instanceof IndexExpr)) throw dslError('E_ARG', `compute: an operand must be an index expression or a number, got ${describe(x)}`);
  return x;
}

export class IndexExpr {
  constructor(readonly draft: Draft) {}
  private bin(op: BinaryOp, b: IndexLike): IndexExpr {
    return new IndexExpr({ k: 'bin', op, a: this.draft, b: lift(b, this.dtypeHint()).draft });
  }
  /** Best-effort dtype for number literals next to this expression (checked fully in compute()). */
  private dtypeHint(): DType {
    const d = this.draft;
    if (d.k === 'num') return d.dtype;
    if (d.k === 'at') return d.node.dtype;
    if (d.k === 'cast') return d.dtype;
    if (d.k === 'un' || d.k === 'red') return new IndexExpr(d.k === 'un' ? d.a : d.body).dtypeHint();
    if (d.k === 'bin') return ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or'].includes(d.op) ? 'bool' : d.op === 'dot4i8' ? 'i32' : new IndexExpr(d.a).dtypeHint();
    if (d.k === 'where') return new IndexExpr(d.a).dtypeHint();
    return 'i32';
  }
  add(b: IndexLike) { return this.bin('add', b); }
  sub(b: IndexLike) { return this.bin('sub', b); }
  mul(b: IndexLike) { return this.bin('mul', b); }
  div(b: IndexLike) { return this.bin('div', b); }
  mod(b: IndexLike) { return this.bin('mod', b); }
  max(b: IndexLike) { return this.bin('maximum', b); }
  min(b: IndexLike) { return this.bin('minimum', b); }
  pow(b: IndexLike) { return this.bin('pow', b); }
  bitand(b: IndexLike) { return this.bin('bitand', b); }
  bitor(b: IndexLike) { return this.bin('bitor', b); }
  bitxor(b: IndexLike) { return this.bin('bitxor', b); }
  shl(b: IndexLike) { return this.bin('shl', b); }
  shr(b: IndexLike) { return this.bin('shr', b); }
  /** Σ of the products of the four signed int8 lanes of two u32 words: an i32. */
  dot4i8(b: IndexLike) { return this.bin('dot4i8', b); }
  eq(b: IndexLike) { return this.bin('eq', b); }
  ne(b: IndexLike) { return this.bin('ne', b); }
  lt(b: IndexLike) { return this.bin('lt', b); }
  le(b: IndexLike) { return this.bin('le', b); }
  gt(b: IndexLike) { return this.bin('gt', b); }
  ge(b: IndexLike) { return this.bin('ge', b); }
  and(b: IndexLike) { return this.bin('and', b); }
  or(b: IndexLike) { return this.bin('or', b); }
  un(op: UnaryOp) { return new IndexExpr({ k: 'un', op, a: this.draft }); }
  neg() { return this.un('neg'); }
  exp() { return this.un('exp'); }
  log() { return this.un('log'); }
  sqrt() { return this.un('sqrt'); }
  abs() { return this.un('abs'); }
  cast(dtype: DType) { return new IndexExpr({ k: 'cast', dtype: dtypeArg('cast', 'dtype', dtype), a: this.draft }); }
}

/** Reads an element of a tensor inside compute(). */
export function atIndex(t: Tensor, idx: readonly IndexLike[]): IndexExpr {
  if (!Array.isArray(idx)) throw dslError('E_ARG', `compute: a tensor is indexed with an array of indices, got ${describe(idx)}`);
  if (idx.length !== t.rank) throw dslError('E_SHAPE', `tensor of rank ${t.rank} indexed with ${idx.length} indices`);
  return new IndexExpr({ k: 'at', node: t.node, idx: idx.map((i) => lift(i).draft) });
}

/** A dim's value as an i32 index expression (e.g. to flip an axis: `dimv(N).sub(1).sub(j)`). */
export function dimv(d: Dim): IndexExpr {
  return new IndexExpr({ k: 'dim', d: dimArg('dimv', 'd', d) });
}

export function select(c: IndexExpr, a: IndexLike, b: IndexLike): IndexExpr {
  if (!(c instanceof IndexExpr)) throw dslError('E_ARG', `select: the condition must be an index expression, got ${describe(c)}`);
  return new IndexExpr({ k: 'where', c: c.draft, a: lift(a, 'f32').draft, b: lift(b, 'f32').draft });
}

/** A float literal inside compute() (plain numbers default to i32 next to indices). */
export function lit(v: number, dtype: DType = 'f32'): IndexExpr {
  return new IndexExpr({ k: 'num', v: numberArg('lit', 'v', v), dtype: dtypeArg('lit', 'dtype', dtype) });
}

let reductionCounter = 0;
function reduction(fn: 'sum' | 'max' | 'min', extent: Dim, body: (k: IndexExpr) => IndexExpr): IndexExpr {
  const op = `reduce${fn[0]!.toUpperCase()}${fn.slice(1)}`;
  dimArg(op, 'extent', extent);
  if (typeof body !== 'function') throw dslError('E_ARG', `${op}: body must be a function of the reduction index, got ${describe(body)}`);
  const name = `r${reductionCounter++}`;
  return new IndexExpr({ k: 'red', fn, name, extent, body: lift(body(new IndexExpr({ k: 'rvar', name })), 'f32').draft });
}
/** Sum over a named reduction axis k in [0, extent). */
export const reduceSum = (extent: Dim, body: (k: IndexExpr) => IndexExpr) => reduction('sum', extent, body);
export const reduceMax = (extent: Dim, body: (k: IndexExpr) => IndexExpr) => reduction('max', extent, body);
export const reduceMin = (extent: Dim, body: (k: IndexExpr) => IndexExpr) => reduction('min', extent, body);

/**
 * A tensor of `shape` whose element at (i, j, ...) is `f(i, j, ...)`. Reduction variables are
 * renamed to r0, r1, ... in order of appearance so equal programs hash equal.
 */
export function compute(shape: readonly Dim[], f: (...idx: IndexExpr[]) => IndexLike): Tensor {
  shapeArg('compute', 'shape', shape);
  if (typeof f !== 'function') throw dslError('E_ARG', `compute: f must be a function of the indices, got ${describe(f)}`);
  const body = lift(f(...shape.map((_, i) => new IndexExpr({ k: 'idx', i }))), 'f32').draft;
  const nodes: Node[] = [];
  const names = new Map<string, string>();
  const finish = (d: Draft): IExpr => {
    switch (d.k) {
      case 'at': {
        let arg = nodes.indexOf(d.node);
        if (arg < 0) arg = nodes.push(d.node) - 1;
        return { k: 'at', arg, idx: d.idx.map(finish) };
      }
      case 'rvar':
        return { k: 'rvar', name: names.get(d.name) ?? d.name };
      case 'red': {
        // the same reduction used twice keeps one name, so both uses are one node (computed once)
        const name = names.get(d.name) ?? `r${names.size}`;
        names.set(d.name, name);
        return { k: 'red', fn: d.fn, name, extent: d.extent, body: finish(d.body) };
      }
      case 'un': return { k: 'un', op: d.op, a: finish(d.a) };
      case 'bin': return { k: 'bin', op: d.op, a: finish(d.a), b: finish(d.b) };
      case 'where': return { k: 'where', c: finish(d.c), a: finish(d.a), b: finish(d.b) };
      case 'cast': return { k: 'cast', dtype: d.dtype, a: finish(d.a) };
      default: return d;
    }
  };
  const expr = finish(body);
  atCallSite(() => iexprType(expr, nodes, shape.length));
  return new Tensor(buildNode('compute', nodes, { shape: [...shape], expr }));
}
