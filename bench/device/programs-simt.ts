/**
 * The f16 matmul again under another name, which bench/device/run.sh compiles with `--params mma=0`:
 * the SIMT schedule beside the tensor-core one (`matmul_f16`), so one GPU run measures what the
 * tensor cores bring as well as both against torch.matmul.
 */
import { dim, kernel, matmul, tensor } from '../../src/dsl/index.js';

const [M, N, K] = [dim('M'), dim('N'), dim('K')];

export const matmulF16Simt = kernel('matmul_f16_simt', { a: tensor('f16', [M, K]), b: tensor('f16', [K, N]) }, ({ a, b }) => matmul(a, b));
