/** SwiGLU's gate: silu(g) * u over the gate and up projections (Llama's MLP), one kernel. */
import { dim, kernel, silu, tensor } from '../../src/dsl/index.js';
import { arg, f32Out } from '../ref-util.js';
import { defineOp } from '../spec.js';

const M = dim('M');
const N = dim('N');

export const build = () => kernel('swiglu', { g: tensor('f32', [M, N]), u: tensor('f32', [M, N]) }, ({ g, u }) => silu(g).mul(u));

export const swigluOp = defineOp({
  name: 'swiglu',
  family: 'activations',
  build,
  reference(inputs) {
    const g = arg(inputs, 'g');
    const u = arg(inputs, 'u');
    const out = f32Out(g.shape);
    for (let i = 0; i < g.data.length; i++) {
      const v = g.data[i]!;
      out.data[i] = (v / (1 + Math.exp(-v))) * u.data[i]!;
    }
    return { out };
  },
  // silu's five, then multiply
  flops: ({ M, N }) => 6 * M * N,
  tolerance: { rtol: 2e-5, atol: 1e-6 },
  sampleDims: { M: 4, N: 96 },
  benchDims: { M: 4096, N: 1024 },
  inputRange: 6,
  maxKernels: 1,
});
