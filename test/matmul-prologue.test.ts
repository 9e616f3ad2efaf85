/**
 * Matmul prologues on the vec4 path: A read through elementwise ops is evaluated four k at a time
 * (vec4 loads where the index allows, lane-wise + - * /, per-lane fallback otherwise), and a per-row
 * factor of A (a norm's 1/rms) leaves the K loop for the epilogue. Every case against the reference
 * on every backend, at dims that take the vec4 path (multiples of 4) and dims that do not.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { compile } from '../src/passes/pipeline.js';
import { simplify } from '../src/passes/simplify.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { candidatesFor, deviceCaps } from '../src/tune/candidates.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const x = D.tensor('f32', [M, K]);
const w = D.tensor('f32', [K, N]);
const g = D.tensor('f32', [K]);
// A normalized operand is recomputed per tile only while the other output dim is a small constant
// (fusion's cost model; otherwise the norm's row kernel writes it once): 16 columns keep it a prologue.
const w16 = D.tensor('f32', [K, 16]);

const programs = [
  // rmsnorm prologue: x * (1/rms, per row) * g; the row factor moves to the epilogue
  D.kernel('norm_mm', { x, g, w: w16 }, ({ x, g, w }) => D.silu(D.matmul(D.rmsnorm(x, g, 1e-5), w))),
  // the same over a symbolic N: the norm's row kernel writes x * g / rms, the matmul reads it
  D.kernel('norm_row_mm', { x, g, w }, ({ x, g, w }) => D.matmul(D.rmsnorm(x, g, 1e-5), w).add(x.sum(-1, true))),
  // a column factor and a shift: (x - 0.5) * g, all lane-wise
  D.kernel('affine_mm', { x, g, w }, ({ x, g, w }) => D.matmul(x.sub(0.5).mul(g), w)),
  // exp is not lane-wise in the kernel IR: evaluated per lane
  D.kernel('exp_mm', { x, w }, ({ x, w }) => D.matmul(x.mul(0.25).exp(), w)),
  // A through a transpose: the index is not base + k, so per lane
  D.kernel('t_mm', { xt: D.tensor('f32', [K, M]), g, w }, ({ xt, g, w }) => D.matmul(xt.T.mul(g), w)),
  // a division by a per-row value and a layernorm
  D.kernel('ln_mm', { x, w: w16 }, ({ x, w }) => D.matmul(D.layernorm(x), w).add(1)),
  // B stored [N, K] (weights as [out, in]): the vec4 path along K, with and without a prologue
  D.kernel('nt_mm', { x, wt: D.tensor('f32', [N, K]) }, ({ x, wt }) => D.matmul(x, wt.T).relu()),
  D.kernel('nt_norm_mm', { x, g, wt: D.tensor('f32', [16, K]) }, ({ x, g, wt }) => D.matmul(D.rmsnorm(x, g), wt.T)),
  D.kernel('bnt_mm', { q: D.tensor('f32', [2, M, K]), kk: D.tensor('f32', [2, N, K]) }, ({ q, kk }) => D.matmul(q, kk.permute(0, 2, 1)).mul(0.5)),
  // f16 input: no vec4 loads from it, per-lane values
  D.kernel('h_mm', { x: D.tensor('f16', [M, K]), g, w }, ({ x, g, w }) => D.matmul(x.cast('f32').mul(g), w)),
];

const data = (shape: number[], seed: number) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + seed) * 0.9);

describe('matmul prologues on the vec4 path', () => {
  for (const def of programs) {
    it(`${def.name} matches the reference on every backend`, async () => {
      for (const { name, rt } of await testBackends()) {
        for (const [m, n, k] of [[5, 8, 12], [9, 12, 16], [3, 7, 5]] as const) {
          const dims: Record<string, number> = { M: m, N: n, K: k };
          const ins: Record<string, { shape: number[]; data: Float32Array }> = {};
          def.program.inputs.forEach((p, i) => {
            const shape = p.shape.map((d) => (typeof d === 'number' ? d : dims[(d as { sym: string }).sym]!));
            ins[p.name] = { shape, data: data(shape, i) };
          });
          for (const params of [{}, { vec: 4, tm: 4, tn: 4 }, { vec: 4, tm: 1, tn: 8, workgroupSize: 16 }, { vec: 4, tm: 3, tn: 4 }]) {
            const cp = compile(def.program, { params });
            expect(await checkOnBackend(cp, rt, ins, { rtol: 2e-4, atol: 2e-5 }), `${def.name} ${name} ${m}x${n}x${k} ${JSON.stringify(params)}`).toBeNull();
          }
        }
      }
    });
  }

  it('runs a matmul with B stored [N, K] along K with vec4 loads of both operands', () => {
    const mm = compile(programs.find((p) => p.name === 'nt_norm_mm')!.program).kernels.find((k) => k.kernel.schedule.kind === 'matmul')!.kernel;
    const text = printKernel(mm);
    expect(text).toMatch(/= wt\[.*\.\.\+4\]/);
    expect(text).toMatch(/= x\[.*\.\.\+4\]/);
    expect(text).toMatch(/fma4\(/);
  });

  it('vectorizes the rmsnorm prologue: vec4 loads of x and g, one lane-wise multiply, the row factor in the epilogue', () => {
    const cp = compile(programs[0]!.program);
    const mm = cp.kernels.find((k) => k.kernel.schedule.kind === 'matmul')!.kernel;
    const text = printKernel(mm);
    expect(text).toMatch(/= x\[.*\.\.\+4\]/);
    expect(text).toMatch(/= g\[.*\.\.\+4\]/);
    expect(text).toMatch(/mul4\(/);
    // the graph: the matmul's A is x * g; 1/rms multiplies the product
    const p = simplify(programs[0]!.program);
    const matmuls: string[] = [];
    const seen = new Set<unknown>();
    const walk = (n: (typeof p.outputs)[number]['node']): void => {
      if (seen.has(n)) return;
      seen.add(n);
      if (n.op === 'matmul') matmuls.push(n.args[0]!.op);
      n.args.forEach(walk);
    };
    p.outputs.forEach((o) => walk(o.node));
    expect(matmuls).toEqual(['mul']);
    const mmNode = [...seen].find((n) => (n as { op: string }).op === 'matmul') as (typeof p.outputs)[number]['node'];
    const a = mmNode.args[0]!;
    expect(a.args.map((f) => f.op).sort()).toEqual(['expand', 'input']); // x * expand(g): no per-row factor left
  });

  it('specialized to a few rows (decode), the norm\'s statistic is computed in the first matmul: two kernels, every schedule on JS, a sample on the drivers', async () => {
    const def = D.kernel('dec_block', { x, g, w, w2: D.tensor('f32', [N, K]) }, ({ x, g, w, w2 }) => x.add(D.matmul(D.silu(D.matmul(D.rmsnorm(x, g, 1e-5), w)), w2)));
    for (const { name, rt } of await testBackends()) {
      for (const [m, n, k] of [[1, 12, 20], [3, 9, 13]] as const) {
        const dims = { M: m, N: n, K: k };
        const ins = {
          x: { shape: [m, k], data: data([m, k], 1) },
          g: { shape: [k], data: data([k], 2) },
          w: { shape: [k, n], data: data([k, n], 3) },
          w2: { shape: [n, k], data: data([n, k], 4) },
        };
        const base = compile(def.program, { specialize: dims });
        expect(base.kernels.map((c) => c.kernel.schedule.kind), `${m} rows`).toEqual(['matmul', 'matmul']);
        const cands = candidatesFor(base.kernels[0]!.group, deviceCaps(rt.info));
        // the default, then every candidate (JS) or one of each schedule family (a driver compiles each)
        const picked = name === 'js' ? cands : [cands.find((c) => c.coop === 1), cands.find((c) => c.tiled === 1), cands.find((c) => c.vec === 4 && c.tm === 8), cands.find((c) => c.vec === 0)];
        for (const cand of [undefined, ...picked]) {
          const cp = compile(def.program, { specialize: dims, groupParams: (_g, i) => (i === 0 ? cand : undefined) });
          expect(await checkOnBackend(cp, rt, ins, { rtol: 2e-4, atol: 2e-5 }), `${name} ${m}x${n}x${k} ${JSON.stringify(cand)}`).toBeNull();
        }
      }
    }
    // more rows: the norm's row kernel writes the operand, as with a symbolic M
    expect(compile(def.program, { specialize: { M: 5, N: 64, K: 20 } }).kernels.map((c) => c.kernel.schedule.kind)).toEqual(['row', 'matmul', 'matmul']);
  });
});
