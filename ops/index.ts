/**
 * The technique library: every op written in the DSL with its reference, work counts and test and
 * bench dims. Tests and benchmarks iterate `library`, so an op added here is covered by both.
 */
import { layernormOp, rmsnormOp } from './norms/index.js';
import { logSoftmaxOp, softmaxOp } from './softmax/index.js';
import { geluOp, geluTanhOp, reluOp, sigmoidOp, siluChainOp, siluOp, swigluOp } from './activations/index.js';
import { bmmOp, linearOp, matmulOp, matmulTransBOp } from './matmul/index.js';
import { int4LinearOp } from './quant/index.js';
import type { OpSpec } from './spec.js';

export * from './spec.js';
export * from './harness.js';
export * from './norms/index.js';
export * from './softmax/index.js';
export * from './activations/index.js';
export * from './matmul/index.js';
export * from './quant/index.js';

export const library: readonly OpSpec[] = [
  rmsnormOp,
  layernormOp,
  softmaxOp,
  logSoftmaxOp,
  siluOp,
  geluOp,
  geluTanhOp,
  reluOp,
  sigmoidOp,
  siluChainOp,
  swigluOp,
  matmulOp,
  matmulTransBOp,
  bmmOp,
  linearOp,
  int4LinearOp,
];

export function opByName(name: string): OpSpec | undefined {
  return library.find((op) => op.name === name);
}
