/**
 * Graph node -> lowering expression at given output indices. This is where movement ops become
 * index arithmetic, composite activations become formulas, reductions become `red` loops and
 * `compute` bodies are substituted: everything inside one fused group turns into one expression.
 * Nodes outside the group are read from their buffers.
 */
import { fail } from '../errors.js';
import { dimProduct, type Dim, type Shape } from '../ir/dims.js';
import type { DType } from '../ir/dtype.js';
import type { Node } from '../ir/graph.js';
import type { IExpr } from '../ir/index-expr.js';
import { scalarOf, type KBinary, type KUnary } from '../ir/kernel.js';
import type { BinaryOp, UnaryOp } from '../ir/ops.js';
import * as L from './lexpr.js';
import type { LExpr } from './lexpr.js';

export interface LowerContext {
  /** Buffer name holding `node` when it is read from memory (an input or another group's output). */
  bufferOf(node: Node): string | undefined;
  /** A value the schedule already holds for `node` at `idx` (a matmul accumulator in an epilogue). */
  override?(node: Node, idx: readonly LExpr[]): LExpr | undefined;
  /** Dims fixed at compile time (a specialized program): lowered as constants, not uniforms. */
  readonly dims?: Readonly<Record<string, number>>;
  /** What a symbolic dim is assumed to be a multiple of (checked at dispatch): `% d` tests on it fold. */
  readonly assume?: Readonly<Record<string, number>>;
}

/**
 * A value cast to `to`: a cast to a 16-bit float rounds to it (an f32 holding the rounded value),
 * as the reference's cast and a store and reload would; from the same type it is already rounded.
 */
function castTo(to: DType, from: DType | undefined, v: LExpr): LExpr {
  const c = L.cast(scalarOf(to), v);
  if ((to !== 'f16' && to !== 'bf16') || from === to) return c;
  return L.un(to === 'f16' ? 'f16round' : 'bf16round', c);
}

export class NodeLowering {
  private memo = new Map<string, LExpr>();
  readonly uniforms = new Set<string>();

  constructor(private readonly ctx: LowerContext) {}

  private dims = new Map<Dim, LExpr>();

  dim(d: Dim): LExpr {
    if (typeof d === 'number') return L.i32(d);
    let e = this.dims.get(d);
    if (!e) this.dims.set(d, (e = this.dimUncached(d)));
    return e;
  }

  private dimUncached(d: Exclude<Dim, number>): LExpr {
    if ('sym' in d) {
      const fixed = this.ctx.dims?.[d.sym];
      if (fixed !== undefined) return L.i32(fixed);
      this.uniforms.add(d.sym);
      return L.uniform(d.sym, this.ctx.assume?.[d.sym] ?? 1);
    }
    const a = this.dim(d.a);
    const b = this.dim(d.b);
    switch (d.op) {
      case '+': return L.add(a, b);
      case '-': return L.sub(a, b);
      case '*': return L.mul(a, b);
      case '/': return L.div(a, b);
      case 'cdiv': return L.div(L.sub(L.add(a, b), L.i32(1)), b);
    }
  }

  /** Row-major linear offset of `idx` in `shape` (Horner form). */
  linearize(idx: readonly LExpr[], shape: Shape): LExpr {
    let acc: LExpr = L.i32(0);
    shape.forEach((d, i) => {
      acc = L.add(L.mul(acc, this.dim(d)), idx[i]!);
    });
    return acc;
  }

  delinearize(lin: LExpr, shape: Shape): LExpr[] {
    const out: LExpr[] = new Array<LExpr>(shape.length);
    let rest = lin;
    for (let i = shape.length - 1; i >= 0; i--) {
      const d = this.dim(shape[i]!);
      out[i] = i === 0 ? rest : L.mod(rest, d);
      rest = L.div(rest, d);
    }
    return out;
  }

  /** Forget memoized values: needed when the context's override changes what a node evaluates to. */
  forget(): void {
    this.memo.clear();
  }

  /** Reads a materialized node. */
  loadNode(node: Node, idx: readonly LExpr[]): LExpr {
    const buf = this.ctx.bufferOf(node);
    if (!buf) fail('E_INTERNAL', `node %${node.id} (${node.op}) has no buffer`);
    return L.load(scalarOf(node.dtype), buf, this.linearize(idx, node.shape));
  }

  /** Value of `node` at `idx`: from its buffer when materialized, else computed inline. */
  valueAt(node: Node, idx: readonly LExpr[]): LExpr {
    const held = this.ctx.override?.(node, idx);
    if (held) return held;
    if (this.ctx.bufferOf(node)) return this.loadNode(node, idx);
    return this.compute(node, idx);
  }

  /** Computes `node` at `idx` from its operands (never from its own buffer). */
  compute(node: Node, idx: readonly LExpr[]): LExpr {
    const key = `${node.id}@${idx.map((e) => e.id).join(';')}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const v = this.computeUncached(node, idx);
    this.memo.set(key, v);
    return v;
  }

  private computeUncached(node: Node, idx: readonly LExpr[]): LExpr {
    const t = scalarOf(node.dtype);
    const op = node.op;
    switch (op) {
      case 'input':
        return this.loadNode(node, idx);
      case 'const':
        return L.lit(t, Number(node.attrs.value));
      case 'cast':
        return castTo(node.dtype, node.args[0]!.dtype, this.valueAt(node.args[0]!, idx));
      case 'where':
        return L.select(this.valueAt(node.args[0]!, idx), this.valueAt(node.args[1]!, idx), this.valueAt(node.args[2]!, idx));
      case 'reshape':
        return this.valueAt(node.args[0]!, this.reshapeIndex(idx, node.shape, node.args[0]!.shape));
      case 'permute': {
        const perm = node.attrs.perm as number[];
        const inIdx: LExpr[] = new Array<LExpr>(perm.length);
        perm.forEach((p, j) => (inIdx[p] = idx[j]!));
        return this.valueAt(node.args[0]!, inIdx);
      }
      case 'expand': {
        const src = node.args[0]!.shape;
        return this.valueAt(node.args[0]!, src.map((d, i) => (d === 1 && node.shape[i] !== 1 ? L.i32(0) : idx[i]!)));
      }
      case 'slice': {
        const starts = node.attrs.starts as Dim[];
        const steps = node.attrs.steps as number[];
        return this.valueAt(node.args[0]!, idx.map((x, i) => L.add(this.dim(starts[i]!), L.mul(x, L.i32(steps[i]!)))));
      }
      case 'pad': {
        const before = node.attrs.before as number[];
        const src = node.args[0]!.shape;
        let inside: LExpr = L.lit('bool', 1);
        const inIdx = idx.map((x, i) => {
          const j = L.sub(x, L.i32(before[i]!));
          if (before[i] !== 0) inside = L.and(inside, L.bin('ge', j, L.i32(0)));
          const n = this.dim(src[i]!);
          if ((node.attrs.after as number[])[i] !== 0) inside = L.and(inside, L.lt(j, n));
          return L.clampIndex(j, n);
        });
        return L.select(inside, this.valueAt(node.args[0]!, inIdx), L.lit(t, Number(node.attrs.value)));
      }
      case 'concat': {
        const axis = node.attrs.axis as number;
        let offset: LExpr = L.i32(0);
        const parts = node.args.map((a) => {
          const start = offset;
          offset = L.add(offset, this.dim(a.shape[axis]!));
          return { a, start, end: offset };
        });
        let v: LExpr | undefined;
        for (let p = parts.length - 1; p >= 0; p--) {
          const { a, start, end } = parts[p]!;
          const local = L.clampIndex(L.sub(idx[axis]!, start), L.sub(end, start));
          const val = this.valueAt(a, idx.map((x, i) => (i === axis ? local : x)));
          v = v === undefined ? val : L.select(L.lt(idx[axis]!, end), val, v);
        }
        return v!;
      }
      case 'gather': {
        const axis = node.attrs.axis as number;
        const x = node.args[0]!;
        const ind = node.args[1]!;
        const r = ind.shape.length;
        const i = L.clampIndex(this.valueAt(ind, idx.slice(axis, axis + r)), this.dim(x.shape[axis]!));
        return this.valueAt(x, [...idx.slice(0, axis), i, ...idx.slice(axis + r)]);
      }
      case 'matmul': {
        const [a, b] = node.args as [Node, Node];
        const r = node.shape.length;
        const k = L.variable(`k${node.id}`);
        const batch = idx.slice(0, r - 2);
        const prod = L.bin('mul', this.valueAt(a, [...batch, idx[r - 2]!, k]), this.valueAt(b, [...batch, k, idx[r - 1]!]));
        return L.red('sum', k.k === 'var' ? k.name : '', this.dim(a.shape[r - 1]!), prod);
      }
      case 'compute':
        return this.iexpr(node.attrs.expr as IExpr, node, idx);
      case 'sum': case 'mean': case 'max': case 'min': case 'argmax': case 'argmin':
        return this.reduce(node, idx);
    }
    if (node.args.length === 1) return unaryValue(op as UnaryOp, this.valueAt(node.args[0]!, idx));
    if (node.args.length === 2) return binaryValue(op as BinaryOp, this.valueAt(node.args[0]!, idx), this.valueAt(node.args[1]!, idx));
    return fail('E_UNKNOWN_OP', `cannot lower op '${op}'`);
  }

  /** Index mapping for reshape: direct when only size-1 axes change, else through the linear offset. */
  private reshapeIndex(idx: readonly LExpr[], out: Shape, src: Shape): LExpr[] {
    const key = (s: Shape) => s.filter((d) => d !== 1).map((d) => JSON.stringify(d)).join('|');
    if (key(out) === key(src)) {
      const nonUnit = idx.filter((_, i) => out[i] !== 1);
      let j = 0;
      return src.map((d) => (d === 1 ? L.i32(0) : nonUnit[j++]!));
    }
    return this.delinearize(this.linearize(idx, out), src);
  }

  private reduce(node: Node, idx: readonly LExpr[]): LExpr {
    const src = node.args[0]!;
    const axes = node.attrs.axes as number[];
    const keep = node.attrs.keepdims === true;
    const vars = axes.map((a) => L.variable(`r${node.id}_${a}`));
    const inIdx: LExpr[] = [];
    let j = 0;
    src.shape.forEach((_, i) => {
      const pos = axes.indexOf(i);
      if (pos >= 0) {
        inIdx.push(vars[pos]!);
        if (keep) j++;
      } else inIdx.push(idx[j++]!);
    });
    let v = this.valueAt(src, inIdx);
    const fn = node.op === 'mean' ? 'sum' : (node.op as L.RedFn);
    for (let p = axes.length - 1; p >= 0; p--) {
      const name = vars[p]!.k === 'var' ? (vars[p] as { name: string }).name : '';
      v = L.red(fn, name, this.dim(src.shape[axes[p]!]!), v);
    }
    if (node.op === 'mean') v = L.bin('div', v, L.cast('f32', this.dim(dimProduct(axes.map((a) => src.shape[a]!)))));
    return v;
  }

  private iexpr(e: IExpr, node: Node, idx: readonly LExpr[]): LExpr {
    switch (e.k) {
      case 'idx': return idx[e.i]!;
      case 'rvar': return L.variable(`c${node.id}_${e.name}`);
      case 'num': return L.lit(scalarOf(e.dtype), e.v);
      case 'dim': return this.dim(e.d);
      case 'at': {
        const a = node.args[e.arg]!;
        return this.valueAt(a, e.idx.map((x, i) => L.clampIndex(this.iexpr(x, node, idx), this.dim(a.shape[i]!))));
      }
      case 'un': return unaryValue(e.op, this.iexpr(e.a, node, idx));
      case 'bin': return binaryValue(e.op, this.iexpr(e.a, node, idx), this.iexpr(e.b, node, idx));
      case 'where': return L.select(this.iexpr(e.c, node, idx), this.iexpr(e.a, node, idx), this.iexpr(e.b, node, idx));
      case 'cast': {
        return castTo(e.dtype, undefined, this.iexpr(e.a, node, idx));
      }
      case 'red': return L.red(e.fn, `c${node.id}_${e.name}`, this.dim(e.extent), this.iexpr(e.body, node, idx));
    }
  }
}


const f = (v: number) => L.lit('f32', v);

/** Graph unary ops as kernel expressions; activations become their formulas. */
export function unaryValue(op: UnaryOp, x: LExpr): LExpr {
  switch (op) {
    case 'sigmoid':
      return L.bin('div', f(1), L.bin('add', f(1), L.un('exp', L.un('neg', x))));
    case 'relu':
      return L.select(L.bin('lt', x, f(0)), f(0), x);
    case 'silu':
      return L.bin('div', x, L.bin('add', f(1), L.un('exp', L.un('neg', x))));
    case 'gelu_tanh': {
      const inner = L.bin('mul', f(Math.sqrt(2 / Math.PI)), L.bin('add', x, L.bin('mul', f(0.044715), L.bin('mul', x, L.bin('mul', x, x)))));
      return L.bin('mul', L.bin('mul', f(0.5), x), L.bin('add', f(1), L.un('tanh', inner)));
    }
    case 'gelu_erf':
      return L.bin('mul', L.bin('mul', f(0.5), x), L.bin('add', f(1), L.un('erf', L.bin('mul', x, f(Math.SQRT1_2)))));
    case 'reciprocal':
      return L.bin('div', f(1), x);
    default:
      return L.un(op as KUnary, x);
  }
}

/** Graph IR binary ops whose kernel IR spelling differs. */
const KERNEL_BINARY = { maximum: 'max', minimum: 'min', bitand: 'band', bitor: 'bor', bitxor: 'bxor' } as const;

export function binaryValue(op: BinaryOp, a: LExpr, b: LExpr): LExpr {
  return L.bin(KERNEL_BINARY[op as keyof typeof KERNEL_BINARY] ?? (op as KBinary), a, b);
}
