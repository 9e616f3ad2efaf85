/**
 * `dot4i8(a: u32, b: u32) -> i32`: the packed int8 dot product (four signed int8 lanes per word,
 * lane i = bits 8i..8i+7). The reference against a brute-force byte-view implementation, typing,
 * the DSL spellings, the printers (WGSL dot4I8Packed or its shift helper, CUDA __dp4a, JS helper),
 * and the op on every backend against the reference.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { compute, reduceSum } from '../src/dsl/compute.js';
import { TesseraError } from '../src/errors.js';
import { inferType } from '../src/ir/infer.js';
import { BINARY_OPS, PACKED_OPS } from '../src/ir/ops.js';
import type { Kernel } from '../src/ir/kernel.js';
import { binaryScalar, refBinary, refFromHost } from '../src/ref/index.js';
import { dot4i8 } from '../src/ref/scalar.js';
import { compile } from '../src/passes/pipeline.js';
import { printWGSL } from '../src/backends/wgsl/print.js';
import { printCudaUnit } from '../src/backends/cuda/print.js';
import { JS_HELPERS } from '../src/backends/js/print.js';
import { createWebGPURuntime, type WebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { getGPU } from '../src/backends/wgsl/device.js';
import { compileCuda, nvccAvailable } from '../src/backends/cuda/nvcc.js';
import { Rng } from '../src/fuzz/rng.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { recording } from './helpers/emitted.js';

/** Brute force through a byte view: the four little-endian bytes of each word as Int8. */
function bruteDot(a: number, b: number): number {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setUint32(0, a >>> 0, true);
  buf.setUint32(4, b >>> 0, true);
  let s = 0;
  for (let i = 0; i < 4; i++) s += buf.getInt8(i) * buf.getInt8(4 + i);
  return s;
}

const EDGES = [0, 0x80808080, 0x7f7f7f7f, 0xffffffff, 0x01020304, 0x80000000, 0x7fffffff, 0x00000080, 0x81018101, 0xfe7f80ff];
const u32Arb = fc.oneof(fc.constantFrom(...EDGES), fc.integer({ min: 0, max: 0xffffffff }));

describe('dot4i8 reference', () => {
  it('equals the brute-force sum of int8 lane products', () => {
    fc.assert(
      fc.property(u32Arb, u32Arb, (a, b) => {
        const want = bruteDot(a, b);
        expect(dot4i8(a, b)).toBe(want);
        expect(binaryScalar('dot4i8', a, b, 'u32')).toBe(want);
        expect(JS_HELPERS.math['dot4i8']!(a, b)).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });

  it('hits the extremes exactly', () => {
    expect(dot4i8(0x80808080, 0x80808080)).toBe(4 * 128 * 128);
    expect(dot4i8(0x80808080, 0x7f7f7f7f)).toBe(-4 * 128 * 127);
    expect(dot4i8(0x7f7f7f7f, 0x7f7f7f7f)).toBe(4 * 127 * 127);
    expect(dot4i8(0xffffffff, 0x01020304)).toBe(-10);
    expect(dot4i8(0, 0xffffffff)).toBe(0);
  });

  it('is an i32 op on u32 operands', () => {
    expect(BINARY_OPS).toContain('dot4i8');
    expect(PACKED_OPS).toEqual(['dot4i8']);
    expect(inferType('dot4i8', [{ dtype: 'u32', shape: [3] }, { dtype: 'u32', shape: [3] }], {})).toEqual({ dtype: 'i32', shape: [3] });
    for (const t of ['i32', 'f32', 'f16', 'bool'] as const) {
      expect(() => inferType('dot4i8', [{ dtype: t, shape: [3] }, { dtype: t, shape: [3] }], {})).toThrow(/dot4i8 expects u32 operands/);
    }
    const r = refBinary('dot4i8', refFromHost('u32', [2], Uint32Array.from([0x80808080, 0xffffffff])), refFromHost('u32', [2], Uint32Array.from([0x7f7f7f7f, 0x01020304])));
    expect(r.dtype).toBe('i32');
    expect(Array.from(r.data)).toEqual([-65024, -10]);
  });
});

describe('dot4i8 in the DSL', () => {
  it('free function, Tensor method and IndexExpr method all give i32', () => {
    D.kernel('dsl_dot', { a: D.tensor('u32', [4]), b: D.tensor('u32', [4]) }, ({ a, b }) => {
      expect(D.dot4i8(a, b).dtype).toBe('i32');
      expect(a.dot4i8(b).dtype).toBe('i32');
      expect(a.dot4i8(b).node).toBe(D.dot4i8(a, b).node);
      // a number next to a u32 word is a u32 literal; the i32 result takes i32 literals
      const c = compute([4], (i) => a.at(i).dot4i8(0x01010101).add(1));
      expect(c.dtype).toBe('i32');
      return c;
    });
  });

  it('rejects non-u32 operands at the call site', () => {
    expect(() =>
      D.kernel('bad_dot', { a: D.tensor('i32', [4]) }, ({ a }) => D.dot4i8(a, a)),
    ).toThrow(TesseraError);
  });
});

const N = 100;
const pairs = (() => {
  const a: number[] = [];
  const b: number[] = [];
  for (const x of EDGES) for (const y of EDGES) {
    a.push(x);
    b.push(y);
  }
  const rng = new Rng(7);
  while (a.length < N) {
    a.push(rng.int(0, 0xffff) * 0x10000 + rng.int(0, 0xffff));
    b.push(rng.int(0, 0xffff) * 0x10000 + rng.int(0, 0xffff));
  }
  return { a: Uint32Array.from(a.slice(0, N)), b: Uint32Array.from(b.slice(0, N)) };
})();

const L = D.dim('L');
/** Elementwise, inside compute() with an i32 epilogue, and summed over a reduction (what a GEMM does). */
const programs = [
  D.kernel('dot4i8_elementwise', { a: D.tensor('u32', [L]), b: D.tensor('u32', [L]) }, ({ a, b }) => D.dot4i8(a, b)),
  D.kernel('dot4i8_compute', { a: D.tensor('u32', [L]), b: D.tensor('u32', [L]) }, ({ a, b }) => ({
    d: compute([L], (i) => a.at(i).dot4i8(b.at(i))),
    e: compute([L], (i) => a.at(i).dot4i8(b.at(i)).mul(3).sub(b.at(i).bitand(255).cast('i32'))),
  })),
  D.kernel('dot4i8_rows', { a: D.tensor('u32', [10, 10]), b: D.tensor('u32', [10, 10]) }, ({ a, b }) =>
    compute([10, 10], (r, c) => reduceSum(10, (k) => a.at(r, k).dot4i8(b.at(c, k)))),
  ),
];
const inputsFor = (name: string) =>
  name === 'dot4i8_rows'
    ? { a: { shape: [10, 10], data: pairs.a }, b: { shape: [10, 10], data: pairs.b } }
    : { a: { shape: [N], data: pairs.a }, b: { shape: [N], data: pairs.b } };
const EXACT = { rtol: 0, atol: 0 };

function kernelsOf(def: (typeof programs)[number]): Kernel[] {
  return compile(def.program).kernels.map((k) => k.kernel);
}

describe('dot4i8 printers', () => {
  it('WGSL: dot4I8Packed with the language feature, the shift helper without', () => {
    const [k] = kernelsOf(programs[0]!);
    const withFeature = printWGSL(k!, { f16: false, packed4x8Dot: true });
    expect(withFeature).toContain('requires packed_4x8_integer_dot_product;');
    expect(withFeature).toMatch(/dot4I8Packed\(/);
    expect(withFeature).not.toContain('t_dot4i8');
    for (const caps of [{ f16: false }, { f16: true, packed4x8Dot: false }]) {
      const src = printWGSL(k!, caps);
      expect(src).not.toContain('requires');
      expect(src).not.toMatch(/dot4I8Packed\(/);
      expect(src).toContain('fn t_dot4i8(a: u32, b: u32) -> i32');
      expect(src).toMatch(/= t_dot4i8\(/);
    }
  });

  it('CUDA: dp4a through a prelude helper', () => {
    const src = printCudaUnit(kernelsOf(programs[0]!));
    expect(src).toContain('__dp4a((int)a, (int)b, 0)');
    expect(src).toMatch(/tsr_dot4i8\(b_a\[/);
  });

  it.runIf(nvccAvailable())('CUDA: the kernels compile with nvcc for sm_80 and sm_90', () => {
    const src = printCudaUnit(programs.flatMap(kernelsOf));
    const r = compileCuda(src, { archs: ['sm_80', 'sm_90'], output: 'cubin', cache: false });
    expect(r.parts.length).toBe(2);
  });
});

describe('dot4i8 on every backend', async () => {
  const backends = await testBackends();
  // WebGPU again without the language feature: the printer's shift helper on the same device
  let fallback: WebGPURuntime | undefined;
  if (backends.some((b) => b.name === 'webgpu')) {
    fallback = await createWebGPURuntime({ packed4x8Dot: false });
    if (fallback) backends.push({ name: 'webgpu (shift helper)', rt: recording(fallback) });
  }
  afterAll(() => fallback?.destroy());

  it.runIf(backends.some((b) => b.name === 'webgpu'))('WebGPU uses dot4I8Packed exactly when WGSL has packed_4x8_integer_dot_product', async () => {
    const gpu = (await getGPU())!.gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> };
    const has = gpu.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') === true;
    console.log(`[tessera] WGSL packed_4x8_integer_dot_product: ${has} (${backends.find((b) => b.name === 'webgpu')!.rt.info.description})`);
    expect((backends.find((b) => b.name === 'webgpu')!.rt as WebGPURuntime).caps.packed4x8Dot).toBe(has);
    expect(fallback?.caps.packed4x8Dot).toBe(false);
  });

  describe.each(backends.map((b) => [b.name, b.rt] as const))('on %s', (name, rt) => {
    it.each(programs.map((p) => [p.name, p] as const))('%s equals the reference exactly', async (pname, def) => {
      if (name.startsWith('webgpu')) {
        const wgsl = rt.print(compile(def.program).kernels[0]!.kernel);
        const packed = (rt as WebGPURuntime).caps.packed4x8Dot === true;
        expect(wgsl.includes('dot4I8Packed(')).toBe(packed);
        expect(wgsl.includes('t_dot4i8(')).toBe(!packed);
      }
      expect(await checkOnBackend(def, rt, inputsFor(pname), EXACT, { L: N })).toBeNull();
    });
  });
});
