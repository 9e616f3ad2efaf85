import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { intern, type Attrs, type Node, type Program } from '../src/ir/graph.js';
import { sym, type Shape } from '../src/ir/dims.js';
import type { DType } from '../src/ir/dtype.js';
import type { IExpr } from '../src/ir/index-expr.js';
import type { OpName } from '../src/ir/ops.js';
import { isTesseraError } from '../src/errors.js';
import {
  erf, evalNode, evalProgram, refBinary, refCast, refCompute, refConcat, refExpand, refFromHost, refGather,
  refMatmul, refMismatch, refPad, refPermute, refReduce, refReshape, refSlice, refTensor, refToHost, refUnary,
  refWhere, roundTo, type RefTensor,
} from '../src/ref/index.js';

const f32 = (shape: number[], v: number[]) => refTensor('f32', shape, v);
const i32 = (shape: number[], v: number[]) => refTensor('i32', shape, v);
const vals = (t: RefTensor) => [...t.data];

function expectClose(t: RefTensor, expected: number[], tol = 1e-12) {
  expect(t.data.length).toBe(expected.length);
  expected.forEach((e, i) => {
    const a = t.data[i]!;
    if (Number.isNaN(e)) expect(a).toBeNaN();
    else if (!Number.isFinite(e)) expect(a).toBe(e);
    else expect(Math.abs(a - e)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(e)));
  });
}

function expectCode(f: () => unknown, code: string) {
  try {
    f();
  } catch (e) {
    expect(isTesseraError(e) ? e.code : String(e)).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

const input = (name: string, dtype: DType, shape: Shape) => intern('input', [], dtype, shape, { name });
const node = (op: OpName, args: Node[], dtype: DType, shape: Shape, attrs: Attrs = {}) => intern(op, args, dtype, shape, attrs);
function program(inputs: Node[], outputs: Record<string, Node>): Program {
  return {
    name: 'p',
    inputs: inputs.map((n) => ({ name: n.attrs['name'] as string, dtype: n.dtype, shape: n.shape })),
    outputs: Object.entries(outputs).map(([name, n]) => ({ name, node: n })),
  };
}

describe('roundTo and host conversion', () => {
  it('rounds f16 to nearest even with overflow', () => {
    expect(roundTo('f16', 1 / 3)).toBe(0.333251953125);
    expect(roundTo('f16', 65504)).toBe(65504);
    expect(roundTo('f16', 65519.99)).toBe(65504);
    expect(roundTo('f16', 65520)).toBe(Infinity);
    expect(roundTo('f16', -1e6)).toBe(-Infinity);
    expect(roundTo('f16', 1 + 2 ** -11)).toBe(1); // tie -> even
    expect(roundTo('f16', 1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundTo('f16', 2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal
    expect(roundTo('f16', 3 * 2 ** -25)).toBe(2 ** -23);
    expect(roundTo('f16', NaN)).toBeNaN();
    expect(Object.is(roundTo('f16', -0), -0)).toBe(true);
  });
  it('wraps integers and makes bools', () => {
    expect(roundTo('i32', 2 ** 31)).toBe(-(2 ** 31));
    expect(roundTo('i32', -3.9)).toBe(-3);
    expect(roundTo('u32', -1)).toBe(2 ** 32 - 1);
    expect(roundTo('bool', NaN)).toBe(1);
    expect(roundTo('bool', 0)).toBe(0);
    expect(roundTo('f32', 0.1)).toBe(Math.fround(0.1));
  });
  it('converts from and to host arrays', () => {
    const t = refFromHost('f16', [2], new Float32Array([1 / 3, 1e5]));
    expect(vals(t)).toEqual([0.333251953125, Infinity]);
    expect(refToHost(refTensor('bool', [2], [0, 5]))).toEqual(new Uint8Array([0, 1]));
    expectCode(() => refTensor('f32', [2, 2], [1, 2, 3]), 'E_BUFFER');
  });
});

describe('unary', () => {
  it('computes every op', () => {
    const x = f32([4], [-2, -0.5, 0, 1.5]);
    const e = [-2, -0.5, 0, 1.5];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const cases: [Parameters<typeof refUnary>[0], (v: number) => number][] = [
      ['neg', (v) => -v], ['abs', Math.abs], ['exp', Math.exp], ['sin', Math.sin], ['cos', Math.cos],
      ['tanh', Math.tanh], ['sigmoid', sig], ['relu', (v) => Math.max(v, 0)], ['silu', (v) => v * sig(v)],
      ['floor', Math.floor], ['ceil', Math.ceil], ['reciprocal', (v) => 1 / v],
      ['gelu_tanh', (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
    ];
    for (const [op, f] of cases) expectClose(refUnary(op, x), e.map(f));
    expectClose(refUnary('log', f32([2], [1, 2])), [0, Math.LN2]);
    expectClose(refUnary('sqrt', f32([2], [4, 2])), [2, Math.SQRT2]);
    expectClose(refUnary('rsqrt', f32([2], [4, 0.25])), [0.5, 2]);
    expect(vals(refUnary('relu', f32([1], [NaN])))[0]).toBeNaN();
    const n = refUnary('not', refTensor('bool', [2], [0, 1]));
    expect(n.dtype).toBe('bool');
    expect(vals(n)).toEqual([1, 0]);
  });
  it('gelu_erf uses an accurate erf', () => {
    expect(Math.abs(erf(0.5) - 0.5204998778130465)).toBeLessThan(1e-15);
    expect(Math.abs(erf(1) - 0.8427007929497149)).toBeLessThan(1e-15);
    expect(Math.abs(erf(2) - 0.9953222650189527)).toBeLessThan(1e-15);
    expect(Math.abs(erf(-3) + 0.9999779095030014)).toBeLessThan(1e-15);
    expect(Math.abs(erf(3.5) - 0.9999992569016276)).toBeLessThan(1e-15);
    expect(Math.abs(erf(2.9999999) - erf(3))).toBeLessThan(1e-10);
    expect(erf(10)).toBe(1);
    expectClose(refUnary('gelu_erf', f32([3], [-1, 0, 2])), [-0.15865525393145707, 0, 1.9544997361036416], 1e-14);
  });
  it('wraps integer neg and abs', () => {
    expect(vals(refUnary('neg', i32([2], [-(2 ** 31), 5])))).toEqual([-(2 ** 31), -5]);
    expect(vals(refUnary('abs', i32([2], [-(2 ** 31), -5])))).toEqual([-(2 ** 31), 5]);
    expect(vals(refUnary('neg', refTensor('u32', [1], [1])))).toEqual([2 ** 32 - 1]);
  });
});

describe('binary, where, cast', () => {
  it('does float arithmetic and NaN-propagating max/min', () => {
    const a = f32([4], [1, -7.5, NaN, 3]);
    const b = f32([4], [2, 2, 1, NaN]);
    expectClose(refBinary('add', a, b), [3, -5.5, NaN, NaN]);
    expectClose(refBinary('div', a, b), [0.5, -3.75, NaN, NaN]);
    expectClose(refBinary('mod', a, b), [1, -1.5, NaN, NaN]);
    expectClose(refBinary('pow', a, b), [1, 56.25, NaN, NaN]);
    expectClose(refBinary('maximum', a, b), [2, 2, NaN, NaN]);
    expectClose(refBinary('minimum', a, b), [1, -7.5, NaN, NaN]);
    expect(vals(refBinary('div', f32([2], [1, -1]), f32([2], [0, 0])))).toEqual([Infinity, -Infinity]);
  });
  it('truncates integer division and remainder', () => {
    const a = i32([5], [7, -7, 7, -7, 5]);
    const b = i32([5], [2, 2, -2, -2, 0]);
    expect(vals(refBinary('div', a, b))).toEqual([3, -3, -3, 3, 0]);
    expect(vals(refBinary('mod', a, b))).toEqual([1, -1, 1, -1, 0]);
    const big = i32([2], [2 ** 31 - 1, 65537]);
    expect(vals(refBinary('add', big, i32([2], [1, 0])))).toEqual([-(2 ** 31), 65537]);
    expect(vals(refBinary('mul', big, i32([2], [3, 65537])))).toEqual([2147483645, Math.imul(65537, 65537)]);
    expect(vals(refBinary('div', i32([1], [-(2 ** 31)]), i32([1], [-1])))).toEqual([-(2 ** 31)]);
  });
  it('compares to bool and combines bools', () => {
    const a = f32([3], [1, 2, NaN]);
    const b = f32([3], [2, 2, NaN]);
    const r = (op: Parameters<typeof refBinary>[0]) => vals(refBinary(op, a, b));
    expect(refBinary('lt', a, b).dtype).toBe('bool');
    expect(r('eq')).toEqual([0, 1, 0]);
    expect(r('ne')).toEqual([1, 0, 1]);
    expect(r('lt')).toEqual([1, 0, 0]);
    expect(r('le')).toEqual([1, 1, 0]);
    expect(r('gt')).toEqual([0, 0, 0]);
    expect(r('ge')).toEqual([0, 1, 0]);
    const p = refTensor('bool', [4], [0, 0, 1, 1]);
    const q = refTensor('bool', [4], [0, 1, 0, 1]);
    expect(vals(refBinary('and', p, q))).toEqual([0, 0, 0, 1]);
    expect(vals(refBinary('or', p, q))).toEqual([0, 1, 1, 1]);
    expectCode(() => refBinary('add', f32([2], [1, 2]), f32([1], [1])), 'E_SHAPE');
  });
  it('selects with where', () => {
    const c = refTensor('bool', [3], [1, 0, 1]);
    expect(vals(refWhere(c, f32([3], [1, 2, 3]), f32([3], [-1, -2, -3])))).toEqual([1, -2, 3]);
  });
  it('casts', () => {
    const x = f32([6], [3.7, -3.7, NaN, 1e10, -1e10, 0.5]);
    expect(vals(refCast(x, 'i32'))).toEqual([3, -3, 0, 2 ** 31 - 1, -(2 ** 31), 0]);
    expect(vals(refCast(x, 'u32'))).toEqual([3, 0, 0, 2 ** 32 - 1, 0, 0]);
    expect(vals(refCast(x, 'bool'))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(vals(refCast(f32([2], [0, -0]), 'bool'))).toEqual([0, 0]);
    expect(vals(refCast(i32([2], [-1, 16777217]), 'u32'))).toEqual([2 ** 32 - 1, 16777217]);
    expect(vals(refCast(i32([1], [16777217]), 'f32'))).toEqual([16777216]); // rounds to the nearest f32, as a device does
    expect(vals(refCast(f32([2], [1 / 3, 70000]), 'f16'))).toEqual([0.333251953125, Infinity]);
    expect(vals(refCast(refTensor('bool', [2], [1, 0]), 'f32'))).toEqual([1, 0]);
  });
});

describe('reductions', () => {
  const x = f32([2, 3], [1, 5, 3, 4, 2, 6]);
  it('sums, means, maxes over axes with keepdims', () => {
    const s = refReduce('sum', x, [1], false);
    expect(s.shape).toEqual([2]);
    expect(vals(s)).toEqual([9, 12]);
    const k = refReduce('sum', x, [0], true);
    expect(k.shape).toEqual([1, 3]);
    expect(vals(k)).toEqual([5, 7, 9]);
    expect(vals(refReduce('sum', x, [1, 0], false))).toEqual([21]);
    expect(vals(refReduce('mean', x, [1], false))).toEqual([3, 4]);
    expect(vals(refReduce('max', x, [0], false))).toEqual([4, 5, 6]);
    expect(vals(refReduce('min', x, [-1], true))).toEqual([1, 2]);
    expect(vals(refReduce('mean', i32([3], [1, 2, 4]), [0], false))).toEqual([2]);
  });
  it('propagates NaN through max and min', () => {
    const y = f32([2, 2], [NaN, 1, 2, 3]);
    expectClose(refReduce('max', y, [1], false), [NaN, 3]);
    expectClose(refReduce('min', y, [0], false), [NaN, 1]);
  });
  it('argmax/argmin: first index on ties, first NaN wins', () => {
    const y = f32([3, 4], [1, 3, 3, 0, 2, NaN, 5, NaN, -1, -1, 4, -1]);
    const am = refReduce('argmax', y, [1], false);
    expect(am.dtype).toBe('i32');
    expect(vals(am)).toEqual([1, 1, 2]);
    expect(vals(refReduce('argmin', y, [1], false))).toEqual([3, 1, 0]);
    const k = refReduce('argmax', y, [0], true);
    expect(k.shape).toEqual([1, 4]);
    expect(vals(k)).toEqual([1, 1, 1, 1]);
    expectCode(() => refReduce('argmax', y, [0, 1], false), 'E_AXIS');
  });
});

describe('movement', () => {
  const x = f32([2, 3], [0, 1, 2, 3, 4, 5]);
  it('reshapes and permutes', () => {
    const r = refReshape(x, [3, 2]);
    expect(r.shape).toEqual([3, 2]);
    expect(vals(r)).toEqual([0, 1, 2, 3, 4, 5]);
    expectCode(() => refReshape(x, [4]), 'E_SHAPE');
    const t = refPermute(x, [1, 0]);
    expect(t.shape).toEqual([3, 2]);
    expect(vals(t)).toEqual([0, 3, 1, 4, 2, 5]);
    // out.shape[j] = in.shape[perm[j]]: [2,3,4] with perm [2,0,1] -> [4,2,3]; out[c,a,b] = in[a,b,c]
    const y = f32([2, 3, 4], Array.from({ length: 24 }, (_, i) => i));
    const p = refPermute(y, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    expect(p.data[3 * 6 + 1 * 3 + 2]).toBe(1 * 12 + 2 * 4 + 3);
    expectCode(() => refPermute(x, [0, 0]), 'E_AXIS');
  });
  it('expands size-1 axes', () => {
    const e = refExpand(f32([2, 1], [7, 8]), [2, 3]);
    expect(vals(e)).toEqual([7, 7, 7, 8, 8, 8]);
    expectCode(() => refExpand(x, [4, 3]), 'E_SHAPE');
  });
  it('slices with positive and negative steps', () => {
    expect(vals(refSlice(x, [0, 1], [1, 1], [2, 2]))).toEqual([1, 2, 4, 5]);
    expect(vals(refSlice(x, [1, 2], [-1, -2], [2, 2]))).toEqual([5, 3, 2, 0]);
    expectCode(() => refSlice(x, [0, 2], [1, 1], [2, 2]), 'E_SHAPE');
  });
  it('pads and concatenates', () => {
    const p = refPad(f32([2], [1, 2]), [1], [2], -1);
    expect(vals(p)).toEqual([-1, 1, 2, -1, -1]);
    const p2 = refPad(x, [0, 1], [1, 0], 9);
    expect(p2.shape).toEqual([3, 4]);
    expect(vals(p2)).toEqual([9, 0, 1, 2, 9, 3, 4, 5, 9, 9, 9, 9]);
    const c = refConcat([x, f32([2, 1], [6, 7])], 1);
    expect(c.shape).toEqual([2, 4]);
    expect(vals(c)).toEqual([0, 1, 2, 6, 3, 4, 5, 7]);
    expect(vals(refConcat([x, x], 0))).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
  });
  it('gathers with clamped indices', () => {
    const rows = refGather(x, i32([3], [1, -5, 9]), 0);
    expect(rows.shape).toEqual([3, 3]);
    expect(vals(rows)).toEqual([3, 4, 5, 0, 1, 2, 3, 4, 5]);
    const cols = refGather(x, i32([2, 2], [2, 0, 0, 7]), 1);
    expect(cols.shape).toEqual([2, 2, 2]);
    expect(vals(cols)).toEqual([2, 0, 0, 2, 5, 3, 3, 5]);
  });
});

describe('matmul', () => {
  it('multiplies batched matrices', () => {
    const a = f32([2, 2, 3], [1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0]);
    const b = f32([2, 3, 1], [1, 1, 1, 7, 8, 9]);
    const c = refMatmul(a, b);
    expect(c.shape).toEqual([2, 2, 1]);
    expect(vals(c)).toEqual([6, 15, 7, 8]);
    expectCode(() => refMatmul(a, f32([2, 2, 1], [1, 1, 1, 1])), 'E_SHAPE');
  });
  it('wraps integer accumulation', () => {
    const c = refMatmul(i32([1, 2], [2 ** 30, 2 ** 30]), i32([2, 1], [2, 1]));
    expect(vals(c)).toEqual([roundTo('i32', 3 * 2 ** 30)]);
  });
});

describe('compute', () => {
  const idx = (i: number): IExpr => ({ k: 'idx', i });
  const num = (v: number, dtype: DType = 'i32'): IExpr => ({ k: 'num', v, dtype });
  const at = (arg: number, ...ix: IExpr[]): IExpr => ({ k: 'at', arg, idx: ix });
  const bin = (op: Parameters<typeof refBinary>[0], a: IExpr, b: IExpr): IExpr => ({ k: 'bin', op, a, b });
  const x = f32([2, 3], [0, 1, 2, 3, 4, 5]);

  it('transposes and clamps reads', () => {
    const t = refCompute(at(0, idx(1), idx(0)), [x], [3, 2], 'f32');
    expect(vals(t)).toEqual([0, 3, 1, 4, 2, 5]);
    // reads x[i-1, j+1] clamped per axis
    const s = refCompute(at(0, bin('sub', idx(0), num(1)), bin('add', idx(1), num(1))), [x], [2, 3], 'f32');
    expect(vals(s)).toEqual([1, 2, 2, 1, 2, 2]);
  });
  it('does i32 index arithmetic with truncating division', () => {
    const e = bin('div', bin('sub', idx(0), num(3)), num(2)); // (i - 3) / 2
    const r = refCompute(e, [], [6], 'i32');
    expect(vals(r)).toEqual([-1, -1, 0, 0, 0, 1]);
    const m = refCompute(bin('mod', bin('sub', idx(0), num(3)), num(2)), [], [6], 'i32');
    expect(vals(m)).toEqual([-1, 0, -1, 0, 1, 0]);
    expect(vals(refCompute(bin('lt', idx(0), num(2)), [], [3], 'bool'))).toEqual([1, 1, 0]);
    const d = refCompute(bin('mul', idx(0), { k: 'dim', d: sym('S') }), [], [3], 'i32', { S: 10 });
    expect(vals(d)).toEqual([0, 10, 20]);
  });
  it('reduces with red (a matmul)', () => {
    const a = f32([2, 2], [1, 2, 3, 4]);
    const b = f32([2, 2], [5, 6, 7, 8]);
    const r: IExpr = { k: 'rvar', name: 'k' };
    const body = bin('mul', at(0, idx(0), r), at(1, r, idx(1)));
    const mm = refCompute({ k: 'red', fn: 'sum', name: 'k', extent: 2, body }, [a, b], [2, 2], 'f32');
    expect(vals(mm)).toEqual(vals(refMatmul(a, b)));
    const mx = refCompute({ k: 'red', fn: 'max', name: 'k', extent: 3, body: at(0, idx(0), r) }, [x], [2], 'f32');
    expect(vals(mx)).toEqual([2, 5]);
    const wh = refCompute({ k: 'where', c: bin('gt', at(0, idx(0)), num(0, 'f32')), a: at(0, idx(0)), b: num(0, 'f32') }, [f32([2], [-1, 2])], [2], 'f32');
    expect(vals(wh)).toEqual([0, 2]);
    const ex = refCompute({ k: 'cast', dtype: 'f32', a: { k: 'un', op: 'neg', a: idx(0) } }, [], [2], 'f32');
    expect(vals(ex)).toEqual([0, -1]);
  });
});

describe('evalProgram', () => {
  const M = sym('M');
  const x = input('x', 'f32', [M, 3]);
  const bias = input('b', 'f32', [1, 3]);
  const sum = node('add', [x, node('expand', [bias], 'f32', [M, 3])], 'f32', [M, 3]);
  const total = node('sum', [sum], 'f32', [M], { axes: [1], keepdims: false });
  const prog = program([x, bias], { y: sum, total });

  it('binds dims from input shapes and broadcasts through expand', () => {
    const out = evalProgram(prog, { x: f32([2, 3], [1, 2, 3, 4, 5, 6]), b: f32([1, 3], [10, 20, 30]) });
    expect(out['y']!.shape).toEqual([2, 3]);
    expect(vals(out['y']!)).toEqual([11, 22, 33, 14, 25, 36]);
    expect(vals(out['total']!)).toEqual([66, 75]);
  });
  it('evaluates every node kind through the interpreter', () => {
    const c = node('const', [], 'f32', [], { value: 2 });
    const scaled = node('mul', [x, node('expand', [node('reshape', [c], 'f32', [1, 1])], 'f32', [M, 3])], 'f32', [M, 3]);
    const t = node('permute', [scaled], 'f32', [3, M], { perm: [1, 0] });
    const sl = node('slice', [t], 'f32', [3, M], { starts: [2, { op: '-', a: M, b: 1 }], steps: [-1, -1] });
    const pd = node('pad', [sl], 'f32', [3, { op: '+', a: M, b: 1 }], { before: [0, 1], after: [0, 0], value: -1 });
    const cat = node('concat', [pd, pd], 'f32', [6, { op: '+', a: M, b: 1 }], { axis: 0 });
    const am = node('argmax', [cat], 'i32', [6], { axes: [1], keepdims: false });
    const g = node('gather', [x, am], 'f32', [M, 6], { axis: 1 });
    const cst = node('cast', [g], 'i32', [M, 6]);
    const p = program([x], { cat, am, cst });
    const out = evalProgram(p, { x: f32([2, 3], [1, 2, 3, 4, 5, 6]) });
    expect(vals(out['cat']!)).toEqual([-1, 12, 6, -1, 10, 4, -1, 8, 2, -1, 12, 6, -1, 10, 4, -1, 8, 2]);
    expect(vals(out['am']!)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(vals(out['cst']!)).toEqual([2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5]);
  });
  it('evaluates compute and matmul nodes with symbolic shapes', () => {
    const a = input('a', 'f32', [2, sym('K')]);
    const b = input('bm', 'f32', [sym('K'), 2]);
    const mm = node('matmul', [a, b], 'f32', [2, 2]);
    const expr: IExpr = { k: 'bin', op: 'add', a: { k: 'at', arg: 0, idx: [{ k: 'idx', i: 1 }, { k: 'idx', i: 0 }] }, b: { k: 'dim', d: sym('K') } };
    const tr = node('compute', [mm], 'f32', [2, 2], { expr: expr as unknown as Attrs[string], shape: [2, 2] });
    const out = evalProgram(program([a, b], { tr }), { a: f32([2, 1], [1, 2]), bm: f32([1, 2], [3, 4]) });
    expect(vals(out['tr']!)).toEqual([4, 7, 5, 9]);
  });
  it('reports missing inputs, wrong shapes, unbound dims and inconsistent nodes', () => {
    const good = { x: f32([2, 3], [1, 2, 3, 4, 5, 6]), b: f32([1, 3], [1, 2, 3]) };
    expectCode(() => evalProgram(prog, { x: good.x }), 'E_BUFFER');
    expectCode(() => evalProgram(prog, { ...good, b: f32([1, 2], [1, 2]) }), 'E_BUFFER');
    expectCode(() => evalProgram(prog, { ...good, b: i32([1, 3], [1, 2, 3]) }), 'E_BUFFER');
    expectCode(() => evalProgram(prog, good, { M: 5 }), 'E_BUFFER');
    const k = node('compute', [], 'i32', [sym('Q')], { expr: { k: 'idx', i: 0 }, shape: [sym('Q')] });
    expectCode(() => evalProgram(program([], { k }), {}), 'E_UNBOUND_DIM');
    expect(vals(evalProgram(program([], { k }), {}, { Q: 3 })['k']!)).toEqual([0, 1, 2]);
    const wrong = node('sum', [x], 'f32', [M, 3], { axes: [1], keepdims: false });
    expectCode(() => evalProgram(program([x], { wrong }), { x: good.x }), 'E_VERIFY');
    expectCode(() => evalNode(node('add', [x, x], 'i32', [M, 3]), [good.x, good.x], { M: 2 }), 'E_VERIFY');
  });
});

describe('properties', () => {
  const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 });
  const tensorArb = shapeArb.chain((shape) =>
    fc.array(fc.integer({ min: -100, max: 100 }), { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) })
      .map((v) => f32(shape, v)));
  const permOf = (n: number) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });

  it('permute then inverse permute is the identity', () => {
    fc.assert(fc.property(tensorArb.chain((t) => fc.tuple(fc.constant(t), permOf(t.shape.length))), ([t, perm]) => {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, j) => (inv[p] = j));
      const back = refPermute(refPermute(t, perm), inv);
      expect(back.shape).toEqual(t.shape);
      expect(vals(back)).toEqual(vals(t));
    }));
  });
  it('sum over all axes equals the sum of the data, in any axis order', () => {
    fc.assert(fc.property(tensorArb.chain((t) => fc.tuple(fc.constant(t), permOf(t.shape.length))), ([t, axes]) => {
      const s = refReduce('sum', t, axes, false);
      expect(s.shape).toEqual([]);
      expect(s.data[0]).toBe(vals(t).reduce((a, b) => a + b, 0));
    }));
  });
  it('matmul is associative on small ints', () => {
    const mat = (r: number, c: number) => fc.array(fc.integer({ min: -5, max: 5 }), { minLength: r * c, maxLength: r * c }).map((v) => f32([r, c], v));
    const dims = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }));
    fc.assert(fc.property(dims.chain(([m, k, l, n]) => fc.tuple(mat(m, k), mat(k, l), mat(l, n))), ([a, b, c]) => {
      const left = refMatmul(refMatmul(a, b), c);
      expect(refMismatch(refMatmul(a, refMatmul(b, c)).data, left, 1e-12, 1e-12)).toBeNull();
    }));
  });
  it('reversing an axis twice with negative-step slices is the identity', () => {
    fc.assert(fc.property(tensorArb, (t) => {
      const rev = (x: RefTensor) => refSlice(x, x.shape.map((d) => d - 1), x.shape.map(() => -1), x.shape);
      expect(vals(rev(rev(t)))).toEqual(vals(t));
    }));
  });
  it('f16 rounding is idempotent, monotone and within half a step', () => {
    fc.assert(fc.property(fc.double({ min: -7e4, max: 7e4, noNaN: true }), fc.double({ min: -7e4, max: 7e4, noNaN: true }), (a, b) => {
      const ra = roundTo('f16', a);
      expect(roundTo('f16', ra)).toBe(ra);
      if (a <= b) expect(ra).toBeLessThanOrEqual(roundTo('f16', b));
      if (Math.abs(a) < 65504) {
        const step = Math.abs(a) < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(Math.abs(a))) - 10);
        expect(Math.abs(ra - a)).toBeLessThanOrEqual(step / 2);
      }
    }));
  });
  it('erf is odd and gelu_erf stays close to gelu_tanh', () => {
    fc.assert(fc.property(fc.double({ min: -8, max: 8, noNaN: true }), (v) => {
      expect(erf(-v)).toBe(-erf(v));
      const t = f32([1], [v]);
      expect(Math.abs(refUnary('gelu_erf', t).data[0]! - refUnary('gelu_tanh', t).data[0]!)).toBeLessThan(1e-3);
    }));
  });
});
