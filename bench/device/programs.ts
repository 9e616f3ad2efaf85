/**
 * The programs bench/device/run.sh compiles to PyTorch modules (`tessera compile --target torch`) and
 * bench_torch.py times against PyTorch on the GPU: the fused elementwise chain, softmax, and matmul in
 * f32, f16 and bf16 (16-bit in and out, f32 accumulation). Names are the modules' names.
 */
import { dim, kernel, matmul, tensor } from '../../src/dsl/index.js';
import { matmulOp, siluChainOp, softmaxOp } from '../../ops/index.js';

const M = dim('M');
const N = dim('N');
const K = dim('K');

export const matmulF16 = kernel('matmul_f16', { a: tensor('f16', [M, K]), b: tensor('f16', [K, N]) }, ({ a, b }) => matmul(a, b));
export const matmulBf16 = kernel('matmul_bf16', { a: tensor('bf16', [M, K]), b: tensor('bf16', [K, N]) }, ({ a, b }) => matmul(a, b));

/** silu_chain: silu(x * a + b); softmax: over the last axis; matmul: f32 a @ b; matmul_f16; matmul_bf16. */
export const benchPrograms = [siluChainOp.def, softmaxOp.def, matmulOp.def, matmulF16, matmulBf16];
