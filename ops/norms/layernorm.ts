/** Layer norm over the last axis with gain and bias: (x - mean) / sqrt(var + eps) * g + b. */
import { dim, kernel, layernorm, tensor } from '../../src/dsl/index.js';
import { arg, f32Out, rowsOf } from '../ref-util.js';
import { defineOp } from '../spec.js';

const EPS = 1e-5;
const M = dim('M');
const N = dim('N');

export const build = () =>
  kernel('layernorm', { x: tensor('f32', [M, N]), g: tensor('f32', [N]), b: tensor('f32', [N]) }, ({ x, g, b }) => layernorm(x, g, b, EPS));

export const layernormOp = defineOp({
  name: 'layernorm',
  family: 'norms',
  build,
  reference(inputs) {
    const x = arg(inputs, 'x');
    const g = arg(inputs, 'g');
    const b = arg(inputs, 'b');
    const out = f32Out(x.shape);
    const [rows, n] = rowsOf(x);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += x.data[r * n + j]!;
      const mean = s / n;
      let v = 0;
      for (let j = 0; j < n; j++) v += (x.data[r * n + j]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / n + EPS);
      for (let j = 0; j < n; j++) out.data[r * n + j] = (x.data[r * n + j]! - mean) * inv * g.data[j]! + b.data[j]!;
    }
    return { out };
  },
  // sum, center, square, sum, scale, gain, bias per element; two means, add eps, rsqrt per row
  flops: ({ M, N }) => 7 * M * N + 4 * M,
  tolerance: { rtol: 1e-5, atol: 1e-5 },
  sampleDims: { M: 5, N: 64 },
  benchDims: { M: 4096, N: 1024 },
  maxKernels: 2,
});
