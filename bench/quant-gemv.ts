/**
 * `node --import tsx bench/quant-gemv.ts [--quick] [--n 4096] [--k 4096] [--m 1] [--rounds 5] [--out DIR|none]`
 * (= `npm run bench:quant -- ...`)
 *
 * Low-bit GEMV side by side on the current WebGPU adapter (pick the driver with VK_ICD_FILENAMES),
 * in one process: y[M, N] = x[M, K] · W^T with W dense f32, and with W in each registered format
 * read through the fused kernel (dequantization in registers), plus int4 as a dequantize-then-matmul
 * pair (a dense f32 W written by one kernel and read by a second). Every implementation is checked
 * once against a float64 reference (dense W as the format dequantizes it), then timed in interleaved
 * rounds with device timestamps; an implementation's time is the median of its round medians.
 * Reports time, effective GB/s (bytes the fused kernel must read: W's storage plus x and y) and the
 * speed-up over f32. Writes bench/results/quant/<date>-<adapter>.json and .svg.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernel, tensor, type KernelDef } from '../src/dsl/kernel.js';
import { matmul } from '../src/dsl/ops.js';
import type { Tensor } from '../src/dsl/tensor.js';
import { compile, type CompiledProgram } from '../src/passes/pipeline.js';
import { createWebGPURuntime, webgpuUnavailableReason, type WebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { prepare, type Prepared } from '../src/runtime/execute.js';
import type { HostTensor } from '../src/runtime/execute.js';
import { FORMATS, qlinearInputs, qlinearKernel, type QuantizedMatrix } from '../src/quant/index.js';
import { w8a8BitsPerWeight, w8a8Inputs, w8a8LinearKernel, w8a8QuantizeWeights, w8a8Reference } from '../src/quant/w8a8.js';
import { benchMatrix, GEMV_FORMATS } from './quant-cases.js';
import { adapterSlug } from './backend.js';
import { renderChart } from './chart.js';
import { median } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));

interface Impl {
  readonly name: string;
  /** Bytes the implementation must move at least (W storage + x + y), for GB/s. */
  readonly bytes: number;
  readonly bits: number;
  readonly kernels: number;
  readonly programs: readonly CompiledProgram[];
  readonly prepared: readonly Prepared[];
  readonly check: () => Promise<number>;
}

export interface GemvResult {
  readonly name: string;
  readonly bitsPerWeight: number;
  readonly kernels: number;
  readonly ms: number;
  readonly rounds: readonly number[];
  readonly gbPerS: number;
  readonly speedupVsF32: number;
  readonly maxRelErr: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** max |got - want| / max |want| over the outputs. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs(got[i]! - want[i]!));
    s = Math.max(s, Math.abs(want[i]!));
  }
  return e / (s || 1);
}

function refGemv(x: Float32Array, w: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let acc = 0;
    const o = n * K;
    for (let k = 0; k < K; k++) acc += x[m * K + k]! * w[o + k]!;
    out[m * N + n] = acc;
  }
  return out;
}

async function impl(rt: WebGPURuntime, name: string, bits: number, bytes: number, stages: readonly { def: KernelDef; inputs: Record<string, HostTensor> }[], want: Float64Array, read: (outs: Prepared[]) => Promise<ArrayLike<number>>): Promise<Impl> {
  const programs = stages.map((s) => compile(s.def.program));
  const prepared = programs.map((cp, i) => prepare(cp, rt, stages[i]!.inputs));
  for (const p of prepared) for (const k of p.program.kernels) await rt.compile(k.kernel, p.dims);
  return {
    name, bits, bytes, programs, prepared,
    kernels: prepared.reduce((s, p) => s + p.program.kernels.length, 0),
    check: async () => {
      for (const p of prepared) p.launch();
      return relErr(await read(prepared), want);
    },
  };
}

export async function runQuantGemv(opts: { N: number; K: number; M: number; rounds: number; repeats: number; log: (s: string) => void }): Promise<{ adapter: string; results: GemvResult[] }> {
  const rt = await createWebGPURuntime();
  if (!rt) throw new Error(`no WebGPU adapter: ${webgpuUnavailableReason()}`);
  const { N, K, M } = opts;
  const w = benchMatrix(N, K, 1);
  const x = Float32Array.from({ length: M * K }, (_, i) => Math.fround(Math.sin(i * 0.37)));
  const io = 4 * (M * K + M * N);
  const impls: Impl[] = [];

  // dense f32
  const dense = kernel('gemv_f32', { x: tensor('f32', [M, K]), w: tensor('f32', [N, K]) }, ({ x, w }) => matmul(x, w.transpose()));
  const wantDense = refGemv(x, w, M, N, K);
  impls.push(await impl(rt, 'f32', 32, 4 * N * K + io, [{ def: dense, inputs: { x: { shape: [M, K], data: x }, w: { shape: [N, K], data: w } } }], wantDense, async (p) => (await p[0]!.read())['out']!.data));

  for (const bf of GEMV_FORMATS) {
    const format = FORMATS[bf.format];
    if (!format) continue;
    const t0 = performance.now();
    const q: QuantizedMatrix = bf.quantize ? bf.quantize(w, N, K) : format.quantize(w, N, K, bf.params);
    const bits = format.bitsPerWeight(q);
    const want = refGemv(x, format.dequantize(q), M, N, K);
    opts.log(`${bf.label}: quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${bits.toFixed(3)} bits/weight`);
    const bytes = Math.ceil((bits * N * K) / 8) + io;
    impls.push(await impl(rt, bf.label, bits, bytes, [{ def: qlinearKernel(format, q, M, `gemv_${bf.label.replace(/[^A-Za-z0-9]/g, '_')}`), inputs: qlinearInputs(q, x, M) }], want, async (p) => (await p[0]!.read())['out']!.data));
    if (bf.pair) {
      // W dequantized to a dense f32 output by one kernel, which the GEMV kernel then reads
      const pair = kernel(`pair_${bf.format}`, { x: tensor('f32', [M, K]), ...format.specs(q, 'w_') }, (h) => {
        const wd = format.access(h as Record<string, Tensor>, q, 'w_');
        return { out: matmul(h['x']!, wd.transpose()), w: wd };
      });
      impls.push(await impl(rt, `${bf.label} dequant+matmul`, bits, bytes + 8 * N * K, [{ def: pair, inputs: qlinearInputs(q, x, M) }], want, async (p) => (await p[0]!.read())['out']!.data));
    }
  }

  // W8A8: int8 weights, activations quantized per token inside the program, packed int8 dot products
  {
    const q = w8a8QuantizeWeights(w, N, K);
    const want = w8a8Reference(x, q, M);
    const bits = w8a8BitsPerWeight(q);
    impls.push(await impl(rt, 'w8a8 (dot4i8)', bits, Math.ceil((bits * N * K) / 8) + io, [{ def: w8a8LinearKernel(N, K, M), inputs: w8a8Inputs(q, x, M) }], want, async (p) => (await p[0]!.read())['out']!.data));
  }

  const errs = new Map<string, number>();
  for (const im of impls) {
    const e = await im.check();
    errs.set(im.name, e);
    if (!(e < 1e-3)) throw new Error(`${im.name}: output differs from the reference (max rel err ${e})`);
  }
  const rounds = new Map<string, number[]>(impls.map((im) => [im.name, []]));
  for (let r = 0; r < opts.rounds; r++) {
    for (let j = 0; j < impls.length; j++) {
      const im = impls[(j + r) % impls.length]!;
      const t = await rt.time(() => { for (const p of im.prepared) p.launch(); }, opts.repeats);
      rounds.get(im.name)!.push(t.medianMs);
    }
    opts.log(`round ${r + 1}/${opts.rounds}`);
  }
  const f32ms = median(rounds.get('f32')!);
  const results = impls.map((im): GemvResult => {
    const ms = median(rounds.get(im.name)!);
    return { name: im.name, bitsPerWeight: im.bits, kernels: im.kernels, ms, rounds: rounds.get(im.name)!, gbPerS: im.bytes / (ms * 1e6), speedupVsF32: f32ms / ms, maxRelErr: errs.get(im.name)! };
  });
  const adapter = adapterSlug(rt);
  for (const im of impls) for (const p of im.prepared) p.free();
  rt.destroy();
  return { adapter, results };
}

function table(results: readonly GemvResult[]): string {
  const rows = [['impl', 'bits/w', 'kernels', 'ms', 'GB/s', 'vs f32'], ...results.map((r) => [r.name, r.bitsPerWeight.toFixed(2), String(r.kernels), r.ms.toFixed(3), r.gbPerS.toFixed(2), `${r.speedupVsF32.toFixed(2)}x`])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const N = Number(arg('n', quick ? '1024' : '4096'));
  const K = Number(arg('k', quick ? '1024' : '4096'));
  const M = Number(arg('m', '1'));
  const rounds = Number(arg('rounds', quick ? '3' : '5'));
  const { adapter, results } = await runQuantGemv({ N, K, M, rounds, repeats: quick ? 5 : 10, log: (s) => console.log(s) });
  console.log(`\nGEMV ${M}x${K} · (${N}x${K})^T on ${adapter}\n${table(results)}`);
  const outDir = arg('out', join(HERE, 'results', 'quant'));
  if (outDir !== 'none') {
    mkdirSync(outDir, { recursive: true });
    const stem = join(outDir, `${new Date().toISOString().slice(0, 10)}-${adapter}${quick ? '-quick' : ''}`);
    const command = `npm run bench:quant --${quick ? ' --quick' : ''}`;
    writeFileSync(`${stem}.json`, JSON.stringify({ date: new Date().toISOString(), adapter, command, shape: { M, N, K }, results }, null, 2) + '\n');
    writeFileSync(`${stem}.svg`, renderChart({
      title: `Low-bit GEMV ${M}x${K}·(${N}x${K})ᵀ on ${adapter}`,
      subtitle: `${command}; device timestamps, median of ${rounds} interleaved rounds`,
      series: ['GB/s', 'speed-up vs f32'],
      panels: [
        { title: 'Effective bandwidth (W storage + x + y)', unit: 'GB/s', groups: results.map((r) => ({ label: r.name, values: [r.gbPerS, null] })) },
        { title: 'Speed-up over dense f32 GEMV', unit: 'x', groups: results.map((r) => ({ label: r.name, values: [null, r.speedupVsF32] })) },
      ],
    }));
    console.log(`wrote ${stem}.json and .svg`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
