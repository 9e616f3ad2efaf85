/**
 * Row and reduce schedules with unrolled reductions (ScheduleParams.ur): lane accumulators, their
 * combination and the tail loop match the reference on every backend, for extents below, equal to
 * and not a multiple of ur, with -inf masks, NaN and integer rows.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { compile } from '../src/passes/pipeline.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import type { HostTensor } from '../src/runtime/execute.js';
import { smokeRun } from './helpers/webgpu.js';

const [M, N] = [D.dim('M'), D.dim('N')];
const f = (name: string, body: (x: D.Tensor) => D.Tensor | Record<string, D.Tensor>) => D.kernel(name, { x: D.tensor('f32', [M, N]) }, ({ x }) => body(x));

const programs = [
  f('softmax', (x) => D.softmax(x)),
  f('log_softmax', (x) => D.logSoftmax(x)),
  D.kernel('layernorm', { x: D.tensor('f32', [M, N]), g: D.tensor('f32', [N]), b: D.tensor('f32', [N]) }, ({ x, g, b }) => D.layernorm(x, g, b)),
  D.kernel('rmsnorm', { x: D.tensor('f32', [M, N]), g: D.tensor('f32', [N]) }, ({ x, g }) => D.rmsnorm(x, g)),
  // reduce schedules: along rows and down columns
  f('reductions', (x) => ({ s: x.sum(1), mx: x.max(1), mn: x.min(1), cs: x.sum(0), cmx: x.max(0) })),
  D.kernel('int_reductions', { x: D.tensor('i32', [M, N]) }, ({ x }) => ({ s: x.sum(1), mx: x.max(1), mn: x.min(1), cmn: x.min(0) })),
  // a row statistic stored beside the row (a multi-output row kernel)
  f('stats', (x) => ({ p: D.softmax(x), m: x.max(1, true) })),
  // the online max+sum pair's max also read directly (a NaN row's max is NaN)
  f('shared_max', (x) => {
    const m = x.max(1, true);
    const e = D.exp(D.sub(x, m));
    return D.where(D.gt(x, 2.5), D.div(e, e.sum(1, true)), D.sub(x, m));
  }),
];

/**
 * Row i of M = 7 rows: ordinary values; some -inf (a mask); all -inf; a NaN; large and negative; a
 * +inf; NaN among -inf (a lane may see only -inf and NaN).
 */
function floats(m: number, n: number): Float32Array {
  const data = Float32Array.from({ length: m * n }, (_, q) => Math.sin(q * 0.7 + 1) * 3);
  for (let j = 0; j < n; j++) {
    if (m > 1 && j % 3 !== 1) data[n + j] = -Infinity;
    if (m > 2) data[2 * n + j] = -Infinity;
    if (m > 4) data[4 * n + j] = -50 - j * 7;
  }
  if (m > 3) data[3 * n + Math.floor(n / 2)] = NaN;
  if (m > 5) data[5 * n + Math.floor(n / 3)] = Infinity;
  if (m > 6) for (let j = 0; j < n; j++) data[6 * n + j] = j === n - 1 ? NaN : -Infinity;
  return data;
}

function inputs(name: string, m: number, n: number): Record<string, HostTensor> {
  const vec = (k: number) => ({ shape: [n], data: Float32Array.from({ length: n }, (_, q) => Math.cos(q * 0.3 + k)) });
  if (name === 'int_reductions') {
    const data = Int32Array.from({ length: m * n }, (_, q) => ((Math.imul(q + 7, 2654435761) >>> 0) % 2001) - 1000);
    if (m > 1) for (let j = 0; j < n; j++) data[n + j] = j % 2 ? 2147483647 : -2147483648;
    return { x: { shape: [m, n], data } };
  }
  const x = { shape: [m, n], data: floats(m, n) };
  if (name === 'layernorm' || name === 'rmsnorm') {
    // norms over finite rows only: a -inf row has no mean
    const data = Float32Array.from({ length: m * n }, (_, q) => Math.sin(q * 0.7 + 1) * 3 + (q % n === 0 ? 40 : 0));
    return name === 'layernorm' ? { x: { shape: [m, n], data }, g: vec(1), b: vec(2) } : { x: { shape: [m, n], data }, g: vec(1) };
  }
  return { x };
}

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe('unrolled row and reduce reductions', () => {
  const urs = [1, 2, 4, 8];
  // extents below, equal to and ragged against every ur, and a multiple of all of them
  const ns = smokeRun() ? [3, 8, 13] : [1, 2, 3, 4, 8, 13, 19];
  for (const def of programs) {
    it(`${def.name} matches the reference for ur in {${urs.join(', ')}}`, async () => {
      for (const ur of urs) {
        const generic = compile(def.program, { params: { ur } });
        for (const n of ns) {
          const ins = inputs(def.name, 7, n);
          const dims = { M: 7, N: n };
          // with dims as constants the loop bounds are literals: whole chunks only, or the tail only
          const spec = compile(def.program, { params: { ur }, specialize: dims });
          for (const { name, rt } of backends) {
            for (const [label, cp] of [['generic', generic], ['specialized', spec]] as const) {
              expect(await checkOnBackend(cp, rt, ins, { rtol: 2e-5, atol: 1e-5 }), `${def.name} ur=${ur} N=${n} ${label} on ${name}`).toBeNull();
            }
          }
        }
      }
    });
  }

  it('a cooperative schedule ignores ur and still matches', async () => {
    for (const def of programs) {
      const cp = compile(def.program, { params: { coop: 1, ur: 4, workgroupSize: 8 } });
      for (const { name, rt } of backends) {
        for (const n of [3, 13]) expect(await checkOnBackend(cp, rt, inputs(def.name, 7, n), { rtol: 2e-5, atol: 1e-5 }), `${def.name} coop N=${n} on ${name}`).toBeNull();
      }
    }
  });

  it('a subgroup schedule matches where the backend has subgroups', async () => {
    let ran = 0;
    for (const { name, rt } of backends) {
      if (!rt.info.features.includes('subgroups') || (rt.info.limits['subgroupMinSize'] ?? 0) < 4) continue;
      ran++;
      for (const def of programs.filter((p) => p.name !== 'int_reductions')) {
        const cp = compile(def.program, { params: { coop: 2, ur: 4, workgroupSize: 4 } });
        for (const n of [3, 13]) expect(await checkOnBackend(cp, rt, inputs(def.name, 7, n), { rtol: 2e-5, atol: 1e-5 }), `${def.name} subgroup N=${n} on ${name}`).toBeNull();
      }
    }
    expect(ran).toBeGreaterThan(0); // the JS backend always has them
  });

  it('emits ur lane accumulators, a chunk loop and a tail loop', () => {
    const text = (ur: number) => printKernel(compile(programs[0]!.program, { params: { ur, vec: 0 } }).kernels[0]!.kernel);
    const four = text(4);
    // the online max and sum, and the write loop: each a chunk loop and a tail loop
    expect(four.match(/ step 4 \{/g)?.length).toBe(2);
    expect(four.match(/for (r0|j0) in v\d+\.\.\$N \{/g)?.length).toBe(2);
    // each lane's running max starts at -FLT_MAX (see emitOnline), its sum at 0
    expect(four.match(/var acc\d+: f32 = -3\.4028234663852886e\+38$/gm)?.length).toBe(4);
    expect(text(1)).not.toMatch(/ step /);
    // with constant dims that ur divides, no tail loop
    const spec = printKernel(compile(programs[0]!.program, { params: { ur: 4, vec: 0 }, specialize: { M: 5, N: 16 } }).kernels[0]!.kernel);
    expect(spec.match(/for r0 in/g)?.length).toBe(1);
  });

  it('vec 4: whole chunks load and store vec4s behind a test of the row length, tails stay scalar', () => {
    const layernorm = programs[2]!.program;
    const text = (params: Record<string, number>, specialize?: Record<string, number>) => printKernel(compile(layernorm, { params, ...(specialize ? { specialize } : {}) }).kernels[0]!.kernel);
    const generic = text({ ur: 8 });
    // both bodies: the vector one when N % 4 == 0, the scalar one otherwise
    expect(generic).toMatch(/if eq\(mod\(\$N, 4\), 0\) \{/);
    // two reductions over x and the write loop's x, g and b: two vec4 loads each per chunk of 8
    expect(generic.match(/: vec4f = \w+\[/g)?.length).toBe(2 * 5);
    expect(generic.match(/out\[[^\]]*\.\.\+4\] = /g)?.length).toBe(2);
    // constant row lengths decide at compile time: vec4 only where N % 4 == 0
    expect(text({ ur: 8 }, { M: 5, N: 16 })).not.toMatch(/if eq\(mod/);
    expect(text({ ur: 8 }, { M: 5, N: 16 })).toMatch(/\.\.\+4\]/);
    expect(text({ ur: 8 }, { M: 5, N: 13 })).not.toMatch(/\.\.\+4\]/);
    // ur not a multiple of 4, or vec 0: scalar only
    expect(text({ ur: 2 })).not.toMatch(/\.\.\+4\]/);
    expect(text({ ur: 8, vec: 0 })).not.toMatch(/\.\.\+4\]/);
  });

  it('vec 4 over a row of two axes (the inner one contiguous) matches the reference', async () => {
    const [A, B, C] = [D.dim('A'), D.dim('B'), D.dim('C')];
    const def = D.kernel('center2', { x: D.tensor('f32', [A, B, C]) }, ({ x }) => ({ c: D.sub(x, x.max([1, 2], true)), p: D.softmax(x) }));
    for (const c of [4, 5, 8, 13]) {
      const x = { shape: [3, 2, c], data: floats(6, c) };
      for (const cp of [compile(def.program), compile(def.program, { specialize: { A: 3, B: 2, C: c } })]) {
        for (const { name, rt } of backends) expect(await checkOnBackend(cp, rt, { x }, { rtol: 2e-5, atol: 1e-5 }), `C=${c} on ${name}`).toBeNull();
      }
    }
  });

  it('unrolls only the innermost loop of a reduction over several axes (each level unrolled would multiply the code)', async () => {
    const [A, B, C] = [D.dim('A'), D.dim('B'), D.dim('C')];
    const all = D.kernel('all_min', { x: D.tensor('f32', [A, B, C]) }, ({ x }) => x.min([0, 1, 2]));
    const k = compile(all.program, { params: { ur: 4 } }).kernels[0]!.kernel;
    // loops over A and B once each, C as a chunk loop and a tail loop
    expect(printKernel(k).match(/for /g)?.length).toBe(4);
    const x = Float32Array.from({ length: 7 * 5 * 6 }, (_, q) => Math.cos(q * 1.3) * 10);
    for (const { name, rt } of backends) expect(await checkOnBackend(compile(all.program), rt, { x: { shape: [7, 5, 6], data: x } }, { rtol: 0, atol: 0 }), name).toBeNull();
  });
});
