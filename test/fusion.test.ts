/** What fuses: kernel counts and schedules for the patterns the compiler promises to fuse. */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { compile, STAGES } from '../src/passes/pipeline.js';
import { simplify } from '../src/passes/simplify.js';
import { fuse } from '../src/passes/fuse.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const kinds = (def: D.KernelDef) => compile(def.program).kernels.map((k) => k.kernel.schedule.kind);

describe('fusion', () => {
  it('silu(x * a + b) is one elementwise kernel', () => {
    const def = D.kernel('chain', { x: D.tensor('f32', [M, N]), a: D.tensor('f32', [N]), b: D.tensor('f32', [N]) }, ({ x, a, b }) => x.mul(a).add(b).silu());
    expect(kinds(def)).toEqual(['elementwise']);
  });

  it('softmax, log_softmax, layernorm and rmsnorm are one row kernel each', () => {
    for (const f of [(x: D.Tensor) => D.softmax(x), (x: D.Tensor) => D.logSoftmax(x), (x: D.Tensor) => D.layernorm(x), (x: D.Tensor) => D.rmsnorm(x)]) {
      expect(kinds(D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => f(x)))).toEqual(['row']);
    }
  });

  it('softmax over a leading axis needs two kernels, never recomputes a reduction per element', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x, 0));
    const ks = kinds(def);
    expect(ks.length).toBeLessThanOrEqual(3);
    expect(ks).not.toContain('row');
  });

  it('matmul reads transposed operands in place and applies its epilogue (bias, activation, residual) to the accumulators', () => {
    const def = D.kernel('k', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [N, K]), bias: D.tensor('f32', [N]), r: D.tensor('f32', [M, N]) }, ({ a, w, bias, r }) =>
      D.matmul(a, w.T).add(bias).silu().add(r).cast('f16'));
    expect(kinds(def)).toEqual(['matmul']);
  });

  it('a matmul of any float dtype with B stored [K, N] defaults to 8x8 outputs per invocation; B read as [N, K] to one row by four columns', () => {
    const params = (t: 'f32' | 'f16' | 'bf16', transposed: boolean) => {
      const def = transposed
        ? D.kernel('mm', { a: D.tensor(t, [M, K]), b: D.tensor(t, [N, K]) }, ({ a, b }) => D.matmul(a, b.T))
        : D.kernel('mm', { a: D.tensor(t, [M, K]), b: D.tensor(t, [K, N]) }, ({ a, b }) => D.matmul(a, b));
      const { tm, tn, vec } = compile(def.program, { versions: false }).kernels[0]!.kernel.schedule.params;
      return { tm, tn, vec };
    };
    // (16-bit operands took one row by four columns too: 4-5x slower at 256-1024 on both software drivers)
    for (const t of ['f32', 'f16', 'bf16'] as const) {
      expect(params(t, false), t).toEqual({ tm: 8, tn: 8, vec: 4 });
      expect(params(t, true), `${t} transposed`).toEqual({ tm: 1, tn: 4, vec: 4 });
    }
  });

  it('a matmul whose result is also needed elsewhere is materialized, its consumers separate', () => {
    const def = D.kernel('k', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]) }, ({ a, w }) => {
      const y = D.matmul(a, w);
      return { y, z: y.relu() };
    });
    expect(kinds(def)).toEqual(['matmul', 'elementwise']);
  });

  it('cheap producers of a matmul operand are fused into its loads, expensive ones are computed once', () => {
    const cheap = D.kernel('k', { a: D.tensor('f32', [M, K]), s: D.tensor('f32', [K]), w: D.tensor('f32', [K, N]) }, ({ a, s, w }) => D.matmul(a.mul(s).exp(), w));
    expect(kinds(cheap)).toEqual(['matmul']);
    const costly = D.kernel('k', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]) }, ({ a, w }) => D.matmul(a.exp().tanh().sqrt(), w));
    expect(kinds(costly)).toEqual(['elementwise', 'matmul']);
  });

  it('rmsnorm -> matmul -> silu -> matmul -> residual is three kernels: the norm as a row kernel, two matmuls with epilogues', () => {
    const def = D.kernel('block', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w1: D.tensor('f32', [K, N]), w2: D.tensor('f32', [N, K]) }, ({ x, g, w1, w2 }) =>
      D.matmul(D.matmul(D.rmsnorm(x, g), w1).silu(), w2).add(x));
    expect(kinds(def)).toEqual(['row', 'matmul', 'matmul']);
    // the first matmul reads the normalized x the row kernel wrote: no prologue left in its loads
    const cp = compile(def.program);
    expect(cp.kernels[1]!.kernel.buffers.map((b) => b.name)).not.toContain('g');
    expect(cp.kernels[0]!.kernel.buffers.map((b) => b.name)).toEqual(expect.arrayContaining(['x', 'g']));
  });

  it('a normalized operand stays a prologue only while the other output dim is a small constant', () => {
    // the norm's statistic needs a kernel anyway: over a symbolic or wide N that kernel writes x * g / rms
    // once; over 16 columns (two tiles) the matmul recomputes x * g and scales its rows in the epilogue
    const wide = D.kernel('k', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w: D.tensor('f32', [K, 64]) }, ({ x, g, w }) => D.matmul(D.rmsnorm(x, g), w));
    expect(kinds(wide)).toEqual(['row', 'matmul']);
    const narrow = D.kernel('k', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w: D.tensor('f32', [K, 16]) }, ({ x, g, w }) => D.matmul(D.rmsnorm(x, g), w));
    expect(kinds(narrow)).toEqual(['reduce', 'matmul']);
    // B normalized: the other dim is M
    const bNorm = D.kernel('k', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [N, K]), g: D.tensor('f32', [K]) }, ({ a, w, g }) => D.matmul(a, D.rmsnorm(w, g).T));
    expect(kinds(bNorm)).toEqual(['row', 'matmul']);
    // without a weight the operand is x itself: the statistic's kernel and 1/rms in the epilogue
    const plain = D.kernel('k', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]) }, ({ x, w }) => D.matmul(D.rmsnorm(x), w));
    expect(kinds(plain)).toEqual(['reduce', 'matmul']);
    // one normalized x read by three projections is written once
    const qkv = D.kernel('k', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), wq: D.tensor('f32', [K, N]), wk: D.tensor('f32', [K, N]), wv: D.tensor('f32', [K, N]) }, ({ x, g, wq, wk, wv }) => {
      const n = D.rmsnorm(x, g);
      return D.matmul(n, wq).add(D.matmul(n, wk)).add(D.matmul(n, wv));
    });
    expect(kinds(qkv).filter((k) => k === 'row')).toHaveLength(1);
    // specialized to a few rows (a decode step), the matmul computes the norm's statistic for its own
    // rows: one kernel; from five rows on, the row kernel again
    const spec = (def: D.KernelDef, dims: Record<string, number>) => compile(def.program, { specialize: dims }).kernels.map((k) => k.kernel.schedule.kind);
    expect(spec(wide, { M: 1, K: 32 })).toEqual(['matmul']);
    expect(spec(wide, { M: 4, K: 32 })).toEqual(['matmul']);
    expect(spec(wide, { M: 5, K: 32 })).toEqual(['row', 'matmul']);
    // and a symbolic N specialized to a narrow one keeps the prologue
    expect(spec(qkv, { M: 64, K: 32, N: 8 }).filter((k) => k === 'row')).toHaveLength(0);
  });

  it('a decoding compute (unpack a packed word, scale) is fused into the matmul that reads it, and split-K schedules it as one kernel', () => {
    const q4 = D.kernel('q4', { x: D.tensor('f32', [M, K]), p: D.tensor('u32', [N, D.dim('KW')]), s: D.tensor('f32', [N, D.dim('G')]) }, ({ x, p, s }) =>
      D.matmul(x, D.compute([N, K], (n, k) => p.at(n, k.div(8)).shr(k.mod(8).mul(4).cast('u32')).bitand(15).cast('f32').sub(8).mul(s.at(n, k.div(32)))).T));
    expect(kinds(q4)).toEqual(['matmul']);
    expect(compile(q4.program, { params: { coop: 1 } }).kernels.map((k) => k.kernel.schedule.kind)).toEqual(['matmul_splitk']);
  });

  it('a compute without reductions is scheduled elementwise (several elements per invocation), one with reductions as a reduce', () => {
    const flip = D.kernel('flip', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.compute([M, N], (i, j) => x.at(i, D.dimv(N).sub(1).sub(j))));
    expect(kinds(flip)).toEqual(['elementwise']);
    const rows = D.kernel('rows', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.compute([M], (i) => D.reduceSum(N, (j) => x.at(i, j))));
    expect(kinds(rows)).toEqual(['reduce']);
  });

  it('an int4 GEMV with groups of 128 loops over whole groups: scale and zero once per group, 8 columns per invocation', async () => {
    const { intFormat, qlinearKernel } = await import('../src/quant/index.js');
    const q = intFormat.quantize(new Float32Array(16 * 300).map((_, i) => Math.sin(i)), 16, 300, { bits: 4, group: 128, symmetric: false });
    const k = compile(qlinearKernel(intFormat, q, 1).program).kernels[0]!.kernel;
    const loops: string[] = [];
    const walk = (ss: readonly import('../src/ir/kernel.js').KStmt[]): void => {
      for (const s of ss) {
        if (s.k === 'for') { loops.push(s.v); walk(s.body); }
        if (s.k === 'if') { walk(s.then); walk(s.else); }
      }
    };
    walk(k.body);
    expect(loops).toEqual(['kg', 'kq16', 'kk', 'k']); // whole groups, then whole chunks, then the tail
    expect(k.schedule.params['tn']).toBe(8);
  });

  it('one reduction used twice in a compute body is one node, computed once', () => {
    const def = D.kernel('twice', { x: D.tensor('f32', [M, N]) }, ({ x }) => {
      const mx = D.reduceMax(N, (j) => x.at(0, j));
      return D.compute([M, N], (i, j) => x.at(i, j).sub(mx).div(mx));
    });
    const expr = JSON.stringify(def.program.outputs[0]!.node.attrs.expr);
    expect(expr.match(/"k":"red"/g)?.length).toBe(2);
    expect(expr).not.toContain('"r1"');
  });

  it('an expensive elementwise value needed by two kernels is computed once', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => {
      const e = x.exp().tanh().exp();
      return { a: e.sum(0), b: e.max(1) };
    });
    expect(kinds(def)).toEqual(['elementwise', 'reduce', 'reduce']);
  });

  it('a row statistic returned beside a row kernel is written by that kernel (multi-output)', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ s: x.sum(1), y: x.sub(x.mean(1, true)) }));
    expect(compile(def.program).kernels.length).toBe(1);
  });

  it('simplify removes identities and folds constants, interning makes equal subgraphs one node', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M]) }, ({ x }) => x.mul(1).add(0).exp().add(x.exp()).neg().neg());
    const p = simplify(def.program);
    const ops: string[] = [];
    const walk = (n: (typeof p.outputs)[0]['node']) => { ops.push(n.op); n.args.forEach(walk); };
    walk(p.outputs[0]!.node);
    expect(ops).toEqual(['add', 'exp', 'input', 'exp', 'input']);
    expect(p.outputs[0]!.node.args[0]).toBe(p.outputs[0]!.node.args[1]);
  });

  it('temporaries reuse buffers once their readers have run', () => {
    const def = D.kernel('k', { a: D.tensor('f32', [N, N]) }, ({ a }) => D.matmul(D.matmul(D.matmul(D.matmul(a, a), a), a), a));
    const cp = compile(def.program);
    expect(cp.kernels.length).toBe(4);
    expect(cp.buffers.filter((b) => b.role === 'temp').length).toBe(2);
  });

  it('the pipeline dumps any stage and refuses an unknown one', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));
    const dumps: string[] = [];
    compile(def.program, { dumpAfter: [...STAGES], onDump: (s, t) => dumps.push(`${s}:${t}`) });
    expect(dumps.map((d) => d.split(':')[0])).toEqual([...STAGES]);
    expect(dumps[3]).toContain('for j0 in 0..');
    expect(() => compile(def.program, { dumpAfter: ['nope'] })).toThrow(/E_ARG/);
    expect(fuse(def.program).groups.length).toBe(1);
  });
});

describe('multi-output fusion', () => {
  it('independent results over one iteration space come from one kernel', () => {
    const ew = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ a: x.exp(), b: x.mul(2).add(1) }));
    expect(compile(ew.program).kernels.length).toBe(1);
    const rows = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ m: x.max(1), p: D.softmax(x), s: x.sum(1, true) }));
    const cp = compile(rows.program);
    expect(cp.kernels.map((k) => k.kernel.schedule.kind)).toEqual(['row']);
    expect(cp.kernels[0]!.kernel.buffers.filter((b) => b.access === 'read_write').length).toBe(3);
  });

  it('a result that depends on another is not merged with it', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => {
      const s = x.sum(0);
      return { s, y: x.add(s) };
    });
    expect(compile(def.program).kernels.length).toBe(2);
  });
});

describe('epilogue regressions', () => {
  it('an epilogue over a one-row matmul (every clamped row index the same) reads the right accumulator', async () => {
    const { testBackends } = await import('./helpers/backends.js');
    const { checkOnBackend } = await import('./helpers/compare.js');
    const def = D.kernel('gemv', { x: D.tensor('f32', [1, 5]), w: D.tensor('f32', [3, 5]), b: D.tensor('f32', [3]) }, ({ x, w, b }) => D.matmul(x, w.T).add(b).silu());
    const cp = compile(def.program);
    expect(cp.kernels.length).toBe(1);
    const inputs = { x: { shape: [1, 5], data: Float32Array.from([1, 2, 3, 4, 5]) }, w: { shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => (i % 4) - 1.5) }, b: { shape: [3], data: Float32Array.from([0.5, -1, 2]) } };
    for (const { name, rt } of await testBackends()) expect(await checkOnBackend(cp, rt, inputs, { rtol: 1e-5, atol: 1e-6 }), name).toBeNull();
  });
});

describe('epilogue placement', () => {
  it("a matmul tile's store guards and epilogue operands are computed after its K loop, not kept live across it", async () => {
    const { forEachKExpr, kstmtBodies } = await import('../src/ir/kernel.js');
    type Stmts = Parameters<typeof forEachKExpr>[0];
    const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
    const def = D.kernel('lin', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]), bias: D.tensor('f32', [N]) }, ({ x, w, bias }) => D.matmul(x, w).add(bias).silu());
    for (const opts of [{ versions: false }, { versions: false, assume: { M: 16, N: 4, K: 4 } }]) {
      for (const params of [{}, { tiled: 0, vec: 0, tm: 2, tn: 2 }, { sg: 1, vec: 4, tm: 4, tn: 4, workgroupSize: 8 }]) {
        const k = compile(def.program, { ...opts, groupParams: () => params }).kernels[0]!.kernel;
        let loops = 0;
        // every statement list holding a K loop: nothing before the loop reads the bias or is a bool
        const visit = (body: Stmts): void => {
          const at = body.findIndex((s) => s.k === 'for' && /^(k|kv|kc|kg)$/.test(s.v));
          if (at >= 0) {
            loops++;
            const before = body.slice(0, at);
            const why = `${JSON.stringify(opts)} ${JSON.stringify(params)}`;
            expect(before.filter((s) => s.k === 'let' && s.t === 'bool').length, why).toBe(0);
            forEachKExpr(before, (e) => expect(e.k === 'load' && e.buf === 'bias', why).toBe(false));
          }
          for (const s of body) for (const inner of kstmtBodies(s)) visit(inner);
        };
        visit(k.body);
        expect(loops).toBeGreaterThan(0);
      }
    }
  });
});
