/**
 * The technique library against its references: every op compiles, runs on the JS backend (and on
 * WebGPU when the worker has an adapter, see helpers/webgpu.ts) at its sample dims and at awkward
 * dims (1 and primes), and matches its float64 reference; the direct references agree with the
 * reference interpreter run on the DSL program; kernel counts are pinned where fusion promises them.
 */
import { describe, expect, it } from 'vitest';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { compile } from '../src/passes/pipeline.js';
import { evalProgram, refMismatch } from '../src/ref/index.js';
import { runBench } from '../bench/run.js';
import { testBackends } from './helpers/backends.js';
import { awkwardDims, describeMismatch, dimNames, ioBytes, library, makeInputs, opByName, refInputs, runOp, type OpSpec } from '../ops/index.js';

const rt = new JSRuntime();
const backends = await testBackends();
/** Schedule parameters off the defaults: tiles that do not divide the dims, tiny workgroups. */
const PARAM_VARIANTS = [{ tm: 1, tn: 1 }, { tm: 3, tn: 5 }, { tm: 8, tn: 2 }, { uk: 4 }, { uk: 3, tm: 2, tn: 3 }, { perThread: 1 }, { perThread: 3, workgroupSize: 7 }, { workgroupSize: 1 }];

describe('ops library', () => {
  it('has unique names, every family, and specs that describe their dims', () => {
    const names = library.map((op) => op.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(library.map((op) => op.family))).toEqual(new Set(['norms', 'softmax', 'activations', 'matmul', 'quant']));
    for (const op of library) {
      const syms = dimNames(op.def).sort();
      expect(Object.keys(op.sampleDims).sort(), op.name).toEqual(syms);
      expect(Object.keys(op.benchDims).sort(), op.name).toEqual(syms);
      expect(op.flops(op.sampleDims), op.name).toBeGreaterThan(0);
      expect(op.bytes(op.sampleDims), op.name).toBe(ioBytes(op.def, op.sampleDims));
    }
  });

  it('reports kernels per op', () => {
    const counts = Object.fromEntries(library.map((op) => [op.name, compile(op.def.program).kernels.length]));
    console.log(`kernels per op: ${Object.entries(counts).map(([n, c]) => `${n}=${c}`).join(' ')}`);
    for (const op of library) if (op.maxKernels !== undefined) expect(counts[op.name], op.name).toBeLessThanOrEqual(op.maxKernels);
    expect(counts['softmax']).toBeLessThanOrEqual(2);
    expect(counts['rmsnorm']).toBeLessThanOrEqual(2);
    expect(counts['silu_chain']).toBe(1);
  });
});

describe.each(library.map((op): [string, OpSpec] => [op.name, op]))('%s', (_, op) => {
  it('matches the reference interpreter on its own program (the direct reference is right)', () => {
    const ins = refInputs(op, makeInputs(op, op.sampleDims, 7));
    const direct = op.reference(ins);
    const interpreted = evalProgram(op.def.program, ins);
    for (const o of op.def.program.outputs) {
      // Both are float64: they differ only by summation order and eps rounding.
      expect(refMismatch(direct[o.name]!.data, interpreted[o.name]!, 1e-9, 1e-9), o.name).toBeNull();
    }
  });

  describe.each(backends.map((b) => [b.name, b.rt] as const))('on %s', (_b, backend) => {
    it('matches at its sample dims', async () => {
      const run = await runOp(op, backend, op.sampleDims);
      expect(describeMismatch(op, op.sampleDims, run)).toBeNull();
    });

    it.each(awkwardDims(op).map((d) => [JSON.stringify(d), d] as const))('matches at %s', async (_d, dims) => {
      const compiled = compile(op.def.program);
      for (const seed of [1, 2]) {
        const run = await runOp(op, backend, dims, { seed, compiled });
        expect(describeMismatch(op, dims, run)).toBeNull();
      }
    });
  });

  it('matches on the JS backend under other schedule parameters', async () => {
    for (const params of PARAM_VARIANTS) {
      for (const dims of [op.sampleDims, ...awkwardDims(op)]) {
        const run = await runOp(op, rt, dims, { compile: { params } });
        expect(describeMismatch(op, dims, run), JSON.stringify(params)).toBeNull();
      }
    }
  });
});

describe('harness', () => {
  it('generates the same inputs for the same seed and different ones for another', () => {
    const op = opByName('softmax')!;
    const a = makeInputs(op, op.sampleDims, 3)['x']!.data;
    expect(makeInputs(op, op.sampleDims, 3)['x']!.data).toEqual(a);
    expect(makeInputs(op, op.sampleDims, 4)['x']!.data).not.toEqual(a);
  });

  it('catches a wrong result', async () => {
    const op = opByName('rmsnorm')!;
    const broken: OpSpec = { ...op, reference: (ins) => { const r = op.reference(ins); r['out']!.data[3]! += 0.01; return r; } };
    const run = await runOp(broken, rt, op.sampleDims);
    expect(describeMismatch(broken, op.sampleDims, run)).toMatch(/rmsnorm .* out at \[0, 3\]/);
  });
});

describe('bench/run.ts --quick', () => {
  it('compiles every op, checks and times every case on the JS backend (numbers are not asserted)', async () => {
    const lines: string[] = [];
    const r = await runBench({ backend: 'js', quick: true, out: null, log: (l) => lines.push(l) });
    expect(r.compile.perOp.map((p) => p.op)).toEqual(library.map((op) => op.name));
    expect(r.throughput.map((c) => c.op)).toEqual(expect.arrayContaining(['silu_chain', 'softmax', 'matmul']));
    for (const c of r.throughput) {
      expect(c.check, c.label).toBe('ok');
      expect(c.medianMs, c.label).toBeGreaterThan(0);
    }
    expect(lines.join('\n')).toMatch(/per kernel: median .* ms/);
    for (const p of r.compile.perOp) expect(p.perKernelMs).toBeCloseTo(p.medianMs / p.kernels, 9);
    expect(r.file).toBeUndefined();
  });
});
