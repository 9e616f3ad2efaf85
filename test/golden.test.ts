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
      "// tessera kernel softmax_row_out: schedule row coop=0 rowAxes=1 workgroupSize=64

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
        if (tid < dims.M) {
          let v0: i32 = tid * dims.N;
          var acc2: f32 = t_bits_f32(0xff800000u);
          var acc3: f32 = 0.0;
          for (var r0: i32 = 0i; r0 < dims.N; r0 += 1i) {
            let x4: f32 = x[v0 + r0];
            let m5: f32 = t_max(acc2, x4);
            acc3 = (acc3 * select(t_exp(acc2 - m5), 0.0, acc2 == t_bits_f32(0xff800000u))) + select(t_exp(x4 - m5), 0.0, x4 == t_bits_f32(0xff800000u));
            acc2 = m5;
          }
          for (var j0: i32 = 0i; j0 < dims.N; j0 += 1i) {
            let v1: i32 = v0 + j0;
            out[v1] = t_exp(x[v1] - acc2) / acc3;
          }
        }
      }
      "
    `);
    expect(printJS(k!.kernel)).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row {"rowAxes":1,"coop":0,"workgroupSize":64}
      const b_x = bufs[0];
      const b_out = bufs[1];
      for (let tid = 0; tid < nThreads; tid++) {
        const lid = tid % 64;
        const wid = Math.floor(tid / 64);
        if ((tid < u.M)) {
          const v0 = (Math.imul(tid, u.N) | 0);
          let acc2 = -Infinity;
          let acc3 = 0;
          for (let r0 = 0; r0 < u.N; r0 += 1) {
            const x4 = b_x[((v0 + r0) | 0)];
            const m5 = H.fmax(acc2, x4);
            acc3 = Math.fround(Math.fround(acc3 * ((acc2 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(acc2 - m5))))) + ((x4 === -Infinity) ? 0 : Math.fround(Math.exp(Math.fround(x4 - m5)))));
            acc2 = m5;
          }
          for (let j0 = 0; j0 < u.N; j0 += 1) {
            const v1 = ((v0 + j0) | 0);
            b_out[v1] = Math.fround(Math.fround(Math.exp(Math.fround(b_x[v1] - acc2))) / acc3);
          }
        }
      }"
    `);
    expect(printCudaKernel(k!.kernel)).toMatchInlineSnapshot(`
      "// tessera kernel softmax_row_out: schedule row {"rowAxes":1,"coop":0,"workgroupSize":64}
      extern "C" __global__ void __launch_bounds__(64) softmax_row_out(const float* __restrict__ b_x, float* __restrict__ b_out, int d_M, int d_N) {
        const int tid = (int)((blockIdx.y * gridDim.x + blockIdx.x) * 64u + threadIdx.x);
        if ((tid < d_M)) {
          const int v0 = tsr_imul(tid, d_N);
          float acc2 = __int_as_float(0xff800000);
          float acc3 = 0.0f;
          for (int r0 = 0; r0 < d_N; r0 += 1) {
            const float x4 = b_x[tsr_iadd(v0, r0)];
            const float m5 = tsr_fmax(acc2, x4);
            acc3 = ((acc3 * ((acc2 == __int_as_float(0xff800000)) ? 0.0f : expf((acc2 - m5)))) + ((x4 == __int_as_float(0xff800000)) ? 0.0f : expf((x4 - m5))));
            acc2 = m5;
          }
          for (int j0 = 0; j0 < d_N; j0 += 1) {
            const int v1 = tsr_iadd(v0, j0);
            b_out[v1] = (expf((b_x[v1] - acc2)) / acc3);
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
      "kernel linear_matmul_out [matmul tiled=0 tm=2 tn=2 workgroupSize=64]
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
      @group(0) @binding(2) var<storage, read_write> out: array<f32>; // f32

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
        let v5: i32 = dims.N - 4i;
        let v28: i32 = dims.N - 1i;
        if (tid < (v1 * dims.M)) {
          let v3: i32 = min(t_imod(t_idiv(tid, v1), dims.M), v2) * dims.K;
          let v6: i32 = min((t_imod(tid, v1)) * 4i, v5);
          let v15: i32 = t_imod(t_idiv(tid, v1), dims.M);
          let v16: i32 = (t_imod(tid, v1)) * 4i;
          let v17: bool = v15 < dims.M;
          let v18: i32 = v16 + 1i;
          let v19: i32 = v15 * dims.N;
          let v20: i32 = v16 + 2i;
          let v21: i32 = v16 + 3i;
          let v29: i32 = min(v16, v28);
          let v31: i32 = min(v18, v28);
          let v33: i32 = min(v20, v28);
          let v35: i32 = min(v21, v28);
          let v37: bool = v17 && (v16 < dims.N);
          let v38: i32 = v19 + v16;
          let v39: bool = v17 && (v18 < dims.N);
          let v40: i32 = v19 + v18;
          let v41: bool = v17 && (v20 < dims.N);
          let v42: i32 = v19 + v20;
          let v43: bool = v17 && (v21 < dims.N);
          let v44: i32 = v19 + v21;
          if (((dims.N % 4i) == 0i) && ((dims.K % 4i) == 0i)) {
            var cv10: vec4<f32> = vec4<f32>(0.0);
            for (var k4: i32 = 0i; k4 < dims.K; k4 += 4i) {
              let a0: vec4<f32> = a[(v3 + k4) >> 2u];
              let b4: vec4<f32> = b[((k4 * dims.N) + v6) >> 2u];
              let b7: vec4<f32> = b[(((k4 + 1i) * dims.N) + v6) >> 2u];
              let b8: vec4<f32> = b[(((k4 + 2i) * dims.N) + v6) >> 2u];
              let b9: vec4<f32> = b[(((k4 + 3i) * dims.N) + v6) >> 2u];
              cv10 = fma(vec4<f32>(a0.w), b9, fma(vec4<f32>(a0.z), b8, fma(vec4<f32>(a0.y), b7, fma(vec4<f32>(a0.x), b4, cv10))));
            }
            let c11: f32 = cv10.x;
            let c12: f32 = cv10.y;
            let c13: f32 = cv10.z;
            let c14: f32 = cv10.w;
            if ((v15 < dims.M) && (v16 < dims.N)) {
              out[(v15 * dims.N) + v16] = c11;
            }
            if (v17 && (v18 < dims.N)) {
              out[v19 + v18] = c12;
            }
            if (v17 && (v20 < dims.N)) {
              out[v19 + v20] = c13;
            }
            if (v17 && (v21 < dims.N)) {
              out[v19 + v21] = c14;
            }
          } else {
            var c22: f32 = 0.0;
            var c23: f32 = 0.0;
            var c24: f32 = 0.0;
            var c25: f32 = 0.0;
            for (var k: i32 = 0i; k < dims.K; k += 1i) {
              let v26: f32 = a[(v3 + k) >> 2u][(v3 + k) & 3i];
              let v27: i32 = k * dims.N;
              let v30: f32 = b[(v27 + v29) >> 2u][(v27 + v29) & 3i];
              let v32: f32 = b[(v27 + v31) >> 2u][(v27 + v31) & 3i];
              let v34: f32 = b[(v27 + v33) >> 2u][(v27 + v33) & 3i];
              let v36: f32 = b[(v27 + v35) >> 2u][(v27 + v35) & 3i];
              c22 = c22 + (v26 * v30);
              c23 = c23 + (v26 * v32);
              c24 = c24 + (v26 * v34);
              c25 = c25 + (v26 * v36);
            }
            if (v37) {
              out[v38] = c22;
            }
            if (v39) {
              out[v40] = c23;
            }
            if (v41) {
              out[v42] = c24;
            }
            if (v43) {
              out[v44] = c25;
            }
          }
        }
      }
      "
    `);
  });
});
