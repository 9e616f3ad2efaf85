/**
 * Launch chaining (src/passes/chain.ts): which kernels join a chain, what the chained kernel binds
 * and prints, and chained programs against the reference on every backend, at the dims they were
 * chained for and at dims whose launches outgrow the workgroup (the phases' loops stride).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { printCudaKernel } from '../src/backends/cuda/print.js';
import { printWGSL } from '../src/backends/wgsl/print.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { allBuilds, compile, kernelGroups, selectVersion } from '../src/passes/pipeline.js';
import { loadWGSLPrinter } from '../src/cli/backends.js';
import { buildManifest } from '../src/cli/manifest.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { inputsFor } from './helpers/inputs.js';
import { ffnBlock } from './helpers/programs.js';

const DECODE = { T: 1, D: 32, H: 88 };
const TOL = { rtol: 2e-4, atol: 2e-5 };

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe('launch chaining', () => {
  it("joins a decode step's kernels into one kernel of one workgroup, with storage barriers between them", () => {
    const cp = compile(ffnBlock.program, { chain: { dims: DECODE } });
    const one = selectVersion(cp, DECODE);
    const plain = selectVersion(compile(ffnBlock.program), DECODE);
    expect(plain.kernels.length).toBe(2);
    expect(one.kernels.length).toBe(1);
    const k = one.kernels[0]!;
    expect(k.kernel.schedule).toEqual({ kind: 'chain', params: { kernels: 2, workgroupSize: 32 } });
    expect(k.kernel.name).toBe('ffn_chain0__T1');
    expect(k.kernel.threads).toBe(32);
    expect(kernelGroups(k)).toEqual(plain.kernels.map((x) => x.group));
    // the intermediate is written by the first phase and read by the second: bound once, read-write
    const mid = plain.kernels[0]!.bindings.find((b) => plain.kernels[1]!.bindings.includes(b) && !['x', 'g', 'w1', 'w2'].includes(b))!;
    expect(k.kernel.buffers.find((b) => b.name === mid)).toMatchObject({ access: 'read_write', inPlace: true });
    expect(k.bindings).toEqual(k.kernel.buffers.map((b) => b.name));
    const text = printKernel(k.kernel);
    expect(text.match(/barrier storage/g)?.length).toBe(1);
    expect(printWGSL(k.kernel, { f16: false })).toContain('storageBarrier();');
    expect(printCudaKernel(k.kernel)).toContain('__syncthreads();');
    // only the build dispatch picks at those dims chains: the others run at other dims
    expect(allBuilds(cp).map((b) => [b.version, b.kernels.some((x) => x.kernel.schedule.kind === 'chain')])).toEqual(allBuilds(cp).map((b) => [b.version, b === one]));
    // a prefill's kernels launch too many invocations (128 / 8 x 344 / 8)
    const prefill = compile(ffnBlock.program, { chain: { dims: { T: 128, D: 128, H: 344 } } });
    expect(prefill.kernels.map((x) => x.kernel.schedule.kind)).not.toContain('chain');
  });

  it('dumps the chained kernels of every build after the chain stage', () => {
    const dumps: string[] = [];
    compile(ffnBlock.program, { chain: { dims: DECODE }, dumpAfter: ['chain'], onDump: (s, t) => dumps.push(`${s}:${t}`) });
    expect(dumps).toHaveLength(1);
    expect(dumps[0]).toMatch(/^chain:\/\/ build T=1\nkernel ffn_chain0__T1 \[chain kernels=2 workgroupSize=32\]/);
    expect(dumps[0]).toContain('barrier storage');
    const none: string[] = [];
    compile(ffnBlock.program, { chain: { dims: { T: 128, D: 128, H: 344 } }, dumpAfter: ['chain'], onDump: (_s, t) => none.push(t) });
    compile(ffnBlock.program, { dumpAfter: ['chain'], onDump: (_s, t) => none.push(t) });
    expect(none).toEqual(['// no kernels chained: no run of two or more launches small enough at these dims', '// launch chaining off (CompileOptions.chain, --chain)']);
  });

  it('leaves kernels whose launch size the dims do not fix, big launches and workgroup-dependent kernels alone', () => {
    // no dims: the one-token build's launch sizes depend on D and H
    expect(allBuilds(compile(ffnBlock.program, { chain: {} })).flatMap((b) => b.kernels.map((k) => k.kernel.schedule.kind))).not.toContain('chain');
    // below 40 invocations: the first matmul (88 / 8 = 11 invocations) and the second (32 / 8 = 4) chain; below 8, not the first
    expect(selectVersion(compile(ffnBlock.program, { chain: { dims: DECODE, below: 12 } }), DECODE).kernels.length).toBe(1);
    expect(selectVersion(compile(ffnBlock.program, { chain: { dims: DECODE, below: 8 } }), DECODE).kernels.length).toBe(2);
    // a cooperative row kernel (a workgroup per row, barriers) ends a chain
    const [R, C] = [D.dim('R'), D.dim('C')];
    const soft = D.kernel('soft', { x: D.tensor('f32', [R, C]) }, ({ x }) => D.softmax(x.mul(2), -1).add(1).exp());
    const coop = compile(soft.program, { versions: false, params: { coop: 1, workgroupSize: 32 }, chain: { dims: { R: 2, C: 8 } } });
    expect(coop.kernels.map((k) => k.kernel.schedule.kind)).not.toContain('chain');
  });

  it("refuses chain dims the program does not have and a bound below two invocations", () => {
    expect(() => compile(ffnBlock.program, { chain: { dims: { T: 1, t: 1 } } })).toThrow("E_ARG: chain: program 'ffn' has no dim 't' (dims: T, D, H)");
    expect(() => compile(ffnBlock.program, { chain: { dims: DECODE, below: 0 } })).toThrow('chain: below must be an integer >= 2 (invocations per launch), got 0');
    expect(() => compile(ffnBlock.program, { chain: { dims: { T: 0 } } })).toThrow('chain: dim T must be a positive integer, got 0');
  });

  it('stops a chain before it binds more buffers than the target allows', () => {
    const [N] = [D.dim('N')];
    const ins = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => [n, D.tensor('f32', [N, N])]));
    // three matmuls in a row, each reading two fresh inputs
    const p = D.kernel('wide', ins, ({ a, b, c, d, e, f }) => D.matmul(D.matmul(D.matmul(a!, b!), c!).add(d!), e!).add(f!));
    const dims = { N: 8 };
    // nine buffers: the six inputs, two temporaries and the output
    const all = compile(p.program, { versions: false, chain: { dims }, maxStorageBuffers: 9 });
    expect(all.kernels.length).toBe(1);
    const narrow = compile(p.program, { versions: false, chain: { dims }, maxStorageBuffers: 5 });
    for (const k of narrow.kernels) expect(k.kernel.buffers.length).toBeLessThanOrEqual(5);
    expect(narrow.kernels.flatMap(kernelGroups).length).toBe(all.kernels.flatMap(kernelGroups).length);
    expect(narrow.kernels.length).toBeGreaterThan(1);
  });

  it('reports the FLOPs of every chained group in the manifest', async () => {
    const wgsl = await loadWGSLPrinter();
    const plain = buildManifest(compile(ffnBlock.program, { specialize: DECODE }), ['wgsl'], wgsl);
    const chained = buildManifest(compile(ffnBlock.program, { specialize: DECODE, chain: {} }), ['wgsl'], wgsl);
    expect(chained.kernels.length).toBe(1);
    // a cost polynomial at the decode dims
    const at = (poly: string | undefined) => Number(new Function(...Object.keys(DECODE), `return ${poly}`)(...Object.values(DECODE)));
    expect(plain.kernels.length).toBe(2);
    expect(at(chained.kernels[0]!.flops)).toBe(plain.kernels.reduce((s, k) => s + at(k.flops), 0));
  });

  it('runs chained programs like the reference on every backend, at the dims chained for and at dims that outgrow the workgroup', async () => {
    const cases: [string, Record<string, number>][] = [
      ['decode', DECODE],
      // every phase loops: launches of 300 / 8 and 96 / 8 invocations over a workgroup of 32
      ['outgrown', { T: 1, D: 96, H: 300 }],
      // odd sizes: scalar paths, partial tiles
      ['odd', { T: 1, D: 7, H: 13 }],
    ];
    const cp = compile(ffnBlock.program, { chain: { dims: DECODE } });
    expect(selectVersion(cp, cases[1]![1]).kernels.length).toBe(1);
    for (const { name, rt } of backends) {
      for (const [label, dims] of cases) {
        const m = await checkOnBackend(cp, rt, inputsFor(ffnBlock, dims), TOL, dims);
        expect(m, `${name} ${label}`).toBeNull();
      }
    }
    // a chain of elementwise and row kernels around a matmul, specialized
    const [R, C] = [D.dim('R'), D.dim('C')];
    const mixed = D.kernel('mixed', { x: D.tensor('f32', [R, C]), w: D.tensor('f32', [C, C]) }, ({ x, w }) => D.softmax(D.matmul(D.layernorm(x), w), -1).mul(x));
    const dims = { R: 3, C: 20 };
    const cm = compile(mixed.program, { specialize: dims, chain: {} });
    expect(cm.kernels.length).toBe(1);
    expect(cm.kernels[0]!.kernel.schedule.params['kernels']).toBeGreaterThan(1);
    for (const { name, rt } of backends) expect(await checkOnBackend(cm, rt, inputsFor(mixed, dims), TOL, dims), name).toBeNull();
  });
});
