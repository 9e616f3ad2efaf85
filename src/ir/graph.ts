/**
 * Graph IR: tensor-level SSA. Nodes are immutable and hash-consed (`intern`), so structurally equal
 * subgraphs are the same object: CSE is free and a node's `key` is a stable content hash.
 *
 * Invariants (checked by verify.ts): binary ops and `where` take operands of equal shape (the DSL
 * inserts reshape/expand for broadcasting); matmul takes [...B, M, K] x [...B, K, N] with equal
 * batch dims; a node's dtype and shape are those its op implies.
 *
 * Op semantics (the reference ops in src/ref implement exactly these):
 * - input {name}; const {value} (shape [], any dtype).
 * - unary ops, binary ops (compare ops give bool; `and`/`or` take bool), cast (dtype = target),
 *   where(cond: bool, a, b).
 * - sum/mean/max/min {axes, keepdims}; argmax/argmin {axes: [one axis], keepdims} give i32, first
 *   index on ties. max/min propagate NaN.
 * - reshape (row-major, shape = node shape); permute {perm}: out[i] = in[i permuted by perm], i.e.
 *   out.shape[j] = in.shape[perm[j]]; expand (same rank, size-1 dims broadcast to node shape);
 *   slice {starts: Dim[], steps: number[]}: out[i] = in[starts + i * steps] per axis;
 *   pad {before: number[], after: number[], value}; concat {axis} of n args;
 *   gather {axis}(x, idx: i32): out = x.shape[:axis] ++ idx.shape ++ x.shape[axis+1:], indices clamped
 *   to [0, n-1].
 * - matmul(a, b): out[..., m, n] = sum_k a[..., m, k] * b[..., k, n].
 * - compute {expr, shape}: out[i...] = expr (see index.ts), reading the args by position.
 */
import type { DType } from './dtype.js';
import { dimKey, type Dim, type Shape } from './dims.js';
import type { OpName } from './ops.js';

export type AttrValue = number | boolean | string | null | Dim | readonly AttrValue[] | { readonly [k: string]: AttrValue };
export type Attrs = { readonly [k: string]: AttrValue };

export interface Node {
  readonly id: number;
  readonly op: OpName;
  readonly args: readonly Node[];
  readonly dtype: DType;
  readonly shape: Shape;
  readonly attrs: Attrs;
  /** Content hash: op, dtype, shape, attrs and the args' keys. Equal keys mean equal nodes. */
  readonly key: string;
}

/**
 * Interned nodes, held weakly: a program's nodes live as long as something references them (its
 * outputs, a kernel's group), so a process that compiles many programs does not keep them all. An
 * entry whose node was collected is removed, unless an equal node was interned under its key since.
 */
const table = new Map<string, WeakRef<Node>>();
const collected = new FinalizationRegistry<string>((key) => {
  if (table.get(key)?.deref() === undefined) table.delete(key);
});
let nextId = 0;

/** How many interned nodes are still held (those not yet collected). */
export function internedNodes(): number {
  let n = 0;
  for (const ref of table.values()) if (ref.deref()) n++;
  return n;
}

function attrKey(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x));
}

/** The only way to make a node: returns the existing node when an equal one exists. */
export function intern(op: OpName, args: readonly Node[], dtype: DType, shape: Shape, attrs: Attrs = {}): Node {
  const key = `${op}:${dtype}[${shape.map(dimKey).join(',')}]${attrKey(attrs)}(${args.map((a) => a.id).join(',')})`;
  const hit = table.get(key)?.deref();
  if (hit) return hit;
  const node: Node = Object.freeze({ id: nextId++, op, args: Object.freeze([...args]), dtype, shape: Object.freeze([...shape]), attrs, key });
  table.set(key, new WeakRef(node));
  collected.register(node, key);
  return node;
}

export interface TensorParam {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

/** A whole program: named inputs, named outputs. Inputs are `input` nodes with attrs.name. */
export interface Program {
  readonly name: string;
  readonly inputs: readonly TensorParam[];
  readonly outputs: readonly { readonly name: string; readonly node: Node }[];
}

/** Nodes reachable from the outputs, producers before consumers. */
export function topoOrder(roots: readonly Node[]): Node[] {
  const seen = new Set<Node>();
  const order: Node[] = [];
  const stack: { n: Node; i: number }[] = roots.map((n) => ({ n, i: 0 })).reverse();
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (seen.has(top.n)) {
      stack.pop();
      continue;
    }
    if (top.i < top.n.args.length) {
      const a = top.n.args[top.i++]!;
      if (!seen.has(a)) stack.push({ n: a, i: 0 });
    } else {
      seen.add(top.n);
      order.push(top.n);
      stack.pop();
    }
  }
  return order;
}

export function programNodes(p: Program): Node[] {
  return topoOrder(p.outputs.map((o) => o.node));
}

/** Consumers of each node within the program (outputs count as one extra use). */
export function useCounts(p: Program): Map<Node, number> {
  const uses = new Map<Node, number>();
  for (const n of programNodes(p)) for (const a of n.args) uses.set(a, (uses.get(a) ?? 0) + 1);
  for (const o of p.outputs) uses.set(o.node, (uses.get(o.node) ?? 0) + 1);
  return uses;
}
