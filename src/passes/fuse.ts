/**
 * Fusion: partitions a program into groups, each lowered to one kernel. A group has a root (the node
 * it writes) and inlines its producers: elementwise and movement ops always (recomputing them is
 * cheaper than a round trip through memory), and reductions when they reduce the trailing axes of a
 * tensor shaped like the root (the row pattern of softmax, layernorm and rmsnorm), so the row
 * schedule computes them once per row. Everything else is materialized: program outputs, matmuls,
 * other reductions, and anything a matmul reads that is more than a view of memory.
 */
import { fail } from '../errors.js';
import { shapeEq } from '../ir/dims.js';
import { nodeSite } from '../ir/sites.js';
import { topoOrder, type Node, type Program } from '../ir/graph.js';
import type { IExpr } from '../ir/index-expr.js';
import { iexprChildren } from '../ir/index-expr.js';
import { isElementwise, isMovement, isReduce } from '../ir/ops.js';

export type GroupKind = 'elementwise' | 'row' | 'reduce' | 'matmul';

export interface FusedGroup {
  readonly root: Node;
  readonly kind: GroupKind;
  /** For 'row': how many trailing axes each thread loops over. */
  readonly rowAxes: number;
  /** Materialized nodes (inputs or other groups' roots) this group reads. */
  readonly reads: readonly Node[];
  /** Nodes computed inline in this group, including the root. */
  readonly inlined: readonly Node[];
}

export interface Fusion {
  readonly groups: readonly FusedGroup[]; // in execution order
  readonly materialized: ReadonlySet<Node>;
}

function hasReduction(e: IExpr): boolean {
  return e.k === 'red' || iexprChildren(e).some(hasReduction);
}

/** A reduction `r` can be computed inside `root`'s row schedule. */
function rowFusable(r: Node, root: Node): number | undefined {
  if (!isReduce(r.op) || root.op === 'matmul' || isReduce(root.op)) return undefined;
  const src = r.args[0]!;
  const rank = src.shape.length;
  const axes = [...(r.attrs.axes as number[])].sort((a, b) => a - b);
  if (rank !== root.shape.length || !shapeEq(src.shape, root.shape)) return undefined;
  if (!axes.every((a, i) => a === rank - axes.length + i)) return undefined;
  return axes.length;
}

/** Distinct buffers the inlined subgraph under `n` reads (n itself inlined). */
function readsUnder(n: Node, materialized: ReadonlySet<Node>, memo: Map<Node, Set<Node>>): Set<Node> {
  const hit = memo.get(n);
  if (hit) return hit;
  const out = new Set<Node>();
  for (const a of n.args) {
    if (a.op === 'input' || materialized.has(a)) out.add(a);
    else for (const r of readsUnder(a, materialized, memo)) out.add(r);
  }
  memo.set(n, out);
  return out;
}

/**
 * A kernel binds its reads plus its output. When a group needs more than `maxBuffers`, materialize
 * the widest inlined subgraph that still fits in one kernel, and let the fixpoint try again.
 */
function splitIfTooWide(root: Node, materialized: Set<Node>, maxBuffers: number): boolean {
  const memo = new Map<Node, Set<Node>>();
  if (readsUnder(root, materialized, memo).size + 1 <= maxBuffers) return false;
  let best: Node | undefined;
  let bestSize = 1;
  for (const [n, reads] of memo) {
    if (n === root || n.op === 'input' || materialized.has(n)) continue;
    if (reads.size > bestSize && reads.size + 1 <= maxBuffers) {
      best = n;
      bestSize = reads.size;
    }
  }
  if (!best)
    fail('E_DEVICE_LIMIT', `%${root.id} (${root.op}) reads ${readsUnder(root, materialized, memo).size} tensors directly, more than the ${maxBuffers - 1} storage buffers a kernel may read on this target`, nodeSite(root));
  materialized.add(best);
  return true;
}

const isView = (n: Node) => isMovement(n.op) && n.op !== 'gather' && n.op !== 'pad' && n.op !== 'concat';

export interface FuseOptions {
  /** Storage buffers one kernel may bind (WebGPU's default limit is 8): bigger groups are split. */
  readonly maxBuffers?: number;
}

export function fuse(p: Program, opts: FuseOptions = {}): Fusion {
  const maxBuffers = opts.maxBuffers ?? 8;
  const materialized = new Set<Node>(p.outputs.map((o) => o.node));
  for (const n of topoOrder(p.outputs.map((o) => o.node))) {
    if (n.op === 'matmul') materialized.add(n);
    if (n.op === 'compute' && hasReduction(n.attrs.expr as IExpr)) materialized.add(n);
  }

  // Walk each root's producers; materialize what cannot be inlined, until nothing changes.
  const walk = (root: Node, visit: (n: Node, inMatmulOperand: boolean) => 'inline' | 'read') => {
    const seen = new Set<Node>();
    const go = (n: Node, mm: boolean) => {
      if (seen.has(n)) return;
      seen.add(n);
      if (n !== root && visit(n, mm) === 'read') return;
      for (const a of n.args) go(a, mm || (n === root && root.op === 'matmul'));
    };
    go(root, false);
  };
  let changed = true;
  while (changed) {
    changed = false;
    for (const root of [...materialized]) {
      walk(root, (n, mm) => {
        if (n.op === 'input' || materialized.has(n)) return 'read';
        let ok: boolean;
        if (mm) ok = isView(n) || n.op === 'const';
        else if (isElementwise(n.op) || isMovement(n.op) || n.op === 'compute') ok = true;
        else ok = rowFusable(n, root) !== undefined;
        if (ok) return 'inline';
        materialized.add(n);
        changed = true;
        return 'read';
      });
      if (!changed) changed = splitIfTooWide(root, materialized, maxBuffers);
    }
  }

  const order = topoOrder(p.outputs.map((o) => o.node)).filter((n) => materialized.has(n));
  const groups = order.map((root): FusedGroup => {
    const reads: Node[] = [];
    const inlined: Node[] = [root];
    let rowAxes = 0;
    walk(root, (n) => {
      if (n.op === 'input' || materialized.has(n)) {
        reads.push(n);
        return 'read';
      }
      inlined.push(n);
      rowAxes = Math.max(rowAxes, rowFusable(n, root) ?? 0);
      return 'inline';
    });
    if (root.op === 'input') reads.push(root);
    const kind: GroupKind = root.op === 'matmul' ? 'matmul' : rowAxes > 0 ? 'row' : isReduce(root.op) || root.op === 'compute' ? 'reduce' : 'elementwise';
    return { root, kind, rowAxes, reads, inlined };
  });
  return { groups, materialized };
}
