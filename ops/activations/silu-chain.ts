/**
 * `silu(x * a + b)` with per-channel scale and shift (a folded norm or a bias before the gate): the
 * canonical fusion test, one kernel that reads x once and writes once.
 */
import { dim, kernel, silu, tensor } from '../../src/dsl/index.js';
import { arg, f32Out, rowsOf } from '../ref-util.js';
import { defineOp } from '../spec.js';

const M = dim('M');
const N = dim('N');

export const build = () =>
  kernel('silu_chain', { x: tensor('f32', [M, N]), a: tensor('f32', [N]), b: tensor('f32', [N]) }, ({ x, a, b }) => silu(x.mul(a).add(b)));

export const siluChainOp = defineOp({
  name: 'silu_chain',
  family: 'activations',
  build,
  reference(inputs) {
    const x = arg(inputs, 'x');
    const a = arg(inputs, 'a');
    const b = arg(inputs, 'b');
    const out = f32Out(x.shape);
    const [rows, n] = rowsOf(x);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) {
        const y = x.data[r * n + j]! * a.data[j]! + b.data[j]!;
        out.data[r * n + j] = y / (1 + Math.exp(-y));
      }
    }
    return { out };
  },
  // multiply, add, then silu's five
  flops: ({ M, N }) => 7 * M * N,
  tolerance: { rtol: 2e-5, atol: 1e-6 },
  sampleDims: { M: 4, N: 96 },
  benchDims: { M: 4096, N: 1024 },
  maxKernels: 1,
});
