/**
 * W8A8: per-channel int8 weights, per-token int8 activations quantized inside the program, and the
 * integer GEMM over dot4i8. Packing round trips; the program on every backend equals the host
 * reference (exact integer arithmetic, scales in float64) and stays within the analytic error bound
 * of the unquantized float linear layer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { printCudaUnit } from '../src/backends/cuda/print.js';
import { compileCuda, nvccAvailable } from '../src/backends/cuda/nvcc.js';
import { dot4i8 } from '../src/ref/scalar.js';
import { Rng } from '../src/fuzz/rng.js';
import { f16Round } from '../src/runtime/f16.js';
import {
  int8Words,
  packInt8,
  unpackInt8,
  w8a8ActivationKernel,
  w8a8BitsPerWeight,
  w8a8DequantizeWeights,
  w8a8ErrorBound,
  w8a8Inputs,
  w8a8LinearKernel,
  w8a8QuantizeActivations,
  w8a8QuantizeWeights,
  w8a8Reference,
} from '../src/quant/index.js';
import { testBackends } from './helpers/backends.js';
import { randomWeights, refLinear, worst } from './helpers/quant.js';

/**
 * Activations in [-1, 1] with a few outliers, nudged away from rounding ties: a code is then the
 * same whatever the last bit of a backend's f32 division (see w8a8QuantizeActivations).
 */
function activations(M: number, K: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: M * K }, () => Math.fround(rng.chance(0.02) ? rng.uniform(-6, 6) : rng.uniform(-1, 1)));
  const { sx } = w8a8QuantizeActivations(x, M, K);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const v = Math.abs(x[m * K + k]!) / sx[m]!;
      if (Math.abs(v - Math.floor(v) - 0.5) < 1e-3 && v < 126) x[m * K + k] = Math.fround(x[m * K + k]! + Math.sign(x[m * K + k]!) * 0.004 * sx[m]!);
    }
  }
  // the scales did not move (no element grew past its row's absmax)
  expect(Array.from(w8a8QuantizeActivations(x, M, K).sx)).toEqual(Array.from(sx));
  return x;
}

describe('int8 packing', () => {
  it('unpack(pack(codes)) == codes, ragged K padded with zero lanes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 70 }), fc.integer(), (N, K, seed) => {
        const rng = new Rng(seed);
        const codes = Int8Array.from({ length: N * K }, () => (rng.chance(0.1) ? rng.pick([-128, -127, -1, 0, 1, 127]) : rng.int(-128, 127)));
        const words = packInt8(codes, N, K);
        expect(words.length).toBe(N * int8Words(K));
        expect(Array.from(unpackInt8(words, N, K))).toEqual(Array.from(codes));
        // lanes past K are zero
        const W = int8Words(K);
        if (K % 4 !== 0) for (let n = 0; n < N; n++) expect(words[n * W + W - 1]! >>> ((K % 4) * 8)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('is little-endian two\'s complement, lane k % 4', () => {
    expect(Array.from(packInt8([-1, 0, 127, -128, 5], 1, 5))).toEqual([0x807f00ff, 0x00000005]);
    expect(() => packInt8([128], 1, 1)).toThrow(/not an int8/);
    expect(() => packInt8([0.5], 1, 1)).toThrow(/not an int8/);
  });

  it('dot4i8 over packed words equals the dot product of the codes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer(), (K, seed) => {
        const rng = new Rng(seed);
        const a = Int8Array.from({ length: K }, () => rng.int(-127, 127));
        const b = Int8Array.from({ length: K }, () => rng.int(-127, 127));
        const pa = packInt8(a, 1, K);
        const pb = packInt8(b, 1, K);
        let words = 0;
        for (let i = 0; i < pa.length; i++) words += dot4i8(pa[i]!, pb[i]!);
        let codes = 0;
        for (let k = 0; k < K; k++) codes += a[k]! * b[k]!;
        expect(words).toBe(codes);
      }),
      { numRuns: 200 },
    );
  });
});

describe('W8A8 host quantization', () => {
  it('weights: per-channel codes within half a step, scales f32 or f16', () => {
    for (const scale of ['f32', 'f16'] as const) {
      const [N, K] = [6, 37];
      const w = randomWeights(N, K, 3);
      const q = w8a8QuantizeWeights(w, N, K, { scale });
      const d = w8a8DequantizeWeights(q);
      for (let n = 0; n < N; n++) {
        const s = q.sw[n]!;
        if (scale === 'f16') expect(f16Round(s)).toBe(s);
        let amax = 0;
        for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(w[n * K + k]!));
        // f16 scales may clamp the largest weight past half a step
        const tol = Math.max(s / 2, amax - 127 * s) * (1 + 1e-9);
        for (let k = 0; k < K; k++) expect(Math.abs(d[n * K + k]! - w[n * K + k]!)).toBeLessThanOrEqual(tol);
        expect(Math.max(...Array.from(unpackInt8(q.wq, N, K).subarray(n * K, n * K + K), Math.abs))).toBe(127);
      }
      expect(w8a8BitsPerWeight(q)).toBeCloseTo((int8Words(K) * 32 + 32) / K, 9);
    }
  });

  it('activations: per-token scale is absmax / 127, all-zero rows get scale 1 and zero codes', () => {
    const x = Float32Array.from([0.5, -2, 1, 0, 0, 0]);
    const a = w8a8QuantizeActivations(x, 2, 3);
    expect(a.sx[0]).toBe(Math.fround(2 / 127));
    expect(Array.from(a.codes)).toEqual([32, -127, 64, 0, 0, 0]);
    expect(a.sx[1]).toBe(1);
  });
});

const N = 8;
const SHAPES: readonly { M: number; K: number }[] = [1, 3, 16].flatMap((M) => [37, 100].map((K) => ({ M, K })));

describe('W8A8 program', async () => {
  const backends = await testBackends();

  it('compiles to 3 kernels (row absmax, pack, integer dot), or 2 with the pack fused into the dot', () => {
    const three = compile(w8a8LinearKernel(N, 37, 3).program).kernels;
    const two = compile(w8a8LinearKernel(N, 37, 3, { fusePack: true }).program).kernels;
    console.log(`[tessera] w8a8 kernels: ${three.map((k) => `${k.kernel.name} (${k.kernel.schedule.kind})`).join(', ')}; fused pack: ${two.map((k) => k.kernel.name).join(', ')}`);
    expect(three.length).toBe(3);
    expect(two.length).toBe(2);
    const dot = (ks: typeof three) => ks.filter((k) => JSON.stringify(k.kernel.body).includes('"op":"dot4i8"')).length;
    expect(dot(three)).toBe(1);
    expect(dot(two)).toBe(1);
  });

  it.runIf(nvccAvailable())('its CUDA compiles with nvcc for sm_80 and sm_90', () => {
    const ks = [w8a8LinearKernel(N, 37, 'M'), w8a8LinearKernel(N, 100, 3, { fusePack: true, name: 'w8a8_fused' })].flatMap((d) => compile(d.program).kernels.map((k) => k.kernel));
    expect(compileCuda(printCudaUnit(ks), { archs: ['sm_80', 'sm_90'], output: 'cubin', cache: false }).parts.length).toBe(2);
  });

  describe.each(backends.map((b) => [b.name, b.rt] as const))('on %s', (_name, rt) => {
    it('quantizes activations exactly as the host does', async () => {
      for (const { M, K } of [{ M: 3, K: 37 }, { M: 16, K: 100 }]) {
        const x = activations(M, K, 100 + M + K);
        x.fill(0, 0, K); // an all-zero token
        const out = await execute(compile(w8a8ActivationKernel(K, M).program), rt, { x: { shape: [M, K], data: x } });
        const want = w8a8QuantizeActivations(x, M, K);
        expect(Array.from(out['sx']!.data)).toEqual(Array.from(want.sx));
        expect(Array.from(out['xq']!.data)).toEqual(Array.from(want.xq));
      }
    });

    it.each([false, true])('equals the host reference at M = 1, 3, 16 and ragged K (fusePack %s)', async (fusePack) => {
      for (const { M, K } of SHAPES) {
        const w = randomWeights(N, K, 7 + K);
        const q = w8a8QuantizeWeights(w, N, K);
        const cp = compile(w8a8LinearKernel(N, K, M, { fusePack }).program);
        const x = activations(M, K, M * 1000 + K);
        const got = (await execute(cp, rt, w8a8Inputs(q, x, M)))['out']!.data;
        const want = w8a8Reference(x, q, M);
        expect(worst(got, want, 1e-12, 1e-5), `M=${M} K=${K}`).toBeLessThanOrEqual(1);
      }
    });

    it('takes M as a symbolic dim; an all-zero token gives a zero row', async () => {
      const [M, K] = [5, 100];
      const cp = compile(w8a8LinearKernel(N, K, 'M').program);
      const w = randomWeights(N, K, 1);
      const q = w8a8QuantizeWeights(w, N, K, { scale: 'f16' });
      const x = activations(M, K, 9);
      x.fill(0, 2 * K, 3 * K);
      const got = (await execute(cp, rt, w8a8Inputs(q, x, M), { M }))['out']!.data;
      const want = w8a8Reference(x, q, M);
      expect(worst(got, want, 1e-12, 1e-5)).toBeLessThanOrEqual(1);
      expect(Array.from(got.subarray(2 * N, 3 * N))).toEqual(new Array(N).fill(0));
    });

    it('is within the int8 error bound of the float linear layer', async () => {
      for (const { M, K } of SHAPES) {
        const w = randomWeights(N, K, 70 + K);
        const q = w8a8QuantizeWeights(w, N, K);
        const x = activations(M, K, 31 * M + K);
        const got = (await execute(compile(w8a8LinearKernel(N, K, M).program), rt, w8a8Inputs(q, x, M)))['out']!.data;
        const exact = refLinear(x, Float64Array.from(w), M, N, K);
        const bound = w8a8ErrorBound(x, w, q, M);
        let err2 = 0;
        let ref2 = 0;
        for (let i = 0; i < M * N; i++) {
          const e = Math.abs(got[i]! - exact[i]!);
          if (!(e <= bound[i]!)) expect.fail(`M=${M} K=${K} [${Math.floor(i / N)}, ${i % N}]: |${got[i]} - ${exact[i]}| = ${e} > ${bound[i]}`);
          err2 += e * e;
          ref2 += exact[i]! * exact[i]!;
        }
        // typical error is far below the worst case: a few % of the output's magnitude with these outliers
        expect(Math.sqrt(err2 / ref2), `M=${M} K=${K}`).toBeLessThan(0.05);
      }
    });
  });
});
