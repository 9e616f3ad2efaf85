/**
 * The tensor-core matmul schedule (schedule-mma.ts): f16 x f16 matmuls as warp kernels whose mma
 * statements print as WMMA on CUDA and run as loops elsewhere. Every case against the reference on
 * every backend (the CPU and WebGPU emulate a warp as one invocation over the same f16-rounded
 * values), at dims that are and are not multiples of the tiles, with prologues, epilogues, views and
 * batches; the CUDA source is compiled by nvcc where it is installed.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { TesseraError } from '../src/errors.js';
import { compile } from '../src/passes/pipeline.js';
import { storesOutsideLanes } from '../src/passes/schedule-mma.js';
import { printCudaUnit } from '../src/backends/cuda/print.js';
import { compileCuda } from '../src/backends/cuda/nvcc.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { printJS } from '../src/backends/js/print.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { smokeRun } from './helpers/webgpu.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const a = D.tensor('f16', [M, K]);
const b = D.tensor('f16', [K, N]);

const programs = [
  D.kernel('mma_plain', { a, b }, ({ a, b }) => D.matmul(a, b)),
  // an epilogue (bias, activation) and an f16 output
  D.kernel('mma_bias_relu', { a, b, bias: D.tensor('f16', [N]) }, ({ a, b, bias }) => D.matmul(a, b).add(bias).relu()),
  // a prologue on A (exact in f16: a power-of-two scale) and B read through a transpose ([N, K] weights)
  D.kernel('mma_prologue_nt', { a, wt: D.tensor('f16', [N, K]) }, ({ a, wt }) => D.matmul(a.mul(0.5), wt.T)),
  // f32 activations cast to f16 on the way in (the staging rounds them as the reference's cast does)
  D.kernel('mma_cast_in', { x: D.tensor('f32', [M, K]), b }, ({ x, b }) => D.matmul(x.cast('f16'), b)),
  // bfloat16 operands (sm_80+ tensor cores on CUDA), an f32 output
  D.kernel('mma_bf16', { a: D.tensor('bf16', [M, K]), b: D.tensor('bf16', [K, N]) }, ({ a, b }) => D.matmul(a, b).cast('f32')),
  // batched, B permuted, an f32 output
  D.kernel('mma_batched', { q: D.tensor('f16', [2, M, K]), kk: D.tensor('f16', [2, N, K]) }, ({ q, kk }) => D.matmul(q, kk.permute(0, 2, 1)).cast('f32').mul(0.125)),
];

const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.9);

const PARAMS = [
  { mma: 1 }, // the defaults: 2 x 2 warps of 2 x 2 tiles, bk 32
  { mma: 1, wm: 1, wn: 1, fm: 1, fn: 1, bk: 16, db: 1 }, // one warp, one tile, double-buffered
  { mma: 1, wm: 2, wn: 1, fm: 1, fn: 2, bk: 48 }, // uneven warp grid, three K steps per stage
];

describe('tensor-core (mma) matmul schedule', () => {
  for (const def of programs) {
    it(`${def.name} matches the reference on every backend`, async () => {
      for (const { name, rt } of await testBackends()) {
        // the SwiftShader smoke pass: a ragged shape and one whose K and N take the 8-half copies, two
        // schedules (its shader compiler is slow on these loops)
        for (const [m, n, k] of smokeRun() ? [[20, 17, 35], [9, 24, 40]] as const : [[5, 7, 9], [33, 40, 48], [20, 17, 35], [9, 24, 40]] as const) {
          const dims: Record<string, number> = { M: m, N: n, K: k };
          const ins: Record<string, { shape: number[]; data: Float32Array }> = {};
          def.program.inputs.forEach((p, i) => {
            const shape = p.shape.map((d) => (typeof d === 'number' ? d : dims[(d as { sym: string }).sym]!));
            ins[p.name] = { shape, data: data(shape.reduce((x, y) => x * y, 1), i) };
          });
          for (const params of smokeRun() ? PARAMS.slice(1) : PARAMS) {
            const cp = compile(def.program, { params });
            expect(cp.kernels.some((c) => c.kernel.schedule.kind === 'matmul_mma'), `${def.name}: the mma schedule was taken`).toBe(true);
            expect(await checkOnBackend(cp, rt, ins, { rtol: 2e-3, atol: 2e-3 }), `${def.name} ${name} ${m}x${n}x${k} ${JSON.stringify(params)}`).toBeNull();
          }
        }
      }
    }, 120_000);
  }

  it('is the default for f16 x f16 matmuls where the target has tensor cores, and only there', () => {
    const kinds = (def: D.KernelDef, opts: Parameters<typeof compile>[1]) => compile(def.program, opts).kernels.map((k) => k.kernel.schedule.kind);
    const f16 = programs[0]!;
    const f32 = D.kernel('f32mm', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]) }, ({ x, w }) => D.matmul(x, w));
    expect(kinds(f16, { tensorCores: true })).toEqual(['matmul_mma']);
    expect(kinds(f16, {})).toEqual(['matmul']);
    expect(kinds(f16, { tensorCores: true, params: { mma: 0 } })).toEqual(['matmul']);
    // f32 operands keep their schedule, even when mma is asked for
    expect(kinds(f32, { tensorCores: true })).toEqual(['matmul']);
    expect(kinds(f32, { params: { mma: 1 } })).toEqual(['matmul']);
    // bf16 takes tensor cores where the target says they take bf16 (sm_80+)
    const bf16 = programs.find((p) => p.name === 'mma_bf16')!;
    expect(kinds(bf16, { tensorCores: true })).toEqual(['matmul']);
    expect(kinds(bf16, { tensorCores: true, bf16TensorCores: true })).toEqual(['matmul_mma']);
    const k = compile(f16.program, { tensorCores: true }).kernels[0]!.kernel;
    expect(k.schedule.params).toMatchObject({ mma: 1, wm: 2, wn: 2, fm: 2, fn: 2, bk: 32, workgroupSize: 4 });
  });

  it('keeps every store inside a lanes loop, so no CUDA lane repeats another', () => {
    for (const def of programs) {
      for (const params of PARAMS) {
        const k = compile(def.program, { params }).kernels.find((c) => c.kernel.warp)!.kernel;
        expect(storesOutsideLanes(k.body), def.name).toBe(0);
      }
    }
  });

  it('prints WMMA for CUDA (blocks of 32 threads per warp) and loops for the CPU', () => {
    const k = compile(programs[1]!.program, { tensorCores: true }).kernels[0]!.kernel;
    const cu = printCudaUnit([k]);
    expect(cu).toContain('#include <mma.h>');
    expect(cu).toContain('__launch_bounds__(128)');
    expect(cu).toMatch(/nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major>/);
    expect(cu.match(/nvcuda::wmma::mma_sync\(/g)).toHaveLength(4);
    expect(cu).toContain('__shared__ __align__(32) __half');
    expect(cu).toMatch(/\+ tsr_lane \* 1; \w+ < 256; \w+ \+= 32\)/);
    const js = printJS(k);
    expect(js).toContain('H.mma(');
    expect(js).toContain('new Float32Array(256)');
  });

  it('stages plain f16 operands eight halves at a time where their rows allow, element by element otherwise', () => {
    const text = (def: D.KernelDef, specialize?: Record<string, number>) => printKernel(compile(def.program, { params: { mma: 1 }, ...(specialize ? { specialize } : {}) }).kernels.find((c) => c.kernel.warp)!.kernel);
    // both operands plain: copies behind tests of K and N, the element loops in the other branches
    const plain = text(programs[0]!);
    expect(plain.match(/\.\.\+8\] = /g)).toHaveLength(2);
    expect(plain).toMatch(/eq\(mod\(\$K, 8\), 0\)/);
    expect(plain).toMatch(/eq\(mod\(\$N, 8\), 0\)/);
    // constant dims decide at compile time
    expect(text(programs[0]!, { M: 9, N: 24, K: 40 })).not.toMatch(/, 8\), 0\)/);
    expect(text(programs[0]!, { M: 9, N: 24, K: 40 }).match(/\.\.\+8\] = /g)).toHaveLength(2);
    expect(text(programs[0]!, { M: 9, N: 17, K: 35 })).not.toMatch(/\.\.\+8\]/);
    // a prologue on A and a transposed B: neither is a plain row-major buffer
    expect(text(programs[2]!)).not.toMatch(/\.\.\+8\]/);
    // CUDA: 16-byte (cp.async on sm_80+) copies, waited for at each barrier
    const cu = printCudaUnit([compile(programs[0]!.program, { params: { mma: 1 } }).kernels[0]!.kernel]);
    expect(cu.match(/tsr_copy16\(s_/g)).toHaveLength(2);
    expect(cu).toContain('cp.async.cg.shared.global');
    expect(cu).not.toMatch(/[^;] __syncthreads\(\);/);
  });

  it('compiles with nvcc for sm_75, sm_80 and sm_90 at every tested shape of the schedule (bf16: sm_80 and sm_90)', () => {
    const kernels = (bf16: boolean) => programs.filter((def) => (def.name === 'mma_bf16') === bf16).flatMap((def) => PARAMS.map((params, i) => {
      const k = compile(def.program, { params }).kernels.find((c) => c.kernel.warp)!.kernel;
      return { ...k, name: `${k.name}_${i}` };
    }));
    // sm_75: the synchronous 16-byte copies; sm_80 and later: cp.async
    const r = compileCuda(printCudaUnit(kernels(false)), { archs: ['sm_75', 'sm_80', 'sm_90'], output: 'fatbin' });
    expect(r.bytes.length).toBeGreaterThan(0);
    const cu = printCudaUnit(kernels(true));
    expect(cu).toMatch(/fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>/);
    expect(cu).toContain('__shared__ __align__(32) __nv_bfloat16');
    expect(compileCuda(cu, { archs: ['sm_80', 'sm_90'], output: 'fatbin' }).bytes.length).toBeGreaterThan(0);
    // below sm_80 the bf16 kernel says why it cannot compile
    expect(() => compileCuda(cu, { archs: ['sm_75'], output: 'fatbin' })).toThrow(/bf16 tensor-core kernels need sm_80/);
  }, 180_000);

  it('refuses parameters the hardware cannot take, naming them', () => {
    const bad = (params: Record<string, number>, text: RegExp) => {
      let err: unknown;
      try {
        compile(programs[0]!.program, { params });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TesseraError);
      expect((err as TesseraError).code).toBe('E_ARG');
      expect((err as Error).message).toMatch(text);
    };
    bad({ mma: 1, bk: 24 }, /bk must be a multiple of 16/);
    bad({ mma: 1, wm: 8, wn: 8 }, /64 warps is 2048 threads per block/);
    bad({ mma: 1, fm: 0 }, /fm must be a positive integer/);
  });
});
