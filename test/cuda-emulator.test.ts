/**
 * The CUDA emulator (src/backends/cuda/emulator.ts): its driver calls, the device built-ins of its
 * header (barriers, shuffles, WMMA tiles) on hand-written kernels, and what it reports for kernels
 * that deadlock or crash. The property suites run Tessera's own kernels on it as the 'cuda-emu'
 * backend (test/helpers/backends.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CudaEmulatorAddon, createCudaEmulatorRuntime, cudaEmulatorUnavailableReason, entryParams, pruneEmulatorCache } from '../src/backends/cuda/emulator.js';
import { compile } from '../src/passes/pipeline.js';
import * as D from '../src/dsl/index.js';
import { checkOnBackend } from './helpers/compare.js';
import { inputsFor } from './helpers/inputs.js';

const HEADER = '#include <cuda_fp16.h>\n';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs `name` of `source` on the emulator with f32 buffers `bufs` and int params `ints`; returns the buffers after. */
function launch(source: string, name: string, bufs: Float32Array[], ints: number[], grid: number, block: number): Float32Array[] {
  const a = new CudaEmulatorAddon();
  const ptrs = bufs.map((b) => {
    const p = a.memAlloc(b.byteLength);
    a.memcpyHtoD(p, b);
    return p;
  });
  const fn = a.moduleGetFunction(a.moduleLoadData(Buffer.from(HEADER + source)), name);
  a.launchKernel(fn, [grid, 1, 1], [block, 1, 1], 0, [...ptrs, ...ints]);
  return ptrs.map((p, i) => {
    const out = new Float32Array(bufs[i]!.length);
    a.memcpyDtoH(out, p);
    return out;
  });
}

// Needs g++ and CUDA's headers (the toolkit): required where scripts/test.sh finds nvcc, and in CI.
const why = cudaEmulatorUnavailableReason();
if (why && process.env['TESSERA_CUDA_EMU_REQUIRED'] === '1') throw new Error(`TESSERA_CUDA_EMU_REQUIRED=1 but the CUDA emulator cannot run: ${why}`);

describe.skipIf(why !== undefined)('CUDA emulator', () => {
  it('prunes the least recently used executables when the cache outgrows its bound', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-emu-cache-'));
    try {
      mkdirSync(join(dir, 'pch-x'));
      for (let i = 0; i < 10; i++) {
        writeFileSync(join(dir, `k${i}`), Buffer.alloc(1000));
        utimesSync(join(dir, `k${i}`), 1000 + i, 1000 + i);
      }
      expect(pruneEmulatorCache(dir, 20_000)).toBe(0);
      // over 8000 bytes: down to 4000, oldest first
      expect(pruneEmulatorCache(dir, 8000)).toBe(6);
      expect(readdirSync(dir).sort()).toEqual(['k6', 'k7', 'k8', 'k9', 'pch-x']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds a kernel again when its executable was pruned between launches', () => {
    const saved = process.env['TESSERA_CACHE_DIR'];
    const dir = mkdtempSync(join(tmpdir(), 'tessera-emu-cache-'));
    process.env['TESSERA_CACHE_DIR'] = dir;
    try {
      const a = new CudaEmulatorAddon();
      const p = a.memAlloc(16);
      const fn = a.moduleGetFunction(a.moduleLoadData(Buffer.from('extern "C" __global__ void three(float* __restrict__ y) { y[threadIdx.x] = 3.0f; }')), 'three');
      expect(pruneEmulatorCache(join(dir, 'cuda-emu'), 0)).toBe(1);
      a.launchKernel(fn, [1, 1, 1], [4, 1, 1], 0, [p]);
      const out = new Float32Array(4);
      a.memcpyDtoH(out, p);
      expect(Array.from(out)).toEqual([3, 3, 3, 3]);
    } finally {
      if (saved === undefined) delete process.env['TESSERA_CACHE_DIR'];
      else process.env['TESSERA_CACHE_DIR'] = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads a kernel's parameters from its signature", () => {
    const src = 'extern "C" __global__ void __launch_bounds__(64) k(const float* __restrict__ b_x, __half* __restrict__ b_y, unsigned char* __restrict__ b_m, int d_N) {}';
    expect(entryParams(src, 'k')).toEqual([
      { name: 'b_x', pointer: true, type: 'const float*' },
      { name: 'b_y', pointer: true, type: '__half*' },
      { name: 'b_m', pointer: true, type: 'unsigned char*' },
      { name: 'd_N', pointer: false, type: 'int' },
    ]);
    expect(entryParams('extern "C" __global__ void k() {}', 'k')).toEqual([]);
    expect(entryParams(src, 'other')).toBeUndefined();
  });

  it('runs every block, each thread once, with shared memory and __syncthreads between phases', () => {
    // each block reverses its 64 values through shared memory: wrong without the barrier
    const src = `extern "C" __global__ void rev(const float* __restrict__ x, float* __restrict__ y, int n) {
      __shared__ float s[64];
      const int i = blockIdx.x * 64 + threadIdx.x;
      s[threadIdx.x] = i < n ? x[i] : 0.0f;
      __syncthreads();
      if (i < n) y[i] = s[63 - threadIdx.x] + 1000.0f * blockIdx.x;
    }`;
    const x = Float32Array.from({ length: 192 }, (_, i) => i);
    const [, y] = launch(src, 'rev', [x, new Float32Array(192)], [192], 3, 64);
    expect(Array.from(y!)).toEqual(Array.from({ length: 192 }, (_, i) => Math.floor(i / 64) * 64 + 63 - (i % 64) + 1000 * Math.floor(i / 64)));
  });

  it('shuffles within warps and groups of a width, as CUDA does', () => {
    const src = `extern "C" __global__ void sh(float* __restrict__ a, float* __restrict__ b, float* __restrict__ c) {
      const int t = threadIdx.x;
      float v = (float)t;
      // a butterfly sum over groups of 8 lanes
      float s = v;
      for (int o = 4; o > 0; o >>= 1) s += __shfl_xor_sync(__activemask(), s, o, 8);
      a[t] = s;
      b[t] = __shfl_sync(0xffffffffu, v, 3, 16);
      c[t] = __shfl_xor_sync(0xffffffffu, v, 16, 16);
    }`;
    const [a, b, c] = launch(src, 'sh', [new Float32Array(64), new Float32Array(64), new Float32Array(64)], [], 1, 64);
    const group = (t: number) => Math.floor(t / 8) * 8;
    expect(Array.from(a!)).toEqual(Array.from({ length: 64 }, (_, t) => 8 * group(t) + 28));
    expect(Array.from(b!)).toEqual(Array.from({ length: 64 }, (_, t) => Math.floor(t / 16) * 16 + 3));
    // lane ^ 16 lies in a later group of 16 for lanes 0-15 of each warp: those read their own value;
    // lanes 16-31 read the earlier group's
    expect(Array.from(c!)).toEqual(Array.from({ length: 64 }, (_, t) => (t % 32 < 16 ? t : t - 16)));
  });

  it('multiplies 16x16 f16 tiles with WMMA into f32', () => {
    const src = `#include <mma.h>
    extern "C" __global__ void mm(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c) {
      __shared__ __half sa[256], sb[256];
      __shared__ float sc[256];
      for (int i = threadIdx.x; i < 256; i += 32) { sa[i] = __float2half(a[i]); sb[i] = __float2half(b[i]); }
      __syncthreads();
      nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major> fa;
      nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __half, nvcuda::wmma::row_major> fb;
      nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> fc;
      nvcuda::wmma::fill_fragment(fc, 0.0f);
      nvcuda::wmma::load_matrix_sync(fa, sa, 16);
      nvcuda::wmma::load_matrix_sync(fb, sb, 16);
      nvcuda::wmma::mma_sync(fc, fa, fb, fc);
      nvcuda::wmma::store_matrix_sync(sc, fc, 16, nvcuda::wmma::mem_row_major);
      __syncthreads();
      for (int i = threadIdx.x; i < 256; i += 32) c[i] = sc[i];
    }`;
    const a = Float32Array.from({ length: 256 }, (_, i) => ((i * 7) % 11) - 5);
    const b = Float32Array.from({ length: 256 }, (_, i) => ((i * 5) % 13) - 6);
    const [, , c] = launch(src, 'mm', [a, b, new Float32Array(256)], [], 1, 32);
    const want = Array.from({ length: 256 }, (_, e) => {
      let s = 0;
      for (let k = 0; k < 16; k++) s += a[Math.floor(e / 16) * 16 + k]! * b[k * 16 + (e % 16)]!;
      return s;
    });
    expect(Array.from(c!)).toEqual(want);
  });

  it('gives every block shared memory that reads as NaN until written', () => {
    // block 0 writes s[0..3]; block 1 writes nothing and must not see block 0's values
    const src = `extern "C" __global__ void stale(float* __restrict__ y) {
      __shared__ float s[4];
      if (blockIdx.x == 0) s[threadIdx.x] = 7.0f;
      __syncthreads();
      y[blockIdx.x * 4 + threadIdx.x] = s[threadIdx.x];
    }`;
    const [y] = launch(src, 'stale', [new Float32Array(8)], [], 2, 4);
    expect(Array.from(y!.subarray(0, 4))).toEqual([7, 7, 7, 7]);
    expect(Array.from(y!.subarray(4)).every(Number.isNaN)).toBe(true);
  });

  it("runs a block's threads forwards in even blocks and backwards in odd ones, so a race shows", () => {
    // each thread reads its neighbour's shared value without a barrier: a race
    const src = `extern "C" __global__ void race(float* __restrict__ y) {
      __shared__ float s[5];
      s[threadIdx.x] = 1.0f;
      y[blockIdx.x * 4 + threadIdx.x] = threadIdx.x < 3 ? s[threadIdx.x + 1] : 0.0f;
    }`;
    const [y] = launch(src, 'race', [new Float32Array(8)], [], 2, 4);
    // forwards, the neighbour has not written yet (NaN); backwards, it has
    expect(Array.from(y!.subarray(0, 3)).every(Number.isNaN)).toBe(true);
    expect(Array.from(y!.subarray(4, 7))).toEqual([1, 1, 1]);
  });

  it('reports a deadlock instead of hanging, an access past a buffer and a crash as illegal addresses', () => {
    const stuck = `extern "C" __global__ void stuck(float* __restrict__ y) {
      if (threadIdx.x == 0) __syncthreads(); else __syncwarp();
      y[threadIdx.x] = 1.0f;
    }`;
    expect(() => launch(stuck, 'stuck', [new Float32Array(32)], [], 1, 32)).toThrow(
      "CUDA_ERROR_LAUNCH_FAILED: kernel 'stuck' in the emulator: deadlock in block (0, 0, 0): 1 threads wait at __syncthreads, 31 at a warp shuffle or __syncwarp, 0 returned",
    );
    // one float past the end of a buffer of 16 floats
    const over = `extern "C" __global__ void over(const float* __restrict__ x, float* __restrict__ y, int n) { y[threadIdx.x] = x[threadIdx.x + n]; }`;
    expect(() => launch(over, 'over', [new Float32Array(16), new Float32Array(16)], [1], 1, 16)).toThrow(
      "CUDA_ERROR_ILLEGAL_ADDRESS: kernel 'over' in the emulator: an access past the end of 'x' (a buffer of 64 bytes), at byte offset 64",
    );
    expect(launch(over, 'over', [Float32Array.from({ length: 17 }, (_, i) => i), new Float32Array(16)], [1], 1, 16)[1]).toEqual(Float32Array.from({ length: 16 }, (_, i) => i + 1));
    const wild = `extern "C" __global__ void wild(float* __restrict__ y) { y[threadIdx.x - (1 << 30)] = 1.0f; }`;
    expect(() => launch(wild, 'wild', [new Float32Array(32)], [], 1, 32)).toThrow(/CUDA_ERROR_ILLEGAL_ADDRESS: kernel 'wild' in the emulator: a segmentation fault at address 0x[0-9a-f]+, outside every buffer/);
    expect(() => launch(wild, 'nope', [new Float32Array(32)], [], 1, 32)).toThrow("CUDA_ERROR_NOT_FOUND: the module has no kernel named 'nope'");
    expect(() => launch('extern "C" __global__ void bad(float* y) { y[0] = undeclared; }', 'bad', [new Float32Array(1)], [], 1, 1)).toThrow(/CUDA_ERROR_INVALID_PTX: the emulator's g\+\+ [\d.]+ rejected kernel 'bad':[^]*undeclared/);
  });

  it('builds kernels with the extra g++ flags $TESSERA_CUDA_EMU_CXXFLAGS names: UBSan reports a signed overflow', () => {
    const code = [
      "import { CudaEmulatorAddon } from './src/backends/cuda/emulator.ts';",
      'const a = new CudaEmulatorAddon();',
      'const p = a.memAlloc(16);',
      `const fn = a.moduleGetFunction(a.moduleLoadData(Buffer.from('extern "C" __global__ void ub(int* __restrict__ y, int d) { y[threadIdx.x] = 2147483647 + d; }')), 'ub');`,
      'try { a.launchKernel(fn, [1, 1, 1], [4, 1, 1], 0, [p, 5]); console.log("no error"); } catch (e) { console.log(String(e)); }',
    ].join('\n');
    const run = (flags: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, TESSERA_CUDA_EMU_CXXFLAGS: flags } }).stdout;
    expect(run('-fsanitize=undefined -fno-sanitize-recover=undefined')).toMatch(/CUDA_ERROR_LAUNCH_FAILED: kernel 'ub' in the emulator: .*runtime error: signed integer overflow: 5 \+ 2147483647 cannot be represented in type 'int'/);
    expect(run('')).toBe('no error\n');
  });

  it("runs Tessera's kernels under the CUDA runtime, like the reference (f16 storage, an f16 matmul on tensor cores)", async () => {
    const rt = createCudaEmulatorRuntime()!;
    try {
      expect(rt.info).toMatchObject({ kind: 'cuda', features: expect.arrayContaining(['tensor-cores', 'tensor-cores-bf16']) });
      expect(rt.info.description).toContain('Tessera CUDA emulator (CPU)');
      const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
      const mm = D.kernel('mm_f16', { a: D.tensor('f16', [M, K]), b: D.tensor('f16', [K, N]) }, ({ a, b }) => D.matmul(a, b).relu());
      const cp = compile(mm.program, { tensorCores: true });
      expect(cp.kernels.map((k) => k.kernel.schedule.kind)).toEqual(['matmul_mma']);
      expect(cp.kernels[0]!.kernel.fragments?.length).toBeGreaterThan(0);
      const dims = { M: 20, N: 24, K: 40 };
      expect(await checkOnBackend(cp, rt, inputsFor(mm, dims), { rtol: 1e-2, atol: 1e-2 }, dims)).toBeNull();
    } finally {
      rt.destroy();
    }
  });
});
