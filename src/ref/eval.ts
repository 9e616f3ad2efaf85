/**
 * The reference interpreter: evaluates graph-IR nodes with the reference ops, in topological order.
 * Each node's result is checked against the dtype and shape the node declares (E_VERIFY), so a
 * pass that builds an inconsistent node fails here rather than comparing wrong numbers.
 */
import type { AttrValue, Node, Program } from '../ir/graph.js';
import { topoOrder } from '../ir/graph.js';
import { evalDim, evalShape, type Dim, type DimBindings } from '../ir/dims.js';
import type { IExpr } from '../ir/index-expr.js';
import { isBinary, isUnary } from '../ir/ops.js';
import { fail } from '../errors.js';
import { refBinary, refCast, refConst, refUnary, refWhere } from './elementwise.js';
import { refReduce } from './reduce.js';
import { refConcat, refExpand, refGather, refPad, refPermute, refReshape, refSlice } from './movement.js';
import { refMatmul } from './matmul.js';
import { refCompute } from './compute.js';
import { sameShape, showShape, type RefTensor } from './tensor.js';

// ---- attribute readers: malformed attributes are E_VERIFY ----

function attr(n: Node, name: string): AttrValue {
  const v = n.attrs[name];
  if (v === undefined) fail('E_VERIFY', `${n.op} node ${n.id} has no '${name}' attribute`);
  return v;
}

function isDim(v: AttrValue): v is Dim {
  if (typeof v === 'number') return true;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  return 'sym' in v || 'op' in v;
}

function numAttr(n: Node, name: string): number {
  const v = attr(n, name);
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(v)) return Number(v);
  return fail('E_VERIFY', `${n.op} node ${n.id}: '${name}' is not a number`);
}

function listAttr(n: Node, name: string): readonly AttrValue[] {
  const v = attr(n, name);
  if (!Array.isArray(v)) fail('E_VERIFY', `${n.op} node ${n.id}: '${name}' is not a list`);
  return v as readonly AttrValue[];
}

function numsAttr(n: Node, name: string): number[] {
  return listAttr(n, name).map((v) => (typeof v === 'number' ? v : fail('E_VERIFY', `${n.op} node ${n.id}: '${name}' holds a non-number`)));
}

/** A list of dims (numbers or symbolic), evaluated. */
function dimsAttr(n: Node, name: string, dims: DimBindings): number[] {
  return listAttr(n, name).map((v) => (isDim(v) ? evalDim(v, dims) : fail('E_VERIFY', `${n.op} node ${n.id}: '${name}' holds a non-dim`)));
}

function keepdims(n: Node): boolean {
  const v = n.attrs['keepdims'];
  return v === true;
}

function exprAttr(n: Node): IExpr {
  const v = attr(n, 'expr');
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !('k' in v)) fail('E_VERIFY', `compute node ${n.id}: 'expr' is not an index expression`);
  return v as unknown as IExpr;
}

// ---- evaluation ----

/**
 * The value of node `n` given its arguments' values. `inputs` supplies `input` nodes by name and
 * `dims` binds the symbolic dims in shapes and attributes.
 */
export function evalNode(n: Node, args: readonly RefTensor[], dims: DimBindings = {}, inputs: Readonly<Record<string, RefTensor>> = {}): RefTensor {
  const shape = evalShape(n.shape, dims);
  const arg = (i: number): RefTensor => args[i] ?? fail('E_VERIFY', `${n.op} node ${n.id} is missing argument ${i}`);
  let r: RefTensor;
  switch (n.op) {
    case 'input': {
      const name = attr(n, 'name');
      const t = typeof name === 'string' ? inputs[name] : undefined;
      if (t === undefined) fail('E_BUFFER', `no value for input '${String(name)}'`);
      if (t.dtype !== n.dtype || !sameShape(t.shape, shape)) {
        fail('E_BUFFER', `input '${name}' is ${t.dtype}${showShape(t.shape)}, expected ${n.dtype}${showShape(shape)}`);
      }
      r = t;
      break;
    }
    case 'const': r = refConst(numAttr(n, 'value'), n.dtype); break;
    case 'cast': r = refCast(arg(0), n.dtype); break;
    case 'where': r = refWhere(arg(0), arg(1), arg(2)); break;
    case 'matmul': r = refMatmul(arg(0), arg(1)); break;
    case 'compute': r = refCompute(exprAttr(n), args, dimsAttr(n, 'shape', dims), n.dtype, dims); break;
    case 'sum': case 'mean': case 'max': case 'min': case 'argmax': case 'argmin':
      r = refReduce(n.op, arg(0), numsAttr(n, 'axes'), keepdims(n));
      break;
    case 'reshape': r = refReshape(arg(0), shape); break;
    case 'permute': r = refPermute(arg(0), numsAttr(n, 'perm')); break;
    case 'expand': r = refExpand(arg(0), shape); break;
    case 'slice': r = refSlice(arg(0), dimsAttr(n, 'starts', dims), numsAttr(n, 'steps'), shape); break;
    case 'pad': r = refPad(arg(0), dimsAttr(n, 'before', dims), dimsAttr(n, 'after', dims), numAttr(n, 'value')); break;
    case 'concat': r = refConcat(args, numAttr(n, 'axis')); break;
    case 'gather': r = refGather(arg(0), arg(1), numAttr(n, 'axis')); break;
    default:
      if (isUnary(n.op)) r = refUnary(n.op, arg(0));
      else if (isBinary(n.op)) r = refBinary(n.op, arg(0), arg(1));
      else fail('E_UNKNOWN_OP', `the reference interpreter has no op '${n.op}'`);
  }
  if (r.dtype !== n.dtype || !sameShape(r.shape, shape)) {
    fail('E_VERIFY', `${n.op} node ${n.id} declares ${n.dtype}${showShape(shape)} but computes ${r.dtype}${showShape(r.shape)}`);
  }
  return r;
}

/** Values of `roots` (and of every node they depend on, in the returned map). */
export function evalNodes(roots: readonly Node[], inputs: Readonly<Record<string, RefTensor>>, dims: DimBindings = {}): Map<Node, RefTensor> {
  const values = new Map<Node, RefTensor>();
  for (const n of topoOrder(roots)) {
    values.set(n, evalNode(n, n.args.map((a) => values.get(a)!), dims, inputs));
  }
  return values;
}

/**
 * Dim bindings for running `p` on `inputs`: the explicit `dims`, plus every symbol that appears
 * alone as an axis of a declared input, taken from that input's shape. Every input must be present
 * with the declared dtype, rank and element count, and agree with the bindings (else E_BUFFER).
 */
export function bindDims(p: Program, inputs: Readonly<Record<string, RefTensor>>, dims: DimBindings = {}): Record<string, number> {
  const env: Record<string, number> = { ...dims };
  const deferred: { name: string; axis: number; d: Dim; size: number }[] = [];
  for (const param of p.inputs) {
    const t = inputs[param.name];
    if (t === undefined) fail('E_BUFFER', `program '${p.name}' needs input '${param.name}'`);
    const what = `input '${param.name}' (${t.dtype}${showShape(t.shape)})`;
    if (t.dtype !== param.dtype) fail('E_BUFFER', `${what} should be ${param.dtype}`);
    if (t.shape.length !== param.shape.length) fail('E_BUFFER', `${what} should have rank ${param.shape.length}`);
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) fail('E_BUFFER', `${what} holds ${t.data.length} values`);
    param.shape.forEach((d, axis) => {
      const size = t.shape[axis]!;
      if (typeof d === 'object' && 'sym' in d) {
        const bound = env[d.sym];
        if (bound === undefined) env[d.sym] = size;
        else if (bound !== size) fail('E_BUFFER', `${what}: axis ${axis} is ${d.sym} = ${bound}, got ${size}`);
      } else {
        deferred.push({ name: param.name, axis, d, size });
      }
    });
  }
  for (const { name, axis, d, size } of deferred) {
    const want = evalDim(d, env);
    if (want !== size) fail('E_BUFFER', `input '${name}': axis ${axis} should be ${want}, got ${size}`);
  }
  return env;
}

/** Runs program `p` on `inputs` and returns its outputs by name. */
export function evalProgram(p: Program, inputs: Readonly<Record<string, RefTensor>>, dims: DimBindings = {}): Record<string, RefTensor> {
  const env = bindDims(p, inputs, dims);
  const values = evalNodes(p.outputs.map((o) => o.node), inputs, env);
  const result: Record<string, RefTensor> = {};
  for (const o of p.outputs) result[o.name] = values.get(o.node)!;
  return result;
}
