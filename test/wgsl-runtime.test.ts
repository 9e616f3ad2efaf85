/**
 * The WGSL printer and the WebGPU runtime, on whatever adapter the worker has (lavapipe or SwiftShader
 * under scripts/test.sh). Kernels are hand-built Kernel IR; expected values are computed here.
 */
import { describe, expect, it } from 'vitest';
import type { DType } from '../src/ir/dtype.js';
import type { KBinary, KExpr, KStmt, KUnary, Kernel, Scalar } from '../src/ir/kernel.js';
import type { Dim } from '../src/ir/dims.js';
import type { HostArray } from '../src/runtime/backend.js';
import { TesseraError } from '../src/errors.js';
import { printWGSL } from '../src/backends/wgsl/print.js';
import { f16BitsToF32, f32ToF16Bits, f16Round as roundToF16 } from '../src/runtime/f16.js';
import type { WebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { getTestWebGPU } from './helpers/webgpu.js';

// ---------------------------------------------------------------------------------------------
// A small Kernel IR builder

const tid: KExpr = { k: 'tid' };
const lit = (t: Scalar, v: number): KExpr => ({ k: 'lit', t, v });
const i32 = (v: number): KExpr => lit('i32', v);
const f32 = (v: number): KExpr => lit('f32', v);
const v = (name: string, t: Scalar = 'i32'): KExpr => ({ k: 'var', t, name });
const u = (name: string): KExpr => ({ k: 'uniform', name });
const load = (buf: string, t: Scalar, index: KExpr = tid): KExpr => ({ k: 'load', t, buf, index });
const un = (op: KUnary, t: Scalar, a: KExpr): KExpr => ({ k: 'un', t, op, a });
const bin = (op: KBinary, t: Scalar, a: KExpr, b: KExpr): KExpr => ({ k: 'bin', t, op, a, b });
const cast = (t: Scalar, a: KExpr): KExpr => ({ k: 'cast', t, a });
const store = (buf: string, value: KExpr, index: KExpr = tid): KStmt => ({ k: 'store', buf, index, value });
const guard = (n: KExpr, body: KStmt[]): KStmt => ({ k: 'if', cond: bin('lt', 'bool', tid, n), then: body, else: [] });

function kernel(p: Partial<Kernel> & Pick<Kernel, 'name' | 'buffers' | 'body' | 'threads'>): Kernel {
  return { uniforms: [], workgroupSize: 64, shared: [], schedule: { kind: 'test', params: {} }, ...p };
}

const scalarOf = (d: DType): Scalar => (d === 'f16' || d === 'bf16' ? 'f32' : d);

/** out[i] = f(in0[i], in1[i], ...) over n elements. */
function mapKernel(name: string, ins: readonly DType[], out: DType, n: number, f: (xs: KExpr[]) => KExpr, wg = 64): Kernel {
  return kernel({
    name,
    workgroupSize: wg,
    threads: n,
    buffers: [
      ...ins.map((d, i) => ({ name: `in${i}`, dtype: d, access: 'read' as const, shape: [n] })),
      { name: 'out', dtype: out, access: 'read_write' as const, shape: [n] },
    ],
    body: [guard(i32(n), [store('out', f(ins.map((d, i) => load(`in${i}`, scalarOf(d)))))])],
  });
}

function host(d: DType, xs: readonly number[]): HostArray {
  switch (d) {
    case 'f32': case 'f16': case 'bf16': return Float32Array.from(xs);
    case 'i32': return Int32Array.from(xs);
    case 'u32': return Uint32Array.from(xs);
    case 'bool': return Uint8Array.from(xs);
  }
}

async function runMap(rt: WebGPURuntime, k: Kernel, ins: readonly HostArray[], out: DType, dims: Record<string, number> = {}): Promise<number[]> {
  const bufs = ins.map((data, i) => {
    const b = rt.alloc(k.buffers[i]!.dtype, data.length);
    rt.upload(b, data);
    return b;
  });
  const n = ins[0]?.length ?? 0;
  const o = rt.alloc(out, n);
  try {
    rt.run(k, [...bufs, o], dims);
    return Array.from(await rt.download(o));
  } finally {
    for (const b of [...bufs, o]) rt.free(b);
  }
}

function expectSame(got: readonly number[], want: readonly number[]): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => {
    const g = got[i]!;
    if (!Object.is(g, w) && !(g === 0 && w === 0)) throw new Error(`element ${i}: got ${g}, want ${w}\n got ${got.join(', ')}\nwant ${want.join(', ')}`);
  });
}

function expectClose(got: readonly number[], want: readonly number[], rel: number, abs: number, label: string): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => {
    const g = got[i]!;
    if (Number.isNaN(w)) {
      if (!Number.isNaN(g)) throw new Error(`${label}[${i}]: got ${g}, want NaN`);
      return;
    }
    if (!Number.isFinite(w)) {
      if (g !== w) throw new Error(`${label}[${i}]: got ${g}, want ${w}`);
      return;
    }
    if (Math.abs(g - w) > abs + rel * Math.abs(w)) throw new Error(`${label}[${i}]: got ${g}, want ${w} (diff ${g - w})`);
  });
}

const fr = Math.fround;

/** erf in double precision: series near 0, continued fraction for erfc beyond 2.5. */
function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  if (z < 2.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 80; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc(z) = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...)))))
  let frac = z;
  for (let n = 60; n >= 1; n--) frac = z + n / 2 / frac;
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / frac;
  return Math.sign(x) * (1 - erfc);
}

// ---------------------------------------------------------------------------------------------
// Golden WGSL (device-independent)

const N: Dim = { sym: 'N' };
const addKernel = kernel({
  name: 'add',
  uniforms: ['N'],
  threads: N,
  buffers: [
    { name: 'a', dtype: 'f32', access: 'read', shape: [N] },
    { name: 'b', dtype: 'f32', access: 'read', shape: [N] },
    { name: 'out', dtype: 'f32', access: 'read_write', shape: [N] },
  ],
  body: [guard(u('N'), [store('out', bin('add', 'f32', load('a', 'f32'), load('b', 'f32')))])],
  schedule: { kind: 'elementwise', params: { vec: 1 } },
});

describe('printWGSL', () => {
  it('prints an elementwise kernel with a symbolic dim', () => {
    expect(printWGSL(addKernel, { f16: true })).toMatchInlineSnapshot(`
      "// tessera kernel add: schedule elementwise vec=1

      @group(0) @binding(0) var<storage, read> a: array<f32>; // f32
      @group(0) @binding(1) var<storage, read> b: array<f32>; // f32
      @group(0) @binding(2) var<storage, read_write> out: array<f32>; // f32

      struct Dims {
        N: i32,
      }
      @group(0) @binding(3) var<uniform> dims: Dims;

      @compute @workgroup_size(64)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * 64u + lidx);
        if (tid < dims.N) {
          out[tid] = a[tid] + b[tid];
        }
      }
      "
    `);
  });

  it('prints a workgroup reduction over f16 and bool buffers', () => {
    const k = kernel({
      name: 'rowmax',
      workgroupSize: 32,
      threads: 32 * 4,
      shared: [{ name: 'part', t: 'f32', size: 32 }],
      buffers: [
        { name: 'x', dtype: 'f16', access: 'read', shape: [4, 100] },
        { name: 'keep', dtype: 'bool', access: 'read', shape: [4, 100] },
        { name: 'y', dtype: 'f16', access: 'read_write', shape: [4] },
      ],
      body: [
        { k: 'let', name: 'row', t: 'i32', init: bin('div', 'i32', tid, i32(32)), mut: false },
        { k: 'let', name: 'acc', t: 'f32', init: f32(-Infinity), mut: true },
        {
          k: 'for', v: 'j', from: { k: 'lid' }, to: i32(100), step: 32, body: [
            { k: 'let', name: 'at', t: 'i32', init: bin('add', 'i32', bin('mul', 'i32', v('row'), i32(100)), v('j')), mut: false },
            {
              k: 'if', cond: load('keep', 'bool', v('at')),
              then: [{ k: 'set', name: 'acc', value: bin('max', 'f32', v('acc', 'f32'), load('x', 'f32', v('at'))) }],
              else: [],
            },
          ],
        },
        { k: 'sstore', arr: 'part', index: { k: 'lid' }, value: v('acc', 'f32') },
        { k: 'barrier' },
        {
          k: 'if', cond: bin('eq', 'bool', { k: 'lid' }, i32(0)),
          then: [
            { k: 'for', v: 'j', from: i32(1), to: i32(32), step: 1, body: [
              { k: 'set', name: 'acc', value: bin('max', 'f32', v('acc', 'f32'), { k: 'sload', t: 'f32', arr: 'part', index: v('j') }) },
            ] },
            store('y', v('acc', 'f32'), v('row')),
          ],
          else: [],
        },
      ],
      schedule: { kind: 'reduce_wg', params: { wg: 32, rows: 1 } },
    });
    const withF16 = printWGSL(k, { f16: true });
    expect(withF16).toMatchInlineSnapshot(`
      "// tessera kernel rowmax: schedule reduce_wg rows=1 wg=32
      enable f16;

      @group(0) @binding(0) var<storage, read> x: array<f16>; // f16
      @group(0) @binding(1) var<storage, read> keep: array<u32>; // bool
      @group(0) @binding(2) var<storage, read_write> y: array<f16>; // f16

      var<workgroup> part: array<f32, 32>;

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

      // Round an f32 to the nearest f16 value (ties to even, overflow to infinity), kept as f32.
      fn t_f16_round(v: f32) -> f32 {
        if (t_isnan(v)) {
          return v;
        }
        if (abs(v) >= 65520.0) {
          return select(t_bits_f32(0xff800000u), t_bits_f32(0x7f800000u), v > 0.0);
        }
        // The f16 quantum at v's binade, 2^(e - 10), never below the subnormal step 2^-24.
        let e = max(bitcast<u32>(abs(v)) >> 23u, 113u) - 10u;
        return round(v * bitcast<f32>((254u - e) << 23u)) * bitcast<f32>(e << 23u);
      }

      fn t_to_f16(v: f32) -> f16 {
        return f16(t_f16_round(v));
      }

      @compute @workgroup_size(32)
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
        let tid = i32((wid.y * nwg.x + wid.x) * 32u + lidx);
        let row: i32 = tid / 32i;
        var acc: f32 = t_bits_f32(0xff800000u);
        for (var j: i32 = i32(lidx); j < 100i; j += 32i) {
          let at: i32 = (row * 100i) + j;
          if ((keep[at] != 0u)) {
            acc = t_max(acc, f32(x[at]));
          }
        }
        part[i32(lidx)] = acc;
        workgroupBarrier();
        if (i32(lidx) == 0i) {
          for (var j: i32 = 1i; j < 32i; j += 1i) {
            acc = t_max(acc, part[j]);
          }
          y[row] = t_to_f16(acc);
        }
      }
      "
    `);
    // Without shader-f16 the f16 tensors are f32 words, rounded to f16 on store.
    const noF16 = printWGSL(k, { f16: false });
    expect(noF16).not.toContain('enable f16');
    expect(noF16).toContain('var<storage, read> x: array<f32>; // f16');
    expect(noF16).toContain('y[row] = t_f16_round(acc);');
    expect(printWGSL(k, { f16: false })).toBe(noF16);
  });

  it('prints literals WGSL accepts and mangles names that clash', () => {
    const k = mapKernel('lits', [], 'f32', 1, () => f32(0));
    const src = printWGSL(
      kernel({
        ...k,
        buffers: [{ name: 'max', dtype: 'f32', access: 'read_write', shape: [8] }],
        body: [
          { k: 'let', name: 'var', t: 'f32', init: f32(0.1), mut: false },
          { k: 'let', name: 't_x', t: 'f32', init: f32(3.4028234663852886e38), mut: false },
          { k: 'let', name: 'a.b', t: 'i32', init: i32(-2147483648), mut: false },
          { k: 'let', name: 'nan', t: 'f32', init: f32(NaN), mut: false },
          { k: 'let', name: 'big', t: 'f32', init: f32(1e21), mut: false },
          { k: 'let', name: 'neg', t: 'f32', init: bin('sub', 'f32', v('var', 'f32'), f32(-1e-5)), mut: false },
          store('max', v('var', 'f32')),
        ],
      }),
      { f16: false },
    );
    expect(src).toContain('var<storage, read_write> max_: array<f32>;');
    expect(src).toContain('let var_: f32 = 0.1;');
    expect(src).toContain('let t_x_: f32 = 3.4028234663852886e38;');
    expect(src).toContain('let a_b: i32 = (-2147483647i - 1i);');
    expect(src).toContain('let nan: f32 = t_bits_f32(0x7fc00000u);');
    expect(src).toContain('let big: f32 = 1.0e21;');
    expect(src).toContain('let neg: f32 = var_ - (-0.00001);');
    expect(src).toContain('max_[tid] = var_;');
  });
});

// ---------------------------------------------------------------------------------------------
// On the device

const rt = await getTestWebGPU();
const rtNoF16 = rt ? ((await getTestWebGPU({ f16: false })) ?? rt) : undefined;

describe.skipIf(!rt)(`WebGPU runtime (${rt?.info.description ?? 'no adapter'})`, () => {
  const R = rt!;

  it('reports the adapter, features and limits', () => {
    expect(R.info.kind).toBe('webgpu');
    expect(R.info.description.length).toBeGreaterThan(0);
    expect(R.info.limits['maxComputeWorkgroupsPerDimension']).toBeGreaterThanOrEqual(65535);
    expect(R.caps.f16).toBe(R.info.features.includes('shader-f16'));
    expect(R.print(addKernel)).toBe(printWGSL(addKernel, R.caps));
  });

  it('adds two vectors with a tid guard (threads not a multiple of the workgroup)', async () => {
    const n = 1000;
    const a = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const b = Float32Array.from({ length: n }, (_, i) => 1 - i);
    const got = await runMap(R, addKernel, [a, b], 'f32', { N: n });
    expectSame(got, Array.from(a, (x, i) => fr(x + b[i]!)));
  });

  it('sums rows with a loop and a mutable accumulator; dims come in as uniforms', async () => {
    const Rs: Dim = { sym: 'R' };
    const Cs: Dim = { sym: 'C' };
    const k = kernel({
      name: 'rowsum',
      uniforms: ['R', 'C'],
      threads: Rs,
      workgroupSize: 16,
      buffers: [
        { name: 'x', dtype: 'f32', access: 'read', shape: [Rs, Cs] },
        { name: 'y', dtype: 'f32', access: 'read_write', shape: [Rs] },
      ],
      body: [
        guard(u('R'), [
          { k: 'let', name: 'acc', t: 'f32', init: f32(0), mut: true },
          {
            k: 'for', v: 'j', from: i32(0), to: u('C'), step: 1, body: [
              { k: 'set', name: 'acc', value: bin('add', 'f32', v('acc', 'f32'), load('x', 'f32', bin('add', 'i32', bin('mul', 'i32', tid, u('C')), v('j')))) },
            ],
          },
          store('y', v('acc', 'f32')),
        ]),
      ],
    });
    for (const [rows, cols] of [[37, 11], [5, 200], [1, 1]] as const) {
      const x = Float32Array.from({ length: rows * cols }, (_, i) => ((i * 7) % 13) - 6);
      const xb = R.alloc('f32', rows * cols);
      const yb = R.alloc('f32', rows);
      R.upload(xb, x);
      R.run(k, [xb, yb], { R: rows, C: cols });
      const got = Array.from(await R.download(yb));
      const want = Array.from({ length: rows }, (_, r) => {
        let s = 0;
        for (let j = 0; j < cols; j++) s = fr(s + x[r * cols + j]!);
        return s;
      });
      expectSame(got, want);
      R.free(xb);
      R.free(yb);
    }
  });

  it('reads and writes f16 buffers (rounding to nearest even, overflow to infinity)', async () => {
    const xs = [0, -0, 1, -2.5, 0.1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, -1e6, 2 ** -24, 3e-8, 1e-8, 1 / 3, NaN, Infinity];
    for (const r of new Set([R, rtNoF16!])) {
      // Upload rounds to f16; the kernel computes in f32 and rounds again on store.
      const k = mapKernel('f16_mul3', ['f16'], 'f16', xs.length, ([x]) => bin('mul', 'f32', x!, f32(3)));
      const got = await runMap(r, k, [host('f16', xs)], 'f16');
      expectSame(got, xs.map((x) => roundToF16(fr(roundToF16(x) * 3))));
      // A store rounds f32 values the host never saw.
      const k2 = mapKernel('f32_to_f16', ['f32'], 'f16', xs.length, ([x]) => x!);
      expectSame(await runMap(r, k2, [host('f32', xs)], 'f16'), xs.map(roundToF16));
      const k3 = mapKernel('f16_to_f32', ['f16'], 'f32', xs.length, ([x]) => x!);
      expectSame(await runMap(r, k3, [host('f16', xs)], 'f32'), xs.map(roundToF16));
    }
  });

  it('stores bool buffers as 0/1 and loads them as bools', async () => {
    const xs = [-1, 0, 2, NaN, -0, 0.5];
    const k = mapKernel('gt0', ['f32'], 'bool', xs.length, ([x]) => bin('gt', 'bool', x!, f32(0)));
    expectSame(await runMap(R, k, [host('f32', xs)], 'bool'), xs.map((x) => (x > 0 ? 1 : 0)));
    const bs = [1, 0, 7, 0, 1];
    const k2 = mapKernel('pick', ['bool'], 'i32', bs.length, ([b]) => ({ k: 'select', t: 'i32', c: un('not', 'bool', b!), a: i32(-1), b: i32(10) }));
    expectSame(await runMap(R, k2, [host('bool', bs)], 'i32'), bs.map((b) => (b ? 10 : -1)));
    const k3 = mapKernel('band', ['bool', 'bool'], 'bool', 4, ([a, b]) => bin('bxor', 'bool', a!, b!));
    expectSame(await runMap(R, k3, [host('bool', [0, 0, 1, 1]), host('bool', [0, 1, 0, 1])], 'bool'), [0, 1, 1, 0]);
  });

  it('folds a grid beyond maxComputeWorkgroupsPerDimension into x/y', async () => {
    const maxDim = R.info.limits['maxComputeWorkgroupsPerDimension']!;
    // Workgroups of 1 keep this cheap: maxDim + 2 workgroups need a second row.
    const n = maxDim + 2;
    const k = mapKernel('iota1', [], 'i32', n, () => tid, 1);
    const o = R.alloc('i32', n);
    R.run(k, [o], {});
    const got = (await R.download(o)) as Int32Array;
    R.free(o);
    let bad = -1;
    for (let i = 0; i < n; i++) if (got[i] !== i) { bad = i; break; }
    expect(bad).toBe(-1);
  });

  it('folds a 5M-thread launch (threads > 65535 * 64)', async () => {
    const n = 5_000_000 + 3;
    const k = mapKernel('iota64', [], 'i32', n, () => bin('mul', 'i32', tid, i32(3)), 64);
    const o = R.alloc('i32', n);
    const t0 = performance.now();
    R.run(k, [o], {});
    const got = (await R.download(o)) as Int32Array;
    const ms = performance.now() - t0;
    R.free(o);
    let bad = -1;
    for (let i = 0; i < n; i++) if (got[i] !== i * 3) { bad = i; break; }
    expect(bad).toBe(-1);
    expect(ms).toBeLessThan(20_000);
  });

  it('follows the reference semantics where WGSL differs', async () => {
    const nan = NaN;
    const inf = Infinity;
    // float max/min propagate NaN
    const as = [1, nan, 2, -inf, 0, nan];
    const bs = [nan, 1, 3, 5, -0, nan];
    const kmax = mapKernel('fmax', ['f32', 'f32'], 'f32', as.length, ([a, b]) => bin('max', 'f32', a!, b!));
    expectSame(await runMap(R, kmax, [host('f32', as), host('f32', bs)], 'f32'), [nan, nan, 3, 5, 0, nan]);
    const kmin = mapKernel('fmin', ['f32', 'f32'], 'f32', as.length, ([a, b]) => bin('min', 'f32', a!, b!));
    expectSame(await runMap(R, kmin, [host('f32', as), host('f32', bs)], 'f32'), [nan, nan, 2, -inf, 0, nan]);

    // float -> int casts truncate, saturate, NaN -> 0
    const fs = [1.9, -1.9, 3e9, -3e9, inf, -inf, nan, 2147483520, -2147483648, 4294967040, 0.5, -0.5];
    const kf2i = mapKernel('f2i', ['f32'], 'i32', fs.length, ([x]) => cast('i32', x!));
    expectSame(await runMap(R, kf2i, [host('f32', fs)], 'i32'), [1, -1, 2147483647, -2147483648, 2147483647, -2147483648, 0, 2147483520, -2147483648, 2147483647, 0, 0]);
    const kf2u = mapKernel('f2u', ['f32'], 'u32', fs.length, ([x]) => cast('u32', x!));
    expectSame(await runMap(R, kf2u, [host('f32', fs)], 'u32'), [1, 0, 3e9, 0, 4294967295, 0, 0, 2147483520, 0, 4294967040, 0, 0]);
    const kf2b = mapKernel('f2b', ['f32'], 'i32', fs.length, ([x]) => cast('i32', cast('bool', x!)));
    expectSame(await runMap(R, kf2b, [host('f32', fs)], 'i32'), fs.map((x) => (x !== 0 ? 1 : 0)));

    // integer division and modulo truncate; by zero they give 0
    const ia = [7, -7, 7, -7, 5, -2147483648, 0];
    const ib = [2, 2, -2, 0, 0, -1, 3];
    const kdiv = mapKernel('idiv', ['i32', 'i32'], 'i32', ia.length, ([a, b]) => bin('div', 'i32', a!, b!));
    expectSame(await runMap(R, kdiv, [host('i32', ia), host('i32', ib)], 'i32'), [3, -3, -3, 0, 0, -2147483648, 0]);
    const kmod = mapKernel('imod', ['i32', 'i32'], 'i32', ia.length, ([a, b]) => bin('mod', 'i32', a!, b!));
    expectSame(await runMap(R, kmod, [host('i32', ia), host('i32', ib)], 'i32'), [1, -1, 1, 0, 0, 0, 0]);
    const kfmod = mapKernel('fmod', ['f32', 'f32'], 'f32', 3, ([a, b]) => bin('mod', 'f32', a!, b!));
    expectSame(await runMap(R, kfmod, [host('f32', [7.5, -7.5, 1]), host('f32', [2, 2, 0])], 'f32'), [1.5, -1.5, nan]);

    // shifts mask the amount; >> is arithmetic on i32, logical on u32
    const kshl = mapKernel('shl', ['i32', 'i32'], 'i32', 3, ([a, b]) => bin('shl', 'i32', a!, b!));
    expectSame(await runMap(R, kshl, [host('i32', [1, 1, -1]), host('i32', [3, 33, 31])], 'i32'), [8, 2, -2147483648]);
    const kshr = mapKernel('shr', ['i32', 'i32'], 'i32', 2, ([a, b]) => bin('shr', 'i32', a!, b!));
    expectSame(await runMap(R, kshr, [host('i32', [-8, 8]), host('i32', [1, 2])], 'i32'), [-4, 2]);
    const kushr = mapKernel('ushr', ['u32', 'u32'], 'u32', 1, ([a, b]) => bin('shr', 'u32', a!, b!));
    expectSame(await runMap(R, kushr, [host('u32', [0x80000000]), host('u32', [4])], 'u32'), [0x08000000]);

    // pow: negative bases with integer exponents, zero, NaN
    const pa = [-2, -2, -2, 0, 0, 0, 2, nan, 1, -8, -0, -0, -inf, -inf, inf, 1, 0.5, 2, -2, 3, 1.5];
    const pb = [3, 2, 0.5, 0, -1, 2, 10, 0, nan, 1 / 3, 3, -3, 3, 0.5, -2, inf, inf, -inf, inf, -2, 2.5];
    const kpow = mapKernel('pow', ['f32', 'f32'], 'f32', pa.length, ([a, b]) => bin('pow', 'f32', a!, b!));
    expectClose(await runMap(R, kpow, [host('f32', pa), host('f32', pb)], 'f32'), pa.map((a, i) => Math.pow(a, fr(pb[i]!))), 1e-6, 0, 'pow');

    // isnan, and literals that cannot be written as WGSL literals
    // float != is true for NaN; == and orderings are false
    const kne = mapKernel('fne', ['f32', 'f32'], 'bool', 3, ([a, b]) => bin('ne', 'bool', a!, b!));
    expectSame(await runMap(R, kne, [host('f32', [nan, 1, 1]), host('f32', [nan, 1, 2])], 'bool'), [1, 0, 1]);
    const keq = mapKernel('feq', ['f32', 'f32'], 'bool', 3, ([a, b]) => bin('eq', 'bool', a!, b!));
    expectSame(await runMap(R, keq, [host('f32', [nan, 1, 1]), host('f32', [nan, 1, 2])], 'bool'), [0, 1, 0]);
    const knan = mapKernel('isnan', ['f32'], 'bool', 4, ([x]) => un('isnan', 'bool', x!));
    expectSame(await runMap(R, knan, [host('f32', [nan, inf, 0, -nan])], 'bool'), [1, 0, 0, 1]);
    const consts = [inf, -inf, nan, -0, 3.4028234663852886e38, 0.1, 1e-5, 1e21];
    const klit = kernel({
      name: 'lits',
      threads: 1,
      buffers: [
        { name: 'o', dtype: 'f32', access: 'read_write', shape: [consts.length] },
        { name: 'm', dtype: 'i32', access: 'read_write', shape: [1] },
      ],
      body: [guard(i32(1), [...consts.map((c, i) => store('o', f32(c), i32(i))), store('m', i32(-2147483648), i32(0))])],
    });
    const ob = R.alloc('f32', consts.length);
    const mb = R.alloc('i32', 1);
    R.run(klit, [ob, mb], {});
    expectSame(Array.from(await R.download(ob)), consts.map(fr));
    expectSame(Array.from(await R.download(mb)), [-2147483648]);
    R.free(ob);
    R.free(mb);
  });

  it('computes erf and tanh accurately, including large |x| and NaN', async () => {
    const xs: number[] = [0, -0, 1e-8, -1e-6, 1e-3, 0.1, 0.3, 0.49, 0.5, 0.51, -0.7, 1, 1.5, 2, -2.5, 3, 4, 6, 10, 100, -100, Infinity, -Infinity, NaN];
    for (let i = 0; i < 200; i++) xs.push(fr(-5 + i * 0.05));
    const kerf = mapKernel('erf', ['f32'], 'f32', xs.length, ([x]) => un('erf', 'f32', x!));
    const gotErf = await runMap(R, kerf, [host('f32', xs)], 'f32');
    expectClose(gotErf, xs.map((x) => erf64(fr(x))), 1e-6, 0, 'erf');
    const ktanh = mapKernel('tanh', ['f32'], 'f32', xs.length, ([x]) => un('tanh', 'f32', x!));
    const gotTanh = await runMap(R, ktanh, [host('f32', xs)], 'f32');
    expectClose(gotTanh, xs.map((x) => Math.tanh(fr(x))), 2e-6, 1e-7, 'tanh');
  });

  it('keeps IEEE special values in exp, log, sin, cos, sqrt, rsqrt and stays accurate', async () => {
    const specials = [NaN, Infinity, -Infinity, 0, -0, -1, 1];
    const xs = [...specials];
    for (let i = 0; i < 300; i++) xs.push(fr(-30 + i * 0.2));
    for (let i = 0; i < 100; i++) xs.push(fr(1000 + i * 991.7)); // rotary-embedding angles
    const cases: Array<[KUnary, (x: number) => number, number, number]> = [
      ['exp', Math.exp, 2e-6, 0],
      ['log', Math.log, 2e-6, 1e-6],
      ['sin', Math.sin, 0, 2e-6],
      ['cos', Math.cos, 0, 2e-6],
      ['sqrt', Math.sqrt, 1e-6, 0],
      ['rsqrt', (x) => 1 / Math.sqrt(x), 1e-6, 0],
    ];
    for (const [op, f, rel, abs] of cases) {
      const k = mapKernel(`u_${op}`, ['f32'], 'f32', xs.length, ([x]) => un(op, 'f32', x!));
      const got = await runMap(R, k, [host('f32', xs)], 'f32');
      // Results beyond the f32 range are infinities on the device.
      expectClose(got, xs.map((x) => fr(f(x))), rel, abs, op);
    }
    const ints = [5, -5, 0, -2147483648];
    const kneg = mapKernel('ineg_abs', ['i32'], 'i32', ints.length, ([x]) => bin('add', 'i32', un('neg', 'i32', x!), un('abs', 'i32', x!)));
    expectSame(await runMap(R, kneg, [host('i32', ints)], 'i32'), ints.map((x) => (-x + Math.abs(x)) | 0));
    const kfl = mapKernel('floorceil', ['f32'], 'f32', 4, ([x]) => bin('add', 'f32', un('floor', 'f32', x!), un('ceil', 'f32', x!)));
    expectSame(await runMap(R, kfl, [host('f32', [1.5, -1.5, 2, -0.25])], 'f32'), [3, -3, 4, -1]);
  });

  it('keeps launch order across batching, uploads and in-place chains', async () => {
    const n = 100;
    const inc = mapKernel('inc', ['f32'], 'f32', n, ([x]) => bin('add', 'f32', x!, f32(1)));
    const a = R.alloc('f32', n);
    const b = R.alloc('f32', n);
    R.upload(a, new Float32Array(n));
    for (let i = 0; i < 50; i++) {
      R.run(inc, [a, b], {});
      R.run(inc, [b, a], {});
    }
    expectSame(Array.from(await R.download(a)), new Array<number>(n).fill(100));
    // An upload between two launches: the first launch sees the old contents.
    const c = R.alloc('f32', n);
    R.upload(a, new Float32Array(n).fill(5));
    R.run(inc, [a, b], {});
    R.upload(a, new Float32Array(n).fill(-5));
    R.run(inc, [a, c], {});
    expectSame(Array.from(await R.download(b)), new Array<number>(n).fill(6));
    expectSame(Array.from(await R.download(c)), new Array<number>(n).fill(-4));
    // A launch of zero threads does nothing.
    const empty = mapKernel('empty', ['f32'], 'f32', 0, ([x]) => x!);
    const e0 = R.alloc('f32', 0);
    const e1 = R.alloc('f32', 0);
    R.run(empty, [e0, e1], {});
    await R.sync();
    expect(Array.from(await R.download(e1))).toEqual([]);
    for (const x of [a, b, c, e0, e1]) R.free(x);
  });

  it('times launches', async () => {
    const n = 4096;
    const k = mapKernel('inc_t', ['f32'], 'f32', n, ([x]) => bin('add', 'f32', x!, f32(1)));
    const a = R.alloc('f32', n);
    const b = R.alloc('f32', n);
    const t = await R.time(() => R.run(k, [a, b], {}), 5);
    expect(t.source).toBe(R.info.features.includes('timestamp-query') ? 'device' : 'wall');
    expect(t.medianMs).toBeGreaterThanOrEqual(0);
    expect(t.medianMs).toBeLessThan(10_000);
    R.free(a);
    R.free(b);
  });

  describe('errors leave the runtime usable', () => {
    const n = 8;
    const inc = mapKernel('inc_e', ['f32'], 'f32', n, ([x]) => bin('add', 'f32', x!, f32(1)));
    async function stillWorks(): Promise<void> {
      expectSame(await runMap(R, inc, [host('f32', [0, 1, 2, 3, 4, 5, 6, 7])], 'f32'), [1, 2, 3, 4, 5, 6, 7, 8]);
    }
    function code(f: () => unknown): string {
      try {
        f();
      } catch (e) {
        if (e instanceof TesseraError) return `${e.code}: ${e.detail}`;
        throw e;
      }
      return 'no error';
    }

    it('E_BUFFER: wrong length, dtype, count, foreign or aliased buffers', async () => {
      const a = R.alloc('f32', n);
      const short = R.alloc('f32', n - 1);
      const ints = R.alloc('i32', n);
      expect(code(() => R.run(inc, [a, short], {}))).toBe(
        "E_BUFFER: kernel 'inc_e', buffer 'out': expected 8 elements (shape [8] = [8]), found 7",
      );
      expect(code(() => R.run(inc, [ints, a], {}))).toBe("E_BUFFER: kernel 'inc_e', buffer 'in0': expected dtype f32, found i32");
      expect(code(() => R.run(inc, [a], {}))).toMatch(/^E_BUFFER: kernel 'inc_e': expected 2 buffers \(in0, out\), got 1/);
      expect(code(() => R.run(inc, [a, a], {}))).toMatch(/^E_BUFFER: .*same device buffer/);
      expect(code(() => R.run(inc, [a, { dtype: 'f32', length: n }], {}))).toMatch(/^E_BUFFER: .*not allocated by this WebGPU runtime/);
      expect(code(() => R.upload(a, new Float32Array(n + 1)))).toMatch(/^E_BUFFER/);
      expect(code(() => R.upload(a, new Int32Array(n)))).toMatch(/^E_BUFFER/);
      R.free(short);
      expect(code(() => R.run(inc, [a, short], {}))).toMatch(/^E_BUFFER: .*freed/);
      R.free(a);
      R.free(ints);
      await stillWorks();
    });

    it('E_UNBOUND_DIM: a symbolic dim without a value', async () => {
      const a = R.alloc('f32', 4);
      const b = R.alloc('f32', 4);
      const c = R.alloc('f32', 4);
      expect(code(() => R.run(addKernel, [a, b, c], {}))).toMatch(/^E_UNBOUND_DIM: symbolic dim 'N'/);
      expect(code(() => R.run(addKernel, [a, b, c], { M: 4 }))).toMatch(/^E_UNBOUND_DIM/);
      for (const x of [a, b, c]) R.free(x);
      await stillWorks();
    });

    it('E_DEVICE_LIMIT: workgroup memory, workgroup size, storage buffers', async () => {
      const limit = R.info.limits['maxComputeWorkgroupStorageSize']!;
      const big = kernel({ ...inc, name: 'too_much_shared', shared: [{ name: 'tile', t: 'f32', size: limit / 4 + 1 }] });
      const a = R.alloc('f32', n);
      const b = R.alloc('f32', n);
      expect(code(() => R.run(big, [a, b], {}))).toBe(
        `E_DEVICE_LIMIT: kernel 'too_much_shared': ${limit + 16} bytes of workgroup memory, the device allows ${limit}`,
      );
      const wide = kernel({ ...inc, name: 'too_wide', workgroupSize: R.info.limits['maxComputeInvocationsPerWorkgroup']! * 2 });
      expect(code(() => R.run(wide, [a, b], {}))).toMatch(/^E_DEVICE_LIMIT: kernel 'too_wide': workgroup size/);
      const maxBufs = R.info.limits['maxStorageBuffersPerShaderStage']!;
      const many = mapKernel('too_many', new Array<DType>(maxBufs).fill('f32'), 'f32', n, (xs) => xs[0]!);
      const bufs = Array.from({ length: maxBufs + 1 }, () => R.alloc('f32', n));
      expect(code(() => R.run(many, bufs, {}))).toMatch(/^E_DEVICE_LIMIT: kernel 'too_many': \d+ storage buffers, the device allows \d+/);
      for (const x of [a, b, ...bufs]) R.free(x);
      await stillWorks();
    });

    it('a launch that throws inside time() or a non-integer dim', async () => {
      const a = R.alloc('f32', n);
      const b = R.alloc('f32', n);
      let calls = 0;
      const t = R.time(() => {
        R.run(inc, [a, b], {});
        if (++calls === 3) throw new Error('boom');
      }, 4);
      await expect(t).rejects.toThrow('boom');
      const c = R.alloc('f32', n);
      expect(code(() => R.run(addKernel, [a, b, c], { N: 2.5 }))).toMatch(/^E_ARG: kernel 'add': dim 'N' = 2.5 is not an i32/);
      for (const x of [a, b, c]) R.free(x);
      await R.sync();
      await stillWorks();
    });

    it('E_BACKEND: a shader the driver rejects names the WGSL line', async () => {
      // An i32 stored into an f32 buffer: valid-looking IR, invalid WGSL.
      const bad = mapKernel('bad_store', ['f32'], 'f32', n, () => i32(1));
      const err = await R.compile(bad).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TesseraError);
      const te = err as TesseraError;
      expect(te.code).toBe('E_BACKEND');
      expect(te.detail).toMatch(/kernel 'bad_store': the WebGPU driver rejected the shader/);
      expect(te.detail).toMatch(/WGSL \d+:\d+: .*/);
      expect(te.detail).toContain('out[tid] = 1i;');
      // run() after a known failure throws at once; the runtime keeps working.
      const a = R.alloc('f32', n);
      const b = R.alloc('f32', n);
      expect(code(() => R.run(bad, [a, b], {}))).toMatch(/^E_BACKEND/);
      R.free(a);
      R.free(b);
      await stillWorks();
      // A fresh bad kernel launched without compile(): the error arrives at sync.
      const bad2 = mapKernel('bad_store2', ['f32'], 'f32', n, () => i32(2));
      const c = R.alloc('f32', n);
      const d = R.alloc('f32', n);
      R.run(bad2, [c, d], {});
      await expect(R.sync()).rejects.toThrow(/E_BACKEND: .*bad_store2/s);
      R.free(c);
      R.free(d);
      await R.sync();
      await stillWorks();
    });
  });
});

describe('f16 host conversions', () => {
  it('round to nearest even with subnormals, overflow and NaN', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001],
      [2 ** -14, 0x0400], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [1 / 3, 0x3555],
      [2 ** -14 - 2 ** -25, 0x0400], [2 ** -15, 0x0200],
    ];
    for (const [x, h] of cases) expect([x, f32ToF16Bits(x)]).toEqual([x, h]);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    for (let h = 0; h < 0x7c00; h += 7) expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
  });
});
