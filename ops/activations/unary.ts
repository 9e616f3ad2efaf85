/**
 * Pointwise activations over a [M, N] tensor: silu, gelu (exact erf and the tanh approximation),
 * relu and sigmoid. Each is one elementwise kernel; the references are the closed forms in float64.
 */
import { dim, gelu, kernel, relu, sigmoid, silu, tensor, type Tensor } from '../../src/dsl/index.js';
import { erf } from '../../src/ref/index.js';
import { arg, f32Out } from '../ref-util.js';
import { defineOp, type OpSpec, type Tolerance } from '../spec.js';

const M = dim('M');
const N = dim('N');

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const GELU_C = Math.sqrt(2 / Math.PI);

// Transcendentals are computed by the backend's f32 math library (WGSL allows a few ulp, more for
// large arguments), hence the looser tolerance than the norms'.
const TOL: Tolerance = { rtol: 2e-5, atol: 1e-6 };

function unaryOp(name: string, f: (x: Tensor) => Tensor, ref: (x: number) => number, flopsPerElement: number): OpSpec {
  return defineOp({
    name,
    family: 'activations',
    build: () => kernel(name, { x: tensor('f32', [M, N]) }, ({ x }) => f(x)),
    reference(inputs) {
      const x = arg(inputs, 'x');
      const out = f32Out(x.shape);
      for (let i = 0; i < x.data.length; i++) out.data[i] = ref(x.data[i]!);
      return { out };
    },
    flops: ({ M, N }) => flopsPerElement * M * N,
    tolerance: TOL,
    sampleDims: { M: 4, N: 96 },
    benchDims: { M: 4096, N: 1024 },
    inputRange: 8,
    maxKernels: 1,
  });
}

// x * sigmoid(x): negate, exp, add, divide, multiply
export const siluOp = unaryOp('silu', silu, (x) => x * sig(x), 5);
// 0.5 x (1 + erf(x / sqrt 2)): scale, erf, add, multiply, multiply
export const geluOp = unaryOp('gelu', (x) => gelu(x, 'none'), (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), 5);
// 0.5 x (1 + tanh(c (x + 0.044715 x^3))): cube (2), scale, add, scale, tanh, add, multiply, multiply
export const geluTanhOp = unaryOp('gelu_tanh', (x) => gelu(x, 'tanh'), (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3))), 9);
export const reluOp = unaryOp('relu', relu, (x) => Math.max(x, 0), 1);
// 1 / (1 + exp(-x)): negate, exp, add, divide
export const sigmoidOp = unaryOp('sigmoid', sigmoid, sig, 4);
