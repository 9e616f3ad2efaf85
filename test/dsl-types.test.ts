/** The DSL's static types are part of its API: pin them. */
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as D from '../src/dsl/index.js';

describe('DSL types', () => {
  it('parameter handles carry their dtype, comparisons give bool, argmax gives i32', () => {
    const M = D.dim('M');
    D.kernel('k', { x: D.tensor('f32', [M]), i: D.tensor('i32', [M]) }, ({ x, i }) => {
      expectTypeOf(x).toEqualTypeOf<D.Tensor<'f32'>>();
      expectTypeOf(i).toEqualTypeOf<D.Tensor<'i32'>>();
      expectTypeOf(x.gt(0)).toEqualTypeOf<D.Tensor<'bool'>>();
      expectTypeOf(x.argmax()).toEqualTypeOf<D.Tensor<'i32'>>();
      expectTypeOf(x.exp().add(1)).toEqualTypeOf<D.Tensor<'f32'>>();
      expectTypeOf(x.cast('f16')).toEqualTypeOf<D.Tensor<'f16'>>();
      return x;
    });
  });

  it('kernel() returns a definition typed by its parameters', () => {
    const def = D.kernel('k', { a: D.tensor('u32', [4]) }, ({ a }) => a);
    expectTypeOf(def.params.a.dtype).toEqualTypeOf<'u32'>();
    // @ts-expect-error: unknown parameter; at run time a clear error, not a crash
    expect(() => D.kernel('k', { a: D.tensor('f32', [4]) }, ({ b }) => b)).toThrow(/E_ARG/);
  });
});
