/**
 * Lowering expressions: the scalar form a fused group is lowered to before scheduling. Like kernel
 * IR expressions, plus `red` (a reduction over a loop variable) and `tid`. Hash-consed, with their
 * free variables precomputed, so the emitter can CSE them and hoist each one to the outermost loop
 * where its free variables are defined (loop-invariant code motion for free). The constructors fold
 * integer constants and drop identities so index arithmetic stays small.
 */
import type { KBinary, KUnary, Scalar } from '../ir/kernel.js';

export type RedFn = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

interface Base {
  readonly t: Scalar;
  /** A serial unique to this (hash-consed) expression in the process: equal ids, the same expression. */
  readonly id: number;
  readonly free: ReadonlySet<string>;
}
export type LExpr =
  | (Base & { readonly k: 'lit'; readonly v: number })
  | (Base & { readonly k: 'var'; readonly name: string })
  | (Base & { readonly k: 'uniform'; readonly name: string; readonly multipleOf: number })
  | (Base & { readonly k: 'tid' })
  | (Base & { readonly k: 'lid' })
  | (Base & { readonly k: 'wid' })
  | (Base & { readonly k: 'load'; readonly buf: string; readonly index: LExpr })
  | (Base & { readonly k: 'un'; readonly op: KUnary; readonly a: LExpr })
  | (Base & { readonly k: 'bin'; readonly op: KBinary; readonly a: LExpr; readonly b: LExpr })
  | (Base & { readonly k: 'select'; readonly c: LExpr; readonly a: LExpr; readonly b: LExpr })
  | (Base & { readonly k: 'cast'; readonly a: LExpr })
  | (Base & { readonly k: 'red'; readonly fn: RedFn; readonly v: string; readonly extent: LExpr; readonly body: LExpr });

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Interned expressions: a trie over the parts that identify one (its kind, operator and operands' ids). */
class Slot {
  next: Map<string | number, Slot> | undefined;
  e: LExpr | undefined;
  at(part: string | number): Slot {
    const next = (this.next ??= new Map());
    let s = next.get(part);
    if (!s) next.set(part, (s = new Slot()));
    return s;
  }
}
const table = new Slot();
let interned = 0;

let internedAtReset = 0;

/** How many lowering expressions are interned now (since the last reset). */
export function internedExprs(): number {
  return interned - internedAtReset;
}

/**
 * Forgets every interned expression and the memos about them, so a long-lived process that compiles
 * many programs does not keep them all (compile() calls it between programs, see
 * setLoweringCacheLimit). Expressions made before must not meet those made after (equal ones are
 * no longer the same object): call it only where no lowering is under way. Ids keep counting, so
 * an old expression's id never names a new one. What loop counters were registered with stays.
 */
export function resetExprs(): void {
  table.next = undefined;
  nonNegMemo.clear();
  upperMemo.clear();
  internedAtReset = interned;
}
const EMPTY: ReadonlySet<string> = new Set();

function union(...xs: LExpr[]): ReadonlySet<string> {
  const nonEmpty = xs.filter((x) => x.free.size > 0);
  if (nonEmpty.length === 0) return EMPTY;
  if (nonEmpty.length === 1) return nonEmpty[0]!.free;
  const s = new Set<string>();
  for (const x of nonEmpty) for (const v of x.free) s.add(v);
  return s;
}

/**
 * The slot of the expression identified by `parts` (its kind tag, then operators, names and operand
 * ids). Operands are named by id, never by their structure, so interning costs the same at any depth.
 */
function slot(a: string, b: string | number, c?: string | number, d?: string | number, e?: string | number): Slot {
  // every kind passes the same number of parts, so one kind's paths are never a prefix of another's
  let s = table.at(a).at(b);
  if (c !== undefined) s = s.at(c);
  if (d !== undefined) s = s.at(d);
  if (e !== undefined) s = s.at(e);
  return s;
}

/**
 * `fields` interned in `s` with the next id. Constructors call it as `s.e ?? intern(s, {...})`, so the
 * fields are only built the first time.
 */
function intern(s: Slot, fields: DistributiveOmit<LExpr, 'id'>): LExpr {
  const e = { ...fields, id: interned++ } as LExpr;
  s.e = e;
  return e;
}

const litKey = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

export function lit(t: Scalar, v: number): LExpr {
  const val = t === 'i32' ? v | 0 : t === 'u32' ? v >>> 0 : t === 'bool' ? (v ? 1 : 0) : Math.fround(v);
  const s = slot('L', t, litKey(val));
  return s.e ?? intern(s, { k: 'lit', t, v: val, free: EMPTY });
}
export const i32 = (v: number) => lit('i32', v);

/**
 * Variables the schedule knows are never negative (loop counters from 0). Index rules below only
 * rewrite truncating division and modulo when the dividend is provably non-negative.
 */
const NON_NEGATIVE_VARS = new Map<string, number>();
/** Memos of nonNegative and upperBound (cleared when a variable brings a new fact). */
const nonNegMemo = new Map<LExpr, boolean>();
const upperMemo = new Map<LExpr, number>();

/**
 * A variable; `nonNegative` marks a loop counter from 0, `below` (with it) an exclusive upper bound
 * the loop keeps. The facts are global per name, so a bounded counter's name should say its bound.
 */
export function variable(name: string, t: Scalar = 'i32', nonNegative = false, below = Infinity): LExpr {
  if (nonNegative) {
    const key = `${t}:${name}`;
    const had = NON_NEGATIVE_VARS.get(key);
    if (had !== undefined && had !== below) throw new Error(`lowering variable ${name} registered with bounds ${had} and ${below}`);
    if (had === undefined) {
      NON_NEGATIVE_VARS.set(key, below);
      // a new fact: what the memos found without it may be weaker
      nonNegMemo.clear();
      upperMemo.clear();
    }
  }
  const s = slot('V', t, name);
  return s.e ?? intern(s, { k: 'var', t, name, free: new Set([name]) });
}
/**
 * A dim held in a uniform; `multipleOf` is what the program assumes of it (`CompileOptions.assume`,
 * checked at dispatch), so `x % d` folds to 0 where d divides it.
 */
export function uniform(name: string, multipleOf = 1): LExpr {
  const s = slot('U', name, multipleOf);
  return s.e ?? intern(s, { k: 'uniform', t: 'i32', name, multipleOf, free: EMPTY });
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * A positive integer the i32 expression `e` is known to be a multiple of (1 when nothing is known):
 * literals, assumed uniforms, and their sums and products.
 */
export function knownMultiple(e: LExpr): number {
  switch (e.k) {
    case 'lit': return e.t === 'i32' && e.v !== 0 ? Math.abs(e.v) : e.t === 'i32' ? 2 ** 30 : 1;
    case 'uniform': return e.multipleOf;
    case 'bin':
      if (e.t !== 'i32') return 1;
      if (e.op === 'mul') return Math.min(2 ** 30, knownMultiple(e.a) * knownMultiple(e.b));
      if (e.op === 'add' || e.op === 'sub') return gcd(knownMultiple(e.a), knownMultiple(e.b));
      return 1;
    default: return 1;
  }
}
export function tid(): LExpr {
  const s = slot('T', '');
  return s.e ?? intern(s, { k: 'tid', t: 'i32', free: new Set(['tid']) });
}
/** Local invocation index and linear workgroup index (their free variables are 'lid' and 'wid'). */
export function lid(): LExpr {
  const s = slot('LID', '');
  return s.e ?? intern(s, { k: 'lid', t: 'i32', free: new Set(['lid']) });
}
export function wid(): LExpr {
  const s = slot('WID', '');
  return s.e ?? intern(s, { k: 'wid', t: 'i32', free: new Set(['wid']) });
}
export function load(t: Scalar, buf: string, index: LExpr): LExpr {
  const s = slot('ld', t, buf, index.id);
  return s.e ?? intern(s, { k: 'load', t, buf, index, free: index.free });
}
export function un(op: KUnary, a: LExpr): LExpr {
  const t: Scalar = op === 'isnan' ? 'bool' : a.t;
  if (a.k === 'lit' && (a.t === 'i32' || a.t === 'bool')) {
    if (op === 'neg' && a.t === 'i32') return lit('i32', -a.v);
    if (op === 'not' && a.t === 'bool') return lit('bool', a.v ? 0 : 1);
  }
  if (op === 'neg' && a.k === 'un' && a.op === 'neg') return a.a;
  const s = slot('un', op, a.id);
  return s.e ?? intern(s, { k: 'un', t, op, a, free: a.free });
}

const COMPARE = new Set<KBinary>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

const wrapInt = (x: number, t: 'i32' | 'u32') => (t === 'i32' ? x | 0 : x >>> 0);

function foldInt(op: KBinary, a: number, b: number, t: 'i32' | 'u32'): number | undefined {
  switch (op) {
    case 'add': return wrapInt(a + b, t);
    case 'sub': return wrapInt(a - b, t);
    case 'mul': return wrapInt(Math.imul(a, b), t);
    case 'div': return b === 0 ? 0 : wrapInt(Math.trunc(a / b), t);
    case 'mod': return b === 0 ? 0 : wrapInt(a % b, t);
    case 'max': return Math.max(a, b);
    case 'min': return Math.min(a, b);
    default: return undefined;
  }
}

/** Is the i32 expression `e` provably >= 0 (built from dims, thread ids, loop counters, non-negative literals)? */
export function nonNegative(e: LExpr): boolean {
  let r = nonNegMemo.get(e);
  if (r !== undefined) return r;
  switch (e.k) {
    case 'lit': r = e.v >= 0; break;
    case 'tid': case 'lid': case 'wid': case 'uniform': r = true; break;
    case 'var': r = NON_NEGATIVE_VARS.has(`${e.t}:${e.name}`); break;
    case 'bin':
      if (e.op === 'band' && e.t === 'i32') r = nonNegative(e.a) || nonNegative(e.b);
      else if (e.op === 'max' && e.t === 'i32') r = nonNegative(e.a) || nonNegative(e.b);
      else r = ['add', 'mul', 'div', 'mod', 'min', 'shr'].includes(e.op) && e.t === 'i32' && nonNegative(e.a) && nonNegative(e.b);
      break;
    case 'cast': r = e.t === 'i32' && e.a.t === 'u32' && upperBound(e.a) <= 0x7fffffff; break;
    default: r = false;
  }
  nonNegMemo.set(e, r);
  return r;
}

/**
 * An upper bound of the integer expression `e` (Infinity when unknown): masks, remainders, minimums.
 * Memoized like nonNegative (both memos are cleared when a loop counter registers its bound).
 */
export function upperBound(e: LExpr): number {
  let r = upperMemo.get(e);
  if (r === undefined) upperMemo.set(e, (r = upperBoundOf(e)));
  return r;
}

function upperBoundOf(e: LExpr): number {
  switch (e.k) {
    case 'lit': return e.v;
    case 'var': return (NON_NEGATIVE_VARS.get(`${e.t}:${e.name}`) ?? Infinity) - 1;
    case 'cast': return e.a.t === 'u32' || e.a.t === 'i32' ? upperBound(e.a) : Infinity;
    case 'bin':
      if (e.op === 'band' && e.b.k === 'lit' && e.b.v >= 0) return e.b.v;
      if (e.op === 'band' && e.a.k === 'lit' && e.a.v >= 0) return e.a.v;
      if (e.op === 'mod' && e.b.k === 'lit' && e.b.v > 0 && nonNegative(e.a)) return e.b.v - 1;
      if (e.op === 'min') return Math.min(upperBound(e.a), upperBound(e.b));
      if (e.op === 'max') return Math.max(upperBound(e.a), upperBound(e.b));
      if (e.t !== 'i32' || !nonNegative(e.a) || !nonNegative(e.b)) return Infinity;
      if (e.op === 'add') return upperBound(e.a) + upperBound(e.b);
      if (e.op === 'mul') return upperBound(e.a) * upperBound(e.b);
      if (e.op === 'div' && e.b.k === 'lit' && e.b.v > 0) return Math.floor(upperBound(e.a) / e.b.v);
      return Infinity;
    default: return Infinity;
  }
}

/** `x * c` as [x, c] when `e` is a product with a positive literal right operand (or `e` itself as x * 1). */
function scaled(e: LExpr): [LExpr, number] {
  return e.k === 'bin' && e.op === 'mul' && e.b.k === 'lit' && e.b.v > 0 ? [e.a, e.b.v] : [e, 1];
}

/**
 * Division and modulo of `x * c1 + c2` (x >= 0, 0 <= c2) by a literal d: what unrolling a loop by a
 * multiple of a pack factor produces (`(kk * 8 + 3) / 8` is `kk`, `% 8` is 3), so the unrolled
 * iterations share one packed-word load.
 */
function divModAffine(op: 'div' | 'mod', a: LExpr, d: number): LExpr | undefined {
  if (a.t !== 'i32' || d <= 0) return undefined;
  let base = a;
  let c2 = 0;
  if (a.k === 'bin' && a.op === 'add' && a.b.k === 'lit' && a.b.v >= 0) {
    base = a.a;
    c2 = a.b.v;
  } else if (a.k === 'bin' && a.op === 'add' && a.b.k !== 'lit' && nonNegative(a.b) && upperBound(a.b) < d) {
    // x * c1 + y with 0 <= y < d bounded (an inner loop counter): y leaves the quotient
    const [x, c1] = scaled(a.a);
    if (c1 % d === 0 && nonNegative(x)) return op === 'div' ? mul(x, i32(c1 / d)) : a.b;
    return undefined;
  }
  const [x, c1] = scaled(base);
  if (c1 === 1 && c2 === 0) return undefined;
  if (!nonNegative(x)) return undefined;
  if (c1 % d === 0) return op === 'div' ? add(mul(x, i32(c1 / d)), i32(Math.floor(c2 / d))) : i32(c2 % d);
  if (op === 'div' && d % c1 === 0 && c2 < c1) return div(x, i32(d / c1));
  return undefined;
}

const isZero = (x: LExpr) => x.k === 'lit' && x.v === 0;
const isOne = (x: LExpr) => x.k === 'lit' && x.v === 1;

export function bin(op: KBinary, a: LExpr, b: LExpr): LExpr {
  const t: Scalar = COMPARE.has(op) ? 'bool' : op === 'dot4i8' ? 'i32' : a.t;
  const isInt = a.t === 'i32' || a.t === 'u32';
  if ((op === 'div' || op === 'mod') && b.k === 'lit' && b.t === 'i32') {
    const r = divModAffine(op, a, b.v);
    if (r) return r;
    if (op === 'mod' && b.v > 0 && a.k !== 'lit' && knownMultiple(a) % b.v === 0) return i32(0);
  }
  if (isInt && a.k === 'lit' && b.k === 'lit') {
    if (COMPARE.has(op)) {
      const r = { eq: a.v === b.v, ne: a.v !== b.v, lt: a.v < b.v, le: a.v <= b.v, gt: a.v > b.v, ge: a.v >= b.v }[op as 'eq'];
      return lit('bool', r ? 1 : 0);
    }
    const v = foldInt(op, a.v, b.v, a.t as 'i32' | 'u32');
    if (v !== undefined) return lit(a.t, v);
  }
  // a bound check that always holds (an index provably below a constant)
  if (op === 'lt' && a.t === 'i32' && b.k === 'lit' && upperBound(a) < b.v && (nonNegative(a) || b.v > 0)) return lit('bool', 1);
  switch (op) {
    case 'add':
      if (isZero(b)) return a;
      if (isZero(a)) return b;
      // (x / n) * n + x % n == x: a delinearize followed by a linearize over the same axis
      if (isInt && a.k === 'bin' && a.op === 'mul' && a.a.k === 'bin' && a.a.op === 'div' && b.k === 'bin' && b.op === 'mod' && a.a.a === b.a && a.a.b === b.b && a.b === b.b) return b.a;
      break;
    case 'sub':
      if (isZero(b)) return a;
      if (isInt && a === b) return lit(a.t, 0);
      break;
    case 'mul':
      if (isOne(b)) return a;
      if (isOne(a)) return b;
      if (isInt && (isZero(a) || isZero(b))) return lit(a.t, 0);
      break;
    case 'div':
      if (isOne(b)) return a;
      if (isInt && isZero(a)) return a;
      break;
    case 'mod':
      if (isInt && isOne(b)) return lit(a.t, 0);
      if (isInt && isZero(a)) return a;
      break;
    case 'min':
    case 'max':
      if (a === b) return a;
      // clamps that cannot bind: min(x, c) with x <= c, max(x, 0) with x >= 0
      if (op === 'min' && isInt && b.k === 'lit' && upperBound(a) <= b.v) return a;
      if (op === 'max' && a.t === 'i32' && b.k === 'lit' && b.v <= 0 && nonNegative(a)) return a;
      break;
    case 'and':
      if (a.k === 'lit') return a.v ? b : a;
      if (b.k === 'lit') return b.v ? a : b;
      break;
  }
  const s = slot('bin', op, a.id, b.id);
  return s.e ?? intern(s, { k: 'bin', t, op, a, b, free: union(a, b) });
}

export function select(c: LExpr, a: LExpr, b: LExpr): LExpr {
  if (c.k === 'lit') return c.v ? a : b;
  if (a === b) return a;
  const s = slot('sel', c.id, a.id, b.id);
  return s.e ?? intern(s, { k: 'select', t: a.t, c, a, b, free: union(c, a, b) });
}

export function cast(t: Scalar, a: LExpr): LExpr {
  if (a.t === t) return a;
  if (a.k === 'lit' && t !== 'f32' && a.t !== 'f32') return lit(t, a.v);
  const s = slot('cast', t, a.id);
  return s.e ?? intern(s, { k: 'cast', t, a, free: a.free });
}

export function red(fn: RedFn, v: string, extent: LExpr, body: LExpr): LExpr {
  const t: Scalar = fn === 'argmax' || fn === 'argmin' ? 'i32' : body.t;
  const s = slot('red', fn, v, extent.id, body.id);
  if (s.e) return s.e;
  const free = new Set(body.free);
  free.delete(v);
  for (const x of extent.free) free.add(x);
  return intern(s, { k: 'red', t, fn, v, extent, body, free });
}

export function children(e: LExpr): LExpr[] {
  switch (e.k) {
    case 'lit': case 'var': case 'uniform': case 'tid': case 'lid': case 'wid': return [];
    case 'load': return [e.index];
    case 'un': case 'cast': return [e.a];
    case 'bin': return [e.a, e.b];
    case 'select': return [e.c, e.a, e.b];
    case 'red': return [e.extent, e.body];
  }
}

// Small helpers for index arithmetic (i32).
export const add = (a: LExpr, b: LExpr) => bin('add', a, b);
export const sub = (a: LExpr, b: LExpr) => bin('sub', a, b);
export const mul = (a: LExpr, b: LExpr) => bin('mul', a, b);
export const div = (a: LExpr, b: LExpr) => bin('div', a, b);
export const mod = (a: LExpr, b: LExpr) => bin('mod', a, b);
export const min = (a: LExpr, b: LExpr) => bin('min', a, b);
export const max = (a: LExpr, b: LExpr) => bin('max', a, b);
export const lt = (a: LExpr, b: LExpr) => bin('lt', a, b);
export const and = (a: LExpr, b: LExpr) => bin('and', a, b);
/** clamp(x, 0, n - 1) for i32 indices */
export const clampIndex = (x: LExpr, n: LExpr) => max(min(x, sub(n, i32(1))), i32(0));

/**
 * For an index that is `v` itself or `base + v` (either order, base free of v): base, i32(0) for v
 * itself; undefined for any other index. How vec4 paths find where a run of lanes starts.
 */
export function offsetOf(index: LExpr, v: string): LExpr | undefined {
  const isV = (e: LExpr) => e.k === 'var' && e.name === v;
  if (isV(index)) return i32(0);
  if (index.k !== 'bin' || index.op !== 'add') return undefined;
  if (isV(index.b) && !index.a.free.has(v)) return index.a;
  if (isV(index.a) && !index.b.free.has(v)) return index.b;
  return undefined;
}

/** `e` with variable `from` replaced by `to` (hash-consing makes the result comparable by identity). */
export function substVar(e: LExpr, from: string, to: LExpr, memo = new Map<LExpr, LExpr>()): LExpr {
  return rewrite(e, from, (x) => (x.k === 'var' && x.name === from ? to : undefined), memo);
}

/**
 * `e` with every subexpression `pick` gives a replacement for replaced (the rest rebuilt); only
 * subexpressions with `v` free are visited, and reductions binding v are left alone.
 */
export function rewrite(e: LExpr, v: string, pick: (e: LExpr) => LExpr | undefined, memo = new Map<LExpr, LExpr>()): LExpr {
  if (!e.free.has(v)) return e;
  const hit = memo.get(e);
  if (hit) return hit;
  let out = pick(e);
  if (!out) {
    switch (e.k) {
      case 'load': out = load(e.t, e.buf, rewrite(e.index, v, pick, memo)); break;
      case 'un': out = un(e.op, rewrite(e.a, v, pick, memo)); break;
      case 'bin': out = bin(e.op, rewrite(e.a, v, pick, memo), rewrite(e.b, v, pick, memo)); break;
      case 'select': out = select(rewrite(e.c, v, pick, memo), rewrite(e.a, v, pick, memo), rewrite(e.b, v, pick, memo)); break;
      case 'cast': out = cast(e.t, rewrite(e.a, v, pick, memo)); break;
      case 'red': out = e.v === v ? e : red(e.fn, e.v, rewrite(e.extent, v, pick, memo), rewrite(e.body, v, pick, memo)); break;
      default: out = e;
    }
  }
  memo.set(e, out);
  return out;
}
