/**
 * The f16 matmul again under another name, which bench/device/run.sh compiles with the tuner's
 * 128x128 tensor-core shape (`--params mma=1,wm=2,wn=4,fm=4,fn=2,bk=32,db=1`: eight warps of 4x2
 * WMMA tiles, K steps of 32, double-buffered), so one GPU run measures the default 64x64 block
 * (`matmul_f16`) and the big block against torch.matmul at 4096³, where the 70% target is.
 */
import { dim, kernel, matmul, tensor } from '../../src/dsl/index.js';

const [M, N, K] = [dim('M'), dim('N'), dim('K')];

export const matmulF16Big = kernel('matmul_f16_128', { a: tensor('f16', [M, K]), b: tensor('f16', [K, N]) }, ({ a, b }) => matmul(a, b));
