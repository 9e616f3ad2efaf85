/**
 * Dense f32 matmuls: A @ B, A @ B^T (weights stored [out, in], as most checkpoints are), batched
 * A @ B, and linear = x @ W^T + bias.
 */
import { dim, kernel, matmul, tensor } from '../../src/dsl/index.js';
import { arg } from '../ref-util.js';
import { defineOp, type Tolerance } from '../spec.js';
import { refBatchedMatmul } from './reference.js';

const B = dim('B');
const M = dim('M');
const N = dim('N');
const K = dim('K');

// f32 accumulation over K terms of size <= range^2: error grows like K * eps * range^2.
const TOL: Tolerance = { rtol: 1e-4, atol: 1e-4 };
const SAMPLE = { M: 12, N: 20, K: 24 };
const BENCH = { M: 1024, N: 1024, K: 1024 };

export const matmulOp = defineOp({
  name: 'matmul',
  family: 'matmul',
  build: () => kernel('matmul', { a: tensor('f32', [M, K]), b: tensor('f32', [K, N]) }, ({ a, b }) => matmul(a, b)),
  reference: (ins) => ({ out: refBatchedMatmul(arg(ins, 'a'), arg(ins, 'b'), false) }),
  flops: ({ M, N, K }) => 2 * M * N * K,
  tolerance: TOL,
  sampleDims: SAMPLE,
  benchDims: BENCH,
  inputRange: 1,
  maxKernels: 1,
});

export const matmulTransBOp = defineOp({
  name: 'matmul_tb',
  family: 'matmul',
  build: () => kernel('matmul_tb', { a: tensor('f32', [M, K]), b: tensor('f32', [N, K]) }, ({ a, b }) => matmul(a, b, { transB: true })),
  reference: (ins) => ({ out: refBatchedMatmul(arg(ins, 'a'), arg(ins, 'b'), true) }),
  flops: ({ M, N, K }) => 2 * M * N * K,
  tolerance: TOL,
  sampleDims: SAMPLE,
  benchDims: BENCH,
  inputRange: 1,
  maxKernels: 1,
});

export const bmmOp = defineOp({
  name: 'bmm',
  family: 'matmul',
  build: () => kernel('bmm', { a: tensor('f32', [B, M, K]), b: tensor('f32', [B, K, N]) }, ({ a, b }) => matmul(a, b)),
  reference: (ins) => ({ out: refBatchedMatmul(arg(ins, 'a'), arg(ins, 'b'), false) }),
  flops: ({ B, M, N, K }) => 2 * B * M * N * K,
  tolerance: TOL,
  sampleDims: { B: 3, ...SAMPLE },
  benchDims: { B: 8, M: 256, N: 256, K: 256 },
  inputRange: 1,
  maxKernels: 1,
});

export const linearOp = defineOp({
  name: 'linear',
  family: 'matmul',
  build: () =>
    kernel('linear', { x: tensor('f32', [M, K]), w: tensor('f32', [N, K]), bias: tensor('f32', [N]) }, ({ x, w, bias }) => matmul(x, w, { transB: true }).add(bias)),
  reference(ins) {
    const out = refBatchedMatmul(arg(ins, 'x'), arg(ins, 'w'), true);
    const bias = arg(ins, 'bias');
    const n = bias.data.length;
    for (let i = 0; i < out.data.length; i++) out.data[i]! += bias.data[i % n]!;
    return { out };
  },
  flops: ({ M, N, K }) => 2 * M * N * K + M * N,
  tolerance: TOL,
  sampleDims: SAMPLE,
  benchDims: BENCH,
  inputRange: 1,
});
