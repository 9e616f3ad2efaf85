/**
 * The built-in programs `tessera demo` falls back on when there is no ops/ library: one of each
 * schedule (an elementwise chain, two row reductions, a matmul). Built on call, never at import,
 * so loading the CLI creates no graph nodes.
 */
import { dim, kernel, matmul, rmsnorm, silu, softmax, tensor, type KernelDef } from '../dsl/index.js';

export function demoPrograms(): KernelDef[] {
  const M = dim('M');
  const N = dim('N');
  const K = dim('K');
  return [
    kernel('silu_affine', { x: tensor('f32', [M, N]), a: tensor('f32', [N]), b: tensor('f32', [N]) }, ({ x, a, b }) => silu(x.mul(a).add(b))),
    kernel('softmax', { x: tensor('f32', [M, N]) }, ({ x }) => softmax(x)),
    kernel('rmsnorm', { x: tensor('f32', [M, N]), g: tensor('f32', [N]) }, ({ x, g }) => rmsnorm(x, g, 1e-5)),
    kernel('matmul', { a: tensor('f32', [M, K]), b: tensor('f32', [K, N]) }, ({ a, b }) => matmul(a, b)),
  ];
}
