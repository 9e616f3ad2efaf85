/**
 * The subgroup-shared matmul schedule (ScheduleParams.sg): a workgroup of one subgroup whose lanes
 * share A's values by shuffles. Against the reference on every backend with subgroups (the JS
 * backend always), at dims that are and are not multiples of the tile and of the subgroup, with an
 * epilogue, a prologue (a norm's scaled operand), a transposed B and a batch; and its shape.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { forEachKExpr } from '../src/ir/kernel.js';
import { compile } from '../src/passes/pipeline.js';
import { MAX_SG } from '../src/passes/schedule-sg.js';
import { candidatesFor, deviceCaps } from '../src/tune/candidates.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { inputsFor } from './helpers/inputs.js';
import { smokeRun } from './helpers/webgpu.js';

const [M, N, K, Bt] = [D.dim('M'), D.dim('N'), D.dim('K'), D.dim('B')];
const programs = [
  D.kernel('linear', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]), c: D.tensor('f32', [N]) }, ({ a, b, c }) => D.matmul(a, b).add(c).relu()),
  D.kernel('normed', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w: D.tensor('f32', [K, N]) }, ({ x, g, w }) => D.matmul(D.rmsnorm(x, g, 1e-5), w)),
  D.kernel('wt', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [N, K]) }, ({ x, w }) => D.matmul(x, w.transpose())),
  D.kernel('bmm', { a: D.tensor('f32', [Bt, M, K]), b: D.tensor('f32', [Bt, K, N]) }, ({ a, b }) => D.matmul(a, b)),
];
// N a multiple of 4 (the vec4 path) and not; K below, at and past a subgroup's chunk, with a partial one
const sizes = [[1, 5, 3], [7, 13, 9], [16, 16, 16], [3, 40, 37], [5, 12, 8]] as const;

describe('subgroup-shared matmul', () => {
  it('shares A by shuffles in a workgroup of one subgroup', () => {
    const cp = compile(programs[0]!.program, { versions: false, params: { sg: 1, tm: 2, tn: 2, workgroupSize: 8 } });
    const k = cp.kernels[0]!.kernel;
    expect(k.schedule).toEqual({ kind: 'matmul_sg', params: { sg: 1, tm: 2, tn: 2, vec: 0, uk: 2, workgroupSize: 8 } });
    expect(k.subgroup).toBe(true);
    expect(k.flexibleWorkgroup).toBeUndefined();
    let shuffles = 0;
    let aLoads = 0;
    forEachKExpr(k.body, (e) => {
      if (e.k === 'shuffle') shuffles++;
      if (e.k === 'load' && e.buf === 'a') aLoads++;
    });
    // one A load per row of the tile in the whole chunks' loop and in the last chunk; one shuffle per
    // row and step, two steps at a time in whole chunks (uk 2) and one in the last chunk
    expect([shuffles, aLoads]).toEqual([6, 4]);
    const shufflesAt = (uk: number) => {
      let n = 0;
      forEachKExpr(compile(programs[0]!.program, { versions: false, params: { sg: 1, tm: 2, tn: 2, uk, workgroupSize: 8 } }).kernels[0]!.kernel.body, (e) => {
        if (e.k === 'shuffle') n++;
      });
      return n;
    };
    expect([1, 4, 8, 16].map(shufflesAt)).toEqual([4, 10, 18, 18]);
    expect(() => compile(programs[0]!.program, { params: { sg: 1, uk: 3, workgroupSize: 8 } })).toThrow(/uk must be a positive integer that divides the subgroup \(8\), got 3/);
    expect(() => compile(programs[0]!.program, { params: { sg: 1, uk: -2, workgroupSize: 8 } })).toThrow(/got -2/);
    // vec4: B read a vec4 at a time under a uniform N % 4 test, the scalar path beside it
    const v4 = compile(programs[0]!.program, { versions: false, params: { sg: 1, vec: 4, tm: 2, tn: 4, workgroupSize: 8 } }).kernels[0]!.kernel;
    let b4 = 0;
    forEachKExpr(v4.body, (e) => {
      if (e.k === 'load4' && e.buf === 'b') b4++;
    });
    expect(b4).toBe(2 + 1);
    expect(v4.schedule.params).toEqual({ sg: 1, tm: 2, tn: 4, vec: 4, uk: 2, workgroupSize: 8 });
    expect(() => compile(programs[0]!.program, { params: { sg: 1, vec: 4, tn: 2, workgroupSize: 8 } })).toThrow(/tn a multiple of 4/);
    expect(() => compile(programs[0]!.program, { params: { sg: 1, workgroupSize: 12 } })).toThrow(/power of two from 2 to 32, got 12/);
    expect(() => compile(programs[0]!.program, { params: { sg: 1, workgroupSize: 64 } })).toThrow(/got 64/);
  });

  it('matches the reference on every backend with subgroups', async () => {
    let ran = 0;
    for (const { name, rt } of await testBackends()) {
      const sg = rt.info.limits['subgroupMinSize'];
      if (!rt.info.features.includes('subgroups') || sg === undefined || sg < 2) continue;
      ran++;
      const S = Math.min(sg, MAX_SG);
      // [tm, tn, vec, uk]: the scalar path, and the vec4 path (taken where N % 4 == 0, the scalar one
      // otherwise); whole chunks' steps one, two (the default) or four at a time
      const tiles = name === 'js' ? [[1, 1, 0, 1], [2, 2, 0, 2], [4, 1, 0, 4], [1, 4, 4, 1], [2, 8, 4, 2], [2, 4, 4, 4]] : smokeRun() ? [[2, 2, 0, 2], [2, 4, 4, 4]] : [[1, 1, 0, 1], [2, 2, 0, 2], [1, 4, 4, 4], [2, 8, 4, 2]];
      for (const def of programs) {
        for (const [tm, tn, vec, uk] of tiles) {
          for (const [m, n, k] of sizes) {
            const dims = { M: m, N: n, K: k, B: 2 };
            const cp = compile(def.program, { params: { sg: 1, vec: vec!, tm: tm!, tn: tn!, uk: uk!, workgroupSize: S } });
            expect(await checkOnBackend(cp, rt, inputsFor(def, dims), { rtol: 2e-4, atol: 2e-5 }), `${def.name} ${m}x${n}x${k} tile ${tm}x${tn} vec ${vec} uk ${uk} S=${S} on ${name}`).toBeNull();
          }
        }
      }
    }
    expect(ran).toBeGreaterThan(0); // the JS backend always has subgroups
  }, 300_000);

  it('is a tuner candidate where the device has subgroups', () => {
    const group = compile(programs[0]!.program, { versions: false }).kernels[0]!.group;
    const sg = (caps: Parameters<typeof candidatesFor>[1]) => candidatesFor(group, caps).filter((c) => c.sg === 1);
    expect(sg({})).toEqual([]);
    expect(sg({ subgroupSize: 8 }).length).toBeGreaterThan(0);
    expect(sg({ subgroupSize: 8 }).every((c) => c.workgroupSize === 8)).toBe(true);
    // a subgroup wider than a warp: the candidates take 32 lanes
    expect(sg({ subgroupSize: 64 }).every((c) => c.workgroupSize === MAX_SG)).toBe(true);
    expect(sg(deviceCaps({ features: ['subgroups'], limits: { subgroupMinSize: 4 } })).every((c) => c.workgroupSize === 4)).toBe(true);
  });
});
