/**
 * In-place updates (memory.ts inPlaceReads): a kernel writes its result over a temporary it is the
 * last to read when it reads that temporary only at the element it writes (elementwise chains,
 * matmul epilogues, a row kernel's reductions of its own row). The plan then needs fewer buffers, the
 * kernel binds the temporary once (read_write), and results still equal the reference on every
 * backend. Reads through a view or as a matmul operand are never overwritten.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { compile } from '../src/passes/pipeline.js';
import type { CompiledProgram } from '../src/passes/pipeline.js';
import type { HostTensor } from '../src/runtime/execute.js';
import { buildManifest } from '../src/cli/manifest.js';
import { loadWGSLPrinter } from '../src/cli/backends.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';

const [M, K, N] = [D.dim('M'), D.dim('K'), D.dim('N')];
const tensor = (shape: number[], seed: number): HostTensor => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, q) => Math.sin(q * 0.37 + seed) * 1.5) });

// softmax(q k) v: the softmax writes over the scores it reads
const attention = D.kernel('attention', { q: D.tensor('f32', [M, K]), k: D.tensor('f32', [K, N]), v: D.tensor('f32', [N, K]) }, ({ q, k, v }) => D.matmul(D.softmax(D.matmul(q, k)), v));
// a column max (its own kernel), then exp(exp(t - max)) over t: an elementwise kernel with a
// broadcast read (too costly to recompute as the next matmul's prologue)
const centered = D.kernel('centered', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]), v: D.tensor('f32', [N, K]) }, ({ x, w, v }) => {
  const t = D.matmul(x, w);
  return D.matmul(D.exp(D.exp(D.sub(t, t.max(0, true)))), v);
});
// a matmul epilogue adding a temporary residual: the sum is written over the residual
const residual = D.kernel('residual', { x: D.tensor('f32', [M, K]), w1: D.tensor('f32', [K, N]), w2: D.tensor('f32', [K, N]), w3: D.tensor('f32', [N, K]) }, ({ x, w1, w2, w3 }) => {
  const r = D.relu(D.matmul(x, w1));
  return D.matmul(D.add(D.matmul(x, w2), r), w3);
});
// not in place: the temporary is also the matmul's A operand (read at other rows)
const operand = D.kernel('operand', { x: D.tensor('f32', [M, N]), w1: D.tensor('f32', [N, N]), w2: D.tensor('f32', [N, N]), w3: D.tensor('f32', [N, N]) }, ({ x, w1, w2, w3 }) => {
  const r = D.relu(D.matmul(x, w1));
  return D.matmul(D.add(D.matmul(r, w2), r), w3);
});
// not in place: the temporary is read transposed
const transposed = D.kernel('transposed', { x: D.tensor('f32', [N, N]), w: D.tensor('f32', [N, N]) }, ({ x, w }) => {
  const t = D.matmul(x, w);
  return D.matmul(D.exp(D.exp(D.transpose(t))), w);
});

const inPlaceKernels = (cp: CompiledProgram) => cp.kernels.filter((k) => k.kernel.buffers.some((b) => b.inPlace)).map((k) => k.kernel);
const temps = (cp: CompiledProgram) => cp.buffers.filter((b) => b.role === 'temp').length;

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe('in-place updates', () => {
  it('a row kernel, an elementwise kernel and a matmul epilogue write over the temporary they read last', () => {
    // temporaries left: the scores; the product and its column max; the residual
    for (const [def, kind, left] of [[attention, 'row', 1], [centered, 'elementwise', 2], [residual, 'matmul', 1]] as const) {
      const cp = compile(def.program);
      const [k, ...more] = inPlaceKernels(cp);
      expect(more, def.name).toEqual([]);
      expect(k?.schedule.kind, def.name).toBe(kind);
      // one binding, read and written
      const bound = k!.buffers.filter((b) => b.inPlace);
      expect(bound.length).toBe(1);
      expect(bound[0]!.access).toBe('read_write');
      expect(new Set(k!.buffers.map((b) => b.name)).size).toBe(k!.buffers.length);
      expect(temps(cp), def.name).toBe(left);
    }
  });

  it('never overwrites a matmul operand or a transposed read', () => {
    for (const def of [operand, transposed]) {
      const cp = compile(def.program);
      expect(inPlaceKernels(cp), def.name).toEqual([]);
      expect(temps(cp), def.name).toBe(2);
    }
  });

  it('the manifest counts an in-place buffer as read and written', async () => {
    const cp = compile(attention.program, { specialize: { M: 4, K: 8, N: 12 } });
    const m = buildManifest(cp, ['wgsl'], await loadWGSLPrinter());
    const row = m.kernels.find((k) => k.bindings.length === 1)!;
    expect(row.bytesRead).toBe('4*M*N');
    expect(row.bytesWritten).toBe('4*M*N');
  });

  it('results equal the reference on every backend (rows a multiple of 4 and not, every schedule kind)', async () => {
    for (const [m, k, n] of [[3, 5, 7], [4, 8, 12], [9, 16, 20]] as const) {
      const cases: [D.KernelDef, Record<string, HostTensor>][] = [
        [attention, { q: tensor([m, k], 1), k: tensor([k, n], 2), v: tensor([n, k], 3) }],
        [centered, { x: tensor([m, k], 4), w: tensor([k, n], 5), v: tensor([n, k], 6) }],
        [residual, { x: tensor([m, k], 7), w1: tensor([k, n], 8), w2: tensor([k, n], 9), w3: tensor([n, k], 10) }],
        [operand, { x: tensor([m, n], 11), w1: tensor([n, n], 12), w2: tensor([n, n], 13), w3: tensor([n, n], 14) }],
        [transposed, { x: tensor([n, n], 15), w: tensor([n, n], 16) }],
      ];
      for (const [def, ins] of cases) {
        for (const params of [{}, { ur: 1, vec: 0, perThread: 1, tm: 1, tn: 1 }, { tiled: 1 }]) {
          const cp = compile(def.program, { params });
          for (const { name, rt } of backends) expect(await checkOnBackend(cp, rt, ins, { rtol: 1e-4, atol: 1e-5 }), `${def.name} ${m}x${k}x${n} ${JSON.stringify(params)} on ${name}`).toBeNull();
        }
      }
    }
  });
});
