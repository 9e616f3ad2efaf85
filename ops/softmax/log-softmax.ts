/** Log-softmax over the last axis: (x - max) - log(sum(exp(x - max))). */
import { dim, kernel, logSoftmax, tensor } from '../../src/dsl/index.js';
import { arg, f32Out, rowsOf } from '../ref-util.js';
import { defineOp } from '../spec.js';

const M = dim('M');
const N = dim('N');

export const build = () => kernel('log_softmax', { x: tensor('f32', [M, N]) }, ({ x }) => logSoftmax(x, -1));

export const logSoftmaxOp = defineOp({
  name: 'log_softmax',
  family: 'softmax',
  build,
  reference(inputs) {
    const x = arg(inputs, 'x');
    const out = f32Out(x.shape);
    const [rows, n] = rowsOf(x);
    for (let r = 0; r < rows; r++) {
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, x.data[r * n + j]!);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x.data[r * n + j]! - m);
      const lse = Math.log(s);
      for (let j = 0; j < n; j++) out.data[r * n + j] = x.data[r * n + j]! - m - lse;
    }
    return { out };
  },
  // max, subtract, exp, sum, subtract per element; log per row
  flops: ({ M, N }) => 5 * M * N + M,
  tolerance: { rtol: 1e-5, atol: 1e-5 },
  sampleDims: { M: 5, N: 64 },
  benchDims: { M: 4096, N: 1024 },
  inputRange: 8,
  maxKernels: 2,
});
