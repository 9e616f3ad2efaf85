/**
 * Lowering expressions -> kernel IR statements. Each expression is placed in the innermost scope
 * that defines one of its free variables (so loop-invariant work is hoisted out of loops), shared
 * subexpressions are bound once with `let`, and each `red` becomes an accumulator and a loop.
 */
import { fail } from '../errors.js';
import type { KExpr, KShared, KStmt, Scalar } from '../ir/kernel.js';
import { add, children, div, i32, mul, offsetOf, rewrite, substVar, variable, type LExpr } from './lexpr.js';

/**
 * Does `e` contain a reduction that runs inside the loop over `v` (one that uses v: the inner level
 * of a reduction over several axes)? Only the innermost level of nested reductions is unrolled:
 * unrolling every level would multiply the code by ur per level. (A reduction that does not use v,
 * such as the row max inside a softmax's sum, is computed before the loop and does not count.)
 */
function nestsReduction(e: LExpr, v: string, seen = new Set<LExpr>()): boolean {
  if (seen.has(e) || !e.free.has(v)) return false;
  seen.add(e);
  return e.k === 'red' || children(e).some((c) => nestsReduction(c, v, seen));
}

// f32 kernel expressions for the online (max, sum) pair
const fvar = (name: string): KExpr => ({ k: 'var', t: 'f32', name });
const flit = (v: number): KExpr => ({ k: 'lit', t: 'f32', v });
const fexp = (a: KExpr): KExpr => ({ k: 'un', t: 'f32', op: 'exp', a });
const fsub = (a: KExpr, b: KExpr): KExpr => ({ k: 'bin', t: 'f32', op: 'sub', a, b });
const isNegInf = (a: KExpr): KExpr => ({ k: 'bin', t: 'bool', op: 'eq', a, b: flit(-Infinity) });
/** exp(x - m), or 0 where x is -inf (a masked element, or a lane that saw none). */
const weight = (x: KExpr, m: KExpr): KExpr => ({ k: 'select', t: 'f32', c: isNegInf(x), a: flit(0), b: fexp(fsub(x, m)) });

export class Scope {
  readonly stmts: KStmt[] = [];
  readonly cache = new Map<LExpr, KExpr>();
  private readonly names: Set<string>;
  constructor(vars: Iterable<string>) {
    this.names = new Set(vars);
  }
  get vars(): ReadonlySet<string> {
    return this.names;
  }
  /** A variable bound by a statement of this scope (so expressions of it are placed here). */
  declare(name: string): void {
    this.names.add(name);
  }
}

/**
 * Vector loads for the lanes of unrolled row loops (see Emitter.vec4): an f32 buffer of `bufs`
 * read at base + v, v the loop variable and `aligned(base)` (a multiple of 4 wherever the vector
 * path runs), is read four lanes at a time.
 */
export interface RowVec4 {
  readonly bufs: ReadonlySet<string>;
  readonly aligned: (base: LExpr) => boolean;
  /**
   * `aligned` holds on every path of the kernel (a known multiple of 4, not one that only the
   * vector path's test makes true): reductions placed above the thread's scope may read vec4s too.
   */
  readonly anywhere?: boolean;
}

/** The lane values of each vectorized load in one unrolled loop body (lane-0 load -> lane names). */
export type LaneLoads = Map<LExpr, string[]>;

const NEG_INF = -Infinity;
/** The largest finite f32 (the online max's start: see emitOnline). */
const F32_MAX = 3.4028234663852886e38;

/**
 * Cooperative reductions: a reduction placed in `scope` is split across the `wg` invocations of a
 * workgroup (strided loop) and combined through workgroup memory in a barrier-separated tree.
 */
export interface Cooperative {
  readonly scope: Scope;
  readonly wg: number; // a power of two
  readonly shared: KShared[];
  /** The workgroup is one subgroup: combine with subgroup operations instead of a memory tree. */
  readonly subgroup?: boolean;
}

type Combine = (a: readonly KExpr[], b: readonly KExpr[]) => { stmts: KStmt[]; out: KExpr[] };

export class Emitter {
  private counter = 0;
  coop: Cooperative | undefined;
  /** Lanes of an unrolled sum/max/min/online reduction outside a cooperative scope (ScheduleParams.ur). */
  unroll = 1;
  /** Set while a row schedule builds its vector path: unrolled lanes (a multiple of 4) load vec4s. */
  vec4: RowVec4 | undefined;
  private uses = new Map<LExpr, number>();
  /** Reduction variables get short names in emission order, so output does not depend on node ids. */
  private names = new Map<string, string>();

  private varName(v: string): string {
    return this.names.get(v) ?? v;
  }

  /** sum(exp(X - max(X))) pairs computed in one pass (online softmax): sum -> its max. */
  private online = new Map<LExpr, Extract<LExpr, { k: 'red' }>>();

  /** Counts how often each subexpression is referenced, to inline single-use ones; finds online pairs. */
  countUses(roots: readonly LExpr[]): void {
    const visit = (e: LExpr) => {
      const n = (this.uses.get(e) ?? 0) + 1;
      this.uses.set(e, n);
      if (n > 1) return;
      if (e.k === 'red') this.findOnline(e);
      for (const c of children(e)) visit(c);
    };
    roots.forEach(visit);
  }

  /** Is `s` = sum over v of exp(X(v) - max over v' of X(v'))? Then both come from one loop. */
  private findOnline(s: Extract<LExpr, { k: 'red' }>): void {
    if (s.fn !== 'sum' || s.t !== 'f32' || s.body.k !== 'un' || s.body.op !== 'exp') return;
    const d = s.body.a;
    if (d.k !== 'bin' || d.op !== 'sub' || d.b.k !== 'red' || d.b.fn !== 'max' || d.b.extent !== s.extent) return;
    const m = d.b;
    if (substVar(m.body, m.v, variable(s.v)) !== d.a) return;
    this.online.set(s, m);
    this.online.set(m, s);
  }

  fresh(prefix: string): string {
    return `${prefix}${this.counter++}`;
  }

  private target(e: LExpr, chain: readonly Scope[]): number {
    for (let i = chain.length - 1; i > 0; i--) {
      for (const v of e.free) if (chain[i]!.vars.has(v)) return i;
    }
    for (const v of e.free) if (!chain[0]!.vars.has(v)) fail('E_INTERNAL', `variable '${v}' is used outside its loop`);
    return 0;
  }

  /** Emits `e` for use in the innermost scope of `chain`; returns the kernel expression to use. */
  emit(e: LExpr, chain: readonly Scope[]): KExpr {
    switch (e.k) {
      case 'lit': return { k: 'lit', t: e.t, v: e.v };
      case 'var': return { k: 'var', t: e.t, name: this.varName(e.name) };
      case 'uniform': return { k: 'uniform', name: e.name };
      case 'tid': return { k: 'tid' };
      case 'lid': return { k: 'lid' };
      case 'wid': return { k: 'wid' };
    }
    const at = this.target(e, chain);
    const scope = chain[at]!;
    const hit = scope.cache.get(e);
    if (hit) return hit;
    const here = chain.slice(0, at + 1);
    if (e.k === 'red' && this.online.has(e)) {
      const other = this.online.get(e)!;
      const [sum, mx] = e.fn === 'sum' ? [e, other] : [other, e];
      this.emitOnline(sum, mx, chain.slice(0, Math.max(at, this.target(other, chain)) + 1));
      return scope.cache.get(e) ?? chain[Math.max(at, this.target(other, chain))]!.cache.get(e)!;
    }
    if (e.k === 'red') return this.emitReduction(e, here);
    const value = this.build(e, here);
    const single = (this.uses.get(e) ?? 0) <= 1 && at === chain.length - 1;
    if (single) return value;
    const name = this.fresh('v');
    scope.stmts.push({ k: 'let', name, t: e.t, init: value, mut: false });
    const ref: KExpr = { k: 'var', t: e.t, name };
    scope.cache.set(e, ref);
    return ref;
  }

  private build(e: LExpr, chain: readonly Scope[]): KExpr {
    switch (e.k) {
      case 'load': return { k: 'load', t: e.t, buf: e.buf, index: this.emit(e.index, chain) };
      case 'un': return { k: 'un', t: e.t, op: e.op, a: this.emit(e.a, chain) };
      case 'bin': return { k: 'bin', t: e.t, op: e.op, a: this.emit(e.a, chain), b: this.emit(e.b, chain) };
      case 'select': return { k: 'select', t: e.t, c: this.emit(e.c, chain), a: this.emit(e.a, chain), b: this.emit(e.b, chain) };
      case 'cast': return { k: 'cast', t: e.t, a: this.emit(e.a, chain) };
      default: return fail('E_INTERNAL', `unexpected ${e.k}`);
    }
  }

  /**
   * One loop for a row max and the sum of exponentials against it (online softmax):
   *   m' = max(m, x); s = s * exp(m - m') + exp(x - m'); m = m'
   * computed with one exponential per element (one of the two is exp(0)): e = exp(-|x - m|) scales
   * the old sum when x raises the max and is the new term otherwise. Unrolled, each lane keeps its
   * own (m, s) pair; the pairs merge after the loop.
   *
   * Special values cost nothing per element but the NaN test that lets a NaN take the max:
   * - m starts at -FLT_MAX, not -inf, so a -inf element (a mask) adds exp(-inf) = 0 and never
   *   makes -inf - -inf; the merged max is -inf again where the sum is 0 (every element -inf).
   * - the exponential may give anything for a NaN argument (SwiftShader's gives inf): that happens
   *   only once the max is NaN or +inf, and then the sum is NaN anyway (as the reference's is:
   *   exp(inf - inf) = NaN), which the fix after the merge says.
   */
  private emitOnline(sum: Extract<LExpr, { k: 'red' }>, mx: Extract<LExpr, { k: 'red' }>, chain: readonly Scope[]): void {
    const scope = chain[chain.length - 1]!;
    const X = (sum.body as Extract<LExpr, { k: 'un' }>).a.k === 'bin' ? ((sum.body as Extract<LExpr, { k: 'un' }>).a as Extract<LExpr, { k: 'bin' }>).a : sum.body;
    const f = fvar;
    const lit = flit;
    const bin = (op: 'add' | 'mul' | 'sub' | 'gt' | 'eq' | 'or' | 'and', a: KExpr, b: KExpr): KExpr => ({ k: 'bin', t: op === 'add' || op === 'mul' || op === 'sub' ? 'f32' : 'bool', op, a, b });
    const sel = (c: KExpr, a: KExpr, b: KExpr): KExpr => ({ k: 'select', t: 'f32', c, a, b });
    const isnan = (a: KExpr): KExpr => ({ k: 'un', t: 'bool', op: 'isnan', a });
    const lanes: [string, string][] = [];
    this.reductionLoops(sum.v, sum.extent, chain, !nestsReduction(sum.body, sum.v), (q, at) => {
      const x = at(X);
      if (!lanes[q]) {
        lanes[q] = [this.fresh('acc'), this.fresh('acc')];
        scope.stmts.push({ k: 'let', name: lanes[q][0], t: 'f32', init: lit(-F32_MAX), mut: true });
        scope.stmts.push({ k: 'let', name: lanes[q][1], t: 'f32', init: lit(0), mut: true });
      }
      const [m, s] = lanes[q];
      const [xv, d, e, up] = [this.fresh('x'), this.fresh('d'), this.fresh('e'), this.fresh('up')];
      const upv: KExpr = { k: 'var', t: 'bool', name: up };
      return [
        { k: 'let', name: xv, t: 'f32', init: x, mut: false },
        { k: 'let', name: d, t: 'f32', init: fsub(f(xv), f(m)), mut: false },
        { k: 'let', name: e, t: 'f32', init: { k: 'un', t: 'f32', op: 'expn', a: { k: 'un', t: 'f32', op: 'neg', a: { k: 'un', t: 'f32', op: 'abs', a: f(d) } } }, mut: false },
        // a NaN takes the max (the row's max is NaN then, as the reference's is); a select, not ||,
        // which WGSL short-circuits (a branch per element: 6% of softmax on SwiftShader)
        { k: 'let', name: up, t: 'bool', init: { k: 'select', t: 'bool', c: isnan(f(xv)), a: { k: 'lit', t: 'bool', v: 1 }, b: bin('gt', f(d), lit(0)) }, mut: false },
        { k: 'set', name: s, value: sel(upv, bin('add', bin('mul', f(s), f(e)), lit(1)), bin('add', f(s), f(e))) },
        { k: 'set', name: m, value: sel(upv, f(xv), f(m)) },
      ];
    });
    const [m, s] = lanes[0]!;
    const coop = this.coop?.scope === scope ? this.coop : undefined;
    let rm: KExpr;
    let rs: KExpr;
    if (coop?.subgroup) {
      // the row max across the subgroup, then each lane's sum rescaled to it and added
      const [vm, vs] = [this.fresh('v'), this.fresh('v')];
      scope.stmts.push({ k: 'let', name: vm, t: 'f32', init: { k: 'subgroup', t: 'f32', op: 'max', a: f(m) }, mut: false });
      const mine: KExpr = { k: 'bin', t: 'f32', op: 'mul', a: f(s), b: weight(f(m), f(vm)) };
      scope.stmts.push({ k: 'let', name: vs, t: 'f32', init: { k: 'subgroup', t: 'f32', op: 'add', a: mine }, mut: false });
      [rm, rs] = [f(vm), f(vs)];
    } else {
      [rm, rs] = coop
        ? (this.combineAcross(coop, scope, [f(m), f(s)], ['f32', 'f32'], this.mergeOnline) as [KExpr, KExpr])
        : (this.combineLanes(scope, lanes.map(([lm, ls]) => [f(lm), f(ls)]), ['f32', 'f32'], this.mergeOnline) as [KExpr, KExpr]);
    }
    // The row's max and sum as the reference has them: a NaN or +inf max makes the sum NaN; a sum of
    // 0 over a non-empty row means every element was -inf: the max is -inf and the sum NaN
    // (exp(-inf - -inf)); over an empty row the max is -inf and the sum 0.
    const [fm, fs] = [this.fresh('m'), this.fresh('s')];
    const allNegInf = bin('eq', rs, lit(0));
    const nonEmpty: KExpr = { k: 'bin', t: 'bool', op: 'gt', a: this.emit(sum.extent, chain), b: { k: 'lit', t: 'i32', v: 0 } };
    scope.stmts.push({ k: 'let', name: fm, t: 'f32', init: sel(allNegInf, lit(-Infinity), rm), mut: false });
    scope.stmts.push({ k: 'let', name: fs, t: 'f32', init: sel(bin('or', bin('or', isnan(rm), bin('eq', rm, lit(Infinity))), bin('and', allNegInf, nonEmpty)), lit(NaN), rs), mut: false });
    scope.cache.set(mx, f(fm));
    scope.cache.set(sum, f(fs));
  }

  /** Merges (m1, s1) and (m2, s2): m = max(m1, m2); s = s1 * exp(m1 - m) + s2 * exp(m2 - m), a -inf max weighing 0. */
  private readonly mergeOnline: Combine = (a, b) => {
    const mm = this.fresh('m');
    const ref = fvar(mm);
    return {
      stmts: [{ k: 'let', name: mm, t: 'f32', init: { k: 'bin', t: 'f32', op: 'max', a: a[0]!, b: b[0]! }, mut: false }],
      out: [ref, { k: 'bin', t: 'f32', op: 'add', a: { k: 'bin', t: 'f32', op: 'mul', a: a[1]!, b: weight(a[0]!, ref) }, b: { k: 'bin', t: 'f32', op: 'mul', a: b[1]!, b: weight(b[0]!, ref) } }],
    };
  };

  /**
   * The loops of a reduction over `v` in [0, extent), placed in chain's last scope; `step(q, at)`
   * gives the statements for element v + q (`at` emits an expression of v at that element). In a
   * cooperative scope the loop strides across the workgroup. Otherwise, with `unrollable` and
   * `unroll` > 1, a main loop runs over whole chunks of `unroll` elements (lanes q = 0..unroll-1,
   * each with its own accumulators, so the chains are independent) and a tail loop runs lane 0 over
   * the extent % unroll elements left.
   */
  private reductionLoops(v: string, extent: LExpr, chain: readonly Scope[], unrollable: boolean, step: (q: number, at: (x: LExpr) => KExpr) => KStmt[]): void {
    const scope = chain[chain.length - 1]!;
    const coop = this.coop?.scope === scope ? this.coop : undefined;
    const u = coop || !unrollable ? 1 : Math.max(1, Math.floor(this.unroll));
    const to = this.emit(extent, chain);
    if (!this.names.has(v)) this.names.set(v, `r${this.names.size}`);
    const vname = this.varName(v);
    const run = (loop: Scope, q: number, quads?: LaneLoads): void => {
      const inner = [...chain, loop];
      const at = (x: LExpr): KExpr => {
        const y = this.lane(x, v, q, quads, u, inner);
        if (y !== x) this.countUses([y]);
        return this.emit(y, inner);
      };
      loop.stmts.push(...step(q, at));
    };
    const zero: KExpr = { k: 'lit', t: 'i32', v: 0 };
    const main = new Scope([v]);
    // whole chunks of a multiple of 4 lanes may read vec4s (not the tail, nor a reduction hoisted
    // out of the thread's scope, which runs on either path, unless alignment holds on both)
    const quads: LaneLoads | undefined = this.vec4 && u % 4 === 0 && (chain.length > 1 || this.vec4.anywhere) ? new Map() : undefined;
    for (let q = 0; q < u; q++) run(main, q, quads);
    if (u === 1) {
      scope.stmts.push({ k: 'for', v: vname, from: coop ? { k: 'lid' } : zero, to, step: coop?.wg ?? 1, body: main.stmts });
      return;
    }
    this.chunkedLoops(vname, extent, u, chain, main.stmts, () => {
      const tail = new Scope(new Set([v]));
      run(tail, 0);
      return tail.stmts;
    });
  }

  /**
   * Lane q of `x` (written with loop variable v, at v + q) for the body of a loop whose innermost
   * scope is chain's last. With `quads` (the body of whole chunks of u lanes, u a multiple of 4,
   * under `vec4`), the loads vec4 covers become lane values of vec4 loads let-bound in that scope
   * once per four lanes (recorded in quads, shared by every lane and expression of the body).
   */
  lane(x: LExpr, v: string, q: number, quads: LaneLoads | undefined, u: number, chain: readonly Scope[]): LExpr {
    const vec = this.vec4;
    let y = x;
    if (vec && quads) {
      const loop = chain[chain.length - 1]!;
      y = rewrite(x, v, (e) => {
        if (e.k !== 'load' || e.t !== 'f32' || !vec.bufs.has(e.buf)) return undefined;
        const base = offsetOf(e.index, v);
        if (base === undefined || !vec.aligned(base)) return undefined;
        let names = quads.get(e);
        if (!names) {
          names = [];
          for (let g = 0; g < u / 4; g++) {
            const p = this.fresh('p');
            const at = add(base, add(variable(v), i32(4 * g)));
            this.countUses([at]);
            loop.stmts.push({ k: 'let', name: p, t: 'vec4f', init: { k: 'load4', t: 'vec4f', buf: e.buf, index: this.emit(at, chain) }, mut: false });
            for (let c = 0; c < 4; c++) {
              const name = this.fresh('x');
              loop.stmts.push({ k: 'let', name, t: 'f32', init: { k: 'comp', t: 'f32', a: { k: 'var', t: 'vec4f', name: p }, i: c as 0 | 1 | 2 | 3 }, mut: false });
              loop.declare(name);
              names.push(name);
            }
          }
          quads.set(e, names);
        }
        return variable(names[q]!, 'f32');
      });
    }
    return q === 0 ? y : substVar(y, v, add(variable(v), i32(q)));
  }

  /**
   * `for (v = 0; v < whole; v += u) main; for (v = whole; v < extent; v++) tail` with whole =
   * extent - extent % u, into chain's last scope; a loop that cannot run is left out. The tail may
   * be built here, after whole is bound.
   */
  chunkedLoops(v: string, extent: LExpr, u: number, chain: readonly Scope[], main: readonly KStmt[], tail: readonly KStmt[] | (() => readonly KStmt[])): void {
    const scope = chain[chain.length - 1]!;
    const to = this.emit(extent, chain);
    const wholeL = mul(div(extent, i32(u)), i32(u));
    const whole = this.emit(wholeL, chain);
    const tailStmts = typeof tail === 'function' ? tail() : tail;
    if (wholeL.k !== 'lit' || wholeL.v > 0) scope.stmts.push({ k: 'for', v, from: { k: 'lit', t: 'i32', v: 0 }, to: whole, step: u, body: main });
    if (wholeL !== extent) scope.stmts.push({ k: 'for', v, from: whole, to, step: 1, body: tailStmts });
  }

  /**
   * Combines the lanes of an unrolled reduction (each a tuple of values of `types`) pairwise in a
   * tree, binding each merged value; returns the combined tuple.
   */
  private combineLanes(scope: Scope, lanes: readonly (readonly KExpr[])[], types: readonly Scalar[], combine: Combine): KExpr[] {
    let level = lanes;
    while (level.length > 1) {
      const next: KExpr[][] = [];
      for (let i = 0; i + 1 < level.length; i += 2) {
        const c = combine(level[i]!, level[i + 1]!);
        scope.stmts.push(...c.stmts);
        next.push(c.out.map((init, j) => {
          if (init.k === 'var') return init;
          const name = this.fresh('v');
          scope.stmts.push({ k: 'let', name, t: types[j]!, init, mut: false });
          return { k: 'var', t: types[j]!, name };
        }));
      }
      if (level.length % 2) next.push([...level[level.length - 1]!]);
      level = next;
    }
    return [...level[0]!];
  }

  /**
   * Sums each of `parts` across the invocations of the cooperative workgroup, by subgroup operations
   * or one tree in workgroup memory for all of them; every invocation sees the sums.
   */
  combineSums(coop: Cooperative, scope: Scope, parts: readonly KExpr[], t: Scalar): KExpr[] {
    if (coop.subgroup) {
      return parts.map((a) => {
        const name = this.fresh('v');
        scope.stmts.push({ k: 'let', name, t, init: { k: 'subgroup', t, op: 'add', a }, mut: false });
        return { k: 'var', t, name };
      });
    }
    return this.combineAcross(coop, scope, parts, parts.map(() => t), (a, b) => ({ stmts: [], out: a.map((x, i): KExpr => ({ k: 'bin', t, op: 'add', a: x, b: b[i]! })) }));
  }

  /**
   * Combines per-invocation partial values across the workgroup: each goes to workgroup memory,
   * then log2(wg) barrier-separated steps halve the live lanes; every invocation reads the result.
   */
  private combineAcross(coop: Cooperative, scope: Scope, parts: readonly KExpr[], types: readonly Scalar[], combine: Combine): KExpr[] {
    const lid: KExpr = { k: 'lid' };
    const i32 = (v: number): KExpr => ({ k: 'lit', t: 'i32', v });
    const arrs = types.map((t) => {
      const name = this.fresh('red');
      coop.shared.push({ name, t, size: coop.wg });
      return name;
    });
    arrs.forEach((arr, i) => scope.stmts.push({ k: 'sstore', arr, index: lid, value: parts[i]! }));
    scope.stmts.push({ k: 'barrier' });
    for (let s = coop.wg >> 1; s >= 1; s >>= 1) {
      const other: KExpr = { k: 'bin', t: 'i32', op: 'add', a: lid, b: i32(s) };
      const mine = arrs.map((arr, i): KExpr => ({ k: 'sload', t: types[i]!, arr, index: lid }));
      const theirs = arrs.map((arr, i): KExpr => ({ k: 'sload', t: types[i]!, arr, index: other }));
      const c = combine(mine, theirs);
      const tmp = arrs.map(() => this.fresh('t'));
      const body: KStmt[] = [...c.stmts, ...c.out.map((v, i): KStmt => ({ k: 'let', name: tmp[i]!, t: types[i]!, init: v, mut: false }))];
      arrs.forEach((arr, i) => body.push({ k: 'sstore', arr, index: lid, value: { k: 'var', t: types[i]!, name: tmp[i]! } }));
      scope.stmts.push({ k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: lid, b: i32(s) }, then: body, else: [] });
      scope.stmts.push({ k: 'barrier' });
    }
    return arrs.map((arr, i) => {
      const name = this.fresh('v');
      scope.stmts.push({ k: 'let', name, t: types[i]!, init: { k: 'sload', t: types[i]!, arr, index: i32(0) }, mut: false });
      return { k: 'var', t: types[i]!, name };
    });
  }

  /** The workgroup-wide value of a reduction from each invocation's partial accumulator(s). */
  private combineReduction(coop: Cooperative, scope: Scope, fn: string, bt: Scalar, acc: KExpr, result: KExpr): KExpr {
    const bin = (op: 'add' | 'max' | 'min', a: KExpr, b: KExpr): KExpr => ({ k: 'bin', t: bt, op, a, b });
    if ((fn === 'sum' || fn === 'max' || fn === 'min') && coop.subgroup) {
      const name = this.fresh('v');
      scope.stmts.push({ k: 'let', name, t: bt, init: { k: 'subgroup', t: bt, op: fn === 'sum' ? 'add' : fn, a: acc }, mut: false });
      return { k: 'var', t: bt, name };
    }
    if (fn === 'sum' || fn === 'max' || fn === 'min') {
      const op = fn === 'sum' ? 'add' : fn;
      return this.combineAcross(coop, scope, [acc], [bt], (a, b) => ({ stmts: [], out: [bin(op, a[0]!, b[0]!)] }))[0]!;
    }
    // argmax/argmin: (value, index) pairs; the better value wins, a NaN beats a number, ties keep the first index
    const argmax = fn === 'argmax';
    const [, idx] = this.combineAcross(coop, scope, [acc, result], [bt, 'i32'], (a, b) => {
      const nan = (x: KExpr): KExpr => ({ k: 'un', t: 'bool', op: 'isnan', a: x });
      const and = (x: KExpr, y: KExpr): KExpr => ({ k: 'bin', t: 'bool', op: 'and', a: x, b: y });
      const or = (x: KExpr, y: KExpr): KExpr => ({ k: 'bin', t: 'bool', op: 'or', a: x, b: y });
      const not = (x: KExpr): KExpr => ({ k: 'un', t: 'bool', op: 'not', a: x });
      let better: KExpr = { k: 'bin', t: 'bool', op: argmax ? 'gt' : 'lt', a: b[0]!, b: a[0]! };
      let same: KExpr = { k: 'bin', t: 'bool', op: 'eq', a: b[0]!, b: a[0]! };
      if (bt === 'f32') {
        better = or(better, and(nan(b[0]!), not(nan(a[0]!))));
        same = or(same, and(nan(b[0]!), nan(a[0]!)));
      }
      const take = this.fresh('take');
      const useB = or(better, and(same, { k: 'bin', t: 'bool', op: 'lt', a: b[1]!, b: a[1]! }));
      const tk: KExpr = { k: 'var', t: 'bool', name: take };
      return {
        stmts: [{ k: 'let', name: take, t: 'bool', init: useB, mut: false }],
        out: [{ k: 'select', t: bt, c: tk, a: b[0]!, b: a[0]! }, { k: 'select', t: 'i32', c: tk, a: b[1]!, b: a[1]! }],
      };
    });
    return idx!;
  }

  /**
   * acc = init; for (v = 0; v < extent; v++) acc = combine(acc, body) — placed in chain's last scope.
   * sum, max and min unroll into independent lane accumulators (see reductionLoops), combined after.
   */
  private emitReduction(e: Extract<LExpr, { k: 'red' }>, chain: readonly Scope[]): KExpr {
    const scope = chain[chain.length - 1]!;
    const bt: Scalar = e.body.t;
    const ref = (name: string): KExpr => ({ k: 'var', t: bt, name });
    const init = (v: number): KExpr => ({ k: 'lit', t: bt, v: bt === 'f32' ? v : v === NEG_INF ? (bt === 'u32' ? 0 : -2147483648) : bt === 'u32' ? 4294967295 : 2147483647 });
    const coop = this.coop?.scope === scope ? this.coop : undefined;
    let result: KExpr;
    if (e.fn === 'argmax' || e.fn === 'argmin') {
      const fn = e.fn;
      let acc = '';
      let idx = '';
      this.reductionLoops(e.v, e.extent, chain, false, (_q, at) => {
        const body = at(e.body);
        acc = this.fresh('acc');
        idx = this.fresh('arg');
        scope.stmts.push({ k: 'let', name: acc, t: bt, init: init(fn === 'argmax' ? NEG_INF : Infinity), mut: true });
        scope.stmts.push({ k: 'let', name: idx, t: 'i32', init: { k: 'lit', t: 'i32', v: 0 }, mut: true });
        const x = this.fresh('x');
        const xr = ref(x);
        let better: KExpr = { k: 'bin', t: 'bool', op: fn === 'argmax' ? 'gt' : 'lt', a: xr, b: ref(acc) };
        if (bt === 'f32') {
          // A NaN wins over any number (the first NaN is kept): numpy's argmax/argmin semantics.
          const nanFirst: KExpr = { k: 'bin', t: 'bool', op: 'and', a: { k: 'un', t: 'bool', op: 'isnan', a: xr }, b: { k: 'un', t: 'bool', op: 'not', a: { k: 'un', t: 'bool', op: 'isnan', a: ref(acc) } } };
          better = { k: 'bin', t: 'bool', op: 'or', a: better, b: nanFirst };
        }
        const v: KExpr = { k: 'var', t: 'i32', name: this.varName(e.v) };
        return [
          { k: 'let', name: x, t: bt, init: body, mut: false },
          { k: 'if', cond: better, then: [{ k: 'set', name: acc, value: xr }, { k: 'set', name: idx, value: v }], else: [] },
        ];
      });
      result = { k: 'var', t: 'i32', name: idx };
      if (coop) result = this.combineReduction(coop, scope, e.fn, bt, ref(acc), result);
    } else {
      const op = e.fn === 'sum' ? 'add' : e.fn;
      const start: KExpr = e.fn === 'sum' ? { k: 'lit', t: bt, v: 0 } : init(e.fn === 'max' ? NEG_INF : Infinity);
      const accs: string[] = [];
      this.reductionLoops(e.v, e.extent, chain, !nestsReduction(e.body, e.v), (q, at) => {
        const body = at(e.body);
        if (accs[q] === undefined) {
          accs[q] = this.fresh('acc');
          scope.stmts.push({ k: 'let', name: accs[q], t: bt, init: start, mut: true });
        }
        return [{ k: 'set', name: accs[q], value: { k: 'bin', t: bt, op, a: ref(accs[q]), b: body } }];
      });
      result = coop
        ? this.combineReduction(coop, scope, e.fn, bt, ref(accs[0]!), ref(accs[0]!))
        : this.combineLanes(scope, accs.map((a) => [ref(a)]), [bt], (a, b) => ({ stmts: [], out: [{ k: 'bin', t: bt, op, a: a[0]!, b: b[0]! }] }))[0]!;
    }
    scope.cache.set(e, result);
    return result;
  }
}
