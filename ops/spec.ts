/**
 * The contract every op in the technique library meets, so one test suite and one benchmark cover
 * them all: a DSL definition with symbolic dims, an independent float64 reference, the ideal work
 * (flops and bytes) for rooflines, the tolerance the op promises, and the dims to test and bench at.
 */
import type { KernelDef } from '../src/dsl/index.js';
import { evalShape, numel, type DimBindings } from '../src/ir/dims.js';
import type { DType } from '../src/ir/dtype.js';
import type { RefTensor } from '../src/ref/index.js';

export type Dims = DimBindings;
export type RefInputs = Readonly<Record<string, RefTensor>>;
export type RefOutputs = Record<string, RefTensor>;

export interface Tolerance {
  /** |actual - expected| <= atol + rtol * |expected|, element by element. */
  readonly rtol: number;
  readonly atol: number;
}

export type OpFamily = 'norms' | 'softmax' | 'activations' | 'matmul' | 'quant';

export interface OpSpec {
  /** Unique across the library; also the kernel name. */
  readonly name: string;
  readonly family: OpFamily;
  /** The op written in the DSL, with symbolic dims (bound from the inputs' shapes at dispatch). */
  readonly def: KernelDef;
  /** Builds `def` afresh: what the compile-time benchmark times from the DSL onwards. */
  readonly build: () => KernelDef;
  /**
   * The expected outputs (by output name) in float64 from inputs as stored. A closed-form loop where
   * the math is short; never shares code with the compiler.
   */
  readonly reference: (inputs: RefInputs) => RefOutputs;
  /**
   * Ideal arithmetic of the op's math at `dims`: each add, mul, compare, divide and each
   * transcendental (exp, erf, tanh, rsqrt) counts one; a multiply-add counts two.
   */
  readonly flops: (dims: Dims) => number;
  /** Ideal memory traffic at `dims`: every input read once plus every output written once. */
  readonly bytes: (dims: Dims) => number;
  readonly tolerance: Tolerance;
  /** Small dims for tests (a few hundred elements). */
  readonly sampleDims: Dims;
  /** Dims worth timing. */
  readonly benchDims: Dims;
  /** Half-width of the uniform range test inputs are drawn from (default 3). */
  readonly inputRange?: number;
  /** Upper bound on kernels after fusion, when the op promises one (asserted in tests). */
  readonly maxKernels?: number;
}

/** Bytes per element as the ideal (host) layout stores a dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4, bool: 1 };

/** Bytes of every input and every output of `def` at `dims`, each counted once. */
export function ioBytes(def: KernelDef, dims: Dims): number {
  const tensors = [...def.program.inputs, ...def.program.outputs.map((o) => ({ dtype: o.node.dtype, shape: o.node.shape }))];
  return tensors.reduce((sum, t) => sum + DTYPE_BYTES[t.dtype] * numel(evalShape(t.shape, dims)), 0);
}

/** The symbolic dim names `def` is written over, in order of first appearance. */
export function dimNames(def: KernelDef): string[] {
  const names: string[] = [];
  for (const p of def.program.inputs) {
    for (const d of p.shape) if (typeof d === 'object' && 'sym' in d && !names.includes(d.sym)) names.push(d.sym);
  }
  return names;
}

/** Completes a spec from its definition: `def` and the default `bytes`. */
export function defineOp(spec: Omit<OpSpec, 'def' | 'bytes'> & { bytes?: OpSpec['bytes'] }): OpSpec {
  const def = spec.build();
  return { ...spec, def, bytes: spec.bytes ?? ((dims) => ioBytes(def, dims)) };
}
