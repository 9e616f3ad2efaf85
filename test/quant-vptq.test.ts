/**
 * VPTQ: the codebook format (layout, packing, bits, the fused quantized linear on every backend),
 * its baseline k-means quantizer on the host and as a DSL program, and the VPTQ quantizer
 * (Hessian-weighted k-means, channel-independent second-order update, residual codebook).
 *
 * describeFormat's generic "DSL quantizer == host quantizer" check is not used: it allows 0.2% of
 * elements to differ by more than 1e-6, but one f16 codebook entry rounded the other way by f32
 * device arithmetic moves every weight that uses it. The checks below compare codes and errors
 * instead, and the fused-linear check is written out here for VPTQ's configurations.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { isTesseraError } from '../src/errors.js';
import { Rng } from '../src/fuzz/rng.js';
import { f16Round } from '../src/runtime/f16.js';
import {
  FORMATS, qlinearInputs, qlinearKernel, quantizeOnDevice, totalBitsPerWeight,
  vptqBits, vptqCodes, vptqFormat, vptqIndexBits, vptqLayout, vptqMatrix, vptqParams, vptqQuantize, vptqQuantizeReport,
  type QuantizedMatrix, type VptqParams,
} from '../src/quant/index.js';
import { nearest } from '../src/quant/formats/vptq.js';
import { vptqKmeans, vqAssignOnDevice } from '../src/quant/vptq.js';
import { randomWeights, refLinear, worst } from './helpers/quant.js';
import { testBackends } from './helpers/backends.js';
import { smokeRun } from './helpers/webgpu.js';

const js = new JSRuntime({ boundsCheck: true });

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  expect.fail(`expected a TesseraError ${code}`);
}

function gauss(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
}

/** The dequantization formula straight from unpacked parts (independent of the format's code). */
function refDequant(p: VptqParams, N: number, K: number, parts: { codes: number[]; cb: number[]; rcodes?: number[]; rcb?: number[]; ocodes?: number[]; ocb?: number[]; invperm?: number[]; scale?: number[]; bias?: number[] }): Float64Array {
  const O = p.outliers;
  const Km = K - O;
  const h = (x: number) => f16Round(x);
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) {
    const j = parts.invperm ? parts.invperm[k]! : k;
    let x: number;
    if (j < O) x = h(parts.ocb![parts.ocodes![Math.floor(n / p.v0) * O + j]! * p.v0 + (n % p.v0)]!);
    else {
      const i = Math.floor(n / p.v) * Km + j - O;
      x = h(parts.cb[parts.codes[i]! * p.v + (n % p.v)]!);
      if (p.kRes > 0) x += h(parts.rcb![parts.rcodes![i]! * p.v + (n % p.v)]!);
    }
    out[n * K + k] = p.norm ? x * h(parts.scale![k]!) + h(parts.bias![k]!) : x;
  }
  return out;
}

/** Random parts for params p and shape [N, K]. */
function randomParts(p: VptqParams, N: number, K: number, seed: number) {
  const r = new Rng(seed);
  const L = vptqLayout(p, N, K);
  const ints = (n: number, size: number) => Array.from({ length: n }, () => r.int(0, size - 1));
  const reals = (n: number) => Array.from({ length: n }, () => r.uniform(-1, 1));
  const perm = Array.from({ length: K }, (_, i) => i);
  for (let i = K - 1; i > 0; i--) {
    const j = r.int(0, i);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  return {
    codes: ints(L.R * L.Km, p.k), cb: reals(p.k * p.v),
    ...(p.kRes > 0 ? { rcodes: ints(L.R * L.Km, p.kRes), rcb: reals(p.kRes * p.v) } : {}),
    ...(L.O > 0 ? { ocodes: ints(L.R0 * L.O, p.k0), ocb: reals(p.k0 * p.v0) } : {}),
    ...(p.perm ? { invperm: perm } : {}),
    ...(p.norm ? { scale: reals(K).map((x) => 0.5 + Math.abs(x)), bias: reals(K) } : {}),
  };
}

/** ‖X·Wᵀ − X·Ŵᵀ‖² / ‖X·Wᵀ‖² for X [T, K]. */
function outputError(X: Float32Array, T: number, w: ArrayLike<number>, d: ArrayLike<number>, N: number, K: number): number {
  let e = 0;
  let s = 0;
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    let a = 0;
    let b = 0;
    for (let k = 0; k < K; k++) {
      a += X[t * K + k]! * w[n * K + k]!;
      b += X[t * K + k]! * d[n * K + k]!;
    }
    e += (a - b) ** 2;
    s += a * a;
  }
  return e / s;
}

/** Correlated calibration activations: Gaussian rows times a fixed mixing matrix, per-feature scales over ~20x. */
function correlatedCalibration(T: number, K: number, seed: number, mixSeed: number): Float32Array {
  const m = new Rng(mixSeed);
  const mix = Float64Array.from({ length: K * K }, (_, i) => (Math.floor(i / K) === i % K ? 1 : 0) + 0.35 * gauss(m));
  const sc = Float64Array.from({ length: K }, () => Math.exp(m.uniform(-1.5, 1.5)));
  const r = new Rng(seed);
  const z = Float64Array.from({ length: T * K }, () => gauss(r));
  const X = new Float32Array(T * K);
  for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) {
    let s = 0;
    for (let j = 0; j < K; j++) s += z[t * K + j]! * mix[j * K + k]!;
    X[t * K + k] = s * sc[k]!;
  }
  return X;
}

const OUT = { outliers: 3, v0: 2, k0: 8 };
/**
 * Configurations of the fused-linear check; `oneKernel`: the access fits one kernel (cost <= 40 and
 * <= 8 bindings with x and the output). The JS backend runs every case at M = 1, 3 and 16. Shader
 * compilation of these kernels on a software WebGPU adapter takes 1-4 s each, so GPU backends run
 * the cases marked `gpu`, one M each, in rotation over 1, 3, 16 (every M is still covered).
 */
const FUSED_CASES: readonly { label: string; params: VptqParams; oneKernel: boolean; gpu?: number }[] = [
  { label: 'v4 k16', params: vptqParams({ v: 4, k: 16, iters: 4 }), oneKernel: true, gpu: 16 },
  { label: 'v3 k8 + residual k4', params: vptqParams({ v: 3, k: 8, kRes: 4, iters: 4 }), oneKernel: true },
  { label: 'v4 k16 + outliers (v0 2, k0 8) + perm', params: vptqParams({ v: 4, k: 16, ...OUT, perm: true, iters: 4 }), oneKernel: true, gpu: 3 },
  { label: 'v2 k32 + residual + perm', params: vptqParams({ v: 2, k: 32, kRes: 8, perm: true, iters: 4 }), oneKernel: true, gpu: 1 },
  { label: 'v4 k16 + residual + norm', params: vptqParams({ v: 4, k: 16, kRes: 8, norm: true, iters: 4 }), oneKernel: true },
  { label: 'v4 k16 + outliers + norm', params: vptqParams({ v: 4, k: 16, ...OUT, norm: true, iters: 4 }), oneKernel: true },
  { label: 'v4 k16 + perm + norm', params: vptqParams({ v: 4, k: 16, perm: true, norm: true, iters: 4 }), oneKernel: true },
  // over the limits (see the format's notes): 11 bindings and an access cost of 54 > DECODE_BUDGET 40
  { label: 'everything (outliers + residual + perm + norm)', params: vptqParams({ v: 4, k: 16, kRes: 8, ...OUT, perm: true, norm: true, iters: 4 }), oneKernel: false, gpu: 16 },
];

describe('vptq format', () => {
  it('is registered', () => {
    expect(FORMATS['vptq']).toBe(vptqFormat);
  });

  it('codes round-trip through the packed buffers and dequantize follows the formula (ragged N and K)', () => {
    const pow2 = (lo: number, hi: number) => fc.integer({ min: lo, max: hi }).map((e) => 2 ** e);
    fc.assert(
      fc.property(
        fc.record({
          v: fc.integer({ min: 1, max: 6 }), k: pow2(1, 8), kRes: fc.oneof(fc.constant(0), pow2(1, 5)),
          v0: fc.integer({ min: 1, max: 4 }), k0: pow2(1, 6), perm: fc.boolean(), norm: fc.boolean(),
        }),
        fc.integer({ min: 1, max: 23 }), fc.integer({ min: 1, max: 41 }), fc.nat(6), fc.integer(),
        (r, N, K, outliers, seed) => {
          const p = vptqParams({ ...r, outliers: Math.min(outliers, K - 1) });
          const L = vptqLayout(p, N, K);
          const parts = randomParts(p, N, K, seed);
          const q = vptqMatrix(p, N, K, parts);
          expect(q.buffers['idx']!.shape).toEqual([Math.ceil(N / p.v), Math.ceil(L.Km / Math.floor(32 / L.bits))]);
          expect(q.buffers['cb']!.shape).toEqual([p.k, p.v]);
          expect(Object.keys(q.buffers).sort()).toEqual(
            ['idx', 'cb', ...(p.kRes ? ['ridx', 'rcb'] : []), ...(L.O ? ['oidx', 'ocb'] : []), ...(p.perm ? ['invperm'] : []), ...(p.norm ? ['scale', 'bias'] : [])].sort(),
          );
          const c = vptqCodes(q);
          expect(Array.from(c.codes)).toEqual(parts.codes);
          if (p.kRes) expect(Array.from(c.rcodes!)).toEqual(parts.rcodes);
          if (L.O) expect(Array.from(c.ocodes!)).toEqual(parts.ocodes);
          const d = vptqFormat.dequantize(q);
          const want = refDequant(p, N, K, parts);
          for (let i = 0; i < N * K; i++) if (Math.abs(d[i]! - want[i]!) > 1e-12) expect.fail(`[${Math.floor(i / K)}, ${i % K}]: ${d[i]} != ${want[i]}`);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('counts bits per weight as TECHNIQUES §8 does', () => {
    // the paper's examples (4096 x 4096): v8 k256 -> 1.002 bits; v8 k65536 + residual 256 -> 2 + 1 index bits
    expect(vptqBits(vptqParams({ v: 8, k: 256 }), 4096, 4096).total).toBeCloseTo(1.002, 3);
    expect(vptqIndexBits({ v: 8, k: 65536, kRes: 256 })).toBe(3);
    expect(vptqIndexBits({ v: 6, k: 4096, kRes: 0 })).toBe(2);
    // storage equals the formula when nothing is padded: v4 k16 on 64 x 64 -> 4/4 + 4·16·16/4096
    const w = randomWeights(64, 64, 1);
    const a = vptqFormat.quantize(w, 64, 64, vptqParams({ v: 4, k: 16, iters: 2 }));
    expect(vptqFormat.bitsPerWeight(a)).toBeCloseTo(1 + 0.25, 12);
    expect(vptqBits(a.params as VptqParams, 64, 64).total).toBeCloseTo(1.25, 12);
    // everything: v2 k256 + residual k16, 8 outlier columns (v0 4, k0 16), perm, norm on 64 x 72:
    //   index (64·(8 + 4)/2 + 8·4/4) / 72, codebooks (4·16 + 2·(256 + 16))·16 / (64·72), invperm + scale + bias 64 / 64
    const pb = vptqParams({ v: 2, k: 256, kRes: 16, outliers: 8, v0: 4, k0: 16, perm: true, norm: true, iters: 2 });
    const b = vptqFormat.quantize(randomWeights(64, 72, 2), 64, 72, pb);
    const want = (64 * 12 / 2 + 8) / 72 + (64 + 2 * 272) * 16 / (64 * 72) + 1;
    expect(vptqBits(pb, 64, 72).total).toBeCloseTo(want, 12);
    expect(vptqFormat.bitsPerWeight(b)).toBeCloseTo(want, 12);
    expect(totalBitsPerWeight(b)).toBe(vptqFormat.bitsPerWeight(b));
    // padding (ragged N, 5-bit codes 6 to a word) only adds storage
    const pc = vptqParams({ v: 4, k: 32, iters: 2 });
    const c = vptqFormat.quantize(randomWeights(30, 37, 3), 30, 37, pc);
    expect(vptqFormat.bitsPerWeight(c)).toBeGreaterThan(vptqBits(pc, 30, 37).total);
  });

  it('rejects bad parameters with E_ARG / E_SHAPE', () => {
    const w = randomWeights(8, 16, 1);
    const q = (p: Partial<VptqParams>, N = 8, K = 16) => () => vptqFormat.quantize(w, N, K, vptqParams({ v: 4, k: 16, ...p }));
    expectCode(q({ k: 12 }), 'E_ARG', /k must be a power of 2/);
    expectCode(q({ k: 1 }), 'E_ARG', /power of 2/);
    expectCode(q({ v: 0 }), 'E_ARG', /v must be an integer >= 1/);
    expectCode(q({ v: 1.5 }), 'E_ARG', /v must be/);
    expectCode(q({ kRes: 3 }), 'E_ARG', /kRes/);
    expectCode(q({ outliers: 16 }), 'E_ARG', /outliers \(16\) must be < K \(16\)/);
    expectCode(q({ outliers: 20 }), 'E_ARG', /outliers/);
    expectCode(q({ outliers: -1 }), 'E_ARG', /outliers/);
    expectCode(q({ outliers: 2, k0: 6 }), 'E_ARG', /k0/);
    expectCode(q({ outliers: 2, v0: 0 }), 'E_ARG', /v0/);
    expectCode(q({ iters: -1 }), 'E_ARG', /iters/);
    expectCode(q({}, 0, 16), 'E_SHAPE');
    expectCode(q({}, 8, 15), 'E_SHAPE', /128 weights for a \[8, 15\] matrix/);
    expectCode(() => vptqFormat.rtnKernel(8, 16, vptqParams({ v: 4, k: 10 })), 'E_ARG');
    const p = vptqParams({ v: 4, k: 4, perm: true });
    const parts = randomParts(p, 8, 6, 1);
    expectCode(() => vptqMatrix(p, 8, 6, { ...parts, codes: parts.codes.slice(1) }), 'E_SHAPE', /'codes' needs 12 values/);
    expectCode(() => vptqMatrix(p, 8, 6, { ...parts, codes: parts.codes.map(() => 4) }), 'E_ARG', /not a code of a 4-entry codebook/);
    expectCode(() => vptqMatrix(p, 8, 6, { ...parts, invperm: [0, 0, 1, 2, 3, 4] }), 'E_ARG', /not a permutation/);
  });
});

describe('vptq baseline quantizer', () => {
  it('the DSL assignment step equals the host nearest-centroid search', async () => {
    for (const [R, D, C, seed] of [[300, 4, 16, 1], [97, 3, 64, 2], [50, 1, 8, 3], [40, 8, 32, 4]] as const) {
      const r = new Rng(seed);
      const x = Float32Array.from({ length: R * D }, () => Math.fround(gauss(r)));
      const cb = Float32Array.from({ length: C * D }, () => Math.fround(gauss(r)));
      const got = await vqAssignOnDevice(js, x, R, D, cb, C);
      for (let i = 0; i < R; i++) {
        const want = nearest(x, i, cb, C, D);
        if (got[i] === want.c) continue;
        // a different centroid is only acceptable at a tie to f32 precision
        const d = nearest(x, i, cb.subarray(got[i]! * D, got[i]! * D + D), 1, D).d;
        expect(Math.abs(d - want.d), `vector ${i}: ${got[i]} vs ${want.c}`).toBeLessThanOrEqual(1e-6 * (1 + want.d));
      }
    }
  });

  it('the DSL k-means program agrees with the host k-means', async () => {
    const cases: readonly [VptqParams, number, number][] = [
      [vptqParams({ v: 4, k: 16, iters: 6 }), 30, 37],
      [vptqParams({ v: 3, k: 8, kRes: 4, ...OUT, perm: true, norm: true, iters: 5 }), 17, 23],
      [vptqParams({ v: 2, k: 32, kRes: 8, norm: true, iters: 4, seed: 5 }), 16, 20],
    ];
    for (const [p, N, K] of cases) {
      const w = randomWeights(N, K, 21 + N);
      const host = vptqFormat.quantize(w, N, K, p);
      const dev = await quantizeOnDevice(vptqFormat, js, w, N, K, p);
      expect(Object.keys(dev.buffers).sort()).toEqual(Object.keys(host.buffers).sort());
      for (const [name, b] of Object.entries(host.buffers)) expect(dev.buffers[name]!.shape, name).toEqual(b.shape);
      const ch = vptqCodes(host);
      const cd = vptqCodes(dev);
      let same = 0;
      for (let i = 0; i < ch.codes.length; i++) if (ch.codes[i] === cd.codes[i]) same++;
      expect(same / ch.codes.length).toBeGreaterThanOrEqual(0.98);
      const dh = vptqFormat.dequantize(host);
      const dd = vptqFormat.dequantize(dev);
      let differ = 0;
      let eh = 0;
      let ed = 0;
      for (let i = 0; i < N * K; i++) {
        if (Math.abs(dh[i]! - dd[i]!) > 1e-6 * (1 + Math.abs(dh[i]!))) differ++;
        eh += (dh[i]! - w[i]!) ** 2;
        ed += (dd[i]! - w[i]!) ** 2;
      }
      expect(differ, `${differ} of ${N * K} weights differ`).toBeLessThanOrEqual(Math.ceil(0.02 * N * K));
      expect(Math.abs(ed - eh) / eh).toBeLessThan(0.01);
    }
  });

  it('quantization error falls with a bigger codebook and with a residual codebook', () => {
    const N = 32;
    const K = 48;
    const w = randomWeights(N, K, 9, false);
    const err = (p: VptqParams) => {
      const d = vptqFormat.dequantize(vptqFormat.quantize(w, N, K, p));
      return d.reduce((s, x, i) => s + (x - w[i]!) ** 2, 0);
    };
    const e16 = err(vptqParams({ v: 4, k: 16, iters: 10 }));
    const e64 = err(vptqParams({ v: 4, k: 64, iters: 10 }));
    const eRes = err(vptqParams({ v: 4, k: 16, kRes: 16, iters: 10 }));
    expect(e64).toBeLessThan(e16);
    expect(eRes).toBeLessThan(e16);
  });
});

describe('vptq fused linear', async () => {
  const backends = await testBackends();
  describe.each(backends.map((b) => [b.name, b.rt] as const))('on %s', (b, rt) => {
    const cases = FUSED_CASES.filter((c) => b === 'js' || c.gpu !== undefined);
    it.each(cases.map((c) => [c.label, c] as const))('%s equals dequantize-then-matmul at GEMV and small-batch shapes', async (_l, c) => {
      const [N, K] = [30, 37];
      const q: QuantizedMatrix = vptqFormat.quantize(randomWeights(N, K, 5), N, K, c.params);
      const dense = vptqFormat.dequantize(q);
      const Ms = b === 'js' ? (smokeRun() ? [1, 3] : [1, 3, 16]) : [c.gpu!];
      for (const M of Ms) {
        const rng = new Rng(M);
        const x = Float32Array.from({ length: M * K }, () => Math.fround(rng.uniform(-1, 1)));
        const cp = compile(qlinearKernel(vptqFormat, q, M).program);
        if (c.oneKernel) expect(cp.kernels.length, 'dequantization is fused into the matmul').toBe(1);
        else expect(cp.kernels.length).toBeGreaterThan(1);
        const out = await execute(cp, rt, qlinearInputs(q, x, M));
        expect(worst(out['out']!.data, refLinear(x, dense, M, N, K), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
      }
    });
  });
});

describe('vptq quantizer', () => {
  it('the Hessian-weighted k-means objective never increases', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 30 }), fc.constantFrom(8, 16, 32), fc.constantFrom(1, 2, 4), async (seed, C, D) => {
        const r = new Rng(seed);
        const R = 120 + (seed % 200);
        // clustered data, Hessian-like weights spanning two decades, a few dead (zero-weight) columns
        const centers = Array.from({ length: 6 * D }, () => gauss(r));
        const x = Float64Array.from({ length: R * D }, (_, i) => Math.fround(centers[(Math.floor(i / D) % 6) * D + (i % D)]! + 0.4 * gauss(r)));
        const wt = Float64Array.from({ length: R }, () => (r.chance(0.05) ? 0 : Math.fround(Math.exp(r.uniform(-2.3, 2.3)))));
        const km = await vptqKmeans(js, x, wt, R, D, C, { iters: 12, tol: 0, seed });
        // tol 0: runs until a round does not improve at all (converged) or 12 rounds
        expect(km.objective.length).toBeGreaterThanOrEqual(2);
        expect(km.objective.length).toBeLessThanOrEqual(12);
        for (let t = 1; t < km.objective.length; t++) {
          const [a, b] = [km.objective[t - 1]!, km.objective[t]!];
          if (!(b <= a * (1 + 1e-9))) expect.fail(`round ${t}: objective ${a} -> ${b}`);
        }
      }),
      { numRuns: 8 },
    );
  });

  it('beats plain k-means on layer output error at the same bits; the residual codebook lowers it further', async () => {
    const N = 48;
    const K = 64;
    const T = 192;
    const r = new Rng(7);
    const w = Float32Array.from({ length: N * K }, () => Math.fround(0.05 * gauss(r)));
    const X = correlatedCalibration(T, K, 1, 3);
    const held = correlatedCalibration(T, K, 2, 3);
    for (const extra of [{ perm: true }, { perm: true, outliers: 4, v0: 2, k0: 16, norm: true }]) {
      const p = vptqParams({ v: 4, k: 32, iters: 25, ...extra });
      const plain = vptqFormat.quantize(w, N, K, p);
      const { q, report } = await vptqQuantizeReport(w, N, K, X, T, p);
      const hessianOnly = await vptqQuantize(w, N, K, X, T, p, { secondOrder: false });
      const res = await vptqQuantizeReport(w, N, K, X, T, vptqParams({ ...p, kRes: 16 }));
      expect(vptqFormat.bitsPerWeight(q)).toBe(vptqFormat.bitsPerWeight(plain));
      const e = (m: QuantizedMatrix, x = X) => outputError(x, T, w, vptqFormat.dequantize(m), N, K);
      expect(e(hessianOnly)).toBeLessThan(e(plain));
      expect(e(q)).toBeLessThan(0.8 * e(plain));
      expect(e(q, held)).toBeLessThan(0.8 * e(plain, held));
      expect(e(res.q)).toBeLessThan(0.6 * e(q));
      expect(e(res.q, held)).toBeLessThan(0.6 * e(q, held));
      // the second-order pass lowers the proxy loss tr(ΔW H ΔWᵀ); the residual pass lowers it again
      expect(report.proxy.pass1).toBeLessThan(report.proxy.init);
      expect(res.report.proxy.final).toBeLessThan(res.report.proxy.pass1);
      for (const k of [...report.kmeans, ...res.report.kmeans]) {
        for (let t = 1; t < k.objective.length; t++) expect(k.objective[t]!).toBeLessThanOrEqual(k.objective[t - 1]! * (1 + 1e-9));
      }
      expect(res.report.kmeans.map((k) => k.segment)).toEqual([...('outliers' in extra ? ['outlier'] : []), 'main', 'residual']);
    }
  });

  it('the lazy block update (a DSL matmul) gives the same result as one block', async () => {
    const N = 20;
    const K = 50;
    const T = 120;
    const w = randomWeights(N, K, 4, false);
    const X = correlatedCalibration(T, K, 5, 6);
    const p = vptqParams({ v: 4, k: 16, kRes: 4, perm: true, iters: 10 });
    const one = vptqFormat.dequantize(await vptqQuantize(w, N, K, X, T, p));
    const blocks = vptqFormat.dequantize(await vptqQuantize(w, N, K, X, T, p, { blockSize: 7 }));
    const a = outputError(X, T, w, one, N, K);
    const b = outputError(X, T, w, blocks, N, K);
    expect(Math.abs(a - b) / a).toBeLessThan(0.01);
  });

  it('handles dead inputs and ragged N, and the result runs fused on the JS backend', async () => {
    const N = 13;
    const K = 24;
    const T = 64;
    const w = randomWeights(N, K, 8);
    const X = correlatedCalibration(T, K, 9, 10);
    for (let t = 0; t < T; t++) X[t * K + 5] = 0; // input 5 never fires
    const p = vptqParams({ v: 4, k: 8, ...OUT, perm: true, iters: 8 });
    const q = await vptqQuantize(w, N, K, X, T, p);
    const d = vptqFormat.dequantize(q);
    expect(d.every(Number.isFinite)).toBe(true);
    const x = Float32Array.from({ length: 2 * K }, (_, i) => Math.sin(i));
    const cp = compile(qlinearKernel(vptqFormat, q, 2).program);
    expect(cp.kernels.length).toBe(1);
    const out = await execute(cp, js, qlinearInputs(q, x, 2));
    expect(worst(out['out']!.data, refLinear(x, d, 2, N, K), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
  });

  it('rejects bad calibration and options', async () => {
    const w = randomWeights(8, 16, 1);
    const X = new Float32Array(4 * 16);
    const p = vptqParams({ v: 4, k: 4 });
    await expect(vptqQuantize(w, 8, 16, X.subarray(1), 4, p)).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(vptqQuantize(w.subarray(1), 8, 16, X, 4, p)).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(vptqQuantize(w, 8, 16, X, 4, p, { blockSize: 0 })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(vptqQuantize(w, 8, 16, X, 4, p, { damp: -1 })).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(vptqQuantize(w, 8, 16, X, 4, vptqParams({ v: 4, k: 6 }))).rejects.toMatchObject({ code: 'E_ARG' });
    await expect(vptqQuantize(w, 8, 16, X, 4, p, { tol: -1 })).rejects.toMatchObject({ code: 'E_ARG' });
  });
});

describe('VPTQ on every backend', () => {
  it('its DSL programs (Hessian, k-means rounds, lazy updates) give the same layer error on WebGPU as on JS', async () => {
    const [N, K, T] = [16, 24, 48];
    const w = randomWeights(N, K, 12, false);
    const X = correlatedCalibration(T, K, 13, 14);
    const p = vptqParams({ v: 4, k: 8, iters: 4 });
    const base = outputError(X, T, w, vptqFormat.dequantize(await vptqQuantize(w, N, K, X, T, p, { rt: js })), N, K);
    for (const b of await testBackends()) {
      const e = outputError(X, T, w, vptqFormat.dequantize(await vptqQuantize(w, N, K, X, T, p, { rt: b.rt })), N, K);
      expect(Math.abs(e - base) / base, b.name).toBeLessThan(0.05);
    }
  });
});
