/**
 * The worked PyTorch example: an RMS norm whose output goes through a per-channel affine and SiLU,
 * `silu(rmsnorm(x, g) * a + b)`. Tessera fuses it into one row kernel (one read of x, one write).
 *
 *   node bin/tessera.mjs compile examples/torch/rmsnorm_silu.ts --target torch --out gen/
 *   python3 examples/torch/run_example.py          # generates the module itself, needs a GPU
 */
import { dim, kernel, rmsnorm, silu, tensor } from '../../src/dsl/index.js';

const M = dim('M');
const N = dim('N');

export const EPS = 1e-5;

export const rmsnormSilu = kernel(
  'rmsnorm_silu',
  { x: tensor('f32', [M, N]), g: tensor('f32', [N]), a: tensor('f32', [N]), b: tensor('f32', [N]) },
  ({ x, g, a, b }) => silu(rmsnorm(x, g, EPS).mul(a).add(b)),
);
