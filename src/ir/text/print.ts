/**
 * Printer for the graph IR text form (the parser in parse.ts reads it back):
 *
 *   program softmax(x: f32[M, N]) -> (y) {
 *     %0 = input x : f32[M, N]
 *     %1 = max(%0) {axes: [1], keepdims: true} : f32[M, 1]
 *     ...
 *     y = %7
 *   }
 *
 * Nodes are numbered in topological order, so equal programs print equal text. Attrs print in their
 * object key order (hash-consing keys depend on it). A value prints as a number (`inf`, `-inf`, `nan`),
 * boolean, `null`, string, list, dim (`M*N`, `cdiv(M, 4)`) or `{key: value}` map; the attr `expr` of a
 * compute node prints as an index expression, e.g. `sum k < K: at(0, [i0, k]) * at(1, [k, i1])`.
 */
import { dimKey, dimToString, shapeToString, simplifyDim, type Dim, type Shape } from '../dims.js';
import { isDType, type DType } from '../dtype.js';
import { programNodes, topoOrder, type AttrValue, type Attrs, type Node, type Program } from '../graph.js';
import type { IExpr } from '../index-expr.js';
import { isBinary, isUnary, type BinaryOp } from '../ops.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Identifiers that read as something else where a dim or an index expression is expected. */
const LITERAL_WORDS = new Set(['inf', 'nan', 'true', 'false', 'null']);
const IDX_NAME = /^i\d+$/;

/** A name (program, parameter, output, map key): bare when it is an identifier, else a quoted string. */
export function printName(s: string): string {
  return IDENT.test(s) ? s : JSON.stringify(s);
}

export function printNumber(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Object.is(v, -0)) return '-0';
  return String(v);
}

export function printType(dtype: DType, shape: Shape): string {
  return `${dtype}${shapeToString(shape)}`;
}

const sameKeys = (o: object, keys: readonly string[]): boolean => {
  const ks = Object.keys(o);
  return ks.length === keys.length && ks.every((k, i) => k === keys[i]);
};

/** A dim object the dim syntax reproduces exactly: canonical (as simplifyDim leaves it), keys in order. */
export function isPrintableDim(v: unknown): v is Dim {
  const ok = (d: unknown): boolean => {
    if (typeof d === 'number') return Number.isFinite(d) && !Object.is(d, -0);
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return false;
    const o = d as Record<string, unknown>;
    if (sameKeys(o, ['sym'])) return typeof o.sym === 'string' && IDENT.test(o.sym) && !LITERAL_WORDS.has(o.sym);
    return sameKeys(o, ['op', 'a', 'b']) && ['+', '-', '*', '/', 'cdiv'].includes(o.op as string) && ok(o.a) && ok(o.b);
  };
  return typeof v === 'object' && ok(v) && dimKey(simplifyDim(v as Dim)) === dimKey(v as Dim);
}

const IEXPR_KEYS: Record<IExpr['k'], readonly string[]> = {
  idx: ['k', 'i'], rvar: ['k', 'name'], num: ['k', 'v', 'dtype'], dim: ['k', 'd'], at: ['k', 'arg', 'idx'],
  un: ['k', 'op', 'a'], bin: ['k', 'op', 'a', 'b'], where: ['k', 'c', 'a', 'b'], cast: ['k', 'dtype', 'a'],
  red: ['k', 'fn', 'name', 'extent', 'body'],
};
const isIndex = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/** An index expression the expression syntax reproduces exactly (right fields, in the parser's key order). */
export function isIExpr(v: unknown): v is IExpr {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const keys = IEXPR_KEYS[o.k as IExpr['k']];
  if (!Object.hasOwn(IEXPR_KEYS, o.k as string) || !keys || !sameKeys(o, keys)) return false;
  const dim = (d: unknown) => (typeof d === 'number' ? Number.isFinite(d) && !Object.is(d, -0) : isPrintableDim(d));
  switch (o.k as IExpr['k']) {
    case 'idx': return isIndex(o.i);
    case 'rvar': return typeof o.name === 'string' && IDENT.test(o.name);
    case 'num': return typeof o.v === 'number' && typeof o.dtype === 'string' && isDType(o.dtype);
    case 'dim': return dim(o.d);
    case 'at': return isIndex(o.arg) && Array.isArray(o.idx) && o.idx.every(isIExpr);
    case 'un': return typeof o.op === 'string' && isUnary(o.op) && isIExpr(o.a);
    case 'bin': return typeof o.op === 'string' && isBinary(o.op) && isIExpr(o.a) && isIExpr(o.b);
    case 'where': return isIExpr(o.c) && isIExpr(o.a) && isIExpr(o.b);
    case 'cast': return typeof o.dtype === 'string' && isDType(o.dtype) && isIExpr(o.a);
    case 'red':
      return ['sum', 'max', 'min'].includes(o.fn as string) && typeof o.name === 'string' && IDENT.test(o.name) && dim(o.extent) && isIExpr(o.body);
  }
}

/** Infix spellings and precedences (higher binds tighter); the other binary ops print as calls. */
export const INFIX: Partial<Record<BinaryOp, { sym: string; prec: number }>> = {
  or: { sym: '||', prec: 1 }, and: { sym: '&&', prec: 2 },
  eq: { sym: '==', prec: 3 }, ne: { sym: '!=', prec: 3 }, lt: { sym: '<', prec: 3 }, le: { sym: '<=', prec: 3 }, gt: { sym: '>', prec: 3 }, ge: { sym: '>=', prec: 3 },
  add: { sym: '+', prec: 4 }, sub: { sym: '-', prec: 4 }, mul: { sym: '*', prec: 5 }, div: { sym: '/', prec: 5 },
};
const COMPARE_PREC = 3;

function printLiteral(v: number, dtype: DType): string {
  const s = printNumber(v);
  const integral = /^-?\d+$/.test(s);
  if (dtype === 'f32') return integral ? `${s}.0` : s;
  if (dtype === 'i32' && integral) return s;
  return `${dtype}(${s})`;
}

/**
 * An index expression: `i0` (output index), `k` (a reduction variable in scope), `N` (a dim's value),
 * `2` (i32), `2.0` (f32), `f16(0.5)`, `at(0, [i0, k])`, `exp(x)`, `pow(a, b)`, `a + b * c`, `a < b`,
 * `where(c, a, b)`, `cast(f16, x)`, `sum k < K: body`. `idx(0)`, `rvar(k)` and `dim(M*N)` spell out
 * what a bare name cannot.
 */
export function printIExpr(e: IExpr): string {
  return ix(e, 0, []);
}

function ix(e: IExpr, ctx: number, scope: readonly string[]): string {
  const rec = (x: IExpr, c = 0) => ix(x, c, scope);
  switch (e.k) {
    case 'idx': return scope.includes(`i${e.i}`) ? `idx(${e.i})` : `i${e.i}`;
    case 'rvar': return scope.includes(e.name) && !LITERAL_WORDS.has(e.name) ? e.name : `rvar(${e.name})`;
    case 'num': return printLiteral(e.v, e.dtype);
    case 'dim': {
      const d = e.d;
      const bare = typeof d === 'object' && 'sym' in d && !scope.includes(d.sym) && !IDX_NAME.test(d.sym) && !LITERAL_WORDS.has(d.sym);
      return bare ? d.sym : `dim(${dimToString(d)})`;
    }
    case 'at': return `at(${e.arg}, [${e.idx.map((i) => rec(i)).join(', ')}])`;
    case 'un': return `${e.op}(${rec(e.a)})`;
    case 'where': return `where(${rec(e.c)}, ${rec(e.a)}, ${rec(e.b)})`;
    case 'cast': return `cast(${e.dtype}, ${rec(e.a)})`;
    case 'bin': {
      const inf = INFIX[e.op];
      if (!inf) return `${e.op}(${rec(e.a)}, ${rec(e.b)})`;
      const p = inf.prec;
      const s = `${rec(e.a, p === COMPARE_PREC ? p + 1 : p)} ${inf.sym} ${rec(e.b, p + 1)}`;
      return ctx > p ? `(${s})` : s;
    }
    case 'red': {
      const s = `${e.fn} ${e.name} < ${dimToString(e.extent)}: ${ix(e.body, 0, [...scope, e.name])}`;
      return ctx > 0 ? `(${s})` : s;
    }
  }
}

export function printAttrValue(v: AttrValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return printNumber(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${(v as readonly AttrValue[]).map(printAttrValue).join(', ')}]`;
  if (isPrintableDim(v)) return dimToString(v);
  return printAttrs(v as Attrs);
}

/** `{key: value, ...}` in key order. A bare `expr` key holds an index expression; `"expr"` holds a plain value. */
export function printAttrs(attrs: Attrs): string {
  const entries = Object.entries(attrs).filter(([, v]) => v !== undefined);
  const entry = ([k, v]: [string, AttrValue]) =>
    k === 'expr' && isIExpr(v) ? `expr: ${printIExpr(v)}` : `${k === 'expr' ? '"expr"' : printName(k)}: ${printAttrValue(v)}`;
  return `{${entries.map(entry).join(', ')}}`;
}

/** One node's line, `%3 = add(%1, %2) : f32[M, N]`, given the names of it and its args. */
export function printNodeLine(n: Node, names: ReadonlyMap<Node, string>): string {
  const name = (x: Node) => names.get(x) ?? `%n${x.id}`;
  const args = n.args.length ? `(${n.args.map(name).join(', ')})` : '';
  const keys = Object.keys(n.attrs);
  let attrs = keys.length ? ` ${printAttrs(n.attrs)}` : '';
  if (n.op === 'input' && keys.length === 1 && typeof n.attrs.name === 'string') attrs = ` ${printName(n.attrs.name)}`;
  return `${name(n)} = ${n.op}${args}${attrs} : ${printType(n.dtype, n.shape)}`;
}

/** The nodes reachable from `roots`, one line each, numbered %0, %1 ... in topological order. */
export function printNodes(roots: readonly Node[], indent = ''): string[] {
  const nodes = topoOrder(roots);
  const names = new Map(nodes.map((n, i) => [n, `%${i}`]));
  return nodes.map((n) => indent + printNodeLine(n, names));
}

export function printProgram(p: Program): string {
  const nodes = programNodes(p);
  const names = new Map(nodes.map((n, i) => [n, `%${i}`]));
  const params = p.inputs.map((i) => `${printName(i.name)}: ${printType(i.dtype, i.shape)}`).join(', ');
  const lines = [
    `program ${printName(p.name)}(${params}) -> (${p.outputs.map((o) => printName(o.name)).join(', ')}) {`,
    ...nodes.map((n) => `  ${printNodeLine(n, names)}`),
    ...p.outputs.map((o) => `  ${printName(o.name)} = ${names.get(o.node)!}`),
    '}',
  ];
  return lines.join('\n') + '\n';
}
