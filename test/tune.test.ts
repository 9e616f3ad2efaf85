/** The autotuner: caches winners per kernel and device, never changes results, and every schedule variant it may pick is correct. */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { compile } from '../src/passes/pipeline.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { batchFor, candidatesFor, compileTuned, deviceCaps, SAMPLE_MS, tuneProgram, type Candidate } from '../src/tune/index.js';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { smokeRun } from './helpers/webgpu.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const block = D.kernel('block', { x: D.tensor('f32', [M, K]), g: D.tensor('f32', [K]), w: D.tensor('f32', [N, K]), b: D.tensor('f32', [N]) }, ({ x, g, w, b }) => ({
  y: D.softmax(D.matmul(D.rmsnorm(x, g), w.T).add(b).silu()),
  z: x.mul(2).add(1).tanh(),
}));

function inputs(m: number, n: number, k: number, seed = 1) {
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return {
    x: { shape: [m, k], data: Float32Array.from({ length: m * k }, r) },
    g: { shape: [k], data: Float32Array.from({ length: k }, r) },
    w: { shape: [n, k], data: Float32Array.from({ length: n * k }, r) },
    b: { shape: [n], data: Float32Array.from({ length: n }, r) },
  };
}

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe('autotuner', () => {
  it('tunes every kernel, caches the winners, and the tuned program matches the reference', async () => {
    for (const { name, rt } of backends) {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-tune-'));
      const ins = inputs(9, 13, 21);
      const steps: number[] = [];
      // Every candidate on the JS backend; on a driver a few per kernel (lavapipe compiles each
      // matmul candidate with LLVM, about 2 s with a cold shader cache; the variants are covered below).
      const narrow = name === 'js' ? {} : { candidates: (all: readonly Candidate[]) => all.slice(0, 3) };
      const first = await tuneProgram(block.program, rt, ins, { cacheDir: dir, repeats: 2, onProgress: (p) => steps.push(p.candidate), ...narrow });
      expect(first.length, name).toBe(compile(block.program).kernels.length);
      expect(first.every((k) => !k.cached && k.tried > 0 && k.rejected.length === 0), name).toBe(true);
      expect(steps.length, name).toBeGreaterThan(0);
      expect(readdirSync(dir).filter((f) => f.endsWith('.json')).length, name).toBe(first.length);
      const again = await tuneProgram(block.program, rt, ins, { cacheDir: dir, ...narrow });
      expect(again.every((k) => k.cached), name).toBe(true);
      const tuned = compileTuned(block.program, rt, { cacheDir: dir, dims: { M: 9, N: 13, K: 21 } });
      first.forEach((k, i) => expect(tuned.kernels[i]!.kernel.schedule.params, `${name} ${k.kernel}`).toMatchObject(k.best));
      // tuned at one shape, run at another: still correct
      for (const [m, n, k] of [[9, 13, 21], [1, 5, 3], [17, 4, 33]] as const) {
        expect(await checkOnBackend(tuned, rt, inputs(m, n, k, 7), { rtol: 1e-4, atol: 1e-5 }), `${name} ${m}x${n}x${k}`).toBeNull();
      }
    }
  });

  it('times a microsecond-scale kernel over a batch of launches per sample, the same batch for every candidate', async () => {
    expect([batchFor(2), batchFor(SAMPLE_MS), batchFor(0), batchFor(SAMPLE_MS / 10), batchFor(1e-9)]).toEqual([1, 1, 1, 10, 256]);
    const rt = new JSRuntime();
    let runs = 0;
    const run = rt.run.bind(rt);
    rt.run = (k, b, d) => {
      runs++;
      run(k, b, d);
    };
    const perSample: number[] = [];
    const time = rt.time.bind(rt);
    rt.time = (launches, repeats) => time(() => {
      const before = runs;
      launches();
      perSample.push(runs - before);
    }, repeats);
    const ew = D.kernel('tiny', { x: D.tensor('f32', [M]) }, ({ x }) => x.add(1));
    const [res] = await tuneProgram(ew.program, rt, { x: { shape: [8], data: new Float32Array(8) } }, { cacheDir: mkdtempSync(join(tmpdir(), 'tessera-tune-')), repeats: 2 });
    // a kernel over 8 elements takes microseconds on the CPU: the first sample (the probe) is one
    // launch, every later one a batch, the same for all
    expect(perSample[0]).toBe(1);
    const later = new Set(perSample.slice(3));
    expect(later.size).toBe(1);
    expect([...later][0]).toBeGreaterThan(1);
    expect(res!.tried).toBeGreaterThan(1);
  });

  it('keeps a winner only if it is still faster than the default when both are timed again', async () => {
    const ew = D.kernel('confirm', { x: D.tensor('f32', [M]) }, ({ x }) => x.add(1));
    const defText = printKernel(compile(ew.program).kernels[0]!.kernel);
    // a fake clock: the default always takes 1 ms; another kernel `first` ms the first time it is
    // timed (the search) and `later` ms after (the confirmation)
    const tuneWith = async (first: number, later: number) => {
      const rt = new JSRuntime();
      let current = '';
      const run = rt.run.bind(rt);
      rt.run = (k, b, d) => {
        current = printKernel(k);
        run(k, b, d);
      };
      const seen = new Map<string, number>();
      rt.time = async (launches) => {
        launches();
        const n = (seen.get(current) ?? 0) + 1;
        seen.set(current, n);
        return { medianMs: current === defText ? 1 : n === 1 ? first : later, source: 'device' as const };
      };
      const [res] = await tuneProgram(ew.program, rt, { x: { shape: [64], data: new Float32Array(64) } }, { cacheDir: mkdtempSync(join(tmpdir(), 'tessera-tune-')), repeats: 1 });
      return res!;
    };
    // looked faster once, slower when timed again: the default stays
    const lucky = await tuneWith(0.5, 2);
    expect(lucky.best).toEqual({});
    expect([lucky.bestMs, lucky.defaultMs]).toEqual([1, 1]);
    // faster both times: kept, with the confirmation's time
    const real = await tuneWith(0.5, 0.6);
    expect(Object.keys(real.best).length).toBeGreaterThan(0);
    expect([real.bestMs, real.defaultMs]).toEqual([0.6, 1]);
  });

  it('a narrowed search times only the chosen candidates, and its winners do not stand in for a full search', async () => {
    const rt = new JSRuntime();
    const dir = mkdtempSync(join(tmpdir(), 'tessera-tune-'));
    const ew = D.kernel('ew', { x: D.tensor('f32', [M]) }, ({ x }) => x.mul(2).add(1));
    const ins = { x: { shape: [64], data: new Float32Array(64).fill(1) } };
    const seen: string[] = [];
    const narrowed = await tuneProgram(ew.program, rt, ins, { cacheDir: dir, repeats: 1, candidates: (all, k) => (seen.push(k.kind), all.slice(0, 2)) });
    expect(seen).toEqual(['elementwise']);
    expect(narrowed.map((k) => [k.tried, k.cached])).toEqual([[2, false]]);
    // the same narrowing again takes the cache; a full search does not
    const again = await tuneProgram(ew.program, rt, ins, { cacheDir: dir, repeats: 1, candidates: (all) => all.slice(0, 2) });
    expect(again.map((k) => k.cached)).toEqual([true]);
    const full = await tuneProgram(ew.program, rt, ins, { cacheDir: dir, repeats: 1 });
    const group = compile(ew.program).kernels[0]!.group;
    expect(full.map((k) => [k.tried, k.cached])).toEqual([[candidatesFor(group, deviceCaps(rt.info), { M: 64 }).length, false]]);
    expect((await tuneProgram(ew.program, rt, ins, { cacheDir: dir, repeats: 1 })).map((k) => k.cached)).toEqual([true]);
  });

  it('leaves split-K out for matmuls with many rows when the shapes are known', () => {
    const mm = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b));
    const group = compile(mm.program).kernels[0]!.group;
    const coop = (dims?: Record<string, number>) => candidatesFor(group, {}, dims).filter((c) => c.coop).length;
    expect(coop()).toBeGreaterThan(0);
    expect(coop({ M: 4, N: 512, K: 512 })).toBeGreaterThan(0);
    expect(coop({ M: 512, N: 512, K: 512 })).toBe(0);
  });

  it('tries workgroups of 8 for launches too narrow to fill a device with workgroups of 64', () => {
    const mm = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b));
    const group = compile(mm.program).kernels[0]!.group;
    const eights = (dims?: Record<string, number>) => candidatesFor(group, {}, dims).filter((c) => c.workgroupSize === 8 && c.vec === 4);
    // one token over 344 columns: 1x8 tiles are 43 invocations
    expect(eights({ M: 1, N: 344, K: 128 }).map((c) => `${c.tm}x${c.tn}`)).toEqual(expect.arrayContaining(['1x4', '1x8']));
    expect(eights({ M: 1, N: 4096, K: 4096 })).toEqual([]);
    expect(eights({ M: 512, N: 512, K: 512 })).toEqual([]);
    expect(eights()).toEqual([]);
  });

  it('tunes a program specialized to its inputs\' dims and compiles it with the winners', async () => {
    const { name, rt } = backends[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'tessera-tune-'));
    const ins = inputs(6, 8, 12);
    const res = await tuneProgram(block.program, rt, ins, { cacheDir: dir, repeats: 1, specialize: true });
    // after the schedule candidates, one more: the winner with its dims kept as uniforms (the kernels
    // are those of the program specialized to the dims: fusion's cost model reads them)
    const dims = { M: 6, N: 8, K: 12 };
    const base = compile(block.program, { specialize: dims });
    res.forEach((k, i) => expect(k.tried).toBe(candidatesFor(base.kernels[i]!.group, deviceCaps(rt.info), dims).length + 1));
    const tuned = compileTuned(block.program, rt, { cacheDir: dir, dims, specialize: dims });
    expect(tuned.specialized).toEqual(dims);
    res.forEach((k, i) => expect(tuned.kernels[i]!.kernel.schedule.params, `${name} ${k.kernel}`).toMatchObject(k.best));
    expect(await checkOnBackend(tuned, rt, ins, { rtol: 1e-4, atol: 1e-5 }), name).toBeNull();
  });
});

/**
 * The candidates run on a WebGPU driver. Register-blocked, elementwise and one-invocation-per-row
 * candidates that differ only in workgroupSize print the same body with another
 * `@workgroup_size`: each such family runs at one of its sizes there (the size rotates from family
 * to family), and every candidate runs on the JS backend. Workgroup-cooperative candidates (coop, tiled), whose
 * size shapes the body, all run everywhere. lavapipe compiles each matmul candidate with LLVM in
 * about 2 s when its shader cache is cold, as on a fresh machine.
 */
function onDriver(cands: readonly Candidate[]): Candidate[] {
  const families = new Map<string, Candidate[]>();
  const out: Candidate[] = [];
  for (const c of cands) {
    if (c.coop || c.tiled) {
      out.push(c);
      continue;
    }
    const { workgroupSize: _ws, ...body } = c;
    const key = JSON.stringify(body);
    (families.get(key) ?? families.set(key, []).get(key)!).push(c);
  }
  [...families.values()].forEach((f, i) => out.push(f[i % f.length]!));
  return out;
}

describe('every schedule variant the tuner may pick matches the reference', () => {
  const programs = [
    D.kernel('ew', { x: D.tensor('f32', [M, N]), a: D.tensor('f32', [N]) }, ({ x, a }) => x.mul(a).add(1).silu()),
    D.kernel('row', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.layernorm(D.softmax(x))),
    D.kernel('red', { x: D.tensor('f32', [M, N]) }, ({ x }) => x.exp().sum(0)),
    D.kernel('arg', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ a: D.cast(D.floor(x.mul(3)).argmax(1), 'f32'), b: D.cast(x.argmin(0), 'f32'), m: x.min(1) })),
    D.kernel('stats', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ p: D.logSoftmax(x), s: x.sum(1), mx: x.max(1, true) })),
    D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]), c: D.tensor('f32', [N]) }, ({ a, b, c }) => D.matmul(a, b).add(c).relu()),
    D.kernel('bmm', { a: D.tensor('f32', [3, M, K]), b: D.tensor('f32', [N, K]) }, ({ a, b }) => D.matmul(a, b.T)),
    // B decoded from 4-bit codes packed 8 per word, with a scale per group of 4 (a quantized linear layer)
    D.kernel('q4', { a: D.tensor('f32', [M, K]), p: D.tensor('u32', [N, D.dim('KW')]), s: D.tensor('f32', [N, D.dim('G')]) }, ({ a, p, s }) =>
      D.matmul(a, D.compute([N, K], (n, k) => p.at(n, k.div(8)).shr(k.mod(8).mul(4).cast('u32')).bitand(15).cast('f32').sub(8).mul(s.at(n, k.div(4)))).T)),
  ];
  const shapes = smokeRun() ? [[7, 5, 3]] : [[1, 1, 1], [7, 5, 3], [13, 17, 9], [8, 12, 16]];
  // the decode program's K spans whole words and chunks plus a ragged tail
  const decodeShapes = smokeRun() ? [[3, 5, 19]] : [[1, 5, 19], [3, 4, 40]];
  for (const def of programs) {
    it(def.name, async () => {
      const dims = def.name === 'q4' ? decodeShapes : shapes;
      const base = compile(def.program);
      for (const [gi, ck] of base.kernels.entries()) {
        for (const { name, rt } of backends) for (const cand of (name === 'js' ? (c: Candidate[]) => c : onDriver)(candidatesFor(ck.group, deviceCaps(rt.info)))) {
          const cp = compile(def.program, { groupParams: (_g, i) => (i === gi ? cand : undefined) });
          for (const [m, n, k] of dims as [number, number, number][]) {
            const ins: Record<string, { shape: number[]; data: Float32Array | Uint32Array }> = {};
            for (const p of def.program.inputs) {
              const shape = p.shape.map((d) => (typeof d === 'number' ? d : ({ M: m, N: n, K: k, KW: Math.ceil(k / 8), G: Math.ceil(k / 4) } as Record<string, number>)[(d as { sym: string }).sym]!));
              const count = shape.reduce((a, b) => a * b, 1);
              ins[p.name] = p.dtype === 'u32'
                ? { shape, data: Uint32Array.from({ length: count }, (_, q) => (Math.imul(q + m, 2654435761) >>> 0)) }
                : { shape, data: Float32Array.from({ length: count }, (_, q) => Math.sin(q * 0.7 + m)) };
            }
            expect(await checkOnBackend(cp, rt, ins, { rtol: 1e-4, atol: 1e-5 }), `${def.name} kernel ${gi} ${JSON.stringify(cand)} ${m}x${n}x${k} on ${name}`).toBeNull();
          }
        }
      }
    }, 300_000);
  }
});
