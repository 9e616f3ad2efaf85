/**
 * The CUDA backend: the driver addon, the nvcc driver and its cache, the runtime against a fake
 * libcuda (test/cuda-stub), and programs against the reference on the GPU when one is present,
 * else on the CPU emulator (src/backends/cuda/emulator.ts).
 *
 * nvcc is required (it is installed wherever this suite runs). On a machine without a GPU the
 * execution test runs on the emulator, with the GPU's absence in its name and a console warning;
 * with TESSERA_CUDA_REQUIRED=1 a missing device fails instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { TesseraError } from '../src/errors.js';
import { compile } from '../src/passes/pipeline.js';
import type { HostArray } from '../src/runtime/backend.js';
import { prepare, type HostTensor } from '../src/runtime/execute.js';
import { cudaAddonPath, cudaAddonUnavailableReason, loadCudaAddon } from '../src/backends/cuda/native.js';
import { compileCuda, nvccAvailable, nvccPath, nvccVersion, nvrtcLibraryPath } from '../src/backends/cuda/nvcc.js';
import { printCudaUnit } from '../src/backends/cuda/print.js';
import { createCudaEmulatorRuntime, cudaEmulatorUnavailableReason } from '../src/backends/cuda/emulator.js';
import { createCudaRuntime, cudaGrid, cudaUnavailableReason, type CudaRuntime } from '../src/backends/cuda/runtime.js';
import { checkOnBackend } from './helpers/compare.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** An NVIDIA kernel driver is loaded on this machine. */
const GPU_PRESENT = existsSync('/proc/driver/nvidia/version') || existsSync('/dev/nvidiactl');
const REQUIRED = process.env['TESSERA_CUDA_REQUIRED'] === '1';

const runtime: CudaRuntime | undefined = createCudaRuntime();
const reason = runtime ? undefined : (cudaUnavailableReason() ?? 'unknown');
/** Without a GPU, the CUDA emulator runs the execution test (undefined where it cannot run either). */
const emulated: CudaRuntime | undefined = runtime ? undefined : createCudaEmulatorRuntime();
if (!runtime) {
  console.warn(`\n[tessera] ########## CUDA execution on a GPU not tested: ${reason}; ${emulated ? 'on the CPU emulator instead' : `nor on the emulator: ${cudaEmulatorUnavailableReason()}`} ##########\n`);
}
afterAll(() => {
  runtime?.destroy();
  emulated?.destroy();
});

const tmpDirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const softmaxDef = D.kernel('cuda_softmax', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));

describe('CUDA driver addon', () => {
  it('loads, and probe() reports cleanly', () => {
    const addon = loadCudaAddon();
    expect(addon, `${cudaAddonUnavailableReason()} (${cudaAddonPath()})`).toBeDefined();
    const p = addon!.probe();
    console.log(`[tessera] CUDA probe (addon built with ${addon!.builtWith}): ${JSON.stringify(p)}`);
    expect(Array.isArray(p.devices)).toBe(true);
    if (GPU_PRESENT) {
      expect(p.available, p.reason).toBe(true);
      expect(p.devices.length).toBeGreaterThan(0);
      const d = p.devices[0]!;
      expect(d.computeCapability[0]).toBeGreaterThanOrEqual(7);
      expect(d.totalMem).toBeGreaterThan(0);
      expect(d.maxThreadsPerBlock).toBeGreaterThanOrEqual(1024);
    } else {
      expect(p.available).toBe(false);
      expect(p.devices).toEqual([]);
      // Here: 'libcuda.so.1 not found: ...'; with a driver library but no GPU, cuInit's error.
      expect(p.reason).toMatch(/libcuda\.so\.1 not found|cuInit failed|no devices/);
      // Every other call throws the same reason instead of crashing.
      expect(() => addon!.memAlloc(16)).toThrow(`CUDA driver not available: ${p.reason}`);
      expect(() => addon!.ctxCreate(0)).toThrow(`CUDA driver not available: ${p.reason}`);
    }
  });

  it('createCudaRuntime() gives a runtime with a device, else undefined with a reason', () => {
    if (GPU_PRESENT) {
      expect(runtime, reason).toBeDefined();
      expect(runtime!.info.kind).toBe('cuda');
      console.log(`[tessera] CUDA runtime: ${runtime!.info.description}`);
    } else {
      expect(runtime).toBeUndefined();
      expect(reason).toBe(loadCudaAddon()!.probe().reason);
    }
  });
});

describe('nvcc driver', () => {
  it('finds nvcc', () => {
    expect(nvccAvailable(), 'nvcc is needed for the CUDA backend (set $TESSERA_NVCC or put it on PATH)').toBe(true);
    console.log(`[tessera] nvcc ${nvccVersion()} at ${nvccPath()}; NVRTC: ${nvrtcLibraryPath() ?? 'not found (nvcc is used)'}`);
    expect(nvccVersion()).toMatch(/^\d+\.\d+/);
  });

  it('compiles a printed softmax to cubin for sm_80 and sm_90, then hits the cache', () => {
    const cp = compile(softmaxDef.program);
    const source = printCudaUnit(cp.kernels.map((k) => k.kernel));
    const cacheDir = tempDir('tessera-cuda-cache-');
    const first = compileCuda(source, { archs: ['sm_80', 'sm_90'], output: 'cubin', cacheDir });
    expect(first.cached).toBe(false);
    expect(first.parts.map((p) => p.arch)).toEqual(['sm_80', 'sm_90']);
    for (const p of first.parts) {
      expect(p.bytes.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      for (const k of cp.kernels) expect(p.bytes.includes(Buffer.from(k.kernel.name)), k.kernel.name).toBe(true);
    }
    expect(first.command).toMatch(/-cubin .*-gencode arch=compute_80,code=sm_80/);
    expect(first.command).toMatch(/-gencode arch=compute_90,code=sm_90/);
    expect(first.command).not.toMatch(/fast_math/);
    expect(first.parts[0]!.bytes.equals(first.parts[1]!.bytes)).toBe(false);

    const second = compileCuda(source, { archs: ['sm_80', 'sm_90'], output: 'cubin', cacheDir });
    expect(second.cached).toBe(true);
    expect(second.parts.every((p) => p.cached)).toBe(true);
    second.parts.forEach((p, i) => expect(p.bytes.equals(first.parts[i]!.bytes)).toBe(true));
    // Only finished entries in the cache: no temporary files left.
    expect(readdirSync(cacheDir).sort()).toEqual(readdirSync(cacheDir).filter((f) => f.endsWith('.cubin')).sort());
    expect(readdirSync(cacheDir).length).toBe(2);

    // Another output kind or flag is another entry.
    expect(compileCuda(source, { archs: ['sm_80'], output: 'cubin', cacheDir, extraFlags: ['-lineinfo'] }).cached).toBe(false);
  });

  it('compiles to fatbin (every arch plus PTX) and to PTX (the lowest arch)', () => {
    const source = printCudaUnit(compile(softmaxDef.program).kernels.map((k) => k.kernel));
    const cacheDir = tempDir('tessera-cuda-cache-');
    const fat = compileCuda(source, { archs: ['sm_90', 'sm_80'], output: 'fatbin', cacheDir });
    expect(fat.command).toMatch(/-fatbin .*arch=compute_80,code=sm_80 .*arch=compute_90,code=sm_90 .*arch=compute_90,code=compute_90/);
    expect(fat.bytes.readUInt32LE(0)).toBe(0xba55ed50); // fatbin magic
    const ptx = compileCuda(source, { archs: ['sm_90', 'sm_80'], output: 'ptx', cacheDir });
    const text = ptx.bytes.toString('utf8');
    expect(text).toMatch(/\.target sm_80/);
    expect(text).toMatch(/\.visible \.entry cuda_softmax/);
  });

  it('a broken source is E_BACKEND with nvcc output and a command line that reproduces it', () => {
    const cacheDir = tempDir('tessera-cuda-cache-');
    const source = 'extern "C" __global__ void broken(float* x) { x[0] = undeclared_thing; }\n';
    let err: unknown;
    try {
      compileCuda(source, { archs: ['sm_80'], output: 'cubin', cacheDir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TesseraError);
    const e = err as TesseraError;
    expect(e.code).toBe('E_BACKEND');
    expect(e.message).toMatch(/undeclared_thing/);
    expect(e.message).toMatch(/error/);
    const kept = /source kept at (\S+)/.exec(e.message)?.[1];
    expect(kept && readFileSync(kept, 'utf8')).toBe(source);
    const command = /reproduce with:\n {2}(.+)/.exec(e.message)?.[1];
    expect(command).toMatch(/nvcc .*-cubin .*arch=compute_80,code=sm_80 .*-o \S+ \S+kernel\.cu$/);
    const again = spawnSync('sh', ['-c', command!], { encoding: 'utf8' });
    expect(again.status).not.toBe(0);
    expect(again.stderr + again.stdout).toMatch(/undeclared_thing/);
    expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]);
    rmSync(join(kept!, '..'), { recursive: true, force: true });
  });

  it('rejects bad options', () => {
    expect(() => compileCuda('', { archs: ['80'], output: 'cubin' })).toThrow(/sm_XY/);
    expect(() => compileCuda('', { archs: [], output: 'ptx' })).toThrow(/empty/);
  });
});

describe('CUDA runtime', () => {
  it('folds grids past the x limit into y', () => {
    expect(cudaGrid(1000, 128, 2 ** 31 - 1, 65535)).toEqual([8, 1]);
    expect(cudaGrid(1, 256, 2 ** 31 - 1, 65535)).toEqual([1, 1]);
    expect(cudaGrid(2 ** 31, 1, 2 ** 31 - 1, 65535)).toEqual([2 ** 30, 2]);
    expect(cudaGrid(100, 1, 30, 65535)).toEqual([25, 4]);
    expect(cudaGrid(10 ** 9, 1, 10, 10)).toBeUndefined();
  });

  it('drives every driver call correctly through a fake libcuda (launch dims, params, bytes, errors)', () => {
    const dir = tempDir('tessera-cuda-stub-');
    const cc = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-o', join(dir, 'libcuda.so.1'), join(ROOT, 'test/cuda-stub/libcuda_stub.c')], { encoding: 'utf8' });
    expect(cc.status, `building the stub libcuda: ${cc.stderr}`).toBe(0);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/cuda-stub/stub-check.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, LD_LIBRARY_PATH: dir, TESSERA_STUB_LOG: join(dir, 'launches.log') },
      timeout: 300_000,
    });
    expect(r.status, `stub check failed:\n${r.stderr}\n${r.stdout}`).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; launches: string[] };
    expect(summary.ok).toBe(true);
    expect(summary.launches.length).toBeGreaterThan(0);
  });

});

// -------------------------------------------------------------------------------------------------
// On a real device

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function f32(shape: number[], seed: number, lo = -3, hi = 3): HostTensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, () => lo + (hi - lo) * r()) as HostArray };
}

describe('CUDA execution', () => {
  if (REQUIRED && !runtime) {
    it('has a device (TESSERA_CUDA_REQUIRED=1)', () => {
      throw new Error(`TESSERA_CUDA_REQUIRED=1 but CUDA is not usable: ${reason}`);
    });
  }

  const target = runtime ?? emulated;
  it.skipIf(!target)(`programs on the ${runtime ? 'CUDA device' : `CUDA emulator (no GPU: ${reason})`} match the reference`, async () => {
    const rt = target!;
    const tol = { rtol: 1e-5, atol: 1e-5 };
    const cases: [string, D.KernelDef, Record<string, HostTensor>, { rtol: number; atol: number }][] = [
      ['softmax', softmaxDef, { x: f32([7, 1000], 1) }, tol],
      ['softmax (large rows)', softmaxDef, { x: f32([3, 5000], 2, -30, 30) }, tol],
      ['layernorm', D.kernel('cuda_layernorm', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.layernorm(x)), { x: f32([33, 129], 3) }, { rtol: 1e-4, atol: 1e-4 }],
      [
        'matmul + bias + silu',
        D.kernel('cuda_mm', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]), b: D.tensor('f32', [N]) }, ({ a, w, b }) => D.matmul(a, w).add(b).silu()),
        { a: f32([67, 45], 4), w: f32([45, 131], 5), b: f32([131], 6) },
        { rtol: 1e-4, atol: 1e-4 },
      ],
      ['f16 in and out', D.kernel('cuda_f16', { x: D.tensor('f16', [M, N]) }, ({ x }) => D.silu(x)), { x: f32([5, 77], 7) }, { rtol: 2e-3, atol: 2e-3 }],
      [
        'argmax, compare, cast',
        D.kernel('cuda_int', { x: D.tensor('f32', [M, N]) }, ({ x }) => ({ i: x.argmax(1), g: x.gt(0.5), c: x.mul(10).cast('i32') })),
        { x: f32([9, 31], 8) },
        { rtol: 0, atol: 0 },
      ],
    ];
    for (const [name, def, inputs, t] of cases) {
      expect(await checkOnBackend(def, rt, inputs, t), name).toBeNull();
    }
    const prepared = prepare(compile(softmaxDef.program), rt, { x: f32([4096, 1024], 9) });
    try {
      const timing = await rt.time(() => prepared.launch(), 5);
      console.log(`[tessera] CUDA softmax 4096x1024${runtime ? '' : ' on the emulator'}: ${timing.medianMs.toFixed(4)} ms (${timing.source})`);
      expect(timing.source).toBe(runtime ? 'device' : 'wall');
      expect(timing.medianMs).toBeGreaterThan(0);
    } finally {
      prepared.free();
    }
  });
});
