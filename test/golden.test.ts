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
        threads cdiv(M*N, 4) / workgroup 64
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

      @compute @workgroup_size(64)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * 64u + lidx);
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
    const [k] = compile(def.program).kernels;
    expect(printWGSL(k!.kernel, { f16: false })).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row coop=0 rowAxes=1 ur=4 workgroupSize=64

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

      @compute @workgroup_size(64)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * 64u + lidx);
        let v18: i32 = (dims.N / 4i) * 4i;
        if (tid < dims.M) {
          let v0: i32 = tid * dims.N;
          var acc2: f32 = t_bits_f32(0xff800000u);
          var acc3: f32 = 0.0;
          var acc6: f32 = t_bits_f32(0xff800000u);
          var acc7: f32 = 0.0;
          var acc10: f32 = t_bits_f32(0xff800000u);
          var acc11: f32 = 0.0;
          var acc14: f32 = t_bits_f32(0xff800000u);
          var acc15: f32 = 0.0;
          for (var r0: i32 = 0i; r0 < v18; r0 += 4i) {
            let x4: f32 = x[v0 + r0];
            let m5: f32 = t_max(acc2, x4);
            acc3 = (acc3 * select(t_exp(acc2 - m5), 0.0, acc2 == t_bits_f32(0xff800000u))) + select(t_exp(x4 - m5), 0.0, x4 == t_bits_f32(0xff800000u));
            acc2 = m5;
            let x8: f32 = x[v0 + (r0 + 1i)];
            let m9: f32 = t_max(acc6, x8);
            acc7 = (acc7 * select(t_exp(acc6 - m9), 0.0, acc6 == t_bits_f32(0xff800000u))) + select(t_exp(x8 - m9), 0.0, x8 == t_bits_f32(0xff800000u));
            acc6 = m9;
            let x12: f32 = x[v0 + (r0 + 2i)];
            let m13: f32 = t_max(acc10, x12);
            acc11 = (acc11 * select(t_exp(acc10 - m13), 0.0, acc10 == t_bits_f32(0xff800000u))) + select(t_exp(x12 - m13), 0.0, x12 == t_bits_f32(0xff800000u));
            acc10 = m13;
            let x16: f32 = x[v0 + (r0 + 3i)];
            let m17: f32 = t_max(acc14, x16);
            acc15 = (acc15 * select(t_exp(acc14 - m17), 0.0, acc14 == t_bits_f32(0xff800000u))) + select(t_exp(x16 - m17), 0.0, x16 == t_bits_f32(0xff800000u));
            acc14 = m17;
          }
          for (var r0: i32 = v18; r0 < dims.N; r0 += 1i) {
            let x19: f32 = x[v0 + r0];
            let m20: f32 = t_max(acc2, x19);
            acc3 = (acc3 * select(t_exp(acc2 - m20), 0.0, acc2 == t_bits_f32(0xff800000u))) + select(t_exp(x19 - m20), 0.0, x19 == t_bits_f32(0xff800000u));
            acc2 = m20;
          }
          let m21: f32 = t_max(acc2, acc6);
          let v22: f32 = (acc3 * select(t_exp(acc2 - m21), 0.0, acc2 == t_bits_f32(0xff800000u))) + (acc7 * select(t_exp(acc6 - m21), 0.0, acc6 == t_bits_f32(0xff800000u)));
          let m23: f32 = t_max(acc10, acc14);
          let v24: f32 = (acc11 * select(t_exp(acc10 - m23), 0.0, acc10 == t_bits_f32(0xff800000u))) + (acc15 * select(t_exp(acc14 - m23), 0.0, acc14 == t_bits_f32(0xff800000u)));
          let m25: f32 = t_max(m21, m23);
          let v26: f32 = (v22 * select(t_exp(m21 - m25), 0.0, m21 == t_bits_f32(0xff800000u))) + (v24 * select(t_exp(m23 - m25), 0.0, m23 == t_bits_f32(0xff800000u)));
          for (var j0: i32 = 0i; j0 < v18; j0 += 4i) {
            let v1: i32 = v0 + j0;
            out[v1] = t_exp(x[v1] - m25) / v26;
            let v27: i32 = v0 + (j0 + 1i);
            out[v27] = t_exp(x[v27] - m25) / v26;
            let v28: i32 = v0 + (j0 + 2i);
            out[v28] = t_exp(x[v28] - m25) / v26;
            let v29: i32 = v0 + (j0 + 3i);
            out[v29] = t_exp(x[v29] - m25) / v26;
          }
          for (var j0: i32 = v18; j0 < dims.N; j0 += 1i) {
            let v30: i32 = v0 + j0;
            let v31: f32 = t_exp(x[v30] - m25) / v26;
            out[v30] = v31;
          }
        }
      }
      "
    `);
    expect(printJS(k!.kernel)).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row {"rowAxes":1,"coop":0,"ur":4,"workgroupSize":64}
      const b_x = bufs[0];
      const b_out = bufs[1];
      for (let tid = 0; tid < nThreads; tid++) {
        const lid = tid % 64;
        const wid = Math.floor(tid / 64);
        const v18 = (Math.imul(H.idiv(u.N, 4), 4) | 0);
        if ((tid < u.M)) {
          const v0 = (Math.imul(tid, u.N) | 0);
          let acc2 = -Infinity;
          let acc3 = 0;
          let acc6 = -Infinity;
          let acc7 = 0;
          let acc10 = -Infinity;
          let acc11 = 0;
          let acc14 = -Infinity;
          let acc15 = 0;
          for (let r0 = 0; r0 < v18; r0 += 4) {
            const x4 = b_x[((v0 + r0) | 0)];
            const m5 = H.fmax(acc2, x4);
            acc3 = Math.fround(Math.fround(acc3 * ((acc2 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc2 - m5))))) + ((x4 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(x4 - m5)))));
            acc2 = m5;
            const x8 = b_x[((v0 + ((r0 + 1) | 0)) | 0)];
            const m9 = H.fmax(acc6, x8);
            acc7 = Math.fround(Math.fround(acc7 * ((acc6 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc6 - m9))))) + ((x8 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(x8 - m9)))));
            acc6 = m9;
            const x12 = b_x[((v0 + ((r0 + 2) | 0)) | 0)];
            const m13 = H.fmax(acc10, x12);
            acc11 = Math.fround(Math.fround(acc11 * ((acc10 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc10 - m13))))) + ((x12 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(x12 - m13)))));
            acc10 = m13;
            const x16 = b_x[((v0 + ((r0 + 3) | 0)) | 0)];
            const m17 = H.fmax(acc14, x16);
            acc15 = Math.fround(Math.fround(acc15 * ((acc14 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc14 - m17))))) + ((x16 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(x16 - m17)))));
            acc14 = m17;
          }
          for (let r0 = v18; r0 < u.N; r0 += 1) {
            const x19 = b_x[((v0 + r0) | 0)];
            const m20 = H.fmax(acc2, x19);
            acc3 = Math.fround(Math.fround(acc3 * ((acc2 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc2 - m20))))) + ((x19 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(x19 - m20)))));
            acc2 = m20;
          }
          const m21 = H.fmax(acc2, acc6);
          const v22 = Math.fround(Math.fround(acc3 * ((acc2 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc2 - m21))))) + Math.fround(acc7 * ((acc6 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc6 - m21))))));
          const m23 = H.fmax(acc10, acc14);
          const v24 = Math.fround(Math.fround(acc11 * ((acc10 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc10 - m23))))) + Math.fround(acc15 * ((acc14 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc14 - m23))))));
          const m25 = H.fmax(m21, m23);
          const v26 = Math.fround(Math.fround(v22 * ((m21 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(m21 - m25))))) + Math.fround(v24 * ((m23 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(m23 - m25))))));
          for (let j0 = 0; j0 < v18; j0 += 4) {
            const v1 = ((v0 + j0) | 0);
            b_out[v1] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v1] - m25))) / v26);
            const v27 = ((v0 + ((j0 + 1) | 0)) | 0);
            b_out[v27] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v27] - m25))) / v26);
            const v28 = ((v0 + ((j0 + 2) | 0)) | 0);
            b_out[v28] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v28] - m25))) / v26);
            const v29 = ((v0 + ((j0 + 3) | 0)) | 0);
            b_out[v29] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v29] - m25))) / v26);
          }
          for (let j0 = v18; j0 < u.N; j0 += 1) {
            const v30 = ((v0 + j0) | 0);
            const v31 = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v30] - m25))) / v26);
            b_out[v30] = v31;
          }
        }
      }"
    `);
    expect(printCudaKernel(k!.kernel)).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row {"rowAxes":1,"coop":0,"ur":4,"workgroupSize":64}
      extern "C" __global__ void __launch_bounds__(64) softmax_row_out(const float* __restrict__ b_x, float* __restrict__ b_out, int d_M, int d_N) {
        const int tid = (int)((blockIdx.y * gridDim.x + blockIdx.x) * 64u + threadIdx.x);
        const int v18 = tsr_imul(tsr_idiv(d_N, 4), 4);
        if ((tid < d_M)) {
          const int v0 = tsr_imul(tid, d_N);
          float acc2 = __int_as_float(0xff800000);
          float acc3 = 0.0f;
          float acc6 = __int_as_float(0xff800000);
          float acc7 = 0.0f;
          float acc10 = __int_as_float(0xff800000);
          float acc11 = 0.0f;
          float acc14 = __int_as_float(0xff800000);
          float acc15 = 0.0f;
          for (int r0 = 0; r0 < v18; r0 += 4) {
            const float x4 = b_x[tsr_iadd(v0, r0)];
            const float m5 = tsr_fmax(acc2, x4);
            acc3 = ((acc3 * ((acc2 == __int_as_float(0xff800000)) ? 0.0f : expf((acc2 - m5)))) + ((x4 == __int_as_float(0xff800000)) ? 0.0f : expf((x4 - m5))));
            acc2 = m5;
            const float x8 = b_x[tsr_iadd(v0, tsr_iadd(r0, 1))];
            const float m9 = tsr_fmax(acc6, x8);
            acc7 = ((acc7 * ((acc6 == __int_as_float(0xff800000)) ? 0.0f : expf((acc6 - m9)))) + ((x8 == __int_as_float(0xff800000)) ? 0.0f : expf((x8 - m9))));
            acc6 = m9;
            const float x12 = b_x[tsr_iadd(v0, tsr_iadd(r0, 2))];
            const float m13 = tsr_fmax(acc10, x12);
            acc11 = ((acc11 * ((acc10 == __int_as_float(0xff800000)) ? 0.0f : expf((acc10 - m13)))) + ((x12 == __int_as_float(0xff800000)) ? 0.0f : expf((x12 - m13))));
            acc10 = m13;
            const float x16 = b_x[tsr_iadd(v0, tsr_iadd(r0, 3))];
            const float m17 = tsr_fmax(acc14, x16);
            acc15 = ((acc15 * ((acc14 == __int_as_float(0xff800000)) ? 0.0f : expf((acc14 - m17)))) + ((x16 == __int_as_float(0xff800000)) ? 0.0f : expf((x16 - m17))));
            acc14 = m17;
          }
          for (int r0 = v18; r0 < d_N; r0 += 1) {
            const float x19 = b_x[tsr_iadd(v0, r0)];
            const float m20 = tsr_fmax(acc2, x19);
            acc3 = ((acc3 * ((acc2 == __int_as_float(0xff800000)) ? 0.0f : expf((acc2 - m20)))) + ((x19 == __int_as_float(0xff800000)) ? 0.0f : expf((x19 - m20))));
            acc2 = m20;
          }
          const float m21 = tsr_fmax(acc2, acc6);
          const float v22 = ((acc3 * ((acc2 == __int_as_float(0xff800000)) ? 0.0f : expf((acc2 - m21)))) + (acc7 * ((acc6 == __int_as_float(0xff800000)) ? 0.0f : expf((acc6 - m21)))));
          const float m23 = tsr_fmax(acc10, acc14);
          const float v24 = ((acc11 * ((acc10 == __int_as_float(0xff800000)) ? 0.0f : expf((acc10 - m23)))) + (acc15 * ((acc14 == __int_as_float(0xff800000)) ? 0.0f : expf((acc14 - m23)))));
          const float m25 = tsr_fmax(m21, m23);
          const float v26 = ((v22 * ((m21 == __int_as_float(0xff800000)) ? 0.0f : expf((m21 - m25)))) + (v24 * ((m23 == __int_as_float(0xff800000)) ? 0.0f : expf((m23 - m25)))));
          for (int j0 = 0; j0 < v18; j0 += 4) {
            const int v1 = tsr_iadd(v0, j0);
            b_out[v1] = (expf((b_x[v1] - m25)) / v26);
            const int v27 = tsr_iadd(v0, tsr_iadd(j0, 1));
            b_out[v27] = (expf((b_x[v27] - m25)) / v26);
            const int v28 = tsr_iadd(v0, tsr_iadd(j0, 2));
            b_out[v28] = (expf((b_x[v28] - m25)) / v26);
            const int v29 = tsr_iadd(v0, tsr_iadd(j0, 3));
            b_out[v29] = (expf((b_x[v29] - m25)) / v26);
          }
          for (int j0 = v18; j0 < d_N; j0 += 1) {
            const int v30 = tsr_iadd(v0, j0);
            const float v31 = (expf((b_x[v30] - m25)) / v26);
            b_out[v30] = v31;
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
        threads cdiv(M, 2)*cdiv(N, 2) / workgroup 64
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
          let v56: i32 = mul(mod(div(tid, v4), v5), 2)
          let v57: i32 = sub($M, v56)
          if gt(v57, 1) {
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
            let v18: i32 = min(v12, v13)
            let v19: f32 = b[v18]
            if and(lt(v6, $M), lt(v12, $N)) {
              let v20: f32 = add(c0, v19)
              out[add(mul(v6, $N), v12)] = div(v20, add(1.0, exp(neg(v20))))
            }
            let v21: bool = lt(v6, $M)
            let v22: i32 = add(v12, 1)
            let v23: i32 = mul(v6, $N)
            let v24: i32 = min(v22, v13)
            let v25: f32 = b[v24]
            if and(v21, lt(v22, $N)) {
              let v26: f32 = add(c1, v25)
              out[add(v23, v22)] = div(v26, add(1.0, exp(neg(v26))))
            }
            let v27: i32 = add(v6, 1)
            let v28: bool = lt(v12, $N)
            if and(lt(v27, $M), v28) {
              let v29: f32 = add(c2, v19)
              out[add(mul(v27, $N), v12)] = div(v29, add(1.0, exp(neg(v29))))
            }
            let v30: bool = lt(v27, $M)
            let v31: bool = lt(v22, $N)
            let v32: i32 = mul(v27, $N)
            if and(v30, v31) {
              let v33: f32 = add(c3, v25)
              out[add(v32, v22)] = div(v33, add(1.0, exp(neg(v33))))
            }
          } else {
            for mr in 0..v57 {
              var c34: f32 = 0.0
              var c35: f32 = 0.0
              let v36: i32 = mul(mod(div(tid, v4), v5), 2)
              let v37: i32 = mul(add(v36, mr), $K)
              let v39: i32 = mul(mod(tid, v4), 2)
              let v40: i32 = min(v39, v13)
              let v41: i32 = mul(v40, $K)
              let v43: i32 = add(v39, 1)
              let v44: i32 = min(v43, v13)
              let v45: i32 = mul(v44, $K)
              for k in 0..$K {
                let v38: f32 = x[add(v37, k)]
                let v42: f32 = w[add(v41, k)]
                let v46: f32 = w[add(v45, k)]
                c34 = add(c34, mul(v38, v42))
                c35 = add(c35, mul(v38, v46))
              }
              let v47: i32 = add(v36, mr)
              let v48: bool = lt(v39, $N)
              let v49: f32 = b[v40]
              if and(lt(v47, $M), v48) {
                let v50: f32 = add(c34, v49)
                out[add(mul(v47, $N), v39)] = div(v50, add(1.0, exp(neg(v50))))
              }
              let v51: bool = lt(v47, $M)
              let v52: bool = lt(v43, $N)
              let v53: i32 = mul(v47, $N)
              let v54: f32 = b[v44]
              if and(v51, v52) {
                let v55: f32 = add(c35, v54)
                out[add(v53, v43)] = div(v55, add(1.0, exp(neg(v55))))
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

      @compute @workgroup_size(64)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * 64u + lidx);
        let v1: i32 = ((dims.N + 4i) - 1i) / 4i;
        let v2: i32 = dims.M - 1i;
        let v5: i32 = dims.N / 4i;
        let v6: i32 = 4i * v5;
        let v8: i32 = dims.N - 4i;
        let v13: i32 = 2i * v5;
        let v16: i32 = 3i * v5;
        let v19: i32 = dims.K / 4i;
        let v33: i32 = dims.N - 1i;
        if (tid < (v1 * dims.M)) {
          let v3: i32 = (min(t_imod(t_idiv(tid, v1), dims.M), v2) * dims.K) / 4i;
          let v9: i32 = min((t_imod(tid, v1)) * 4i, v8) / 4i;
          let v11: i32 = v5 + v9;
          let v14: i32 = v13 + v9;
          let v17: i32 = v16 + v9;
          let v24: i32 = t_imod(t_idiv(tid, v1), dims.M);
          let v25: i32 = (t_imod(tid, v1)) * 4i;
          let v30: i32 = min(v24, v2) * dims.K;
          let v34: i32 = min(v25, v33);
          let v36: i32 = min(v25 + 1i, v33);
          let v38: i32 = min(v25 + 2i, v33);
          let v40: i32 = min(v25 + 3i, v33);
          let v42: bool = (v24 < dims.M) && (v25 < dims.N);
          let v43: i32 = (v24 * dims.N) + v25;
          let v44: bool = v24 < dims.M;
          let v45: i32 = v25 + 1i;
          let v46: i32 = v24 * dims.N;
          let v47: i32 = v25 + 2i;
          let v48: i32 = v25 + 3i;
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
            if ((v24 < dims.M) && (v25 < dims.N)) {
              out[((v24 * dims.N) + v25) >> 2u] = vec4<f32>(c20, c21, c22, c23);
            }
          } else {
            var c26: f32 = 0.0;
            var c27: f32 = 0.0;
            var c28: f32 = 0.0;
            var c29: f32 = 0.0;
            for (var k: i32 = 0i; k < dims.K; k += 1i) {
              let v31: f32 = a[(v30 + k) >> 2u][(v30 + k) & 3i];
              let v32: i32 = k * dims.N;
              let v35: f32 = b[(v32 + v34) >> 2u][(v32 + v34) & 3i];
              let v37: f32 = b[(v32 + v36) >> 2u][(v32 + v36) & 3i];
              let v39: f32 = b[(v32 + v38) >> 2u][(v32 + v38) & 3i];
              let v41: f32 = b[(v32 + v40) >> 2u][(v32 + v40) & 3i];
              c26 = c26 + (v31 * v35);
              c27 = c27 + (v31 * v37);
              c28 = c28 + (v31 * v39);
              c29 = c29 + (v31 * v41);
            }
            if (v42) {
              out[v43 >> 2u][v43 & 3i] = c26;
            }
            if (v44 && (v45 < dims.N)) {
              out[(v46 + v45) >> 2u][(v46 + v45) & 3i] = c27;
            }
            if (v44 && (v47 < dims.N)) {
              out[(v46 + v47) >> 2u][(v46 + v47) & 3i] = c28;
            }
            if (v44 && (v48 < dims.N)) {
              out[(v46 + v48) >> 2u][(v46 + v48) & 3i] = c29;
            }
          }
        }
      }
      "
    `);
  });
});
