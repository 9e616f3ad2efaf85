/**
 * `node --import tsx bench/device/quant-gemv-cuda.ts [options]`: low-bit GEMV on a CUDA GPU, the
 * device-script step that measures the low-bit GPU targets ("int4 GEMV at least 80% of the measured
 * memory bandwidth; VPTQ 2-bit GEMV faster than fp16 GEMV at batch 1"). bench/device/run.sh runs it
 * after its other steps (and `--check-only` in its dry run); bench/device/README.md documents it.
 *
 * For each size (N = K = 4096; `--big` adds 8192) and batch (M = 1 and 16):
 *  - bandwidth: a Tessera copy kernel `out = x` over a 256 MiB f32 tensor (bytes = read + write),
 *    best of three elementwise schedules; also timed with rt.time (one launch between events) for
 *    comparison;
 *  - launch floor: the same copy over 32 elements (one block): what a back-to-back launch costs;
 *  - y = x·Wᵀ (x f32 [M, K], W [N, K]) with W dense f32, W dense f16 (an f16 input tensor, cast in
 *    the kernel), W in every bench/quant-cases.ts GEMV_FORMATS entry read through the fused kernel
 *    (int8, int4 g128, nf4, fp8 e4m3, mxfp4, ternary, VPTQ v4 k256), VPTQ v=6 k=4096 (2 index bits:
 *    the paper's 2.02-bit Llama-2 configuration; random codes and codebook through vptqMatrix), and
 *    int4 as a dequantize-then-matmul pair;
 *  - each under every schedule of VARIANTS (the default register-blocked matmul and split-K `coop`
 *    schedules), each checked against a float64 host reference on 64 evenly spread output columns of
 *    every batch row (the output is NaN-filled first, so a kernel that writes nothing fails), then
 *    timed. The fastest correct variant is the implementation's result, reported with its params,
 *    effective GB/s, fraction of the measured bandwidth and speed-up over f16 and f32.
 *
 * Timing (CUDA): per sample, copies of 256 MiB are queued first (they also evict L2), then `inner`
 * launches of the kernel between two CUDA events; time per launch = the events' difference / inner;
 * the result is the median of `--rounds` samples. The queued copies keep the GPU busy while the host
 * enqueues the launches, so the host's launch cost is not measured (a sample whose enqueueing
 * outlasted the queued work is flagged `starved`). The launches rotate over enough copies of the
 * inputs (`--flush-mib`, 256 MiB in all) that W is read from HBM, not from the 50 MB L2. Effective
 * GB/s = (W storage bytes, every buffer of the format + x + y) / time; the pair adds 8 bytes per
 * weight (it writes and reads a dense f32 W); fraction = that / the copy's GB/s. Before measuring,
 * every kernel is compiled in `--jobs` child processes for the device's arch (compileCuda with the
 * runtime's own options, so the runtime then finds each in the cache).
 *
 * Host-only modes (no GPU):
 *  --check-only      build every matrix and program, bind the inputs, and compile every kernel with
 *                    compileCuda (nvcc, or NVRTC where it loads) for `--arch` (default sm_90), one
 *                    process per kernel as the runtime would, or `--units N` multi-kernel units
 *                    (much faster with nvcc); nothing touches a device.
 *  --backend js      the whole measurement on the JS runtime (wall-clock timing), to test the harness
 *                    at small sizes (`--sizes 32 --copy-mib 1 --flush-mib 0`).
 *  --backend cuda-emu  the CUDA path (the CUDA runtime, its kernels, event timing) on the CPU emulator
 *                    (src/backends/cuda/emulator.ts), at small sizes likewise: results, not speed.
 *
 * Options: --out FILE (JSON), --sizes 4096[,8192] | --big, --m 1,16, --formats LABEL,... (substrings
 * of implementation names), --variants ID,..., --rounds N (default 5), --inner N (launches per
 * sample, default 64), --copy-mib N (default 256), --flush-mib N (default 256), --jobs N (parallel
 * compiles, default min(8, CPUs)), --arch sm_XY and --units N (check-only), --no-precompile.
 * Exit: 0 when everything built and compiled (check-only) or every implementation has a correct
 * variant; 1 otherwise (also without a CUDA device); 2 for bad arguments.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernel, tensor, type KernelDef } from '../../src/dsl/kernel.js';
import { cast, matmul } from '../../src/dsl/ops.js';
import type { Tensor } from '../../src/dsl/tensor.js';
import type { Kernel } from '../../src/ir/kernel.js';
import { compile, selectVersion, type CompiledProgram } from '../../src/passes/pipeline.js';
import type { ScheduleParams } from '../../src/passes/schedule.js';
import type { BackendRuntime, DeviceBuffer } from '../../src/runtime/backend.js';
import { bindDims, prepare, type HostTensor, type Prepared } from '../../src/runtime/execute.js';
import { f16Round } from '../../src/runtime/f16.js';
import { JSRuntime } from '../../src/backends/js/runtime.js';
import { createCudaRuntime, cudaUnavailableReason, type CudaRuntime } from '../../src/backends/cuda/runtime.js';
import { createCudaEmulatorRuntime, CudaEmulatorAddon, cudaEmulatorUnavailableReason } from '../../src/backends/cuda/emulator.js';
import { loadCudaAddon, type CudaAddon, type CuHandle } from '../../src/backends/cuda/native.js';
import { compileCuda } from '../../src/backends/cuda/nvcc.js';
import { printCudaUnit } from '../../src/backends/cuda/print.js';
import { FORMATS, qlinearInputs, qlinearKernel, vptqMatrix, vptqParams, type QuantizedMatrix, type QuantParams } from '../../src/quant/index.js';
import { mulberry32 } from '../../src/fuzz/rng.js';
import { benchMatrix, GEMV_FORMATS } from '../quant-cases.js';

const SCRIPT = fileURLToPath(import.meta.url);

// -------------------------------------------------------------------------------------------------
// What is measured

/** The schedules every GEMV is tried with (CompileOptions.params). */
export const VARIANTS: readonly { readonly id: string; readonly params: Partial<ScheduleParams> }[] = [
  { id: 'default', params: {} },
  { id: 'splitk-tree-128', params: { coop: 1, tn: 1, workgroupSize: 128 } },
  { id: 'splitk-warp', params: { coop: 2, tn: 1, workgroupSize: 32 } },
  { id: 'splitk-warp-tn4', params: { coop: 2, tn: 4, workgroupSize: 32 } },
  { id: 'splitk-tree-tn4-256', params: { coop: 1, tn: 4, workgroupSize: 256 } },
  { id: 'splitk-tree-uk32-128', params: { coop: 1, tn: 1, uk: 32, workgroupSize: 128 } },
];

/** Elementwise schedules for the copy (bandwidth) kernel. */
const COPY_VARIANTS: readonly { readonly id: string; readonly params: Partial<ScheduleParams> }[] = [
  { id: 'pt1-256', params: { perThread: 1, workgroupSize: 256 } },
  { id: 'pt4-256', params: { perThread: 4, workgroupSize: 256 } },
  { id: 'pt8-128', params: { perThread: 8, workgroupSize: 128 } },
];

/** VPTQ configurations: 2 index bits per weight (log2(k) / v). */
const VPTQ_CONFIGS = [
  { label: 'vptq v6 k4096', v: 6, k: 4096 },
  { label: 'vptq v4 k256', v: 4, k: 256 },
];

/** Output rows checked against the float64 reference (evenly spread, first and last included). */
const CHECK_ROWS = 64;
const TOLERANCE = 1e-3;

// -------------------------------------------------------------------------------------------------
// Options

interface Options {
  readonly checkOnly: boolean;
  readonly backend: 'cuda' | 'cuda-emu' | 'js';
  readonly out?: string;
  readonly sizes: readonly number[];
  readonly ms: readonly number[];
  readonly formats?: readonly string[];
  readonly variants: readonly { readonly id: string; readonly params: Partial<ScheduleParams> }[];
  readonly rounds: number;
  readonly inner: number;
  readonly copyMib: number;
  readonly flushMib: number;
  readonly jobs: number;
  /** check-only: compile the kernels as this many multi-kernel units (0 = one unit per kernel, as the runtime). */
  readonly units: number;
  readonly arch: string;
  readonly precompile: boolean;
}

function usage(msg: string): never {
  console.error(`quant-gemv-cuda: ${msg}\nusage: node --import tsx bench/device/quant-gemv-cuda.ts [--check-only [--arch sm_90]] [--backend cuda|cuda-emu|js] [--out FILE] [--sizes 4096,8192 | --big] [--m 1,16] [--formats LABEL,...] [--variants ID,...] [--rounds N] [--inner N] [--copy-mib N] [--flush-mib N] [--jobs N] [--units N] [--no-precompile]`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Options {
  const flags = new Set(['--check-only', '--big', '--no-precompile']);
  const valued = new Set(['--units', '--backend', '--out', '--sizes', '--m', '--formats', '--variants', '--rounds', '--inner', '--copy-mib', '--flush-mib', '--jobs', '--arch']);
  const got = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (flags.has(a)) got.set(a, '1');
    else if (valued.has(a)) {
      if (argv[i + 1] === undefined) usage(`${a} needs a value`);
      got.set(a, argv[++i]!);
    } else usage(`unknown argument '${a}'`);
  }
  const list = (s: string) => s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const ints = (name: string, s: string, min: number) => list(s).map((x) => {
    const v = Number(x);
    if (!Number.isInteger(v) || v < min) usage(`${name}: '${x}' is not an integer >= ${min}`);
    return v;
  });
  const int = (name: string, fallback: number, min: number) => (got.has(name) ? ints(name, got.get(name)!, min)[0] ?? usage(`${name} is empty`) : fallback);
  const backend = got.get('--backend') ?? 'cuda';
  if (backend !== 'cuda' && backend !== 'cuda-emu' && backend !== 'js') usage(`--backend must be cuda, cuda-emu or js, got '${backend}'`);
  let sizes = got.has('--sizes') ? ints('--sizes', got.get('--sizes')!, 1) : [4096];
  if (got.has('--big') && !sizes.includes(8192)) sizes = [...sizes, 8192];
  const variantIds = got.has('--variants') ? list(got.get('--variants')!) : undefined;
  const variants = variantIds ? variantIds.map((id) => VARIANTS.find((v) => v.id === id) ?? usage(`unknown variant '${id}' (known: ${VARIANTS.map((v) => v.id).join(', ')})`)) : VARIANTS;
  const arch = got.get('--arch') ?? 'sm_90';
  if (!/^sm_\d{2,3}[a-z]?$/.test(arch)) usage(`--arch must look like sm_90, got '${arch}'`);
  return {
    checkOnly: got.has('--check-only'),
    backend,
    ...(got.has('--out') ? { out: got.get('--out')! } : {}),
    sizes,
    ms: got.has('--m') ? ints('--m', got.get('--m')!, 1) : [1, 16],
    ...(got.has('--formats') ? { formats: list(got.get('--formats')!) } : {}),
    variants,
    rounds: int('--rounds', 5, 1),
    inner: int('--inner', 64, 1),
    copyMib: int('--copy-mib', 256, 1),
    flushMib: int('--flush-mib', 256, 0),
    units: int('--units', 0, 0),
    jobs: int('--jobs', Math.max(1, Math.min(8, availableParallelism())), 1),
    arch,
    precompile: !got.has('--no-precompile'),
  };
}

// -------------------------------------------------------------------------------------------------
// Matrices and programs

/** A seeded uniform [0, 1) generator. */
const rng = mulberry32;

/** VPTQ matrix from random codes and a random (bell-shaped) codebook: no quantizer run. */
function randomVptq(N: number, K: number, v: number, k: number, seed: number): QuantizedMatrix {
  const u = rng(seed);
  const R = Math.ceil(N / v);
  const codes = new Uint32Array(R * K);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(u() * k);
  const cb = Float32Array.from({ length: k * v }, () => (u() + u() + u() - 1.5) * 0.05);
  return vptqMatrix(vptqParams({ v, k }), N, K, { codes, cb });
}

function checkRows(N: number): number[] {
  const n = Math.min(N, CHECK_ROWS);
  return [...new Set(Array.from({ length: n }, (_, i) => (n === 1 ? 0 : Math.round((i * (N - 1)) / (n - 1)))))];
}

/** One implementation at one size: its W (storage), its reference rows and how to build its program for a batch M. */
interface ImplSpec {
  readonly name: string;
  readonly kind: 'dense' | 'fused' | 'pair';
  readonly N: number;
  readonly K: number;
  readonly bitsPerWeight: number;
  /** W storage bytes (every buffer of the format). */
  readonly storageBytes: number;
  /** Bytes moved besides W storage, x and y (the pair's dense f32 W, written and read). */
  readonly extraBytes: number;
  readonly params?: QuantParams;
  readonly rows: readonly number[];
  /** W's reference rows [rows.length, K] in float64 (as the kernel must see W); computed on first use. */
  wRows(): Float64Array;
  build(M: number, x: Float32Array): { def: KernelDef; inputs: Record<string, HostTensor> };
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '');

function pickRows(w: ArrayLike<number>, rows: readonly number[], K: number, map: (v: number) => number = (v) => v): Float64Array {
  const out = new Float64Array(rows.length * K);
  rows.forEach((n, j) => {
    for (let k = 0; k < K; k++) out[j * K + k] = map(w[n * K + k]!);
  });
  return out;
}

function lazy<T>(f: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= f());
}

function wanted(name: string, opts: Options): boolean {
  return !opts.formats || opts.formats.some((f) => name.toLowerCase().includes(f.toLowerCase()));
}

/** Every implementation at size N x K (building the formats' matrices on the host). */
function buildImpls(N: number, K: number, opts: Options, log: (s: string) => void): ImplSpec[] {
  const rows = checkRows(N);
  const w = benchMatrix(N, K, 1);
  const impls: ImplSpec[] = [];
  const tag = `${N}x${K}`;
  if (wanted('f32', opts)) {
    impls.push({
      name: 'f32', kind: 'dense', N, K, bitsPerWeight: 32, storageBytes: 4 * N * K, extraBytes: 0, rows, wRows: lazy(() => pickRows(w, rows, K)),
      build: (M, x) => ({
        def: kernel(`qg_f32_${tag}_m${M}`, { x: tensor('f32', [M, K]), w: tensor('f32', [N, K]) }, (h) => matmul(h['x']!, h['w']!.transpose())),
        inputs: { x: { shape: [M, K], data: x }, w: { shape: [N, K], data: w } },
      }),
    });
  }
  if (wanted('f16', opts)) {
    impls.push({
      name: 'f16', kind: 'dense', N, K, bitsPerWeight: 16, storageBytes: 2 * N * K, extraBytes: 0, rows, wRows: lazy(() => pickRows(w, rows, K, f16Round)),
      build: (M, x) => ({
        def: kernel(`qg_f16_${tag}_m${M}`, { x: tensor('f32', [M, K]), w: tensor('f16', [N, K]) }, (h) => matmul(h['x']!, cast(h['w']!, 'f32').transpose())),
        inputs: { x: { shape: [M, K], data: x }, w: { shape: [N, K], data: w } },
      }),
    });
  }
  const quantized: { label: string; q: QuantizedMatrix; pair: boolean }[] = [];
  for (const bf of GEMV_FORMATS) {
    const format = FORMATS[bf.format];
    if (!format || !(wanted(bf.label, opts) || (bf.pair && wanted(`${bf.label} dequant+matmul`, opts)))) continue;
    const t0 = performance.now();
    const q = bf.quantize ? bf.quantize(w, N, K) : format.quantize(w, N, K, bf.params);
    log(`  ${tag} ${bf.label}: quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    quantized.push({ label: bf.label, q, pair: !!bf.pair });
  }
  for (const c of VPTQ_CONFIGS) {
    if (!wanted(c.label, opts) || quantized.some((q) => q.label === c.label)) continue;
    quantized.push({ label: c.label, q: randomVptq(N, K, c.v, c.k, 7), pair: false });
  }
  for (const { label, q, pair } of quantized) {
    const format = FORMATS[q.format]!;
    const bits = format.bitsPerWeight(q);
    const storageBytes = Math.round((bits * N * K) / 8);
    const wRows = lazy(() => pickRows(format.dequantize(q), rows, K));
    if (wanted(label, opts)) {
      impls.push({
        name: label, kind: 'fused', N, K, bitsPerWeight: bits, storageBytes, extraBytes: 0, params: q.params, rows, wRows,
        build: (M, x) => ({ def: qlinearKernel(format, q, M, `qg_${slug(label)}_${tag}_m${M}`), inputs: qlinearInputs(q, x, M) }),
      });
    }
    if (pair && wanted(`${label} dequant+matmul`, opts)) {
      impls.push({
        name: `${label} dequant+matmul`, kind: 'pair', N, K, bitsPerWeight: bits, storageBytes, extraBytes: 8 * N * K, params: q.params, rows, wRows,
        build: (M, x) => ({
          def: kernel(`qg_pair_${slug(label)}_${tag}_m${M}`, { x: tensor('f32', [M, K]), ...format.specs(q, 'w_') }, (h) => {
            const wd = format.access(h as Record<string, Tensor>, q, 'w_');
            return { out: matmul(h['x']!, wd.transpose()), w: wd };
          }),
          inputs: qlinearInputs(q, x, M),
        }),
      });
    }
  }
  return impls;
}

function xFor(M: number, K: number): Float32Array {
  return Float32Array.from({ length: M * K }, (_, i) => Math.fround(Math.sin(i * 0.37)));
}

/** want[m, j] = sum_k x[m, k] · wRows[j, k], in float64. */
function reference(x: Float32Array, impl: ImplSpec, M: number): Float64Array {
  const { K, rows } = impl;
  const wRows = impl.wRows();
  const out = new Float64Array(M * rows.length);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < rows.length; j++) {
      let acc = 0;
      const o = j * K;
      for (let k = 0; k < K; k++) acc += x[m * K + k]! * wRows[o + k]!;
      out[m * rows.length + j] = acc;
    }
  }
  return out;
}

/** max |got - want| / max |want| over the checked outputs (NaN when any output is NaN: never written). */
function relErr(got: ArrayLike<number>, want: Float64Array, impl: ImplSpec, M: number): number {
  let e = 0;
  let s = 0;
  for (let m = 0; m < M; m++) {
    impl.rows.forEach((n, j) => {
      const g = got[m * impl.N + n]!;
      const v = want[m * impl.rows.length + j]!;
      e = Number.isNaN(g) ? NaN : Math.max(e, Math.abs(g - v));
      s = Math.max(s, Math.abs(v));
    });
  }
  return e / (s || 1);
}

interface Built {
  readonly impl: ImplSpec;
  readonly M: number;
  readonly x: Float32Array;
  readonly inputs: Record<string, HostTensor>;
  /** One compiled program per variant (or the compile error). */
  readonly variants: readonly { readonly id: string; readonly params: Partial<ScheduleParams>; readonly cp?: CompiledProgram; readonly error?: string }[];
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function buildPrograms(impl: ImplSpec, M: number, opts: Options): Built {
  const x = xFor(M, impl.K);
  const { def, inputs } = impl.build(M, x);
  const variants = opts.variants.map((v) => {
    try {
      const cp = compile(def.program, { params: v.params });
      bindDims(cp, inputs);
      return { id: v.id, params: v.params, cp };
    } catch (e) {
      return { id: v.id, params: v.params, error: message(e) };
    }
  });
  return { impl, M, x, inputs, variants };
}

// -------------------------------------------------------------------------------------------------
// Compiling every kernel ahead (check-only, and the GPU run's parallel warm-up of the compile cache)

interface CompileJob {
  readonly name: string;
  readonly source: string;
}
interface CompileReport {
  compiled: number;
  cached: number;
  failures: { name: string; error: string }[];
  compiler?: string;
}

/** Compiles `jobs` for `arch` as the CUDA runtime would (compiler auto, cubin, the default cache). */
function compileJobs(jobs: readonly CompileJob[], arch: string): CompileReport {
  const report: CompileReport = { compiled: 0, cached: 0, failures: [] };
  for (const j of jobs) {
    try {
      const r = compileCuda(j.source, { compiler: 'auto', archs: [arch], output: 'cubin' });
      report.compiler = `${r.compiler} ${r.compilerVersion}`;
      if (r.cached) report.cached++;
      else report.compiled++;
    } catch (e) {
      report.failures.push({ name: j.name, error: message(e).split('\n').slice(0, 12).join('\n') });
    }
  }
  return report;
}

/** Runs compileJobs over `jobs` in `n` child processes (this script, `--compile-sources FILE --shard i/n`). */
async function compileParallel(jobs: readonly CompileJob[], arch: string, n: number): Promise<CompileReport> {
  if (n <= 1 || jobs.length <= 1) return compileJobs(jobs, arch);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-qg-'));
  try {
    const file = join(dir, 'sources.json');
    writeFileSync(file, JSON.stringify(jobs));
    const shards = Math.min(n, jobs.length);
    const runs = Array.from({ length: shards }, (_, i) => new Promise<CompileReport>((resolve) => {
      const child = spawn(process.execPath, [...process.execArgv, SCRIPT, '--compile-sources', file, '--shard', `${i}/${shards}`, '--arch', arch], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => {
        try {
          resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as CompileReport);
        } catch {
          resolve({ compiled: 0, cached: 0, failures: [{ name: `shard ${i}/${shards}`, error: `exit ${code}: ${(err || out).slice(-2000)}` }] });
        }
      });
    }));
    const reports = await Promise.all(runs);
    return reports.reduce((a, r) => ({ compiled: a.compiled + r.compiled, cached: a.cached + r.cached, failures: [...a.failures, ...r.failures], ...(r.compiler ?? a.compiler ? { compiler: r.compiler ?? a.compiler } : {}) }), { compiled: 0, cached: 0, failures: [] } as CompileReport);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The distinct kernels, each with its CUDA unit as the runtime prints (and caches) it. */
function distinctKernels(programs: readonly CompiledProgram[]): { kernel: Kernel; source: string }[] {
  const seen = new Map<string, Kernel>();
  for (const cp of programs) {
    for (const k of cp.kernels) {
      const source = printCudaUnit([k.kernel]);
      if (!seen.has(source)) seen.set(source, k.kernel);
    }
  }
  return [...seen].map(([source, kernel]) => ({ kernel, source }));
}

/**
 * Compile jobs: one per kernel (the runtime's own units, so a GPU run's cache gets exactly the entries
 * it will look up), or `units` > 0 translation units of many kernels each (renamed apart), which nvcc
 * compiles much faster than one process per kernel (check-only on a machine with few cores).
 */
function cudaJobs(kernels: readonly { kernel: Kernel; source: string }[], units: number): CompileJob[] {
  if (units <= 0) return kernels.map((k) => ({ name: k.kernel.name, source: k.source }));
  const n = Math.min(units, kernels.length);
  return Array.from({ length: n }, (_, u) => {
    const mine = kernels.filter((_, i) => i % n === u).map((k, i) => ({ ...k.kernel, name: `${k.kernel.name}_u${i}` }));
    return { name: `unit ${u + 1}/${n} (${mine.length} kernels: ${mine[0]?.name}, ...)`, source: printCudaUnit(mine) };
  });
}

// -------------------------------------------------------------------------------------------------
// Timing

interface Timing {
  /** Median time per launch over the samples, ms. */
  readonly ms: number;
  readonly samplesMs: readonly number[];
  readonly inner: number;
  readonly source: 'cuda-events' | 'wall';
  /** Host time to enqueue one launch, µs (warm-up). */
  readonly hostUsPerLaunch: number;
  /** Queued copies in front of each sample, and the least time the queue was ahead of the host (ms). */
  readonly busyLaunches?: number;
  readonly minQueueAheadMs?: number;
  readonly starved?: boolean;
}

interface Ctx {
  readonly rt: BackendRuntime;
  readonly cuda?: { readonly rt: CudaRuntime; readonly addon: CudaAddon };
  /** A long kernel queued in front of each sample (the bandwidth copy) and its time. */
  busy?: { readonly launch: () => void; readonly ms: number };
}

async function timeLaunches(ctx: Ctx, launchAt: (i: number) => void, inner: number, rounds: number): Promise<Timing> {
  const { rt } = ctx;
  for (let i = 0; i < inner; i++) launchAt(i);
  await rt.sync();
  const t0 = performance.now();
  for (let i = 0; i < inner; i++) launchAt(i);
  const hostMs = performance.now() - t0;
  await rt.sync();
  const hostUsPerLaunch = (hostMs * 1000) / inner;
  if (!ctx.cuda) {
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t = await rt.time(() => { for (let i = 0; i < inner; i++) launchAt(i); }, 1);
      samples.push(t.medianMs / inner);
    }
    return { ms: median(samples), samplesMs: samples, inner, source: 'wall', hostUsPerLaunch };
  }
  const { addon } = ctx.cuda;
  const busyLaunches = ctx.busy ? Math.min(256, Math.max(1, Math.ceil((1.5 * hostMs + 0.05) / ctx.busy.ms))) : 0;
  const events: CuHandle[] = [];
  try {
    for (let i = 0; i < 3 * rounds; i++) events.push(addon.eventCreate(0));
    const loopHost: number[] = [];
    for (let r = 0; r < rounds; r++) {
      addon.eventRecord(events[3 * r]!);
      for (let b = 0; b < busyLaunches; b++) ctx.busy!.launch();
      addon.eventRecord(events[3 * r + 1]!);
      const t = performance.now();
      for (let i = 0; i < inner; i++) launchAt(i);
      loopHost.push(performance.now() - t);
      addon.eventRecord(events[3 * r + 2]!);
    }
    addon.eventSynchronize(events[3 * rounds - 1]!);
    const samples: number[] = [];
    let minAhead = Infinity;
    for (let r = 0; r < rounds; r++) {
      samples.push(addon.eventElapsedTime(events[3 * r + 1]!, events[3 * r + 2]!) / inner);
      minAhead = Math.min(minAhead, addon.eventElapsedTime(events[3 * r]!, events[3 * r + 1]!) - loopHost[r]!);
    }
    return { ms: median(samples), samplesMs: samples, inner, source: 'cuda-events', hostUsPerLaunch, busyLaunches, minQueueAheadMs: minAhead, starved: minAhead < 0 };
  } finally {
    for (const ev of events) {
      try {
        addon.eventDestroy(ev);
      } catch {
        // best effort
      }
    }
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Pre-resolved launches of a program's kernels on one prepared copy. */
function launcher(rt: BackendRuntime, cp: CompiledProgram, p: Prepared): () => void {
  // the build dispatch runs at the copy's dims; compiles differing in params share its buffer plan
  const runs: [Kernel, DeviceBuffer[]][] = selectVersion(cp, p.dims).kernels.map((k) => [k.kernel, k.bindings.map((n) => p.buffers.get(n) ?? fail(`program ${cp.name}: no buffer '${n}' in the prepared copy`))]);
  const dims = p.dims;
  return () => {
    for (const [k, b] of runs) rt.run(k, b, dims);
  };
}

function fail(msg: string): never {
  throw new Error(msg);
}

// -------------------------------------------------------------------------------------------------
// Measurements

interface VariantResult {
  readonly id: string;
  readonly params: Partial<ScheduleParams>;
  readonly kernels?: number;
  readonly ok: boolean;
  readonly maxRelErr?: number;
  readonly ms?: number;
  readonly gbPerS?: number;
  readonly timing?: Timing;
  readonly error?: string;
}

interface GemvResult {
  readonly name: string;
  readonly kind: ImplSpec['kind'];
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly params?: QuantParams;
  readonly bitsPerWeight: number;
  readonly storageBytes: number;
  /** Bytes the implementation moves at least: W storage + x + y (+ the pair's dense W). */
  readonly bytes: number;
  /** Copies of the weights the launches rotate over (so W comes from HBM). */
  readonly copies: number;
  readonly variants: readonly VariantResult[];
  readonly best?: { readonly id: string; readonly params: Partial<ScheduleParams>; readonly ms: number; readonly us: number; readonly gbPerS: number; readonly fractionOfBandwidth?: number };
  speedupVsF16?: number;
  speedupVsF32?: number;
  readonly error?: string;
}

async function measureCopy(ctx: Ctx, elements: number, opts: Options, log: (s: string) => void) {
  const { rt } = ctx;
  const def = kernel('qg_copy', { x: tensor('f32', [elements]) }, (h) => h['x']!);
  const inputs = { x: { shape: [elements], data: new Float32Array(elements) } };
  const bytes = 8 * elements;
  const variants: { id: string; params: Partial<ScheduleParams>; ms?: number; gbPerS?: number; timing?: Timing; error?: string }[] = [];
  let best: { id: string; launch: () => void; ms: number; gbPerS: number; p: Prepared } | undefined;
  const keep: Prepared[] = [];
  for (const v of COPY_VARIANTS) {
    let p: Prepared | undefined;
    try {
      const cp = compile(def.program, { params: v.params });
      p = prepare(cp, rt, inputs);
      keep.push(p);
      const launch = launcher(rt, cp, p);
      const inner = elements >= 1 << 24 ? 8 : opts.inner;
      // A first estimate, then the measurement with launches of the same copy queued in front.
      const estimate = await timeLaunches(ctx, launch, inner, 1);
      const timing = await timeLaunches({ ...ctx, busy: { launch, ms: estimate.ms } }, launch, inner, opts.rounds);
      const gbPerS = bytes / (timing.ms * 1e6);
      variants.push({ id: v.id, params: v.params, ms: timing.ms, gbPerS, timing });
      if (!best || timing.ms < best.ms) best = { id: v.id, launch, ms: timing.ms, gbPerS, p };
    } catch (e) {
      variants.push({ id: v.id, params: v.params, error: message(e) });
    }
  }
  if (!best) throw new Error(`the copy kernel failed: ${variants.map((v) => `${v.id}: ${v.error}`).join('; ')}`);
  // rt.time as the runtime measures it (one launch between events, host launch cost included)
  const rtTime = await rt.time(best.launch, opts.rounds);
  for (const p of keep) if (p !== best.p) p.free();
  log(`bandwidth: copy of ${(bytes / 2 / 2 ** 20).toFixed(0)} MiB f32 (${variants.map((v) => `${v.id} ${v.gbPerS ? v.gbPerS.toFixed(0) + ' GB/s' : 'failed'}`).join(', ')}): best ${best.id} ${best.gbPerS.toFixed(1)} GB/s; rt.time ${(bytes / (rtTime.medianMs * 1e6)).toFixed(1)} GB/s`);
  return {
    result: { tensorBytes: bytes / 2, bytes, best: best.id, ms: best.ms, gbPerS: best.gbPerS, rtTime: { ms: rtTime.medianMs, source: rtTime.source, gbPerS: bytes / (rtTime.medianMs * 1e6) }, variants },
    busy: { launch: best.launch, ms: best.ms },
    prepared: best.p,
  };
}

async function measureLaunchFloor(ctx: Ctx, opts: Options) {
  const def = kernel('qg_tiny', { x: tensor('f32', [32]) }, (h) => h['x']!);
  const cp = compile(def.program, { params: { perThread: 1, workgroupSize: 32 } });
  const p = prepare(cp, ctx.rt, { x: { shape: [32], data: new Float32Array(32) } });
  try {
    const timing = await timeLaunches(ctx, launcher(ctx.rt, cp, p), opts.inner, opts.rounds);
    return { us: timing.ms * 1000, timing };
  } finally {
    p.free();
  }
}

async function measureGemv(ctx: Ctx, b: Built, opts: Options, bandwidth: number | undefined): Promise<GemvResult> {
  const { rt } = ctx;
  const { impl, M } = b;
  const io = 4 * (M * impl.K + M * impl.N);
  const bytes = impl.storageBytes + io + impl.extraBytes;
  const copies = Math.max(1, Math.min(64, Math.ceil((opts.flushMib * 2 ** 20) / bytes)));
  const base = { name: impl.name, kind: impl.kind, M, N: impl.N, K: impl.K, ...(impl.params ? { params: impl.params } : {}), bitsPerWeight: impl.bitsPerWeight, storageBytes: impl.storageBytes, bytes, copies };
  const first = b.variants.find((v) => v.cp);
  if (!first) return { ...base, variants: b.variants.map((v) => ({ id: v.id, params: v.params, ok: false, error: v.error ?? 'not compiled' })), error: 'no variant compiled' };
  const prepared: Prepared[] = [];
  try {
    for (let c = 0; c < copies; c++) prepared.push(prepare(first.cp!, rt, b.inputs));
    const want = reference(b.x, impl, M);
    const outName = first.cp!.outputs.get('out') ?? [...first.cp!.outputs.values()][0]!;
    const outBuf = prepared[0]!.buffers.get(outName)!;
    const nan = new Float32Array(outBuf.length).fill(NaN);
    const variants: VariantResult[] = [];
    for (const v of b.variants) {
      if (!v.cp) {
        variants.push({ id: v.id, params: v.params, ok: false, error: v.error ?? 'not compiled' });
        continue;
      }
      const cp = v.cp;
      try {
        for (const k of cp.kernels) await (rt as BackendRuntime & { compile?: (k: Kernel) => Promise<void> }).compile?.(k.kernel);
        const launches = prepared.map((p) => launcher(rt, cp, p));
        rt.upload(outBuf, nan);
        launches[0]!();
        const got = await rt.download(outBuf);
        const err = relErr(got, want, impl, M);
        const ok = err < TOLERANCE;
        const timing = await timeLaunches(ctx, (i) => launches[i % copies]!(), Math.max(opts.inner, copies), opts.rounds);
        variants.push({ id: v.id, params: v.params, kernels: cp.kernels.length, ok, maxRelErr: err, ms: timing.ms, gbPerS: bytes / (timing.ms * 1e6), timing, ...(ok ? {} : { error: `output differs from the float64 reference (max rel err ${err})` }) });
      } catch (e) {
        variants.push({ id: v.id, params: v.params, kernels: cp.kernels.length, ok: false, error: message(e).split('\n').slice(0, 12).join('\n') });
      }
    }
    const good = variants.filter((v) => v.ok && v.ms !== undefined).sort((a, c) => a.ms! - c.ms!);
    const top = good[0];
    const best = top ? { id: top.id, params: top.params, ms: top.ms!, us: top.ms! * 1000, gbPerS: top.gbPerS!, ...(bandwidth ? { fractionOfBandwidth: top.gbPerS! / bandwidth } : {}) } : undefined;
    return { ...base, variants, ...(best ? { best } : { error: 'no variant produced the reference output' }) };
  } finally {
    for (const p of prepared) p.free();
  }
}

// -------------------------------------------------------------------------------------------------
// Reports

function table(results: readonly GemvResult[]): string {
  const rows = [['M', 'size', 'impl', 'bits/w', 'best schedule', 'µs', 'GB/s', 'of bw', 'vs f16', 'vs f32']];
  for (const r of results) {
    rows.push([
      String(r.M), `${r.N}x${r.K}`, r.name, r.bitsPerWeight.toFixed(2),
      r.best ? r.best.id : `FAILED`, r.best ? r.best.us.toFixed(2) : '-', r.best ? r.best.gbPerS.toFixed(0) : '-',
      r.best?.fractionOfBandwidth !== undefined ? `${(100 * r.best.fractionOfBandwidth).toFixed(0)}%` : '-',
      r.speedupVsF16 !== undefined ? `${r.speedupVsF16.toFixed(2)}x` : '-', r.speedupVsF32 !== undefined ? `${r.speedupVsF32.toFixed(2)}x` : '-',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((s, c) => (c <= 2 || c === 4 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join('  ')).join('\n');
}

function targets(results: readonly GemvResult[]) {
  const out: { target: string; size: string; value?: number; pass: boolean; detail: string }[] = [];
  const sizes = [...new Set(results.map((r) => `${r.N}x${r.K}`))];
  for (const size of sizes) {
    const at = results.filter((r) => r.M === 1 && `${r.N}x${r.K}` === size);
    const int4 = at.find((r) => r.name === 'int4 g128');
    if (int4) {
      const f = int4.best?.fractionOfBandwidth;
      out.push({ target: 'int4 GEMV >= 80% of measured bandwidth (M=1)', size, ...(f !== undefined ? { value: f } : {}), pass: f !== undefined && f >= 0.8, detail: int4.best ? `${int4.best.gbPerS.toFixed(0)} GB/s, ${(100 * f!).toFixed(0)}% (${int4.best.id})` : 'no correct variant' });
    }
    const vptq = at.filter((r) => r.name.startsWith('vptq') && r.best).sort((a, b) => a.best!.ms - b.best!.ms)[0];
    if (vptq || at.some((r) => r.name.startsWith('vptq'))) {
      const s = vptq?.speedupVsF16;
      out.push({ target: 'VPTQ 2-bit GEMV faster than f16 GEMV (M=1)', size, ...(s !== undefined ? { value: s } : {}), pass: s !== undefined && s > 1, detail: vptq && s !== undefined ? `${vptq.name}: ${s.toFixed(2)}x f16 (${vptq.best!.us.toFixed(2)} µs)` : 'no correct VPTQ or f16 variant' });
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// Main

async function compileSourcesMain(argv: readonly string[]): Promise<void> {
  const get = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const jobs = JSON.parse(readFileSync(get('--compile-sources')!, 'utf8')) as CompileJob[];
  const [i, n] = (get('--shard') ?? '0/1').split('/').map(Number) as [number, number];
  const mine = jobs.filter((_, j) => j % n === i);
  console.log(JSON.stringify(compileJobs(mine, get('--arch') ?? 'sm_90')));
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--compile-sources')) {
    await compileSourcesMain(argv);
    return 0;
  }
  if (argv.includes('-h') || argv.includes('--help')) {
    const lines = readFileSync(SCRIPT, 'utf8').split('\n');
    console.log(lines.slice(1, lines.indexOf(' */')).map((l) => l.replace(/^ \*\s?/, '')).join('\n'));
    return 0;
  }
  const opts = parseArgs(argv);
  const t0 = performance.now();
  const log = (s: string) => console.log(`[quant-gemv +${((performance.now() - t0) / 1000).toFixed(1)}s] ${s}`);
  const command = `node --import tsx bench/device/quant-gemv-cuda.ts ${argv.join(' ')}`.trim();

  // The runtime first: without a GPU, fail before any host work.
  let ctx: Ctx | undefined;
  let device = '';
  let arch = opts.arch;
  if (!opts.checkOnly) {
    if (opts.backend === 'js') {
      ctx = { rt: new JSRuntime() };
    } else if (opts.backend === 'cuda-emu') {
      const addon = new CudaEmulatorAddon();
      const rt = createCudaEmulatorRuntime({ addon });
      if (!rt) {
        console.error(`quant-gemv-cuda: the CUDA emulator cannot run here: ${cudaEmulatorUnavailableReason()}`);
        return 1;
      }
      ctx = { rt, cuda: { rt, addon } };
      arch = rt.arch;
    } else {
      const rt = createCudaRuntime();
      const addon = loadCudaAddon();
      if (!rt || !addon) {
        console.error(`quant-gemv-cuda: no CUDA device: ${cudaUnavailableReason() ?? 'the CUDA addon did not load'}\n(--check-only builds and compiles every kernel without a GPU; --backend js runs the harness on the CPU)`);
        return 1;
      }
      ctx = { rt, cuda: { rt, addon } };
      arch = rt.arch;
    }
    device = ctx.rt.info.description;
    log(`${opts.backend}: ${device}`);
  } else {
    log(`check only: building every program and compiling its kernels for ${arch} (no device)`);
  }

  // Host: matrices, references and every program (each variant) at every size and batch.
  const built: Built[] = [];
  for (const N of opts.sizes) {
    const impls = buildImpls(N, N, opts, log);
    for (const impl of impls) for (const M of opts.ms) built.push(buildPrograms(impl, M, opts));
  }
  const programs = built.flatMap((b) => b.variants.flatMap((v) => (v.cp ? [v.cp] : [])));
  const buildErrors = built.flatMap((b) => b.variants.filter((v) => v.error).map((v) => ({ name: `${b.impl.name} M=${b.M} ${b.impl.N}x${b.impl.K} ${v.id}`, error: v.error! })));
  const kernelsPer = built.map((b) => ({ name: b.impl.name, M: b.M, N: b.impl.N, kernels: b.variants.find((v) => v.cp)?.cp?.kernels.length ?? 0, expected: b.impl.kind === 'pair' ? 2 : 1 }));
  const unfused = kernelsPer.filter((k) => k.kernels !== k.expected);
  log(`${built.length} GEMV programs x ${opts.variants.length} schedules: ${programs.length} compiled programs, ${buildErrors.length} failed to build${unfused.length ? `; NOT ONE KERNEL: ${unfused.map((u) => `${u.name} M=${u.M} (${u.kernels})`).join(', ')}` : ''}`);
  for (const e of buildErrors) log(`  build failed: ${e.name}: ${e.error}`);

  if (opts.checkOnly || (opts.backend === 'cuda' && opts.precompile)) {
    const copyPrograms = [...COPY_VARIANTS.map((v) => compile(kernel('qg_copy', { x: tensor('f32', [(opts.copyMib * 2 ** 20) / 4]) }, (h) => h['x']!).program, { params: v.params })), compile(kernel('qg_tiny', { x: tensor('f32', [32]) }, (h) => h['x']!).program, { params: { perThread: 1, workgroupSize: 32 } })];
    const kernels = distinctKernels([...copyPrograms, ...programs]);
    const jobs = cudaJobs(kernels, opts.checkOnly ? opts.units : 0);
    const tc = performance.now();
    const report = await compileParallel(jobs, arch, opts.jobs);
    const seconds = (performance.now() - tc) / 1000;
    const what = jobs.length === kernels.length ? `${kernels.length} kernels` : `${kernels.length} kernels in ${jobs.length} units`;
    log(`compileCuda ${arch}: ${what} (${report.compiled} compiled, ${report.cached} cached${report.compiler ? `, ${report.compiler}` : ''}) in ${seconds.toFixed(1)} s with ${Math.min(opts.jobs, jobs.length)} jobs; ${report.failures.length} failed`);
    for (const f of report.failures) log(`  compile failed: ${f.name}: ${f.error}`);
    if (opts.checkOnly) {
      // A format that no longer fuses into one kernel is reported (above and in the JSON), not a failure: it still runs.
      const ok = report.failures.length === 0 && buildErrors.length === 0;
      if (opts.out) {
        mkdirSync(dirname(opts.out), { recursive: true });
        writeFileSync(opts.out, JSON.stringify({ date: new Date().toISOString(), mode: 'check-only', command, arch, sizes: opts.sizes, ms: opts.ms, variants: opts.variants, programs: programs.length, kernels: kernels.length, units: jobs.length, compile: { ...report, seconds }, buildErrors, kernelsPerImpl: kernelsPer, ok }, null, 2) + '\n');
      }
      log(`check-only ${ok ? 'OK' : 'FAILED'}: ${built.length} GEMV programs, ${kernels.length} distinct kernels compiled for ${arch}`);
      return ok ? 0 : 1;
    }
  }

  // Device: bandwidth, launch floor, then every GEMV.
  const c = ctx!;
  const copyElements = Math.floor((opts.copyMib * 2 ** 20) / 4);
  const copy = await measureCopy(c, copyElements, opts, log);
  if (c.cuda) c.busy = copy.busy;
  const floor = await measureLaunchFloor(c, opts);
  log(`launch floor: ${floor.us.toFixed(2)} µs per back-to-back launch (host enqueue ${floor.timing.hostUsPerLaunch.toFixed(1)} µs)`);
  const results: GemvResult[] = [];
  for (const b of built) {
    const r = await measureGemv(c, b, opts, copy.result.gbPerS);
    results.push(r);
    const bad = r.variants.filter((v) => !v.ok).map((v) => v.id);
    log(`${r.name} M=${r.M} ${r.N}x${r.K}: ${r.best ? `${r.best.us.toFixed(2)} µs ${r.best.gbPerS.toFixed(0)} GB/s (${r.best.id})` : `FAILED (${r.error})`} over ${r.copies} copies${bad.length ? `; failed: ${bad.join(', ')}` : ''}`);
  }
  for (const r of results) {
    const ref = (name: string) => results.find((o) => o.name === name && o.M === r.M && o.N === r.N && o.K === r.K)?.best;
    const f16 = ref('f16');
    const f32 = ref('f32');
    if (r.best && f16) r.speedupVsF16 = f16.ms / r.best.ms;
    if (r.best && f32) r.speedupVsF32 = f32.ms / r.best.ms;
  }
  copy.prepared.free();
  const tg = targets(results);
  console.log(`\nLow-bit GEMV on ${device}\nmeasured bandwidth ${copy.result.gbPerS.toFixed(0)} GB/s (copy), launch floor ${floor.us.toFixed(2)} µs\n${table(results)}\n`);
  for (const t of tg) console.log(`target ${t.pass ? 'MET' : 'NOT MET'}: ${t.target} at ${t.size}: ${t.detail}`);
  const failed = results.filter((r) => !r.best);
  if (opts.out) {
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, JSON.stringify({
      date: new Date().toISOString(), mode: opts.backend, command, device, arch, sizes: opts.sizes, ms: opts.ms,
      timing: { rounds: opts.rounds, inner: opts.inner, flushMib: opts.flushMib, method: c.cuda ? 'CUDA events around `inner` back-to-back launches behind queued 256 MiB copies; median of rounds' : 'wall clock' },
      bandwidth: copy.result, launchFloor: { us: floor.us, timing: floor.timing },
      targets: tg, results, failed: failed.map((r) => `${r.name} M=${r.M} ${r.N}x${r.K}`), seconds: (performance.now() - t0) / 1000,
    }, null, 2) + '\n');
    log(`wrote ${opts.out}`);
  }
  c.rt.destroy();
  log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s${failed.length ? `; FAILED: ${failed.map((r) => `${r.name} M=${r.M}`).join(', ')}` : ''}`);
  return failed.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === SCRIPT) process.exitCode = await main();
