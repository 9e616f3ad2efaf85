/**
 * Golden output for a few DSL programs, so a person sees codegen changes in review: the kernel IR
 * after scheduling and the WGSL, JS and CUDA a backend prints from it.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { printKernel } from '../src/ir/kernel-print.js';
import { compile } from '../src/passes/pipeline.js';
import { printWGSL } from '../src/backends/wgsl/print.js';
import { printJS } from '../src/backends/js/print.js';
import { printCudaKernel } from '../src/backends/cuda/print.js';

const [M, N] = [D.dim('M'), D.dim('N')];

describe('golden codegen', () => {
  it('silu(x * a + b): one elementwise kernel', () => {
    const def = D.kernel('chain', { x: D.tensor('f32', [M, N]), a: D.tensor('f32', [N]), b: D.tensor('f32', [N]) }, ({ x, a, b }) => x.mul(a).add(b).silu());
    const [k] = compile(def.program).kernels;
    expect(printKernel(k!.kernel)).toMatchInlineSnapshot(`
      "kernel chain_elementwise_out [elementwise perThread=4 workgroupSize=64]
        threads cdiv(M*N, 4) / workgroup 64 (flexible: 8 under 256 threads)
        buffer x: f32[M, N] read
        buffer a: f32[N] read
        buffer b: f32[N] read
        buffer out: f32[M, N] read_write
        uniforms M, N
      {
        if lt(tid, div(sub(add(mul($M, $N), 4), 1), 4)) {
          let v2: i32 = mul(tid, 4)
          for e in 0..4 {
            let i: i32 = add(v2, e)
            if lt(i, mul($M, $N)) {
              let v0: i32 = mod(i, $N)
              let v1: f32 = add(mul(x[i], a[v0]), b[v0])
              out[i] = div(v1, add(1.0, exp(neg(v1))))
            }
          }
        }
      }"
    `);
    expect(printWGSL(k!.kernel, { f16: false })).toMatchInlineSnapshot(`
      "// tessera kernel chain_elementwise_out: schedule elementwise perThread=4 workgroupSize=64

      @group(0) @binding(0) var<storage, read> x: array<f32>; // f32
      @group(0) @binding(1) var<storage, read> a: array<f32>; // f32
      @group(0) @binding(2) var<storage, read> b: array<f32>; // f32
      @group(0) @binding(3) var<storage, read_write> out: array<f32>; // f32

      struct Dims {
        M: i32,
        N: i32,
      }
      @group(0) @binding(4) var<uniform> dims: Dims;

      fn t_isnan(x: f32) -> bool {
        return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
      }

      fn t_imod(a: i32, b: i32) -> i32 {
        return select(a % b, 0i, b == 0i);
      }

      // exp and log with NaN, zero and negatives as IEEE has them (SwiftShader: exp(NaN) = inf,
      // log(-x) = log(x), log(0) = -88).
      fn t_exp(x: f32) -> f32 {
        return select(exp(x), x, t_isnan(x));
      }

      override wg_size: u32 = 64u;
      @compute @workgroup_size(wg_size)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * wg_size + lidx);
        if (tid < ((((dims.M * dims.N) + 4i) - 1i) / 4i)) {
          let v2: i32 = tid * 4i;
          for (var e: i32 = 0i; e < 4i; e += 1i) {
            let i: i32 = v2 + e;
            if (i < (dims.M * dims.N)) {
              let v0: i32 = t_imod(i, dims.N);
              let v1: f32 = (x[i] * a[v0]) + b[v0];
              out[i] = v1 / (1.0 + t_exp(-v1));
            }
          }
        }
      }
      "
    `);
  });

  it('softmax: one row kernel, reductions hoisted out of the row loop', () => {
    const def = D.kernel('softmax', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));
    // scalar loads and 4 lanes keep the text short (the vec4 row path: row-unroll.test.ts)
    const [k] = compile(def.program, { params: { ur: 4, vec: 0 } }).kernels;
    expect(printWGSL(k!.kernel, { f16: false })).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row coop=0 rowAxes=1 ur=4 vec=0 workgroupSize=64

      @group(0) @binding(0) var<storage, read> x: array<f32>; // f32
      @group(0) @binding(1) var<storage, read_write> out: array<f32>; // f32

      struct Dims {
        M: i32,
        N: i32,
      }
      @group(0) @binding(2) var<uniform> dims: Dims;

      // Non-finite constants: a const-expression may not be inf or NaN, a function call is not one.
      fn t_bits_f32(b: u32) -> f32 {
        return bitcast<f32>(b);
      }

      fn t_isnan(x: f32) -> bool {
        return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
      }

      // max/min that propagate NaN, as the reference does.
      fn t_max(a: f32, b: f32) -> f32 {
        if (t_isnan(a) || t_isnan(b)) {
          return t_bits_f32(0x7fc00000u);
        }
        return max(a, b);
      }

      // exp and log with NaN, zero and negatives as IEEE has them (SwiftShader: exp(NaN) = inf,
      // log(-x) = log(x), log(0) = -88).
      fn t_exp(x: f32) -> f32 {
        return select(exp(x), x, t_isnan(x));
      }

      override wg_size: u32 = 64u;
      @compute @workgroup_size(wg_size)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * wg_size + lidx);
        let v26: i32 = (dims.N / 4i) * 4i;
        if (tid < dims.M) {
          let v0: i32 = tid * dims.N;
          var acc2: f32 = -3.4028234663852886e38;
          var acc3: f32 = 0.0;
          var acc8: f32 = -3.4028234663852886e38;
          var acc9: f32 = 0.0;
          var acc14: f32 = -3.4028234663852886e38;
          var acc15: f32 = 0.0;
          var acc20: f32 = -3.4028234663852886e38;
          var acc21: f32 = 0.0;
          for (var r0: i32 = 0i; r0 < v26; r0 += 4i) {
            let x4: f32 = x[v0 + r0];
            let d5: f32 = x4 - acc2;
            let e6: f32 = exp(-abs(d5));
            let up7: bool = select(d5 > 0.0, true, t_isnan(x4));
            acc3 = select(acc3 + e6, (acc3 * e6) + 1.0, up7);
            acc2 = select(acc2, x4, up7);
            let x10: f32 = x[v0 + (r0 + 1i)];
            let d11: f32 = x10 - acc8;
            let e12: f32 = exp(-abs(d11));
            let up13: bool = select(d11 > 0.0, true, t_isnan(x10));
            acc9 = select(acc9 + e12, (acc9 * e12) + 1.0, up13);
            acc8 = select(acc8, x10, up13);
            let x16: f32 = x[v0 + (r0 + 2i)];
            let d17: f32 = x16 - acc14;
            let e18: f32 = exp(-abs(d17));
            let up19: bool = select(d17 > 0.0, true, t_isnan(x16));
            acc15 = select(acc15 + e18, (acc15 * e18) + 1.0, up19);
            acc14 = select(acc14, x16, up19);
            let x22: f32 = x[v0 + (r0 + 3i)];
            let d23: f32 = x22 - acc20;
            let e24: f32 = exp(-abs(d23));
            let up25: bool = select(d23 > 0.0, true, t_isnan(x22));
            acc21 = select(acc21 + e24, (acc21 * e24) + 1.0, up25);
            acc20 = select(acc20, x22, up25);
          }
          for (var r0: i32 = v26; r0 < dims.N; r0 += 1i) {
            let x27: f32 = x[v0 + r0];
            let d28: f32 = x27 - acc2;
            let e29: f32 = exp(-abs(d28));
            let up30: bool = select(d28 > 0.0, true, t_isnan(x27));
            acc3 = select(acc3 + e29, (acc3 * e29) + 1.0, up30);
            acc2 = select(acc2, x27, up30);
          }
          let m31: f32 = t_max(acc2, acc8);
          let v32: f32 = (acc3 * select(t_exp(acc2 - m31), 0.0, acc2 == t_bits_f32(0xff800000u))) + (acc9 * select(t_exp(acc8 - m31), 0.0, acc8 == t_bits_f32(0xff800000u)));
          let m33: f32 = t_max(acc14, acc20);
          let v34: f32 = (acc15 * select(t_exp(acc14 - m33), 0.0, acc14 == t_bits_f32(0xff800000u))) + (acc21 * select(t_exp(acc20 - m33), 0.0, acc20 == t_bits_f32(0xff800000u)));
          let m35: f32 = t_max(m31, m33);
          let v36: f32 = (v32 * select(t_exp(m31 - m35), 0.0, m31 == t_bits_f32(0xff800000u))) + (v34 * select(t_exp(m33 - m35), 0.0, m33 == t_bits_f32(0xff800000u)));
          let m37: f32 = select(m35, t_bits_f32(0xff800000u), v36 == 0.0);
          let s38: f32 = select(v36, t_bits_f32(0x7fc00000u), (t_isnan(m35) || (m35 == t_bits_f32(0x7f800000u))) || ((v36 == 0.0) && (dims.N > 0i)));
          for (var j0: i32 = 0i; j0 < v26; j0 += 4i) {
            let v1: i32 = v0 + j0;
            out[v1] = t_exp(x[v1] - m37) / s38;
            let v39: i32 = v0 + (j0 + 1i);
            out[v39] = t_exp(x[v39] - m37) / s38;
            let v40: i32 = v0 + (j0 + 2i);
            out[v40] = t_exp(x[v40] - m37) / s38;
            let v41: i32 = v0 + (j0 + 3i);
            out[v41] = t_exp(x[v41] - m37) / s38;
          }
          for (var j0: i32 = v26; j0 < dims.N; j0 += 1i) {
            let v42: i32 = v0 + j0;
            let v43: f32 = t_exp(x[v42] - m37) / s38;
            out[v42] = v43;
          }
        }
      }
      "
    `);
    expect(printJS(k!.kernel)).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row {"rowAxes":1,"coop":0,"ur":4,"vec":0,"workgroupSize":64}
      const b_x = bufs[0];
      const b_out = bufs[1];
      for (let tid = 0; tid < nThreads; tid++) {
        const lid = tid % 64;
        const wid = Math.floor(tid / 64);
        const v26 = (Math.imul(H.idiv(u.N, 4), 4) | 0);
        if ((tid < u.M)) {
          const v0 = (Math.imul(tid, u.N) | 0);
          let acc2 = -3.4028234663852886e+38;
          let acc3 = 0;
          let acc8 = -3.4028234663852886e+38;
          let acc9 = 0;
          let acc14 = -3.4028234663852886e+38;
          let acc15 = 0;
          let acc20 = -3.4028234663852886e+38;
          let acc21 = 0;
          for (let r0 = 0; r0 < v26; r0 += 4) {
            const x4 = b_x[((v0 + r0) | 0)];
            const d5 = Math.fround(x4 - acc2);
            const e6 = Math.fround(Math.exp((-Math.abs(d5))));
            const up7 = (Number.isNaN(x4) ? true : (d5 > 0));
            acc3 = (up7 ? Math.fround(Math.fround(acc3 * e6) + 1) : Math.fround(acc3 + e6));
            acc2 = (up7 ? x4 : acc2);
            const x10 = b_x[((v0 + ((r0 + 1) | 0)) | 0)];
            const d11 = Math.fround(x10 - acc8);
            const e12 = Math.fround(Math.exp((-Math.abs(d11))));
            const up13 = (Number.isNaN(x10) ? true : (d11 > 0));
            acc9 = (up13 ? Math.fround(Math.fround(acc9 * e12) + 1) : Math.fround(acc9 + e12));
            acc8 = (up13 ? x10 : acc8);
            const x16 = b_x[((v0 + ((r0 + 2) | 0)) | 0)];
            const d17 = Math.fround(x16 - acc14);
            const e18 = Math.fround(Math.exp((-Math.abs(d17))));
            const up19 = (Number.isNaN(x16) ? true : (d17 > 0));
            acc15 = (up19 ? Math.fround(Math.fround(acc15 * e18) + 1) : Math.fround(acc15 + e18));
            acc14 = (up19 ? x16 : acc14);
            const x22 = b_x[((v0 + ((r0 + 3) | 0)) | 0)];
            const d23 = Math.fround(x22 - acc20);
            const e24 = Math.fround(Math.exp((-Math.abs(d23))));
            const up25 = (Number.isNaN(x22) ? true : (d23 > 0));
            acc21 = (up25 ? Math.fround(Math.fround(acc21 * e24) + 1) : Math.fround(acc21 + e24));
            acc20 = (up25 ? x22 : acc20);
          }
          for (let r0 = v26; r0 < u.N; r0 += 1) {
            const x27 = b_x[((v0 + r0) | 0)];
            const d28 = Math.fround(x27 - acc2);
            const e29 = Math.fround(Math.exp((-Math.abs(d28))));
            const up30 = (Number.isNaN(x27) ? true : (d28 > 0));
            acc3 = (up30 ? Math.fround(Math.fround(acc3 * e29) + 1) : Math.fround(acc3 + e29));
            acc2 = (up30 ? x27 : acc2);
          }
          const m31 = H.fmax(acc2, acc8);
          const v32 = Math.fround(Math.fround(acc3 * ((acc2 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc2 - m31))))) + Math.fround(acc9 * ((acc8 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc8 - m31))))));
          const m33 = H.fmax(acc14, acc20);
          const v34 = Math.fround(Math.fround(acc15 * ((acc14 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc14 - m33))))) + Math.fround(acc21 * ((acc20 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc20 - m33))))));
          const m35 = H.fmax(m31, m33);
          const v36 = Math.fround(Math.fround(v32 * ((m31 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(m31 - m35))))) + Math.fround(v34 * ((m33 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(m33 - m35))))));
          const m37 = ((v36 === 0) ? -Infinity : m35);
          const s38 = (((Number.isNaN(m35) || (m35 === Infinity)) || ((v36 === 0) && (u.N > 0))) ? NaN : v36);
          for (let j0 = 0; j0 < v26; j0 += 4) {
            const v1 = ((v0 + j0) | 0);
            b_out[v1] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v1] - m37))) / s38);
            const v39 = ((v0 + ((j0 + 1) | 0)) | 0);
            b_out[v39] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v39] - m37))) / s38);
            const v40 = ((v0 + ((j0 + 2) | 0)) | 0);
            b_out[v40] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v40] - m37))) / s38);
            const v41 = ((v0 + ((j0 + 3) | 0)) | 0);
            b_out[v41] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v41] - m37))) / s38);
          }
          for (let j0 = v26; j0 < u.N; j0 += 1) {
            const v42 = ((v0 + j0) | 0);
            const v43 = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v42] - m37))) / s38);
            b_out[v42] = v43;
          }
        }
      }"
    `);
    expect(printCudaKernel(k!.kernel)).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row {"rowAxes":1,"coop":0,"ur":4,"vec":0,"workgroupSize":64}
      extern "C" __global__ void __launch_bounds__(64) softmax_row_out(const float* __restrict__ b_x, float* __restrict__ b_out, int d_M, int d_N) {
        const int tid = (int)((blockIdx.y * gridDim.x + blockIdx.x) * 64u + threadIdx.x);
        const int v26 = tsr_imul(tsr_idiv(d_N, 4), 4);
        if ((tid < d_M)) {
          const int v0 = tsr_imul(tid, d_N);
          float acc2 = -3.4028235e+38f;
          float acc3 = 0.0f;
          float acc8 = -3.4028235e+38f;
          float acc9 = 0.0f;
          float acc14 = -3.4028235e+38f;
          float acc15 = 0.0f;
          float acc20 = -3.4028235e+38f;
          float acc21 = 0.0f;
          for (int r0 = 0; r0 < v26; r0 += 4) {
            const float x4 = b_x[tsr_iadd(v0, r0)];
            const float d5 = (x4 - acc2);
            const float e6 = expf((-fabsf(d5)));
            const bool up7 = (isnan(x4) ? true : (d5 > 0.0f));
            acc3 = (up7 ? ((acc3 * e6) + 1.0f) : (acc3 + e6));
            acc2 = (up7 ? x4 : acc2);
            const float x10 = b_x[tsr_iadd(v0, tsr_iadd(r0, 1))];
            const float d11 = (x10 - acc8);
            const float e12 = expf((-fabsf(d11)));
            const bool up13 = (isnan(x10) ? true : (d11 > 0.0f));
            acc9 = (up13 ? ((acc9 * e12) + 1.0f) : (acc9 + e12));
            acc8 = (up13 ? x10 : acc8);
            const float x16 = b_x[tsr_iadd(v0, tsr_iadd(r0, 2))];
            const float d17 = (x16 - acc14);
            const float e18 = expf((-fabsf(d17)));
            const bool up19 = (isnan(x16) ? true : (d17 > 0.0f));
            acc15 = (up19 ? ((acc15 * e18) + 1.0f) : (acc15 + e18));
            acc14 = (up19 ? x16 : acc14);
            const float x22 = b_x[tsr_iadd(v0, tsr_iadd(r0, 3))];
            const float d23 = (x22 - acc20);
            const float e24 = expf((-fabsf(d23)));
            const bool up25 = (isnan(x22) ? true : (d23 > 0.0f));
            acc21 = (up25 ? ((acc21 * e24) + 1.0f) : (acc21 + e24));
            acc20 = (up25 ? x22 : acc20);
          }
          for (int r0 = v26; r0 < d_N; r0 += 1) {
            const float x27 = b_x[tsr_iadd(v0, r0)];
            const float d28 = (x27 - acc2);
            const float e29 = expf((-fabsf(d28)));
            const bool up30 = (isnan(x27) ? true : (d28 > 0.0f));
            acc3 = (up30 ? ((acc3 * e29) + 1.0f) : (acc3 + e29));
            acc2 = (up30 ? x27 : acc2);
          }
          const float m31 = tsr_fmax(acc2, acc8);
          const float v32 = ((acc3 * ((acc2 == __int_as_float(0xff800000)) ? 0.0f : expf((acc2 - m31)))) + (acc9 * ((acc8 == __int_as_float(0xff800000)) ? 0.0f : expf((acc8 - m31)))));
          const float m33 = tsr_fmax(acc14, acc20);
          const float v34 = ((acc15 * ((acc14 == __int_as_float(0xff800000)) ? 0.0f : expf((acc14 - m33)))) + (acc21 * ((acc20 == __int_as_float(0xff800000)) ? 0.0f : expf((acc20 - m33)))));
          const float m35 = tsr_fmax(m31, m33);
          const float v36 = ((v32 * ((m31 == __int_as_float(0xff800000)) ? 0.0f : expf((m31 - m35)))) + (v34 * ((m33 == __int_as_float(0xff800000)) ? 0.0f : expf((m33 - m35)))));
          const float m37 = ((v36 == 0.0f) ? __int_as_float(0xff800000) : m35);
          const float s38 = (((isnan(m35) || (m35 == __int_as_float(0x7f800000))) || ((v36 == 0.0f) && (d_N > 0))) ? __int_as_float(0x7fc00000) : v36);
          for (int j0 = 0; j0 < v26; j0 += 4) {
            const int v1 = tsr_iadd(v0, j0);
            b_out[v1] = (expf((b_x[v1] - m37)) / s38);
            const int v39 = tsr_iadd(v0, tsr_iadd(j0, 1));
            b_out[v39] = (expf((b_x[v39] - m37)) / s38);
            const int v40 = tsr_iadd(v0, tsr_iadd(j0, 2));
            b_out[v40] = (expf((b_x[v40] - m37)) / s38);
            const int v41 = tsr_iadd(v0, tsr_iadd(j0, 3));
            b_out[v41] = (expf((b_x[v41] - m37)) / s38);
          }
          for (int j0 = v26; j0 < d_N; j0 += 1) {
            const int v42 = tsr_iadd(v0, j0);
            const float v43 = (expf((b_x[v42] - m37)) / s38);
            b_out[v42] = v43;
          }
        }
      }"
    `);
  });

  it('linear + bias + silu: the epilogue is applied to the matmul accumulators in one kernel', () => {
    const K = D.dim('K');
    const def = D.kernel('linear', { x: D.tensor('f32', [M, K]), w: D.tensor('f32', [N, K]), b: D.tensor('f32', [N]) }, ({ x, w, b }) => D.matmul(x, w.T).add(b).silu());
    const cp = compile(def.program, { params: { tm: 2, tn: 2 } });
    expect(cp.kernels.length).toBe(1);
    expect(printKernel(cp.kernels[0]!.kernel)).toMatchInlineSnapshot(`
      "kernel linear_matmul_out [matmul tiled=0 tm=2 tn=2 vec=0 workgroupSize=64]
        threads cdiv(M, 2)*cdiv(N, 2) / workgroup 64 (flexible: 8 under 256 threads)
        buffer x: f32[M, K] read
        buffer w: f32[N, K] read
        buffer b: f32[N] read
        buffer out: f32[M, N] read_write
        uniforms K, M, N
      {
        let v4: i32 = div(sub(add($N, 2), 1), 2)
        let v5: i32 = div(sub(add($M, 2), 1), 2)
        let v7: i32 = sub($M, 1)
        let v13: i32 = sub($N, 1)
        if lt(tid, mul(v5, v4)) {
          let v63: i32 = mul(mod(div(tid, v4), v5), 2)
          let v64: i32 = sub($M, v63)
          if gt(v64, 1) {
            var c0: f32 = 0.0
            var c1: f32 = 0.0
            var c2: f32 = 0.0
            var c3: f32 = 0.0
            let v6: i32 = mul(mod(div(tid, v4), v5), 2)
            let v8: i32 = mul(min(v6, v7), $K)
            let v10: i32 = mul(min(add(v6, 1), v7), $K)
            let v12: i32 = mul(mod(tid, v4), 2)
            let v14: i32 = mul(min(v12, v13), $K)
            let v16: i32 = mul(min(add(v12, 1), v13), $K)
            for k in 0..$K {
              let v9: f32 = x[add(v8, k)]
              let v11: f32 = x[add(v10, k)]
              let v15: f32 = w[add(v14, k)]
              let v17: f32 = w[add(v16, k)]
              c0 = add(c0, mul(v9, v15))
              c1 = add(c1, mul(v9, v17))
              c2 = add(c2, mul(v11, v15))
              c3 = add(c3, mul(v11, v17))
            }
            let v18: i32 = mul(mod(div(tid, v4), v5), 2)
            let v19: i32 = mul(mod(tid, v4), 2)
            let v20: i32 = min(v19, v13)
            let v21: f32 = b[v20]
            if and(lt(v18, $M), lt(v19, $N)) {
              let v22: f32 = add(c0, v21)
              out[add(mul(v18, $N), v19)] = div(v22, add(1.0, exp(neg(v22))))
            }
            let v23: bool = lt(v18, $M)
            let v24: i32 = add(v19, 1)
            let v25: i32 = mul(v18, $N)
            let v26: i32 = min(v24, v13)
            let v27: f32 = b[v26]
            if and(v23, lt(v24, $N)) {
              let v28: f32 = add(c1, v27)
              out[add(v25, v24)] = div(v28, add(1.0, exp(neg(v28))))
            }
            let v29: i32 = add(v18, 1)
            let v30: bool = lt(v19, $N)
            if and(lt(v29, $M), v30) {
              let v31: f32 = add(c2, v21)
              out[add(mul(v29, $N), v19)] = div(v31, add(1.0, exp(neg(v31))))
            }
            let v32: bool = lt(v29, $M)
            let v33: bool = lt(v24, $N)
            let v34: i32 = mul(v29, $N)
            if and(v32, v33) {
              let v35: f32 = add(c3, v27)
              out[add(v34, v24)] = div(v35, add(1.0, exp(neg(v35))))
            }
          } else {
            for mr in 0..v64 {
              var c36: f32 = 0.0
              var c37: f32 = 0.0
              let v38: i32 = mul(mod(div(tid, v4), v5), 2)
              let v39: i32 = mul(add(v38, mr), $K)
              let v41: i32 = mul(mod(tid, v4), 2)
              let v42: i32 = min(v41, v13)
              let v43: i32 = mul(v42, $K)
              let v45: i32 = add(v41, 1)
              let v46: i32 = min(v45, v13)
              let v47: i32 = mul(v46, $K)
              for k in 0..$K {
                let v40: f32 = x[add(v39, k)]
                let v44: f32 = w[add(v43, k)]
                let v48: f32 = w[add(v47, k)]
                c36 = add(c36, mul(v40, v44))
                c37 = add(c37, mul(v40, v48))
              }
              let v49: i32 = mul(mod(div(tid, v4), v5), 2)
              let v50: i32 = add(v49, mr)
              let v51: i32 = mul(mod(tid, v4), 2)
              let v52: bool = lt(v51, $N)
              let v53: i32 = min(v51, v13)
              let v54: f32 = b[v53]
              if and(lt(v50, $M), v52) {
                let v55: f32 = add(c36, v54)
                out[add(mul(v50, $N), v51)] = div(v55, add(1.0, exp(neg(v55))))
              }
              let v56: bool = lt(v50, $M)
              let v57: i32 = add(v51, 1)
              let v58: bool = lt(v57, $N)
              let v59: i32 = mul(v50, $N)
              let v60: i32 = min(v57, v13)
              let v61: f32 = b[v60]
              if and(v56, v58) {
                let v62: f32 = add(c37, v61)
                out[add(v59, v57)] = div(v62, add(1.0, exp(neg(v62))))
              }
            }
          }
        }
      }"
    `);
  });

  it('vectorized matmul: vec4 loads and FMAs when N and K are multiples of 4, else the scalar path', () => {
    const K = D.dim('K');
    const def = D.kernel('mmv', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b));
    const cp = compile(def.program, { params: { tm: 1, tn: 4, vec: 4 } });
    expect(printWGSL(cp.kernels[0]!.kernel, { f16: false })).toMatchInlineSnapshot(`
      "// tessera kernel mmv_matmul_out: schedule matmul tiled=0 tm=1 tn=4 vec=4 workgroupSize=64

      @group(0) @binding(0) var<storage, read> a: array<vec4<f32>>; // f32
      @group(0) @binding(1) var<storage, read> b: array<vec4<f32>>; // f32
      @group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>; // f32

      struct Dims {
        K: i32,
        M: i32,
        N: i32,
      }
      @group(0) @binding(3) var<uniform> dims: Dims;

      // Integer division truncates; dividing by zero gives 0.
      fn t_idiv(a: i32, b: i32) -> i32 {
        return select(a / b, 0i, b == 0i);
      }

      fn t_imod(a: i32, b: i32) -> i32 {
        return select(a % b, 0i, b == 0i);
      }

      override wg_size: u32 = 64u;
      @compute @workgroup_size(wg_size)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * wg_size + lidx);
        let v1: i32 = ((dims.N + 4i) - 1i) / 4i;
        let v2: i32 = dims.M - 1i;
        let v5: i32 = dims.N / 4i;
        let v6: i32 = 4i * v5;
        let v8: i32 = dims.N - 4i;
        let v13: i32 = 2i * v5;
        let v16: i32 = 3i * v5;
        let v19: i32 = dims.K / 4i;
        let v35: i32 = dims.N - 1i;
        if (tid < (v1 * dims.M)) {
          let v3: i32 = (min(t_imod(t_idiv(tid, v1), dims.M), v2) * dims.K) / 4i;
          let v9: i32 = min((t_imod(tid, v1)) * 4i, v8) / 4i;
          let v11: i32 = v5 + v9;
          let v14: i32 = v13 + v9;
          let v17: i32 = v16 + v9;
          let v30: i32 = t_imod(t_idiv(tid, v1), dims.M);
          let v31: i32 = min(v30, v2) * dims.K;
          let v34: i32 = (t_imod(tid, v1)) * 4i;
          let v36: i32 = min(v34, v35);
          let v38: i32 = min(v34 + 1i, v35);
          let v40: i32 = min(v34 + 2i, v35);
          let v42: i32 = min(v34 + 3i, v35);
          if (((dims.N % 4i) == 0i) && ((dims.K % 4i) == 0i)) {
            var cv18: vec4<f32> = vec4<f32>(0.0);
            for (var kv: i32 = 0i; kv < v19; kv += 1i) {
              let a0: vec4<f32> = a[v3 + kv];
              let v7: i32 = kv * v6;
              let b4: vec4<f32> = b[v7 + v9];
              let b10: vec4<f32> = b[v7 + v11];
              let b12: vec4<f32> = b[v7 + v14];
              let b15: vec4<f32> = b[v7 + v17];
              cv18 = fma(vec4<f32>(a0.w), b15, fma(vec4<f32>(a0.z), b12, fma(vec4<f32>(a0.y), b10, fma(vec4<f32>(a0.x), b4, cv18))));
            }
            let c20: f32 = cv18.x;
            let c21: f32 = cv18.y;
            let c22: f32 = cv18.z;
            let c23: f32 = cv18.w;
            let v24: i32 = t_imod(t_idiv(tid, v1), dims.M);
            let v25: i32 = (t_imod(tid, v1)) * 4i;
            if ((v24 < dims.M) && (v25 < dims.N)) {
              out[((v24 * dims.N) + v25) >> 2u] = vec4<f32>(c20, c21, c22, c23);
            }
          } else {
            var c26: f32 = 0.0;
            var c27: f32 = 0.0;
            var c28: f32 = 0.0;
            var c29: f32 = 0.0;
            for (var k: i32 = 0i; k < dims.K; k += 1i) {
              let v32: f32 = a[(v31 + k) >> 2u][(v31 + k) & 3i];
              let v33: i32 = k * dims.N;
              let v37: f32 = b[(v33 + v36) >> 2u][(v33 + v36) & 3i];
              let v39: f32 = b[(v33 + v38) >> 2u][(v33 + v38) & 3i];
              let v41: f32 = b[(v33 + v40) >> 2u][(v33 + v40) & 3i];
              let v43: f32 = b[(v33 + v42) >> 2u][(v33 + v42) & 3i];
              c26 = c26 + (v32 * v37);
              c27 = c27 + (v32 * v39);
              c28 = c28 + (v32 * v41);
              c29 = c29 + (v32 * v43);
            }
            let v44: i32 = t_imod(t_idiv(tid, v1), dims.M);
            let v45: i32 = (t_imod(tid, v1)) * 4i;
            let v46: bool = (v44 < dims.M) && (v45 < dims.N);
            let v47: i32 = (v44 * dims.N) + v45;
            if (v46) {
              out[v47 >> 2u][v47 & 3i] = c26;
            }
            let v48: bool = v44 < dims.M;
            let v49: i32 = v45 + 1i;
            let v50: i32 = v44 * dims.N;
            if (v48 && (v49 < dims.N)) {
              out[(v50 + v49) >> 2u][(v50 + v49) & 3i] = c27;
            }
            let v51: i32 = v45 + 2i;
            if (v48 && (v51 < dims.N)) {
              out[(v50 + v51) >> 2u][(v50 + v51) & 3i] = c28;
            }
            let v52: i32 = v45 + 3i;
            if (v48 && (v52 < dims.N)) {
              out[(v50 + v52) >> 2u][(v50 + v52) & 3i] = c29;
            }
          }
        }
      }
      "
    `);
  });
});
