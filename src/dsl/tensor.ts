/**
 * Tensor handles: a thin typed wrapper over a graph node with the fluent methods authors expect
 * (`x.mul(a).add(b).silu()`). All building goes through ops.ts so methods and free functions agree.
 */
import type { DType } from '../ir/dtype.js';
import type { Dim, Shape } from '../ir/dims.js';
import type { Node } from '../ir/graph.js';
import * as ops from './ops.js';
import type { IndexLike, IndexExpr } from './compute.js';
import { atIndex } from './compute.js';

export type TensorLike = Tensor | number;
export type Axes = number | readonly number[];

export class Tensor<D extends DType = DType> {
  constructor(readonly node: Node) {}
  get dtype(): D {
    return this.node.dtype as D;
  }
  get shape(): Shape {
    return this.node.shape;
  }
  get rank(): number {
    return this.node.shape.length;
  }
  // elementwise
  neg(): Tensor<D> { return ops.neg(this) as Tensor<D>; }
  abs(): Tensor<D> { return ops.abs(this) as Tensor<D>; }
  exp(): Tensor<D> { return ops.exp(this) as Tensor<D>; }
  log(): Tensor<D> { return ops.log(this) as Tensor<D>; }
  sqrt(): Tensor<D> { return ops.sqrt(this) as Tensor<D>; }
  rsqrt(): Tensor<D> { return ops.rsqrt(this) as Tensor<D>; }
  tanh(): Tensor<D> { return ops.tanh(this) as Tensor<D>; }
  sigmoid(): Tensor<D> { return ops.sigmoid(this) as Tensor<D>; }
  relu(): Tensor<D> { return ops.relu(this) as Tensor<D>; }
  gelu(approximate: 'tanh' | 'none' = 'none'): Tensor<D> { return ops.gelu(this, approximate) as Tensor<D>; }
  silu(): Tensor<D> { return ops.silu(this) as Tensor<D>; }
  cast<T extends DType>(to: T): Tensor<T> { return ops.cast(this, to); }
  add(b: TensorLike): Tensor<D> { return ops.add(this, b) as Tensor<D>; }
  sub(b: TensorLike): Tensor<D> { return ops.sub(this, b) as Tensor<D>; }
  mul(b: TensorLike): Tensor<D> { return ops.mul(this, b) as Tensor<D>; }
  div(b: TensorLike): Tensor<D> { return ops.div(this, b) as Tensor<D>; }
  pow(b: TensorLike): Tensor<D> { return ops.pow(this, b) as Tensor<D>; }
  maximum(b: TensorLike): Tensor<D> { return ops.maximum(this, b) as Tensor<D>; }
  minimum(b: TensorLike): Tensor<D> { return ops.minimum(this, b) as Tensor<D>; }
  bitand(b: TensorLike): Tensor<D> { return ops.bitand(this, b) as Tensor<D>; }
  bitor(b: TensorLike): Tensor<D> { return ops.bitor(this, b) as Tensor<D>; }
  bitxor(b: TensorLike): Tensor<D> { return ops.bitxor(this, b) as Tensor<D>; }
  shl(b: TensorLike): Tensor<D> { return ops.shl(this, b) as Tensor<D>; }
  shr(b: TensorLike): Tensor<D> { return ops.shr(this, b) as Tensor<D>; }
  /** Packed int8 dot product of u32 words (see ops.dot4i8): an i32 tensor. */
  dot4i8(b: TensorLike): Tensor<'i32'> { return ops.dot4i8(this, b); }
  eq(b: TensorLike): Tensor<'bool'> { return ops.eq(this, b); }
  ne(b: TensorLike): Tensor<'bool'> { return ops.ne(this, b); }
  lt(b: TensorLike): Tensor<'bool'> { return ops.lt(this, b); }
  le(b: TensorLike): Tensor<'bool'> { return ops.le(this, b); }
  gt(b: TensorLike): Tensor<'bool'> { return ops.gt(this, b); }
  ge(b: TensorLike): Tensor<'bool'> { return ops.ge(this, b); }
  // reductions
  sum(axes?: Axes, keepdims = false): Tensor<D> { return ops.sum(this, axes, keepdims) as Tensor<D>; }
  mean(axes?: Axes, keepdims = false): Tensor<D> { return ops.mean(this, axes, keepdims) as Tensor<D>; }
  max(axes?: Axes, keepdims = false): Tensor<D> { return ops.max(this, axes, keepdims) as Tensor<D>; }
  min(axes?: Axes, keepdims = false): Tensor<D> { return ops.min(this, axes, keepdims) as Tensor<D>; }
  argmax(axis = -1, keepdims = false): Tensor<'i32'> { return ops.argmax(this, axis, keepdims); }
  argmin(axis = -1, keepdims = false): Tensor<'i32'> { return ops.argmin(this, axis, keepdims); }
  // movement
  reshape(...shape: (Dim | -1)[]): Tensor<D> { return ops.reshape(this, shape) as Tensor<D>; }
  permute(...perm: number[]): Tensor<D> { return ops.permute(this, perm) as Tensor<D>; }
  transpose(a = -2, b = -1): Tensor<D> { return ops.transpose(this, a, b) as Tensor<D>; }
  get T(): Tensor<D> { return ops.transpose(this) as Tensor<D>; }
  expand(...shape: Dim[]): Tensor<D> { return ops.expand(this, shape) as Tensor<D>; }
  matmul(b: Tensor): Tensor<D> { return ops.matmul(this, b) as Tensor<D>; }
  /** Element read inside `compute(...)`. */
  at(...idx: IndexLike[]): IndexExpr { return atIndex(this, idx); }
}
