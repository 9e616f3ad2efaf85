/** Programs several test files share. */
import * as D from '../../src/dsl/index.js';

const [T, Dm, H] = [D.dim('T'), D.dim('D'), D.dim('H')];

/** The transformer block's FFN over T tokens: rmsnorm, matmul, silu, matmul, residual. */
export const ffnBlock = D.kernel(
  'ffn',
  { x: D.tensor('f32', [T, Dm]), g: D.tensor('f32', [Dm]), w1: D.tensor('f32', [Dm, H]), w2: D.tensor('f32', [H, Dm]) },
  ({ x, g, w1, w2 }) => D.matmul(D.silu(D.matmul(D.rmsnorm(x, g, 1e-5), w1)), w2).add(x),
);
