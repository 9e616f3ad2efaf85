/**
 * Checks of op arguments at the DSL's boundary. TypeScript callers are held to the signatures by
 * the compiler; JavaScript callers, and values built at run time, are not: a wrong argument gets a
 * TesseraError naming the op, the argument and what was passed, at the author's call site.
 */
import { isDim, type Dim } from '../ir/dims.js';
import { DTYPES, isDType, type DType } from '../ir/dtype.js';
import { dslError } from './build.js';
import { Tensor, type TensorLike } from './tensor.js';

/** A short description of a value for an error message. */
export function describe(x: unknown): string {
  if (x === undefined) return 'nothing';
  if (x === null) return 'null';
  if (x instanceof Tensor) return `a ${x.dtype} tensor`;
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `the string '${x.length > 20 ? `${x.slice(0, 20)}...` : x}'`;
  if (typeof x === 'number' || typeof x === 'boolean') return String(x);
  return `a ${typeof x === 'object' ? 'object' : typeof x}`;
}

export function tensorArg(op: string, name: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw dslError('E_ARG', `${op}: ${name} must be a tensor, got ${describe(x)}`);
  return x;
}

/** A tensor or a number (a constant of the other operand's dtype). */
export function tensorLikeArg(op: string, name: string, x: unknown): TensorLike {
  if (x instanceof Tensor || typeof x === 'number') return x;
  throw dslError('E_ARG', `${op}: ${name} must be a tensor or a number, got ${describe(x)}`);
}

export function tensorsArg(op: string, name: string, xs: unknown): Tensor[] {
  if (!Array.isArray(xs)) throw dslError('E_ARG', `${op}: ${name} must be an array of tensors, got ${describe(xs)}`);
  return xs.map((x, i) => tensorArg(op, `${name}[${i}]`, x));
}

export function intArg(op: string, name: string, x: unknown): number {
  if (typeof x !== 'number' || !Number.isInteger(x)) throw dslError('E_ARG', `${op}: ${name} must be an integer, got ${describe(x)}`);
  return x;
}

export function numberArg(op: string, name: string, x: unknown): number {
  if (typeof x !== 'number') throw dslError('E_ARG', `${op}: ${name} must be a number, got ${describe(x)}`);
  return x;
}

export function boolArg(op: string, name: string, x: unknown): boolean {
  if (typeof x !== 'boolean') throw dslError('E_ARG', `${op}: ${name} must be true or false, got ${describe(x)}`);
  return x;
}

export function intsArg(op: string, name: string, xs: unknown): number[] {
  if (!Array.isArray(xs)) throw dslError('E_ARG', `${op}: ${name} must be an array of integers, got ${describe(xs)}`);
  return xs.map((x, i) => intArg(op, `${name}[${i}]`, x));
}

/** An axis, or axes: an integer or an array of integers (ranges are checked against the rank later). */
export function axesArg(op: string, name: string, x: unknown): number | number[] {
  return typeof x === 'number' ? intArg(op, name, x) : intsArg(op, name, x);
}

/** A dim: a positive integer, a D.dim symbol or an expression of them. */
export function dimArg(op: string, name: string, x: unknown): Dim {
  if (!isDim(x) || (typeof x === 'number' && (!Number.isInteger(x) || x < 1))) throw dslError('E_SHAPE', `${op}: ${name} must be a dim (a positive integer or D.dim(...)), got ${describe(x)}`);
  return x;
}

export function shapeArg(op: string, name: string, xs: unknown): Dim[] {
  if (!Array.isArray(xs)) throw dslError('E_SHAPE', `${op}: ${name} must be an array of dims, got ${describe(xs)}`);
  return xs.map((x, i) => dimArg(op, `${name}[${i}]`, x));
}

export function dtypeArg(op: string, name: string, x: unknown): DType {
  if (!isDType(x)) throw dslError('E_DTYPE', `${op}: ${name} must be a dtype (${DTYPES.join(', ')}), got ${describe(x)}`);
  return x;
}
