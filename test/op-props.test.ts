/**
 * Every op on every available backend against its float64 reference, with fast-check choosing
 * shapes (1, primes, non-multiples of every tile size) and value families (zeros, negatives,
 * large magnitudes, and NaN/Inf where the op defines them).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import type { KernelDef } from '../src/dsl/kernel.js';
import type { Dim } from '../src/ir/dims.js';
import type { DType } from '../src/ir/dtype.js';
import { Rng } from '../src/fuzz/rng.js';
import { compile } from '../src/passes/pipeline.js';
import type { HostArray } from '../src/runtime/backend.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';
import { checkOnBackend, type Tolerance } from './helpers/compare.js';
import { smokeRun } from './helpers/webgpu.js';

const SIZES = [1, 2, 3, 4, 5, 7, 13, 17, 31, 33, 64, 65];
const RUNS = smokeRun() ? 3 : 10;
const [A, B, C] = [D.dim('A'), D.dim('B'), D.dim('C')];
const SYMS = [A, B, C];

type Values = 'mixed' | 'positive' | 'small' | 'large' | 'special' | 'ints';

function fill(dtype: DType, n: number, kind: Values, rng: Rng): HostArray {
  if (dtype === 'i32') return Int32Array.from({ length: n }, () => (kind === 'large' ? rng.int(-2e9, 2e9) : rng.int(-20, 20)));
  if (dtype === 'bool') return Uint8Array.from({ length: n }, () => (rng.chance(0.5) ? 1 : 0));
  const special = [0, -0, Infinity, -Infinity, NaN, 1, -1];
  return Float32Array.from({ length: n }, () => {
    switch (kind) {
      case 'positive': return rng.chance(0.1) ? rng.uniform(1e-3, 1e-2) : rng.uniform(0.05, 20);
      case 'small': return rng.chance(0.1) ? 0 : rng.uniform(-3, 3);
      case 'large': return (rng.chance(0.5) ? -1 : 1) * 10 ** rng.uniform(-3, 18);
      case 'special': return rng.chance(0.3) ? rng.pick(special) : rng.uniform(-5, 5);
      case 'ints': return rng.int(-6, 6);
      default: return rng.chance(0.15) ? 0 : rng.uniform(-10, 10);
    }
  });
}

interface Case {
  name: string;
  rank: [number, number]; // min, max rank of the base shape
  values: Values;
  tol: Tolerance | ((dims: number[]) => Tolerance);
  build(shape: Dim[], rng: Rng): KernelDef;
  inputDtype?: DType;
}

const EXACT = { rtol: 0, atol: 0 };
const F = { rtol: 1e-5, atol: 1e-6 };
const TRANSC = { rtol: 2e-5, atol: 2e-5 };
const unaryCase = (name: string, f: (x: D.Tensor) => D.Tensor, values: Values, tol: Tolerance = F): Case => ({
  name, rank: [0, 3], values, tol, build: (s) => D.kernel(name, { x: D.tensor('f32', s) }, ({ x }) => f(x)),
});
const binaryCase = (name: string, f: (a: D.Tensor, b: D.Tensor) => D.Tensor, values: Values, tol: Tolerance = F, dtype: DType = 'f32'): Case => ({
  name, rank: [1, 3], values, tol, inputDtype: dtype,
  // b broadcasts over the leading axis half of the time
  build: (s, rng) => D.kernel(name, { a: D.tensor(dtype, s), b: D.tensor(dtype, rng.chance(0.5) ? s.slice(1) : s) }, ({ a, b }) => f(a, b)),
});
const axesOf = (rank: number, rng: Rng) => {
  const ax = Array.from({ length: rank }, (_, i) => i).filter(() => rng.chance(0.5));
  return ax.length ? ax : [rank - 1];
};
const sumTol = (dims: number[]) => ({ rtol: 1e-4, atol: 1e-5 * dims.reduce((a, b) => a * b, 1) });

const CASES: Case[] = [
  unaryCase('neg', D.neg, 'special', EXACT),
  unaryCase('abs', D.abs, 'special', EXACT),
  unaryCase('exp', D.exp, 'special', TRANSC),
  unaryCase('log', D.log, 'positive', TRANSC),
  unaryCase('sqrt', D.sqrt, 'positive', TRANSC),
  unaryCase('rsqrt', D.rsqrt, 'positive', TRANSC),
  unaryCase('sin', D.sin, 'small', { rtol: 0, atol: 1e-3 }),
  unaryCase('cos', D.cos, 'small', { rtol: 0, atol: 1e-3 }),
  unaryCase('tanh', D.tanh, 'mixed', TRANSC),
  unaryCase('sigmoid', D.sigmoid, 'mixed', TRANSC),
  unaryCase('relu', D.relu, 'special', EXACT),
  unaryCase('gelu_tanh', (x) => D.gelu(x, 'tanh'), 'mixed', TRANSC),
  unaryCase('gelu_erf', (x) => D.gelu(x), 'mixed', { rtol: 1e-5, atol: 1e-5 }),
  unaryCase('silu', D.silu, 'mixed', TRANSC),
  unaryCase('reciprocal', D.reciprocal, 'positive', F),
  unaryCase('floor', D.floor, 'special', EXACT),
  unaryCase('ceil', D.ceil, 'special', EXACT),
  unaryCase('cast_i32', (x) => D.cast(D.cast(x, 'i32'), 'f32'), 'large', EXACT),
  unaryCase('cast_bool', (x) => D.cast(D.cast(x, 'bool'), 'f32'), 'ints', EXACT),
  unaryCase('not', (x) => D.cast(D.not(D.gt(x, 0)), 'f32'), 'mixed', EXACT),
  binaryCase('add', D.add, 'large', F),
  binaryCase('sub', D.sub, 'special', F),
  binaryCase('mul', D.mul, 'mixed', F),
  binaryCase('div', D.div, 'positive', F),
  binaryCase('pow', D.pow, 'positive', { rtol: 1e-4, atol: 1e-6 }),
  binaryCase('maximum', D.maximum, 'special', EXACT),
  binaryCase('minimum', D.minimum, 'special', EXACT),
  binaryCase('compare', (a, b) => D.add(D.add(D.cast(D.lt(a, b), 'f32'), D.cast(D.ge(a, b), 'f32')), D.add(D.cast(D.eq(a, b), 'f32'), D.cast(D.ne(a, b), 'f32'))), 'ints', EXACT),
  binaryCase('where', (a, b) => D.where(D.gt(a, b), a, D.mul(b, 2)), 'mixed', EXACT),
  binaryCase('logic', (a, b) => D.cast(D.or(D.and(D.gt(a, 0), D.lt(b, 0)), D.eq(a, b)), 'f32'), 'ints', EXACT),
  binaryCase('i32_arith', (a, b) => D.add(D.mul(a, b), D.sub(D.div(a, b), D.mod(a, b))), 'mixed', EXACT, 'i32'),
  binaryCase('i32_wrap', (a, b) => D.mul(D.add(a, b), b), 'large', EXACT, 'i32'),
  ...(['sum', 'mean', 'max', 'min'] as const).map((op): Case => ({
    name: op, rank: [1, 3], values: op === 'sum' || op === 'mean' ? 'small' : 'special', tol: op === 'max' || op === 'min' ? EXACT : sumTol,
    build: (s, rng) => D.kernel(op, { x: D.tensor('f32', s) }, ({ x }) => D[op](x, axesOf(s.length, rng), rng.chance(0.5))),
  })),
  ...(['argmax', 'argmin'] as const).map((op): Case => ({
    name: op, rank: [1, 3], values: 'ints', tol: EXACT,
    build: (s, rng) => D.kernel(op, { x: D.tensor('f32', s) }, ({ x }) => D[op](x, rng.int(0, s.length - 1), rng.chance(0.5))),
  })),
  { name: 'sum_i32', rank: [1, 2], values: 'mixed', tol: EXACT, inputDtype: 'i32', build: (s, rng) => D.kernel('sum_i32', { x: D.tensor('i32', s) }, ({ x }) => D.sum(x, axesOf(s.length, rng))) },
  { name: 'reshape', rank: [1, 3], values: 'mixed', tol: TRANSC, build: (s) => D.kernel('reshape', { x: D.tensor('f32', s) }, ({ x }) => D.reshape(D.exp(x), [-1])) },
  { name: 'permute', rank: [2, 3], values: 'mixed', tol: EXACT, build: (s, rng) => D.kernel('permute', { x: D.tensor('f32', s) }, ({ x }) => D.permute(x, s.map((_, i) => i).sort(() => rng.next() - 0.5))) },
  { name: 'expand', rank: [1, 2], values: 'mixed', tol: EXACT, build: (s) => D.kernel('expand', { x: D.tensor('f32', [1, ...s]) }, ({ x }) => D.expand(x, [3, ...s])) },
  {
    name: 'slice', rank: [1, 3], values: 'mixed', tol: EXACT,
    build: (s, rng) => D.kernel('slice', { x: D.tensor('f32', s) }, ({ x }) => D.slice(x, s.map(() => (rng.chance(0.5) ? { step: rng.pick([1, 2, 3, -1, -2]) } : undefined)))),
  },
  { name: 'pad', rank: [1, 3], values: 'mixed', tol: EXACT, build: (s, rng) => D.kernel('pad', { x: D.tensor('f32', s) }, ({ x }) => D.pad(x, s.map(() => [rng.int(0, 3), rng.int(0, 3)] as const), -7)) },
  { name: 'concat', rank: [1, 3], values: 'mixed', tol: EXACT, build: (s, rng) => { const ax = rng.int(0, s.length - 1); return D.kernel('concat', { a: D.tensor('f32', s), b: D.tensor('f32', s) }, ({ a, b }) => D.concat([a, b, a], ax)); } },
  {
    name: 'gather', rank: [1, 2], values: 'mixed', tol: EXACT,
    build: (s, rng) => { const ax = rng.int(0, s.length - 1); return D.kernel('gather', { x: D.tensor('f32', s), i: D.tensor('i32', [5]) }, ({ x, i }) => D.gather(x, i, ax)); },
  },
  {
    name: 'matmul', rank: [2, 3], values: 'small', tol: (d) => ({ rtol: 1e-4, atol: 1e-5 * d[d.length - 1]! * 10 }),
    build: (s, rng) => {
      const [ta, tb] = [rng.chance(0.5), rng.chance(0.5)];
      const batch = s.slice(0, -2);
      const [m, k] = s.slice(-2) as [Dim, Dim];
      const n = rng.pick([1, 5, 17, 33]);
      return D.kernel('matmul', { a: D.tensor('f32', [...batch, ...(ta ? [k, m] : [m, k])]), b: D.tensor('f32', [...(tb ? [n, k] : [k, n])]) }, ({ a, b }) => D.matmul(a, b, { transA: ta, transB: tb }));
    },
  },
  { name: 'matvec', rank: [1, 1], values: 'small', tol: { rtol: 1e-4, atol: 1e-3 }, build: (s) => D.kernel('matvec', { w: D.tensor('f32', [7, ...s]), v: D.tensor('f32', s) }, ({ w, v }) => D.matmul(w, v)) },
  { name: 'softmax', rank: [1, 3], values: 'mixed', tol: { rtol: 1e-5, atol: 1e-6 }, build: (s, rng) => D.kernel('softmax', { x: D.tensor('f32', s) }, ({ x }) => D.softmax(x, rng.int(0, s.length - 1))) },
  { name: 'softmax_special', rank: [1, 2], values: 'special', tol: { rtol: 1e-5, atol: 1e-6 }, build: (s) => D.kernel('softmax_special', { x: D.tensor('f32', s) }, ({ x }) => D.softmax(x)) },
  {
    name: 'softmax_masked', rank: [2, 2], values: 'mixed', tol: { rtol: 1e-5, atol: 1e-6 },
    // attention-style masking: -inf where the mask is set (whole rows included)
    build: (s) => D.kernel('softmax_masked', { x: D.tensor('f32', s), m: D.tensor('f32', s) }, ({ x, m }) => D.softmax(D.where(D.gt(m, 3), -Infinity, x))),
  },
  { name: 'log_softmax', rank: [1, 3], values: 'mixed', tol: { rtol: 1e-5, atol: 1e-5 }, build: (s) => D.kernel('log_softmax', { x: D.tensor('f32', s) }, ({ x }) => D.logSoftmax(x)) },
  { name: 'layernorm', rank: [1, 3], values: 'mixed', tol: { rtol: 1e-4, atol: 1e-4 }, build: (s) => D.kernel('layernorm', { x: D.tensor('f32', s), g: D.tensor('f32', [s[s.length - 1]!]), b: D.tensor('f32', [s[s.length - 1]!]) }, ({ x, g, b }) => D.layernorm(x, g, b)) },
  { name: 'rmsnorm', rank: [1, 3], values: 'mixed', tol: { rtol: 1e-4, atol: 1e-5 }, build: (s) => D.kernel('rmsnorm', { x: D.tensor('f32', s), g: D.tensor('f32', [s[s.length - 1]!]) }, ({ x, g }) => D.rmsnorm(x, g)) },
  {
    name: 'compute', rank: [2, 2], values: 'small', tol: sumTol,
    build: (s) => {
      const [m, n] = s as [Dim, Dim];
      return D.kernel('compute', { x: D.tensor('f32', s) }, ({ x }) => D.compute([n, m], (i, j) => D.reduceMax(m, (k) => x.at(k, i).mul(x.at(j, i))).add(x.at(D.dimv(m).sub(1).sub(j), i))));
    },
  },
  { name: 'f16_io', rank: [1, 2], values: 'small', tol: { rtol: 2e-3, atol: 2e-3 }, inputDtype: 'f16', build: (s) => D.kernel('f16_io', { x: D.tensor('f16', s) }, ({ x }) => D.silu(x)) },
  // a cast to f16 inside a kernel rounds (as the reference's cast does), not only a store
  { name: 'f16_cast', rank: [1, 3], values: 'large', tol: EXACT, build: (s) => D.kernel('f16_cast', { x: D.tensor('f32', s) }, ({ x }) => x.mul(2 ** -46).cast('f16').cast('f32').mul(2)) },
  // bfloat16: storage rounds to nearest even on upload and store, compute stays f32
  { name: 'bf16_io', rank: [1, 2], values: 'small', tol: { rtol: 1e-2, atol: 1e-2 }, inputDtype: 'bf16', build: (s) => D.kernel('bf16_io', { x: D.tensor('bf16', s) }, ({ x }) => D.silu(x)) },
  { name: 'bf16_cast', rank: [1, 3], values: 'large', tol: EXACT, build: (s) => D.kernel('bf16_cast', { x: D.tensor('f32', s) }, ({ x }) => x.cast('bf16').cast('f32').mul(2)) },
  { name: 'bf16_cast_special', rank: [1, 2], values: 'special', tol: EXACT, build: (s) => D.kernel('bf16_cast_special', { x: D.tensor('f32', s) }, ({ x }) => ({ y: x.cast('bf16'), z: x.mul(1e-3).cast('bf16').cast('f16') })) },
  {
    name: 'bf16_matmul', rank: [2, 2], values: 'small', tol: (d) => ({ rtol: 1e-2, atol: 1e-2 * d[d.length - 1]! }), inputDtype: 'bf16',
    // bf16 x bf16 -> bf16 (f32 accumulation), and bf16 cast to f16 times f16
    build: (s) => D.kernel('bf16_matmul', { a: D.tensor('bf16', s), b: D.tensor('bf16', [s[1]!, 9]), h: D.tensor('f16', [s[1]!, 9]) }, ({ a, b, h }) => ({ y: D.matmul(a, b), z: D.matmul(a.cast('f16'), h) })),
  },
];

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe.each(CASES.map((c) => [c.name, c] as const))('op %s', (_name, c) => {
  it('matches the reference on every backend', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: c.rank[0], max: c.rank[1] }), fc.array(fc.constantFrom(...SIZES), { minLength: 3, maxLength: 3 }), fc.integer(), async (rank, sizes, seed) => {
        const rng = new Rng(seed);
        const shape: Dim[] = SYMS.slice(0, rank);
        const dims = { A: sizes[0]!, B: sizes[1]!, C: sizes[2]! };
        const def = c.build(shape, rng);
        const cp = compile(def.program);
        const inputs: Record<string, { shape: number[]; data: HostArray }> = {};
        for (const p of def.program.inputs) {
          const s = p.shape.map((d) => (typeof d === 'number' ? d : dims[(d as { sym: 'A' }).sym]));
          const n = s.reduce((a, b) => a * b, 1);
          inputs[p.name] = { shape: s, data: p.dtype === 'i32' && c.inputDtype !== 'i32' ? fill('i32', n, 'mixed', rng) : fill(p.dtype, n, c.values, rng) };
        }
        const tol = typeof c.tol === 'function' ? c.tol(sizes.slice(0, Math.max(rank, 1))) : c.tol;
        for (const b of backends) {
          const m = await checkOnBackend(cp, b.rt, inputs, tol);
          if (m) throw new Error(`${c.name} on ${b.name}, dims ${JSON.stringify(dims)}, rank ${rank}: ${m}`);
        }
        runs++;
      }),
      { numRuns: RUNS, seed: 42 },
    );
    expect(runs).toBeGreaterThan(0);
  });
});
