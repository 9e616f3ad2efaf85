/**
 * Lowering expressions -> kernel IR statements. Each expression is placed in the innermost scope
 * that defines one of its free variables (so loop-invariant work is hoisted out of loops), shared
 * subexpressions are bound once with `let`, and each `red` becomes an accumulator and a loop.
 */
import { fail } from '../errors.js';
import type { KExpr, KStmt, Scalar } from '../ir/kernel.js';
import { children, type LExpr } from './lexpr.js';

export class Scope {
  readonly stmts: KStmt[] = [];
  readonly cache = new Map<LExpr, KExpr>();
  constructor(readonly vars: ReadonlySet<string>) {}
}

const NEG_INF = -Infinity;

export class Emitter {
  private counter = 0;
  private uses = new Map<LExpr, number>();
  /** Reduction variables get short names in emission order, so output does not depend on node ids. */
  private names = new Map<string, string>();

  private varName(v: string): string {
    return this.names.get(v) ?? v;
  }

  /** Counts how often each subexpression is referenced, to inline single-use ones. */
  countUses(roots: readonly LExpr[]): void {
    const visit = (e: LExpr) => {
      const n = (this.uses.get(e) ?? 0) + 1;
      this.uses.set(e, n);
      if (n === 1) for (const c of children(e)) visit(c);
    };
    roots.forEach(visit);
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
    }
    const at = this.target(e, chain);
    const scope = chain[at]!;
    const hit = scope.cache.get(e);
    if (hit) return hit;
    const here = chain.slice(0, at + 1);
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
    const r = (x: LExpr) => this.emit(x, chain);
    switch (e.k) {
      case 'load': return { k: 'load', t: e.t, buf: e.buf, index: r(e.index) };
      case 'un': return { k: 'un', t: e.t, op: e.op, a: r(e.a) };
      case 'bin': return { k: 'bin', t: e.t, op: e.op, a: r(e.a), b: r(e.b) };
      case 'select': return { k: 'select', t: e.t, c: r(e.c), a: r(e.a), b: r(e.b) };
      case 'cast': return { k: 'cast', t: e.t, a: r(e.a) };
      default: return fail('E_INTERNAL', `unexpected ${e.k}`);
    }
  }

  /** acc = init; for (v = 0; v < extent; v++) acc = combine(acc, body) — placed in chain's last scope. */
  private emitReduction(e: Extract<LExpr, { k: 'red' }>, chain: readonly Scope[]): KExpr {
    const scope = chain[chain.length - 1]!;
    const extent = this.emit(e.extent, chain);
    if (!this.names.has(e.v)) this.names.set(e.v, `r${this.names.size}`);
    const vname = this.varName(e.v);
    const loop = new Scope(new Set([e.v]));
    const inner = [...chain, loop];
    const body = this.emit(e.body, inner);
    const acc = this.fresh('acc');
    const bt: Scalar = e.body.t;
    const accRef: KExpr = { k: 'var', t: bt, name: acc };
    const init = (v: number): KExpr => ({ k: 'lit', t: bt, v: bt === 'f32' ? v : v === NEG_INF ? (bt === 'u32' ? 0 : -2147483648) : bt === 'u32' ? 4294967295 : 2147483647 });
    let result: KExpr = accRef;
    const v: KExpr = { k: 'var', t: 'i32', name: vname };
    switch (e.fn) {
      case 'sum':
        scope.stmts.push({ k: 'let', name: acc, t: bt, init: { k: 'lit', t: bt, v: 0 }, mut: true });
        loop.stmts.push({ k: 'set', name: acc, value: { k: 'bin', t: bt, op: 'add', a: accRef, b: body } });
        break;
      case 'max':
      case 'min':
        scope.stmts.push({ k: 'let', name: acc, t: bt, init: init(e.fn === 'max' ? NEG_INF : Infinity), mut: true });
        loop.stmts.push({ k: 'set', name: acc, value: { k: 'bin', t: bt, op: e.fn, a: accRef, b: body } });
        break;
      case 'argmax':
      case 'argmin': {
        const idx = this.fresh('arg');
        scope.stmts.push({ k: 'let', name: acc, t: bt, init: init(e.fn === 'argmax' ? NEG_INF : Infinity), mut: true });
        scope.stmts.push({ k: 'let', name: idx, t: 'i32', init: { k: 'lit', t: 'i32', v: 0 }, mut: true });
        const x = this.fresh('x');
        loop.stmts.push({ k: 'let', name: x, t: bt, init: body, mut: false });
        const xr: KExpr = { k: 'var', t: bt, name: x };
        let better: KExpr = { k: 'bin', t: 'bool', op: e.fn === 'argmax' ? 'gt' : 'lt', a: xr, b: accRef };
        if (bt === 'f32') {
          // A NaN wins over any number (the first NaN is kept): numpy's argmax/argmin semantics.
          const nanFirst: KExpr = { k: 'bin', t: 'bool', op: 'and', a: { k: 'un', t: 'bool', op: 'isnan', a: xr }, b: { k: 'un', t: 'bool', op: 'not', a: { k: 'un', t: 'bool', op: 'isnan', a: accRef } } };
          better = { k: 'bin', t: 'bool', op: 'or', a: better, b: nanFirst };
        }
        loop.stmts.push({ k: 'if', cond: better, then: [{ k: 'set', name: acc, value: xr }, { k: 'set', name: idx, value: v }], else: [] });
        result = { k: 'var', t: 'i32', name: idx };
        break;
      }
    }
    scope.stmts.push({ k: 'for', v: vname, from: { k: 'lit', t: 'i32', v: 0 }, to: extent, step: 1, body: loop.stmts });
    scope.cache.set(e, result);
    return result;
  }
}
