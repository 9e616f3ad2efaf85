/**
 * GPTQ: never worse than round-to-nearest on the layer output it minimises, exactly RTN when the
 * Hessian is a multiple of the identity, equal to an unblocked float64 transcription of the
 * algorithm, and its DSL kernels (Hessian, lazy batch update) checked on the JS backend. Plus the
 * host linear algebra it stands on.
 */
import { describe, expect, it } from 'vitest';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { testBackends } from './helpers/backends.js';
import { isTesseraError } from '../src/errors.js';
import { Rng } from '../src/fuzz/rng.js';
import {
  cholesky, choleskyInverse, choleskyUpper, gptqHessian, gptqQuantize, intFormat, inverseSPD, matmul64,
  unpackCodes, type IntParams, type QuantizedMatrix,
} from '../src/quant/index.js';
import { groupScale, intCode } from '../src/quant/formats/int.js';
import type { BackendRuntime } from '../src/runtime/backend.js';

const js = new JSRuntime({ boundsCheck: true });

/** Calibration activations with correlated columns: X = Z·M, Z uniform [T, K], M [K, K] with a few strong couplings. */
function correlatedX(T: number, K: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const Z = Float64Array.from({ length: T * K }, () => rng.uniform(-1, 1));
  const M = Float64Array.from({ length: K * K }, (_, i) => (Math.floor(i / K) === i % K ? 1 : 0) + rng.uniform(-1, 1) * (rng.chance(0.1) ? 0.8 : 0.1));
  return Float32Array.from(matmul64(Z, M, T, K, K));
}

function randomW(N: number, K: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: N * K }, () => Math.fround((rng.uniform(-1, 1) + rng.uniform(-1, 1) + rng.uniform(-1, 1)) * 0.05 * (rng.chance(0.01) ? 10 : 1)));
}

/** Float64 XᵀX. */
function gram(X: ArrayLike<number>, T: number, K: number): Float64Array {
  const G = new Float64Array(K * K);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < K; i++) {
      const a = X[t * K + i]!;
      if (a === 0) continue;
      for (let j = 0; j < K; j++) G[i * K + j] += a * X[t * K + j]!;
    }
  }
  return G;
}

/** ‖X·Wᵀ − X·Ŵᵀ‖² = Σ_n (w_n − ŵ_n)ᵀ XᵀX (w_n − ŵ_n), in float64. */
function outputError(XtX: Float64Array, w: Float32Array, q: QuantizedMatrix): number {
  const { N, K } = q;
  const d = intFormat.dequantize(q);
  let e = 0;
  const diff = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) diff[k] = w[n * K + k]! - d[n * K + k]!;
    for (let i = 0; i < K; i++) {
      let s = 0;
      for (let j = 0; j < K; j++) s += XtX[i * K + j]! * diff[j]!;
      e += diff[i]! * s;
    }
  }
  return e;
}

function codes(q: QuantizedMatrix): number[] {
  return Array.from(unpackCodes(q.buffers['codes']!.data as Uint32Array, q.N, q.K, q.params['bits'] as number));
}

/**
 * The algorithm written plainly from the paper, in float64 and without blocks: every column's
 * error goes straight onto all later columns (the lazy batch update is an exact reordering of
 * this when groups do not straddle blocks). Group scale/zero from the current weights.
 */
function naiveGptq(w: Float32Array, N: number, K: number, X: Float32Array, T: number, p: IntParams): { codes: Uint32Array } {
  const H = gram(X, T, K).map((v) => (2 * v) / T);
  const W = Float64Array.from(w);
  for (let i = 0; i < K; i++) if (H[i * K + i] === 0) { H[i * K + i] = 1; for (let n = 0; n < N; n++) W[n * K + i] = 0; }
  let mean = 0;
  for (let i = 0; i < K; i++) mean += H[i * K + i]! / K;
  for (let i = 0; i < K; i++) H[i * K + i] += 0.01 * mean;
  const U = choleskyUpper(inverseSPD(H, K), K);
  const g = p.group > 0 ? p.group : K;
  const out = new Uint32Array(N * K);
  const s = new Float64Array(N);
  const z = new Float64Array(N);
  for (let i = 0; i < K; i++) {
    if (i % g === 0) {
      for (let n = 0; n < N; n++) {
        const r = groupScale(W.subarray(n * K + i, n * K + Math.min(K, i + g)), p.bits, p.symmetric);
        s[n] = r.s;
        z[n] = r.z;
      }
    }
    for (let n = 0; n < N; n++) {
      const c = intCode(W[n * K + i]!, s[n]!, z[n]!, p.bits);
      out[n * K + i] = c;
      const err = (W[n * K + i]! - (c - z[n]!) * s[n]!) / U[i * K + i]!;
      for (let j = i; j < K; j++) W[n * K + j] -= err * U[i * K + j]!;
    }
  }
  return { codes: out };
}

const CASES: readonly { label: string; p: IntParams; tol: number }[] = [
  { label: 'int4 g32 asym', p: { bits: 4, group: 32, symmetric: false }, tol: 0 },
  { label: 'int3 g32 asym', p: { bits: 3, group: 32, symmetric: false }, tol: 0 },
  { label: 'int8 per-channel sym', p: { bits: 8, group: 0, symmetric: true }, tol: 1e-9 },
];

describe('GPTQ quantizer', () => {
  it('layer-output error is at most RTN\'s on correlated calibration data (several seeds)', async () => {
    const [N, K, T] = [32, 128, 256];
    const ratios: string[] = [];
    for (const c of CASES) {
      const rs: number[] = [];
      for (const seed of [1, 2, 3]) {
        const X = correlatedX(T, K, 100 + seed);
        const w = randomW(N, K, 200 + seed);
        const XtX = gram(X, T, K);
        const qg = await gptqQuantize(w, N, K, X, T, c.p, { rt: js, blockSize: 32 });
        expect(qg.params).toEqual(c.p);
        expect(Object.keys(qg.buffers).sort()).toEqual(Object.keys(intFormat.quantize(w, N, K, c.p).buffers).sort());
        const eg = outputError(XtX, w, qg);
        const er = outputError(XtX, w, intFormat.quantize(w, N, K, c.p));
        expect(eg, `${c.label} seed ${seed}: GPTQ ${eg} vs RTN ${er}`).toBeLessThanOrEqual(er * (1 + c.tol));
        rs.push(eg / er);
      }
      ratios.push(`${c.label}: ${rs.map((r) => r.toFixed(3)).join(', ')}`);
    }
    console.log(`GPTQ / RTN layer-output error: ${ratios.join('; ')}`);
  });

  it('equals an unblocked float64 transcription of the algorithm (lazy batch updates are exact)', async () => {
    const [N, K, T] = [16, 128, 256];
    const X = correlatedX(T, K, 7);
    const w = randomW(N, K, 8);
    for (const c of CASES) {
      const want = naiveGptq(w, N, K, X, T, c.p).codes;
      for (const blockSize of [32, 128]) {
        const got = codes(await gptqQuantize(w, N, K, X, T, c.p, { rt: js, blockSize }));
        // the DSL kernels run in f32: a near-tie may round the other way and its error then propagates
        let differ = 0;
        for (let i = 0; i < N * K; i++) if (got[i] !== want[i]) differ++;
        expect(differ, `${c.label} block ${blockSize}: ${differ} of ${N * K} codes differ`).toBeLessThanOrEqual(Math.ceil(N * K * 0.01));
      }
    }
  });

  it('is exactly RTN when the Hessian is a multiple of the identity (orthogonal equal-norm inputs)', async () => {
    // Sylvester Hadamard: columns orthogonal, each of squared norm T, so H = 2·c²·I
    const K = 128;
    let Hd = [[1]];
    while (Hd.length < K) Hd = [...Hd.map((r) => [...r, ...r]), ...Hd.map((r) => [...r, ...r.map((v) => -v)])];
    for (const scale of [1, 0.5]) {
      const X = Float32Array.from(Hd.flat(), (v) => v * scale);
      const w = randomW(24, K, 5);
      for (const c of CASES) {
        const qg = await gptqQuantize(w, 24, K, X, K, c.p, { rt: js, blockSize: 32 });
        const qr = intFormat.quantize(w, 24, K, c.p);
        for (const name of Object.keys(qr.buffers)) expect(Array.from(qg.buffers[name]!.data), `${c.label} ${name}`).toEqual(Array.from(qr.buffers[name]!.data));
      }
    }
  });

  it('the DSL Hessian kernel equals a float64 host 2·XᵀX/T', async () => {
    for (const [T, K] of [[64, 48], [200, 96]] as const) {
      const X = correlatedX(T, K, T + K);
      const H = await gptqHessian(X, T, K, js);
      const G = gram(X, T, K);
      const Ga = gram(X.map(Math.abs), T, K);
      for (let i = 0; i < K * K; i++) {
        const want = (2 * G[i]!) / T;
        const bound = (2 * Ga[i]!) / T * 1e-5 + 1e-12;
        if (!(Math.abs(H[i]! - want) <= bound)) expect.fail(`H[${Math.floor(i / K)}, ${i % K}] = ${H[i]} vs ${want}`);
      }
    }
  });

  it('runs its tensor programs on the given runtime, and on the JS backend by default', async () => {
    const [N, K, T] = [8, 96, 128];
    const X = correlatedX(T, K, 3);
    const w = randomW(N, K, 4);
    const p: IntParams = { bits: 4, group: 32, symmetric: false };
    let runs = 0;
    const counting = new Proxy(js, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv);
        if (prop === 'run') return (...args: unknown[]) => { runs++; return (v as (...a: unknown[]) => unknown).apply(target, args); };
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as BackendRuntime;
    const a = await gptqQuantize(w, N, K, X, T, p, { rt: counting, blockSize: 32 });
    expect(runs, 'the Hessian plus a lazy update after each of the first two blocks').toBeGreaterThanOrEqual(3);
    const b = await gptqQuantize(w, N, K, X, T, p, { blockSize: 32 });
    expect(codes(b)).toEqual(codes(a));
  });

  it('handles dead inputs and rejects bad arguments clearly', async () => {
    const [N, K, T] = [8, 32, 64];
    const X = correlatedX(T, K, 9);
    for (let t = 0; t < T; t++) X[t * K + 5] = 0; // input 5 never fires
    const w = randomW(N, K, 10);
    const q = await gptqQuantize(w, N, K, X, T, { bits: 4, group: 16, symmetric: false }, { rt: js });
    const d = intFormat.dequantize(q);
    for (let n = 0; n < N; n++) expect(d[n * K + 5]).toBe(0);

    const err = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        if (isTesseraError(e)) return `${e.code}: ${e.detail}`;
        throw e;
      }
      throw new Error('expected a TesseraError');
    };
    const p: IntParams = { bits: 4, group: 16, symmetric: false };
    expect(await err(() => gptqQuantize(w, N, K + 1, X, T, p))).toMatch(/^E_SHAPE: .*weights for \[8, 33\]/);
    expect(await err(() => gptqQuantize(w, N, K, X, T + 1, p))).toMatch(/^E_SHAPE: .*calibration values/);
    expect(await err(() => gptqQuantize(w, N, K, X, T, { ...p, bits: 9 }))).toMatch(/^E_ARG: .*bits must be 2..8/);
    expect(await err(() => gptqQuantize(w, N, K, X, T, p, { blockSize: 0 }))).toMatch(/^E_ARG: .*blockSize/);
    expect(await err(() => gptqQuantize(w, N, K, X, T, p, { damp: -1 }))).toMatch(/^E_ARG: .*damp/);
    // two identical inputs make H singular; without damping the factorisation must fail and say what to do
    const Xd = correlatedX(T, K, 11);
    for (let t = 0; t < T; t++) Xd[t * K + 9] = Xd[t * K + 3]!;
    expect(await err(() => gptqQuantize(w, N, K, Xd, T, p, { rt: js, damp: 0 }))).toMatch(/^E_ARG: cholesky: matrix is not positive definite.*damping/);
    await gptqQuantize(w, N, K, Xd, T, p, { rt: js }); // the default damping copes
  });
});

describe('host linear algebra', () => {
  /** A random SPD matrix B·Bᵀ + δI. */
  function spd(n: number, seed: number, delta = 0.1): Float64Array {
    const rng = new Rng(seed);
    const B = Float64Array.from({ length: n * n }, () => rng.uniform(-1, 1));
    const Bt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Bt[j * n + i] = B[i * n + j]!;
    const A = matmul64(B, Bt, n, n, n);
    for (let i = 0; i < n; i++) A[i * n + i] += delta;
    return A;
  }
  const maxAbsDiffFromIdentity = (P: Float64Array, n: number) => {
    let m = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m = Math.max(m, Math.abs(P[i * n + j]! - (i === j ? 1 : 0)));
    return m;
  };

  it('A·A⁻¹ ≈ I and the Cholesky factors reproduce A for random SPD matrices', () => {
    for (const [n, seed] of [[1, 1], [2, 2], [7, 3], [33, 4], [96, 5]] as const) {
      const A = spd(n, seed);
      const inv = inverseSPD(A, n);
      expect(maxAbsDiffFromIdentity(matmul64(A, inv, n, n, n), n), `n=${n}`).toBeLessThan(1e-8);
      const L = cholesky(A, n);
      const Lt = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Lt[j * n + i] = L[i * n + j]!;
      const LLt = matmul64(L, Lt, n, n, n);
      const U = choleskyUpper(A, n);
      const UtU = matmul64(L, U, n, n, n); // Uᵀ = L
      for (let i = 0; i < n * n; i++) {
        expect(Math.abs(LLt[i]! - A[i]!)).toBeLessThan(1e-9 * (1 + Math.abs(A[i]!)));
        expect(Math.abs(UtU[i]! - A[i]!)).toBeLessThan(1e-9 * (1 + Math.abs(A[i]!)));
        if (Math.floor(i / n) > i % n) expect(U[i]).toBe(0); // upper triangular
      }
      expect(Array.from(choleskyInverse(L, n))).toEqual(Array.from(inv));
    }
  });

  it('fails on a matrix that is not positive definite, suggesting more damping', () => {
    for (const A of [[1, 2, 2, 1], [1, 1, 1, 1], [0, 0, 0, 1], [-1, 0, 0, 1]]) {
      let e: unknown;
      try {
        cholesky(A, 2);
      } catch (x) {
        e = x;
      }
      expect(isTesseraError(e)).toBe(true);
      expect((e as Error).message).toMatch(/^E_ARG: cholesky: matrix is not positive definite \(pivot .* at row \d of 2\); .*more damping/);
    }
    expect(() => inverseSPD([1, 2, 3], 2)).toThrow(/E_SHAPE/);
  });
});

describe('GPTQ on every backend', () => {
  it('its DSL kernels give the same quantization on WebGPU as on the JS backend', async () => {
    const [N, K, T] = [16, 64, 96];
    const X = correlatedX(T, K, 7);
    const w = randomW(N, K, 8);
    const p: IntParams = { bits: 4, group: 32, symmetric: false };
    const want = codes(await gptqQuantize(w, N, K, X, T, p, { rt: js, blockSize: 32 }));
    for (const b of await testBackends()) {
      const got = codes(await gptqQuantize(w, N, K, X, T, p, { rt: b.rt, blockSize: 32 }));
      // f32 Hessians summed in another order may flip a near-tie code
      const differ = got.filter((c, i) => c !== want[i]).length;
      expect(differ, `${b.name}: ${differ} of ${got.length} codes differ`).toBeLessThanOrEqual(Math.ceil(got.length * 0.01));
    }
  });
});
