/**
 * `kernel(name, params, body)`: declares typed tensor parameters with symbolic dims, runs the body
 * once to build the graph, and returns the Program the compiler takes.
 */
import { isDType, type DType } from '../ir/dtype.js';
import { isDim, sym, type Dim } from '../ir/dims.js';
import type { Program } from '../ir/graph.js';
import { describe } from './args.js';
import { dslError, leafNode } from './build.js';
import { Tensor } from './tensor.js';

/** A named symbolic dimension, bound when the program is dispatched. */
export function dim(name: string): Dim {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw dslError('E_ARG', `dim name ${typeof name === 'string' ? `'${name}'` : describe(name)} is not an identifier`);
  return sym(name);
}

export interface TensorSpec<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly Dim[];
}

export function tensor<D extends DType>(dtype: D, shape: readonly Dim[]): TensorSpec<D> {
  if (!isDType(dtype)) throw dslError('E_DTYPE', `unknown dtype ${typeof dtype === 'string' ? `'${dtype}'` : describe(dtype)}`);
  if (!Array.isArray(shape)) throw dslError('E_SHAPE', `a tensor's shape is an array of dims, got ${typeof shape}`);
  for (const d of shape) {
    if (!isDim(d)) throw dslError('E_SHAPE', `a shape's entries are dims (positive integers or D.dim(...)), got ${Array.isArray(d) ? 'an array' : String(d)}`);
    if (typeof d === 'number' && (!Number.isInteger(d) || d < 1)) throw dslError('E_SHAPE', `dims must be positive integers, got ${d}`);
  }
  return { dtype, shape };
}

export type Params = Readonly<Record<string, TensorSpec>>;
export type Handles<P extends Params> = { readonly [K in keyof P]: Tensor<P[K]['dtype']> };
export type Outputs = Tensor | Readonly<Record<string, Tensor>>;

/** A compiled-program definition: the Program plus its parameter specs, for typed wrappers. */
export interface KernelDef<P extends Params = Params> {
  readonly name: string;
  readonly params: P;
  readonly program: Program;
}

export function kernel<P extends Params>(name: string, params: P, body: (t: Handles<P>) => Outputs): KernelDef<P> {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw dslError('E_ARG', `kernel name ${typeof name === 'string' ? `'${name}'` : describe(name)} is not an identifier`);
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw dslError('E_ARG', `kernel '${name}': params must be a record of D.tensor(...) specs, got ${describe(params)}`);
  for (const [pname, spec] of Object.entries(params)) {
    if (typeof spec !== 'object' || spec === null || !('dtype' in spec) || !('shape' in spec)) throw dslError('E_ARG', `kernel '${name}': parameter '${pname}' must be a D.tensor(dtype, shape) spec, got ${describe(spec)}`);
    tensor(spec.dtype, spec.shape);
  }
  if (typeof body !== 'function') throw dslError('E_ARG', `kernel '${name}': body must be a function of the parameters' tensors, got ${describe(body)}`);
  const handles: Record<string, Tensor> = {};
  for (const [pname, spec] of Object.entries(params)) {
    handles[pname] = new Tensor(leafNode('input', spec.dtype, spec.shape, { name: pname }));
  }
  const result: unknown = body(handles as Handles<P>);
  if (!(result instanceof Tensor) && (typeof result !== 'object' || result === null))
    throw dslError('E_ARG', `kernel '${name}' must return a tensor or a record of tensors, got ${String(result)}`);
  const outs = result instanceof Tensor ? { out: result } : result;
  const outputs = Object.entries(outs as Record<string, unknown>).map(([oname, t]) => {
    if (!(t instanceof Tensor)) throw dslError('E_ARG', `kernel '${name}' output '${oname}' is not a tensor`);
    return { name: oname, node: t.node };
  });
  if (outputs.length === 0) throw dslError('E_ARG', `kernel '${name}' returns no outputs`);
  const inputs = Object.entries(params).map(([pname, spec]) => ({ name: pname, dtype: spec.dtype, shape: spec.shape }));
  return { name, params, program: { name, inputs, outputs } };
}
