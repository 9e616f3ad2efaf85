/** RMS norm over the last axis with a learned gain (Llama's pre-norm): x / sqrt(mean(x^2) + eps) * g. */
import { dim, kernel, rmsnorm, tensor } from '../../src/dsl/index.js';
import { arg, f32Out, rowsOf } from '../ref-util.js';
import { defineOp } from '../spec.js';

const EPS = 1e-5;
const M = dim('M');
const N = dim('N');

export const build = () =>
  kernel('rmsnorm', { x: tensor('f32', [M, N]), g: tensor('f32', [N]) }, ({ x, g }) => rmsnorm(x, g, EPS));

export const rmsnormOp = defineOp({
  name: 'rmsnorm',
  family: 'norms',
  build,
  reference(inputs) {
    const x = arg(inputs, 'x');
    const g = arg(inputs, 'g');
    const out = f32Out(x.shape);
    const [rows, n] = rowsOf(x);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let j = 0; j < n; j++) ss += x.data[r * n + j]! ** 2;
      const inv = 1 / Math.sqrt(ss / n + EPS);
      for (let j = 0; j < n; j++) out.data[r * n + j] = x.data[r * n + j]! * inv * g.data[j]!;
    }
    return { out };
  },
  // square, sum, scale, gain per element; mean, add eps, rsqrt per row
  flops: ({ M, N }) => 4 * M * N + 3 * M,
  tolerance: { rtol: 1e-5, atol: 1e-6 },
  sampleDims: { M: 5, N: 64 },
  benchDims: { M: 4096, N: 1024 },
  maxKernels: 2,
});
