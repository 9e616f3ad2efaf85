/**
 * The programs bench/device/run.sh compiles to PyTorch modules (`tessera compile --target torch`) and
 * bench_torch.py times against PyTorch on the GPU: the fused elementwise chain, softmax, matmul in
 * f32, f16 and bf16 (16-bit in and out, f32 accumulation), and the transformer-block chain in f32 and
 * f16. Names are the modules' names.
 */
import { dim, kernel, matmul, rmsnorm, silu, tensor } from '../../src/dsl/index.js';
import { matmulOp, siluChainOp, softmaxOp } from '../../ops/index.js';

const M = dim('M');
const N = dim('N');
const K = dim('K');

export const matmulF16 = kernel('matmul_f16', { a: tensor('f16', [M, K]), b: tensor('f16', [K, N]) }, ({ a, b }) => matmul(a, b));
export const matmulBf16 = kernel('matmul_bf16', { a: tensor('bf16', [M, K]), b: tensor('bf16', [K, N]) }, ({ a, b }) => matmul(a, b));

/**
 * The transformer-block chain out = x + silu(rmsnorm(x, g) @ w1) @ w2 (x [T, D], w1 [D, H], w2 [H, D]),
 * as the side-by-side benchmark has it: Tessera fuses it into three kernels (the norm's row kernel,
 * each matmul with its epilogue); bench_torch.py times it at a prefill and a decode T against the
 * same ops in eager PyTorch. In f16 the matmuls run on tensor cores.
 */
export function block(name: string, t: 'f32' | 'f16') {
  const [T, Dm, H] = [dim('T'), dim('D'), dim('H')];
  return kernel(name, { x: tensor(t, [T, Dm]), g: tensor(t, [Dm]), w1: tensor(t, [Dm, H]), w2: tensor(t, [H, Dm]) }, ({ x, g, w1, w2 }) =>
    x.add(matmul(silu(matmul(rmsnorm(x, g, 1e-5), w1)), w2)),
  );
}
export const blockF32 = block('block', 'f32');
export const blockF16 = block('block_f16', 'f16');

/** silu_chain: silu(x * a + b); softmax: over the last axis; matmul: f32 a @ b; matmul_f16; matmul_bf16; block; block_f16. */
export const benchPrograms = [siluChainOp.def, softmaxOp.def, matmulOp.def, matmulF16, matmulBf16, blockF32, blockF16];
