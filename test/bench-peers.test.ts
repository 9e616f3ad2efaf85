/**
 * The side-by-side benchmark's own correctness, without timing: at tiny sizes every hand-written
 * WGSL variant and Tessera (fused and, for the block chain, unfused) match the float64 references
 * the benchmark checks the peers against; the references agree with Tessera's reference
 * interpreter; the ONNX writer and the SVG chart produce well-formed output.
 */
import { describe, expect, it } from 'vitest';
import { renderChart } from '../bench/chart.js';
import { handImpl, handVariants } from '../bench/hand/runner.js';
import { blockCase, compareOutputs, gemvCase, layernormCase, matmulCase, selectCases, softmaxCase, standardCases, type TesseraCase } from '../bench/peers/cases.js';
import { onnxModel } from '../bench/peers/onnx.js';
import { compileUntuned, tesseraChainedImpl, tesseraImpl, tesseraUnfusedImpl } from '../bench/peers/tessera.js';
import { COMPILER_VERSION } from '../src/tune/index.js';
import type { Impl, ImplContext } from '../bench/peers/types.js';
import { chartData, parseArgs, withRatios, type ImplResult } from '../bench/side-by-side.js';
import { evalProgram, refFromHost } from '../src/ref/index.js';
import { getTestWebGPU } from './helpers/webgpu.js';

const tiny = (): TesseraCase[] => [matmulCase(16), matmulCase(32, 3), gemvCase(24, 32), softmaxCase(5, 64), layernormCase(6, 32), blockCase(4, 16, 24)];

describe('side-by-side cases', () => {
  it('float64 references agree with the reference interpreter on the Tessera programs', () => {
    for (const c of tiny()) {
      const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, refFromHost('f32', t.shape, t.data)]));
      const out = Object.values(evalProgram(c.def.program, inputs, c.dims))[0]!;
      const check = c.compare(out.data);
      expect(check.firstBad, c.id).toBeUndefined();
    }
  });

  it('compareOutputs flags NaN, length and tolerance', () => {
    const want = new Float64Array([1, 2, 3]);
    expect(compareOutputs([1, 2, 3], want, { rtol: 0, atol: 0 }).worst).toBe(0);
    expect(compareOutputs([1, 2, 3.1], want, { rtol: 0, atol: 0.01 }).firstBad).toMatch(/element 2/);
    expect(compareOutputs([1, NaN, 3], want, { rtol: 1, atol: 1 }).worst).toBe(Infinity);
    expect(compareOutputs([1, 2], want, { rtol: 1, atol: 1 }).firstBad).toMatch(/2 values/);
  });

  it('selects cases by id or family and rejects unknown names', () => {
    const all = standardCases(true);
    expect(selectCases(all, ['matmul']).map((c) => c.family)).toEqual(['matmul', 'matmul', 'matmul']);
    expect(selectCases(all, ['gemv-1024x1024']).length).toBe(1);
    expect(() => selectCases(all, ['conv'])).toThrow(/unknown case/);
  });

  it('parses the command line', () => {
    expect(parseArgs(['--quick'])).toMatchObject({ quick: true, out: null, cases: [] });
    expect(parseArgs(['--cases', 'matmul,gemv', '--impls=tessera,hand', '--rounds', '5'])).toMatchObject({ quick: false, out: 'default', cases: ['matmul', 'gemv'], impls: ['tessera', 'hand'], rounds: 5 });
    expect(() => parseArgs(['--impls', 'torch'])).toThrow(/unknown/);
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown argument/);
  });
});

describe('side-by-side implementations on WebGPU (tiny sizes, no timing)', async () => {
  const rt = await getTestWebGPU();
  const ctx: ImplContext | undefined = rt ? { rt, log: () => {} } : undefined;

  it.skipIf(!ctx)('hand-written kernels and Tessera match the reference', async () => {
    const impls: Impl[] = [tesseraImpl(ctx!), tesseraUnfusedImpl(ctx!), ...handVariants().map((v) => handImpl(ctx!, v))];
    const ran: string[] = [];
    for (const c of tiny()) {
      for (const impl of impls) {
        if (impl.supports(c) !== null) continue;
        const p = await impl.prepare(c);
        try {
          const r = await p.check();
          expect(r.firstBad, `${impl.name} on ${c.id}`).toBeUndefined();
          expect(r.worst).toBeLessThanOrEqual(1);
          // run() + sync() (what the timing loop does) leaves the runtime usable.
          p.run();
          p.run();
          await p.sync();
          ran.push(`${impl.name}:${c.family}`);
        } finally {
          p.free();
        }
      }
    }
    // Every family has a hand-written kernel and Tessera ran everything.
    for (const fam of ['matmul', 'gemv', 'softmax', 'layernorm']) expect(ran.some((r) => r.startsWith('hand') && r.endsWith(`:${fam}`)), fam).toBe(true);
    expect(ran.filter((r) => r.startsWith('tessera:')).length).toBe(tiny().length);
    expect(ran).toContain('tessera-unfused:block');
  });

  it.skipIf(!ctx)('the untuned columns compile with the device profile in the context, and still match the reference', async () => {
    const profile = { device: 'test', compiler: COMPILER_VERSION, matmul: { sg: 1, vec: 4, tm: 4, tn: 4, workgroupSize: 4 }, n: 64, probe: { default: 2, 'subgroup-shared 32x8': 1 }, chain: false, chainProbe: { separate: 1, chained: 1 }, timing: 'wall' as const };
    const profiled: ImplContext = { ...ctx!, profile };
    const mm = matmulCase(32, 3);
    expect(compileUntuned(profiled, mm.def.program, mm.dims).kernels[0]!.kernel.schedule.params).toMatchObject({ sg: 1, tm: 4 });
    expect(compileUntuned(ctx!, mm.def.program, mm.dims).kernels[0]!.kernel.schedule.params['sg']).toBeUndefined();
    for (const [impl, c] of [[tesseraImpl(profiled), mm], [tesseraImpl(profiled), blockCase(20, 16, 24)], [tesseraUnfusedImpl(profiled), blockCase(20, 16, 24)]] as const) {
      const p = await impl.prepare(c);
      try {
        expect((await p.check()).firstBad, `${impl.name} on ${c.id}`).toBeUndefined();
      } finally {
        p.free();
      }
    }
  });

  it.skipIf(!ctx)('the chained column chains a decode step whatever the profile says, and takes only cases with launches to chain', async () => {
    const chained = tesseraChainedImpl(ctx!);
    expect(chained.supports(matmulCase(32, 3))).toBe('not a chain case');
    expect(chained.supports(blockCase(128, 128, 344))).toBe('no launches small enough to chain');
    const decode = blockCase(1, 16, 24);
    expect(chained.supports(decode)).toBeNull();
    const p = await chained.prepare(decode);
    try {
      expect(p.kernels).toBe(1);
      expect((await p.check()).firstBad).toBeUndefined();
    } finally {
      p.free();
    }
  });

  it.skipIf(!ctx)('hand kernels refuse sizes they cannot take', () => {
    const odd = matmulCase(6);
    expect(handVariants().filter((v) => v.family === 'matmul').map((v) => handImpl(ctx!, v).supports(odd))).toEqual(expect.arrayContaining([expect.stringMatching(/multiple of/)]));
  });
});

describe('side-by-side report', () => {
  const c = matmulCase(16);
  const ok = (impl: string, kind: ImplResult['kind'], deviceMs: number | undefined, wallMs: number): ImplResult => ({
    impl,
    kind,
    status: 'ok',
    timing: { repeats: 3, wallMs, wallRounds: [wallMs], ms: deviceMs ?? wallMs, source: deviceMs === undefined ? 'wall' : 'device', ...(deviceMs === undefined ? {} : { deviceMs, deviceRounds: [deviceMs] }) },
    gflops: c.flops / ((deviceMs ?? wallMs) * 1e6),
    gbps: c.bytes / ((deviceMs ?? wallMs) * 1e6),
  });
  const report = withRatios(c, 1, [ok('tessera', 'tessera', 2, 3), ok('hand 4x4', 'hand', 1, 1.5), ok('hand 8x4', 'hand', 1.5, 2), ok('tfjs', 'peer', undefined, 6), { impl: 'ort', kind: 'peer', status: 'skipped', message: 'quick' }]);

  it('computes ratios against the best hand kernel (device) and the peers (wall)', () => {
    expect(report.bestHand).toBe('hand 4x4');
    const t = report.results[0]!;
    expect(t.vsHand).toBeCloseTo(0.5);
    expect(t.vsTfjs).toBeCloseTo(2);
    expect(t.vsOrt).toBeUndefined();
  });

  it('renders a well-formed SVG chart', () => {
    // A skipped result under the best hand kernel's name must not hide it.
    const mem = withRatios(softmaxCase(4, 8), 1, [ok('tessera', 'tessera', 0.5, 1), { impl: 'hand row', kind: 'hand', status: 'skipped', message: 'other family' }, ok('hand row', 'hand', 0.25, 0.5), ok('tfjs', 'peer', undefined, 4)]);
    expect(mem.bestHand).toBe('hand row');
    const svg = renderChart(chartData({ adapter: { slug: 'test <&>', description: 'adapter "x"', features: [] }, date: '2026-01-01', quick: true, cases: [report, mem] }));
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/);
    expect(svg).toContain('test &lt;&amp;&gt;');
    // Light parse: tags balance, attributes are quoted, no raw ampersands.
    const stack: string[] = [];
    for (const m of svg.replace(/<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<]*")*)\s*(\/?)>/g)) {
      const [, close, name, , self] = m;
      if (self) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
    const tags = svg.match(/<[^>]*>/g)!.length;
    const parsed = [...svg.replace(/<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][a-zA-Z0-9:-]*="[^"<]*")*)\s*(\/?)>/g)].length;
    expect(parsed).toBe(tags - 1);
    expect(svg.replace(/&(amp|lt|gt|quot);/g, '')).not.toContain('&');
    // One bar per implementation with a result: tessera, hand, tfjs in each group.
    expect(svg.match(/<rect [^>]*fill="#(?!fff)[0-9a-f]{6}"><title>/g)!.length).toBe(6);
  });

  it('writes a one-node ONNX model with the expected protobuf framing', () => {
    const m = onnxModel({ name: 'mm', inputs: [{ name: 'a', shape: [2, 3] }], outputs: [{ name: 'out', shape: [2, 3] }], nodes: [{ op: 'Softmax', inputs: ['a'], outputs: ['out'], attrs: [{ name: 'axis', i: -1 }] }] });
    // ir_version = 8 first (field 1, varint), then producer_name (field 2).
    expect([m[0], m[1], m[2]]).toEqual([0x08, 8, 0x12]);
    const text = new TextDecoder('latin1').decode(m);
    for (const s of ['Softmax', 'axis', 'mm', 'out']) expect(text).toContain(s);
    // axis = -1 is a 10-byte int64 varint.
    expect(text).toContain('\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u0001');
  });
});
