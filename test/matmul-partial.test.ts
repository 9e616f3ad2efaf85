/**
 * Partial tiles of the register-blocked matmul: where M is symbolic, a tile with at most tm / 4 rows
 * left runs a one-row body per row (one decode token does one row's work, not tm rows'), any other
 * the whole tile. Every path (vec4 along N, vec4 along K, scalar; prologue and epilogue) against the
 * reference on every backend, at row counts on both sides of the threshold.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { forEachKExpr, kstmtBodies, type KStmt } from '../src/ir/kernel.js';
import { compile } from '../src/passes/pipeline.js';
import { printWGSL } from '../src/backends/wgsl/print.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const programs = [
  D.kernel('plain', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]) }, ({ x, w }) => D.matmul(x, w)),
  D.kernel('norm_silu', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w: D.tensor('f32', [K, N]), b: D.tensor('f32', [N]) }, ({ x, g, w, b }) => D.silu(D.matmul(D.rmsnorm(x, g), w).add(b))),
  D.kernel('nt', { x: D.tensor('f32', [M, K]), wt: D.tensor('f32', [N, K]) }, ({ x, wt }) => D.matmul(x, wt.T)),
];
const PARAMS = [{ tm: 8, tn: 8, vec: 4 }, { tm: 4, tn: 4, vec: 4 }, { tm: 8, tn: 4, vec: 0 }];

/** The loops over `mr` (the one-row bodies' row counter) in a kernel body. */
function rowLoops(ss: readonly KStmt[]): number {
  return ss.reduce((n, s) => n + (s.k === 'for' && s.v === 'mr' ? 1 : 0) + kstmtBodies(s).reduce((m, b) => m + rowLoops(b), 0), 0);
}

const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.9);

describe('partial matmul tiles', () => {
  it('runs one-row bodies for the last few rows and whole tiles otherwise, matching the reference on every backend', async () => {
    for (const { name, rt } of await testBackends()) {
      for (const def of programs) {
        for (const params of PARAMS) {
          const cp = compile(def.program, { params });
          // rows 1 and 2 take the one-row bodies of an 8-row tile, 3 and 11 (8 + 3) the whole tile
          for (const [m, n, k] of [[1, 12, 16], [2, 8, 20], [3, 8, 8], [11, 9, 7], [1, 5, 3]] as const) {
            const dims: Record<string, number> = { M: m, N: n, K: k };
            const ins: Record<string, { shape: number[]; data: Float32Array }> = {};
            def.program.inputs.forEach((p, i) => {
              const shape = p.shape.map((d) => (typeof d === 'number' ? d : dims[(d as { sym: string }).sym]!));
              ins[p.name] = { shape, data: data(shape.reduce((a, b) => a * b, 1), i) };
            });
            expect(await checkOnBackend(cp, rt, ins, { rtol: 2e-4, atol: 2e-5 }), `${def.name} ${name} ${m}x${n}x${k} ${JSON.stringify(params)}`).toBeNull();
          }
        }
      }
    }
  }, 120_000);

  it('has the one-row bodies only where M may leave a partial tile', () => {
    const k = (def: D.KernelDef, opts: Parameters<typeof compile>[1]) => compile(def.program, opts).kernels.find((c) => c.kernel.schedule.kind === 'matmul')!.kernel;
    const plain = programs[0]!;
    expect(rowLoops(k(plain, { params: { tm: 8, tn: 8, vec: 4 } }).body)).toBe(1);
    // specialized to a multiple of the tile height, or a one-row tile: no partial tiles
    expect(rowLoops(k(plain, { params: { tm: 8, tn: 8, vec: 4 }, specialize: { M: 16, N: 8, K: 8 } }).body)).toBe(0);
    expect(rowLoops(k(plain, { params: { tm: 1, tn: 8, vec: 4 } }).body)).toBe(0);
    // specialized to a height that is not a multiple: the edge tiles have their own rows
    expect(rowLoops(k(plain, { params: { tm: 8, tn: 8, vec: 4 }, specialize: { M: 17, N: 8, K: 8 } }).body)).toBe(1);
    // a tile as tall as a specialized M is cut to it
    const short = k(plain, { params: { tm: 8, tn: 8, vec: 4 }, specialize: { M: 3, N: 8, K: 8 } });
    expect(short.schedule.params['tm']).toBe(3);
    let loads = 0;
    forEachKExpr(short.body, (e) => {
      if (e.k === 'load4' && e.buf === 'x') loads++;
    });
    expect(loads).toBe(3);
  });

  it('indexes the one-row body\'s vec4 loads in vec4 units, as the tile body does (no shift per load)', () => {
    // the one-row body shares B's indices with the tile's body, so the kernel let-binds them: the
    // vec4 number must be what is bound, not the element index a backend then shifts back
    for (const def of programs) {
      const mm = compile(def.program, { params: { tm: 8, tn: 8, vec: 4 } }).kernels.find((c) => c.kernel.schedule.kind === 'matmul')!.kernel;
      let quads = 0;
      forEachKExpr(mm.body, (e) => {
        if (e.k !== 'load4') return;
        quads++;
        expect(e.index.k === 'bin' && e.index.op === 'mul' && e.index.b.k === 'lit' && e.index.b.v === 4, `${def.name}: ${JSON.stringify(e.index).slice(0, 120)}`).toBe(true);
      });
      expect(quads, def.name).toBeGreaterThan(0);
      expect(printWGSL(mm, { f16: false }), def.name).not.toMatch(/vec4<f32> = \w+\[[^\]]*>> 2u\];/);
    }
  });
});
