/** Index simplification in lowering expressions: rewrites hold for every value they may see. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as L from '../src/passes/lexpr.js';
import type { LExpr } from '../src/passes/lexpr.js';

/** Evaluates the integer subset (C truncating division and modulo) with variables bound. */
function evalI(e: LExpr, env: Record<string, number>): number {
  switch (e.k) {
    case 'lit': return e.v;
    case 'var': return env[e.name]!;
    case 'bin': {
      const a = evalI(e.a, env);
      const b = evalI(e.b, env);
      switch (e.op) {
        case 'add': return a + b;
        case 'mul': return a * b;
        case 'div': return Math.trunc(a / b);
        case 'mod': return a % b;
        default: throw new Error(e.op);
      }
    }
    default: throw new Error(e.k);
  }
}

describe('div/mod of affine indices', () => {
  const kk = L.variable('kk_test', 'i32', true);
  const free = L.variable('x_test'); // sign unknown

  it('shares packed words across an unrolled loop: (kk*8+u)/8 = kk, %8 = u, /32 = kk/4', () => {
    for (let u = 0; u < 8; u++) {
      const k = L.add(L.mul(kk, L.i32(8)), L.i32(u));
      expect(L.div(k, L.i32(8))).toBe(kk);
      expect(L.mod(k, L.i32(8))).toBe(L.i32(u));
      expect(L.div(k, L.i32(32))).toBe(L.div(kk, L.i32(4)));
    }
  });

  it('equals truncating arithmetic for every non-negative value', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.integer({ min: 1, max: 64 }), fc.nat(70), fc.integer({ min: 1, max: 64 }), (v, c1, c2, d) => {
        const e = L.add(L.mul(kk, L.i32(c1)), L.i32(c2));
        const want = (op: 'div' | 'mod') => (op === 'div' ? Math.trunc((v * c1 + c2) / d) : (v * c1 + c2) % d);
        expect(evalI(L.div(e, L.i32(d)), { kk_test: v })).toBe(want('div'));
        expect(evalI(L.mod(e, L.i32(d)), { kk_test: v })).toBe(want('mod'));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves expressions alone when the variable may be negative', () => {
    const e = L.add(L.mul(free, L.i32(8)), L.i32(3));
    const q = L.div(e, L.i32(8));
    expect(q.k === 'bin' && q.op === 'div').toBe(true);
    expect(evalI(q, { x_test: -1 })).toBe(Math.trunc(-5 / 8)); // 0, where the rewrite would give -1
  });
});

describe('clamps that cannot bind', () => {
  const x = L.variable('x_clamp'); // sign unknown
  const masked = L.bin('band', x, L.i32(255));

  it('drops min(x & 255, 255) and max(x & 255, 0), keeps the others', () => {
    expect(L.min(masked, L.i32(255))).toBe(masked);
    expect(L.min(masked, L.i32(300))).toBe(masked);
    expect(L.max(masked, L.i32(0))).toBe(masked);
    expect(L.min(masked, L.i32(254)).k).toBe('bin');
    expect(L.max(x, L.i32(0)).k).toBe('bin');
    expect(L.min(x, L.i32(1000)).k).toBe('bin');
  });

  it('knows remainders and unsigned masks cast to i32', () => {
    const kk = L.variable('kk_test', 'i32', true);
    const r = L.mod(L.add(kk, L.i32(3)), L.i32(7));
    expect(L.upperBound(r)).toBe(6);
    expect(L.min(r, L.i32(6))).toBe(r);
    const u = L.cast('i32', L.bin('band', L.variable('u_clamp', 'u32'), L.lit('u32', 15)));
    expect(L.nonNegative(u)).toBe(true);
    expect(L.max(L.min(u, L.i32(15)), L.i32(0))).toBe(u);
  });
});

describe('bounded loop counters', () => {
  it('(kg*16 + kq)/16 = kg and %16 = kq when 0 <= kq < 16, not when the bound is larger', () => {
    const kg = L.variable('kg_test', 'i32', true);
    const kq = L.variable('kq16_test', 'i32', true, 16);
    const kq32 = L.variable('kq32_test', 'i32', true, 32);
    const e = L.add(L.mul(kg, L.i32(16)), kq);
    expect(L.div(e, L.i32(16))).toBe(kg);
    expect(L.mod(e, L.i32(16))).toBe(kq);
    // k = (kg*16 + kq) * 8 + u: its group of 128 is kg
    expect(L.div(L.add(L.mul(e, L.i32(8)), L.i32(5)), L.i32(128))).toBe(kg);
    const wide = L.div(L.add(L.mul(kg, L.i32(16)), kq32), L.i32(16));
    expect(wide.k === 'bin' && wide.op === 'div').toBe(true);
    expect(() => L.variable('kq16_test', 'i32', true, 8)).toThrow(/bounds/);
  });
});

describe('dims assumed to be multiples (CompileOptions.assume)', () => {
  it('fold % d to 0 where d divides what is known, and only there', () => {
    const n16 = L.uniform('N', 16);
    const n = L.uniform('N');
    expect(n16).not.toBe(n); // the assumption is part of the node
    expect(L.knownMultiple(n16)).toBe(16);
    expect(L.mod(n16, L.i32(4))).toBe(L.i32(0));
    expect(L.mod(n16, L.i32(16))).toBe(L.i32(0));
    expect(L.mod(n16, L.i32(32)).k).toBe('bin');
    expect(L.mod(n, L.i32(4)).k).toBe('bin');
    // sums and products of known multiples: 3 N16 + 8 is a multiple of 8, N16 * K4 of 64
    expect(L.mod(L.add(L.mul(n16, L.i32(3)), L.i32(8)), L.i32(8))).toBe(L.i32(0));
    expect(L.knownMultiple(L.mul(n16, L.uniform('K', 4)))).toBe(64);
    expect(L.mod(L.add(n16, L.i32(2)), L.i32(4)).k).toBe('bin');
  });
});

describe('interning and the facts about loop counters', () => {
  it('gives structurally equal expressions one object and different ones different ids, at any depth', () => {
    const v = L.variable('deep_test');
    const chain = () => {
      let e: LExpr = v;
      for (let i = 0; i < 200; i++) e = L.add(L.mul(e, L.uniform('N_test')), L.i32(i + 1));
      return e;
    };
    const a = chain();
    expect(chain()).toBe(a);
    expect(L.add(a, L.i32(1)).id).not.toBe(L.add(a, L.i32(2)).id);
    expect(L.select(L.lt(v, L.i32(3)), a, v)).toBe(L.select(L.lt(v, L.i32(3)), a, v));
    expect(L.uniform('N_test', 4)).not.toBe(L.uniform('N_test'));
  });

  it('learns a counter bound registered after the counter was first asked about', () => {
    // the counter is named (and queried) before the loop that bounds it registers it
    const q = L.variable('late_bound_test');
    const idx = L.add(L.mul(L.tid(), L.i32(8)), q);
    expect(L.nonNegative(idx)).toBe(false);
    expect(L.upperBound(q)).toBe(Infinity);
    expect(L.variable('late_bound_test', 'i32', true, 8)).toBe(q);
    expect(L.nonNegative(idx)).toBe(true);
    expect(L.upperBound(q)).toBe(7);
    // so (tid * 8 + q) / 8 folds to tid
    expect(L.div(idx, L.i32(8))).toBe(L.tid());
  });
});
