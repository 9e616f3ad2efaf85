/**
 * Multi-versioning: a program with matmuls over a symbolic row (token) dim is also built for one row
 * (a decode step) and for aligned dims (whole tiles, vec4 paths without a scalar fallback);
 * dispatch picks the build whose conditions the dims meet. Every build against the reference on
 * every backend, the choice at dispatch, and `assume` on its own.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { forEachKExpr, kstmtBodies, type KStmt } from '../src/ir/kernel.js';
import { allBuilds, compile, selectVersion } from '../src/passes/pipeline.js';
import { execute, prepare } from '../src/runtime/execute.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { compileTuned, COMPILER_VERSION, tuneProgram } from '../src/tune/index.js';
import { readRecord, tuneKey, writeRecord } from '../src/tune/cache.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { inputsFor } from './helpers/inputs.js';
import { ffnBlock } from './helpers/programs.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const mm = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]), c: D.tensor('f32', [N]) }, ({ a, b, c }) => D.matmul(a, b).add(c).relu());
// the transformer block's FFN: rmsnorm, matmul, silu, matmul, residual
const block = ffnBlock;
const rows = D.kernel('rows', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));


/** Loops over `mr` (a partial tile's one-row bodies) and `if`s in a kernel body. */
function count(ss: readonly KStmt[], what: (s: KStmt) => boolean): number {
  return ss.reduce((n, s) => n + (what(s) ? 1 : 0) + kstmtBodies(s).reduce((m, b) => m + count(b, what), 0), 0);
}

describe('multi-versioning', () => {
  it('builds a program over a token dim for one row and for aligned dims, and dispatch picks by the dims', () => {
    const cp = compile(mm.program);
    expect(allBuilds(cp).map((b) => b.version)).toEqual(['general', 'M=1', 'M%16 K%4 N%4', 'M%16']);
    const [general, one, all, aligned] = allBuilds(cp) as [typeof cp, typeof cp, typeof cp, typeof cp];
    expect(one.specialized).toEqual({ M: 1 });
    expect(all.assumed).toEqual({ M: 16, K: 4, N: 4 });
    expect(aligned.assumed).toEqual({ M: 16 });
    expect(allBuilds(cp).map((b) => b.kernels[0]!.kernel.name)).toEqual(['mm_matmul_out', 'mm_matmul_out__M1', 'mm_matmul_out__aligned_all', 'mm_matmul_out__aligned']);
    const mr = (s: KStmt) => s.k === 'for' && s.v === 'mr';
    const scalarLoads = (b: typeof cp) => {
      let n = 0;
      forEachKExpr(b.kernels[0]!.kernel.body, (e) => {
        if (e.k === 'load' && e.buf === 'a') n++;
      });
      return n;
    };
    // the general build: partial tiles (one-row bodies), and a scalar fallback beside the vec4 path
    expect(count(general.kernels[0]!.kernel.body, mr)).toBe(1);
    // aligned: whole tiles only; it keeps the vec4 path's test and its scalar fallback
    expect(count(aligned.kernels[0]!.kernel.body, mr)).toBe(0);
    expect(scalarLoads(aligned)).toBeGreaterThan(0);
    expect(scalarLoads(aligned)).toBeLessThan(scalarLoads(general));
    expect(aligned.kernels[0]!.kernel.uniforms).toEqual(['K', 'M', 'N']);
    // every dim aligned: whole tiles and the vec4 path alone, with no test and no scalar fallback
    expect(count(all.kernels[0]!.kernel.body, mr)).toBe(0);
    expect(count(all.kernels[0]!.kernel.body, (s) => s.k === 'if')).toBeLessThan(count(aligned.kernels[0]!.kernel.body, (s) => s.k === 'if'));
    expect(scalarLoads(all)).toBe(0);
    // one row: M is a constant
    expect(one.kernels[0]!.kernel.uniforms).toEqual(['K', 'N']);

    expect(selectVersion(cp, { M: 1, N: 5, K: 3 }).version).toBe('M=1');
    expect(selectVersion(cp, { M: 32, N: 12, K: 8 }).version).toBe('M%16 K%4 N%4');
    expect(selectVersion(cp, { M: 32, N: 12, K: 6 }).version).toBe('M%16');
    expect(selectVersion(cp, { M: 32, N: 10, K: 8 }).version).toBe('M%16');
    expect(selectVersion(cp, { M: 3, N: 12, K: 8 }).version).toBe('general');
  });

  it('every build matches the reference on every backend, through dispatch', async () => {
    for (const { name, rt } of await testBackends()) {
      for (const [m, n, k] of [[1, 12, 16], [1, 5, 3], [32, 12, 8], [16, 8, 4], [13, 12, 8], [32, 12, 6]] as const) {
        const cp = compile(mm.program);
        const ins = inputsFor(mm, { M: m, N: n, K: k });
        const p = prepare(cp, rt, ins);
        const ran = p.program.version;
        p.free();
        expect(ran).toBe(m === 1 ? 'M=1' : m % 16 === 0 ? (n % 4 === 0 && k % 4 === 0 ? 'M%16 K%4 N%4' : 'M%16') : 'general');
        // checkOnBackend runs the build dispatch picks and, when that is a version, the general one
        expect(await checkOnBackend(cp, rt, ins, { rtol: 2e-4, atol: 2e-5 }), `${name} ${m}x${n}x${k} (${ran})`).toBeNull();
      }
    }
  }, 120_000);

  it('a decode step of the transformer block runs its one-row build: two kernels (the norm in the first matmul)', async () => {
    const cp = compile(block.program);
    expect(allBuilds(cp).map((b) => `${b.version}: ${b.kernels.length}`)).toEqual(['general: 3', 'T=1: 2', 'T%16 D%4 H%4: 3', 'T%16: 3']);
    // the norm's statistic, one row's, is computed above the first kernel's thread guard by every
    // invocation: in a loop that reads the row a vec4 at a time (its start, 0, is aligned on
    // every path), then a scalar tail
    const one = allBuilds(cp).find((b) => b.version === 'T=1')!.kernels[0]!.kernel;
    const hoisted = one.body.filter((s): s is Extract<KStmt, { k: 'for' }> => s.k === 'for');
    const reads = (ss: readonly KStmt[], k: 'load' | 'load4') => {
      let n = 0;
      forEachKExpr(ss, (e) => {
        if (e.k === k && e.buf === 'x') n++;
      });
      return n;
    };
    expect(hoisted.map((l) => [reads(l.body, 'load4'), reads(l.body, 'load')])).toEqual([[1, 0], [0, 1]]);
    for (const { name, rt } of await testBackends()) {
      for (const [t, d, h] of [[1, 16, 24], [1, 6, 10], [16, 8, 12], [16, 6, 12], [5, 12, 20]] as const) {
        const ins = inputsFor(block, { T: t, D: d, H: h });
        expect(await checkOnBackend(cp, rt, ins, { rtol: 5e-4, atol: 5e-5 }), `${name} T${t} D${d} H${h}`).toBeNull();
      }
    }
  }, 120_000);

  it('is off with versions: false, under specialize or assume, and for programs without matmuls', () => {
    expect(compile(mm.program, { versions: false }).versions).toBeUndefined();
    expect(compile(mm.program, { specialize: { M: 8 } }).versions).toBeUndefined();
    expect(compile(mm.program, { assume: { M: 8 } }).versions).toBeUndefined();
    expect(compile(rows.program).versions).toBeUndefined();
    // a build whose kernels print like the general one's is not kept: M a constant leaves no token dim
    const fixed = D.kernel('fixed', { a: D.tensor('f32', [8, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b));
    expect(compile(fixed.program).versions).toBeUndefined();
  });

  it('assume: tests fold at compile time, and dispatch refuses dims that break it', async () => {
    const cp = compile(mm.program, { assume: { M: 8, N: 4, K: 4 }, params: { tm: 8, tn: 8, vec: 4 } });
    expect(cp.version).toBe('M%8 N%4 K%4');
    // whole tiles, and N, K multiples of 4: the vec4 path without its test or its scalar fallback
    expect(count(cp.kernels[0]!.kernel.body, (s) => s.k === 'for' && s.v === 'mr')).toBe(0);
    let scalarA = 0;
    forEachKExpr(cp.kernels[0]!.kernel.body, (e) => {
      if (e.k === 'load' && e.buf === 'a') scalarA++;
    });
    expect(scalarA).toBe(0);
    const rt = new JSRuntime({ boundsCheck: true });
    expect(await checkOnBackend(cp, rt, inputsFor(mm, { M: 16, N: 12, K: 8 }), { rtol: 2e-4, atol: 2e-5 })).toBeNull();
    await expect(execute(cp, rt, inputsFor(mm, { M: 12, N: 12, K: 8 }))).rejects.toThrow(/compiled assuming M is a multiple of 8 \(assume\) but is called with M = 12/);
    expect(() => compile(mm.program, { assume: { Q: 4 } })).toThrow(/E_ARG: assume: program 'mm' has no dim 'Q'/);
    expect(() => compile(mm.program, { assume: { M: 0 } })).toThrow(/positive integer/);
  });

  it('compileTuned keeps a version that tuned parameters bring in (a general build tuned to taller tiles)', async () => {
    // weights stored [N, K]: one-row tiles by default, so a build for aligned rows alone would print
    // like the general one and is not kept (aligning K too drops the scalar fallback: that one is)
    const linear = D.kernel('lin', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [N, K]) }, ({ x, w }) => D.matmul(x, w.T));
    const base = compile(linear.program);
    expect(allBuilds(base).map((b) => b.version)).toEqual(['general', 'M=1', 'M%16 K%4 N%4']);
    const dir = mkdtempSync(join(tmpdir(), 'tessera-versions-'));
    try {
      const device = 'js:test device';
      const params = { tiled: 0, tm: 4, tn: 4, vec: 4 };
      const key = tuneKey(printKernel(base.kernels[0]!.kernel), device, COMPILER_VERSION);
      writeRecord({ key, kernel: base.kernels[0]!.kernel.name, device, compiler: COMPILER_VERSION, entries: [{ dims: { M: 9, N: 8, K: 8 }, params, medianMs: 1, defaultMs: 2, timing: 'wall' }] }, dir);
      const tuned = compileTuned(linear.program, device, { cacheDir: dir });
      // the general build takes 4-row tiles (partial tiles now), so the aligned-rows build differs and is kept
      expect(allBuilds(tuned).map((b) => b.version)).toEqual(['general', 'M=1', 'M%16 K%4 N%4', 'M%16']);
      expect(tuned.kernels[0]!.kernel.schedule.params).toMatchObject(params);
      const rt = new JSRuntime({ boundsCheck: true });
      for (const [m, k] of [[1, 8], [9, 8], [16, 8], [16, 6]]) expect(await checkOnBackend(tuned, rt, inputsFor(linear, { M: m!, N: 8, K: k! }), { rtol: 2e-4, atol: 2e-5 }), `M=${m} K=${k}`).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('groupParams reach each build by name, and the tuner times the build that runs at its dims', async () => {
    // parameters for one build leave the others' kernels alone
    const only = compile(mm.program, { groupParams: (_g, _i, v) => (v === 'M%16' ? { tm: 4, tn: 4, vec: 4 } : undefined) });
    expect(allBuilds(only).map((b) => `${b.kernels[0]!.kernel.schedule.params['tm']}x${b.kernels[0]!.kernel.schedule.params['tn']}`)).toEqual(['8x8', '1x8', '8x8', '4x4']);
    const dir = mkdtempSync(join(tmpdir(), 'tessera-versions-'));
    try {
      const rt = new JSRuntime();
      const dims = { M: 16, N: 8, K: 8 };
      await tuneProgram(mm.program, rt, inputsFor(mm, dims), { cacheDir: dir, repeats: 1, candidates: (all) => all.filter((c) => !c.tiled && !c.coop).slice(0, 2) });
      const device = `${rt.info.kind}:${rt.info.description}`;
      const recorded = (b: ReturnType<typeof compile>) => readRecord(tuneKey(printKernel(b.kernels[0]!.kernel), device, COMPILER_VERSION), dir) !== undefined;
      const cp = compile(mm.program);
      expect(allBuilds(cp).map(recorded)).toEqual([false, false, true, false]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
