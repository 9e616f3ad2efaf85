/**
 * Buffer planning: every materialized node gets a buffer; a temporary's buffer is reused by a later
 * temporary of the same dtype and element count once its last reader has run, and a group writes
 * its result in place over a temporary it is the last to read where that is legal (see inPlaceReads).
 */
import { dimKey, dimProduct, shapeEq, type Shape } from '../ir/dims.js';
import type { DType } from '../ir/dtype.js';
import type { Node, Program } from '../ir/graph.js';
import { isElementwise, isReduce } from '../ir/ops.js';
import { rowFusable, type FusedGroup } from './fuse.js';

export interface PlannedBuffer {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
  readonly role: 'input' | 'output' | 'temp';
}

export interface BufferPlan {
  readonly buffers: readonly PlannedBuffer[];
  /** Buffer a node is read from. */
  readonly of: ReadonlyMap<Node, string>;
  /** Buffer a group root writes (differs from `of` only for an output that is an input). */
  readonly writes: ReadonlyMap<Node, string>;
  /** Program output name -> buffer name. */
  readonly outputs: ReadonlyMap<string, string>;
}

const ident = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

/**
 * The reads of `group` its kernel may overwrite with its result: read only at the element being
 * written, before it is written. That holds for a read shaped like the root and reached from it
 * through elementwise ops of the root's shape only (a matmul's epilogue, an elementwise chain), and
 * in a row kernel also through the row's reductions (computed for the invocation's own row before
 * its write loop) and the expands and reshapes that broadcast them back. A read reached any other
 * way (a view, a matmul operand, a gather, a decode) may be read at other elements, maybe after they
 * are written, and so is never overwritten; nor are the reads of a multi-output kernel.
 */
export function inPlaceReads(group: FusedGroup): Set<Node> {
  const root = group.root;
  if ((group.extra ?? []).length) return new Set();
  const reads = new Set(group.reads);
  const ok = new Set<Node>();
  const bad = new Set<Node>();
  const row = group.kind === 'row';
  const seen = new Set<string>();
  // mode: 'point' = at the element being written (or, under a row reduction, of its row);
  // 'bcast' = under an expand/reshape of a row reduction; 'other' = anywhere
  const visit = (n: Node, mode: 'point' | 'bcast' | 'other'): void => {
    const key = `${n.id}:${mode}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (reads.has(n) && n !== root) {
      (mode === 'point' && shapeEq(n.shape, root.shape) ? ok : bad).add(n);
      return;
    }
    let next: 'point' | 'bcast' | 'other' = 'other';
    if (mode === 'point' && isElementwise(n.op) && shapeEq(n.shape, root.shape)) next = 'point';
    else if ((mode === 'point' || mode === 'bcast') && row && (n.op === 'expand' || n.op === 'reshape')) next = 'bcast';
    else if ((mode === 'point' || mode === 'bcast') && row && isReduce(n.op) && rowFusable(n, root) !== undefined) next = 'point';
    for (const a of n.args) visit(a, next);
  };
  visit(root, 'point');
  for (const n of bad) ok.delete(n);
  return ok;
}

export function planBuffers(p: Program, groups: readonly FusedGroup[]): BufferPlan {
  const buffers: PlannedBuffer[] = [];
  const of = new Map<Node, string>();
  const inputNodes = new Map<string, Node>();
  for (const g of groups) for (const n of [...g.reads, ...g.inlined]) if (n.op === 'input') inputNodes.set(String(n.attrs.name), n);
  for (const inp of p.inputs) {
    buffers.push({ name: ident(inp.name), dtype: inp.dtype, shape: inp.shape, role: 'input' });
    const n = inputNodes.get(inp.name);
    if (n) of.set(n, ident(inp.name));
  }
  const taken = new Set(buffers.map((b) => b.name));
  const writes = new Map<Node, string>();
  const outputs = new Map<string, string>();
  for (const o of p.outputs) {
    const existing = writes.get(o.node);
    if (existing) {
      outputs.set(o.name, existing);
      continue;
    }
    let name = ident(o.name);
    while (taken.has(name)) name = `${name}_out`;
    taken.add(name);
    buffers.push({ name, dtype: o.node.dtype, shape: o.node.shape, role: 'output' });
    writes.set(o.node, name);
    outputs.set(o.name, name);
    if (o.node.op !== 'input') of.set(o.node, name);
  }
  // Last group index reading each temp.
  const lastUse = new Map<Node, number>();
  groups.forEach((g, i) => g.reads.forEach((n) => lastUse.set(n, i)));
  const free: PlannedBuffer[] = [];
  groups.forEach((g, i) => {
    // in place: over a temporary this group reads last, of the root's dtype and shape
    let inPlace: string | undefined;
    if (!writes.has(g.root)) {
      const over = [...inPlaceReads(g)].find((n) => lastUse.get(n) === i && n.dtype === g.root.dtype && buffers.find((x) => x.name === of.get(n))?.role === 'temp');
      if (over) {
        inPlace = of.get(over)!;
        of.set(g.root, inPlace);
        writes.set(g.root, inPlace);
      }
    }
    for (const root of [g.root, ...(g.extra ?? [])]) {
      if (writes.has(root)) continue;
      const size = `${root.dtype}:${dimKey(dimProduct(root.shape))}`;
      const k = free.findIndex((b) => `${b.dtype}:${dimKey(dimProduct(b.shape))}` === size);
      if (k >= 0) {
        of.set(root, free[k]!.name);
        writes.set(root, free[k]!.name);
        free.splice(k, 1);
      } else {
        const b: PlannedBuffer = { name: `t${buffers.filter((x) => x.role === 'temp').length}`, dtype: root.dtype, shape: root.shape, role: 'temp' };
        buffers.push(b);
        of.set(root, b.name);
        writes.set(root, b.name);
      }
    }
    // Release temps whose last reader is this group (never inputs or outputs).
    for (const n of g.reads) {
      if (lastUse.get(n) !== i) continue;
      const b = buffers.find((x) => x.name === of.get(n));
      if (b && b.role === 'temp' && b.name !== inPlace && !free.includes(b)) free.push(b);
    }
  });
  return { buffers, of, writes, outputs };
}
