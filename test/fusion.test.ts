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

  it('matmul reads transposed operands in place and its epilogue is a separate kernel', () => {
    const def = D.kernel('k', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [N, K]), bias: D.tensor('f32', [N]) }, ({ a, w, bias }) => D.matmul(a, w.T).add(bias));
    expect(kinds(def)).toEqual(['matmul', 'elementwise']);
  });

  it('an elementwise producer of a matmul operand is materialized (no recompute per output tile)', () => {
    const def = D.kernel('k', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]) }, ({ a, w }) => D.matmul(a.exp(), w));
    expect(kinds(def)).toEqual(['elementwise', 'matmul']);
  });

  it('a reduction shared by two outputs is computed where each needs it', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ s: x.sum(1), y: x.sub(x.mean(1, true)) }));
    expect(compile(def.program).kernels.length).toBe(2);
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
    const def = D.kernel('k', { a: D.tensor('f32', [N, N]) }, ({ a }) => D.matmul(D.matmul(D.matmul(a, a), a).exp(), a).exp());
    const cp = compile(def.program);
    expect(cp.kernels.length).toBe(5);
    expect(cp.buffers.filter((b) => b.role === 'temp').length).toBeLessThan(4);
  });

  it('the pipeline dumps any stage and refuses an unknown one', () => {
    const def = D.kernel('k', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));
    const dumps: string[] = [];
    compile(def.program, { dumpAfter: [...STAGES], onDump: (s, t) => dumps.push(`${s}:${t}`) });
    expect(dumps.map((d) => d.split(':')[0])).toEqual([...STAGES]);
    expect(dumps[3]).toContain('for j0 in 0..$N');
    expect(() => compile(def.program, { dumpAfter: ['nope'] })).toThrow(/E_ARG/);
    expect(fuse(def.program).groups.length).toBe(1);
  });
});
