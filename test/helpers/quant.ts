/**
 * The checks every weight format meets, written once: host quantize/dequantize within the format's
 * error bound; the DSL round-to-nearest program agrees with the host quantizer; and the fused
 * quantized linear layer equals dequantize-then-matmul in float64 on every backend, at GEMV and
 * small-batch shapes with ragged K. A format's test file calls `describeFormat` with its cases.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/passes/pipeline.js';
import { execute } from '../../src/runtime/execute.js';
import { JSRuntime } from '../../src/backends/js/runtime.js';
import { qlinearInputs, qlinearKernel, quantizeOnDevice, type AnyFormat, type QuantizedMatrix, type QuantParams } from '../../src/quant/index.js';
import { Rng } from '../../src/fuzz/rng.js';
import { testBackends } from './backends.js';
import { smokeRun } from './webgpu.js';


export interface FormatCase {
  readonly label: string;
  readonly params: QuantParams;
  /** Shapes [N, K] to quantize; include K not a multiple of the group/pack size. */
  readonly shapes?: readonly (readonly [number, number])[];
}

/** Gaussian-ish weights with a few outliers, seeded. */
export function randomWeights(N: number, K: number, seed: number, outliers = true): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: N * K }, () => {
    const g = (rng.uniform(-1, 1) + rng.uniform(-1, 1) + rng.uniform(-1, 1)) * 0.05;
    return Math.fround(outliers && rng.chance(0.01) ? g * 20 : g);
  });
}

/** Float64 reference of x[M, K] · W^T with W dense [N, K]. */
export function refLinear(x: Float32Array, w: Float64Array, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let k = 0; k < K; k++) acc += x[m * K + k]! * w[n * K + k]!;
    out[m * N + n] = acc;
  }
  return out;
}

/** Largest |a - b| / (atol + rtol * scale) over the outputs; <= 1 passes. */
export function worst(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i]! - want[i]!) / (atol + rtol * Math.abs(want[i]!)));
  return w;
}

const DEFAULT_SHAPES: readonly (readonly [number, number])[] = [[8, 64], [5, 100], [16, 37]];

export function describeFormat(format: AnyFormat, cases: readonly FormatCase[]): void {
  const js = new JSRuntime({ boundsCheck: true });
  describe.each(cases.map((c) => [c.label, c] as const))(`${format.name} %s`, (_l, c) => {
    const shapes = c.shapes ?? DEFAULT_SHAPES;

    it('dequantize(quantize(w)) is within the format error bound', () => {
      for (const [i, [N, K]] of shapes.entries()) {
        const w = randomWeights(N, K, 11 + i);
        const q = format.quantize(w, N, K, c.params);
        const d = format.dequantize(q);
        expect(d.length).toBe(N * K);
        if (format.errorBound) {
          const bound = format.errorBound(q, w);
          for (let j = 0; j < N * K; j++) if (!(Math.abs(d[j]! - w[j]!) <= bound[j]!)) expect.fail(`[${Math.floor(j / K)}, ${j % K}]: |${d[j]} - ${w[j]}| > ${bound[j]}`);
        }
        expect(format.bitsPerWeight(q)).toBeGreaterThan(0);
      }
    });

    it('refuses weights that are not N x K', () => {
      const [N, K] = shapes[0]!;
      expect(() => format.quantize(new Float32Array(N * K - 1), N, K, c.params)).toThrow(/^E_SHAPE: .*weights for a \[/);
    });

    it('the DSL round-to-nearest quantizer agrees with the host quantizer (every shape on JS, the first on every backend)', async () => {
      const runs = [...shapes.map((shape, i) => ({ shape, i, rt: js })), ...(await testBackends()).filter((b) => b.name !== 'js').map((b) => ({ shape: shapes[0]!, i: 0, rt: b.rt }))];
      for (const { shape: [N, K], i, rt } of runs) {
        const w = randomWeights(N, K, 21 + i);
        const host = format.dequantize(format.quantize(w, N, K, c.params));
        const q = await quantizeOnDevice(format, rt, w, N, K, c.params);
        const dev = format.dequantize(q);
        // f32 device arithmetic may round a near-tie the other way: allow a tiny fraction of one-step differences
        let differ = 0;
        for (let j = 0; j < N * K; j++) if (Math.abs(dev[j]! - host[j]!) > 1e-6 * (1 + Math.abs(host[j]!))) differ++;
        expect(differ, `${differ} of ${N * K} elements differ`).toBeLessThanOrEqual(Math.max(1, Math.floor(N * K * 0.002)));
      }
    });
  });

  describe.each(cases.map((c) => [c.label, c] as const))(`${format.name} %s fused linear`, async (_l, c) => {
    const backends = await testBackends();
    const Ms = smokeRun() ? [1, 3] : [1, 3, 16];
    describe.each(backends.map((b) => [b.name, b.rt] as const))('on %s', (_b, rt) => {
      it('equals dequantize-then-matmul at GEMV and small-batch shapes', async () => {
        const [N, K] = (c.shapes ?? DEFAULT_SHAPES)[1]!;
        const w = randomWeights(N, K, 5);
        const q: QuantizedMatrix = format.quantize(w, N, K, c.params);
        const dense = format.dequantize(q);
        for (const M of Ms) {
          const rng = new Rng(M);
          const x = Float32Array.from({ length: M * K }, () => Math.fround(rng.uniform(-1, 1)));
          const cp = compile(qlinearKernel(format, q, M).program);
          expect(cp.kernels.length, 'dequantization is fused into the matmul').toBe(1);
          const out = await execute(cp, rt, qlinearInputs(q, x, M));
          const want = refLinear(x, dense, M, N, K);
          expect(worst(out['out']!.data, want, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
        }
      });
    });
  });
}
