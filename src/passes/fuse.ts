/**
 * Fusion: partitions a program into groups, each lowered to one kernel. A group has a root (the node
 * it writes) and inlines its producers: elementwise and movement ops always (recomputing them is
 * cheaper than a round trip through memory), and reductions when they reduce the trailing axes of a
 * tensor shaped like the root (the row pattern of softmax, layernorm and rmsnorm), so the row
 * schedule computes them once per row. Everything else is materialized: program outputs, matmuls,
 * other reductions, and anything a matmul reads that is more than a view of memory.
 */
import { fail } from '../errors.js';
import { knownDim, shapeEq, type DimBindings } from '../ir/dims.js';
import { isFloat } from '../ir/dtype.js';
import { nodeSite } from '../ir/sites.js';
import { topoOrder, useCounts, type Node, type Program } from '../ir/graph.js';
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
  /** For 'matmul': the matmul node; the root is it, or an elementwise epilogue applied to it. */
  readonly contraction?: Node;
  /** Further nodes the same kernel writes (multi-output fusion of siblings over one iteration space). */
  readonly extra?: readonly Node[];
}

export interface Fusion {
  readonly groups: readonly FusedGroup[]; // in execution order
  readonly materialized: ReadonlySet<Node>;
}

function hasReduction(e: IExpr): boolean {
  return e.k === 'red' || iexprChildren(e).some(hasReduction);
}

/** A reduction `r` can be computed inside `root`'s row schedule. */
export function rowFusable(r: Node, root: Node): number | undefined {
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

/** A movement op that reads its input in place (no gather, pad or concat): an index map. */
export const isView = (n: Node) => isMovement(n.op) && n.op !== 'gather' && n.op !== 'pad' && n.op !== 'concat';

export interface FuseOptions {
  /** Storage buffers one kernel may bind (WebGPU's default limit is 8): bigger groups are split. */
  readonly maxBuffers?: number;
  /** Fuse a matmul's elementwise consumers into it (epilogue) and cheap producers into its loads (prologue). */
  readonly matmulFusion?: boolean;
  /** Write independent sibling results over one iteration space from one kernel. */
  readonly multiOutput?: boolean;
  /**
   * Dims the program will run at (CompileOptions.specialize): the cost model's decisions read them
   * where a shape is symbolic; the groups stay valid at any dims.
   */
  readonly dims?: DimBindings;
}

/** Relative cost of computing a node once per element: what recomputing it in a consumer costs. */
const EXPENSIVE = new Set(['exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'gelu_tanh', 'gelu_erf', 'silu', 'pow', 'div', 'reciprocal', 'mod']);
const opCost = (n: Node) => (EXPENSIVE.has(n.op) ? 4 : isElementwise(n.op) ? 1 : n.op === 'compute' ? computeCost(n.attrs.expr as IExpr) : 0);
/**
 * Per-element cost of a reduction-free compute body. Integer index arithmetic (division and modulo
 * by constants, shifts, masks) and loads count 1 each: an encoding's access function (unpack a
 * nibble, look up a codebook) is a few of these, and fusion should inline it rather than write a
 * dense copy of the weights.
 */
function computeCost(e: IExpr): number {
  const own = e.k === 'un' && EXPENSIVE.has(e.op) ? 4 : e.k === 'bin' && EXPENSIVE.has(e.op) && !(e.b.k === 'num' && !isFloat(e.b.dtype)) ? 4 : e.k === 'idx' || e.k === 'rvar' || e.k === 'num' || e.k === 'dim' ? 0 : 1;
  return own + iexprChildren(e).reduce((s, c) => s + computeCost(c), 0);
}
/** Most an operand's inlined producers may cost per element: each is recomputed once per output tile. */
const PROLOGUE_BUDGET = 6;
/**
 * Most a decompressing producer (a compute node: an encoding's access function) may cost per
 * element when inlined into a matmul operand: it reads fewer bytes than the dense tensor it stands
 * for, so recomputing it per output tile beats writing and re-reading a dense copy.
 */
const DECODE_BUDGET = 40;
/** An inlined subgraph this costly, computed in two or more kernels, is materialized once instead. */
const SHARED_BUDGET = 8;

/** Is `n` an elementwise chain down to `target` over one shape (so target is read at the output index)? */
function elementwisePathTo(n: Node, target: Node): boolean {
  if (n === target) return true;
  if (!isElementwise(n.op) || n.op === 'const' || !shapeEq(n.shape, target.shape)) return false;
  return n.args.some((a) => elementwisePathTo(a, target));
}

/**
 * Largest constant output dim over which a matmul operand's prologue is still recomputed rather than
 * written once: up to two tiles of the default register-blocked schedule (8 columns each).
 */
const RECOMPUTE_DIM = 16;

/**
 * Most rows of a matmul (M, known) for which a row statistic of its A (a norm's sum of squares) is
 * recomputed in the matmul's kernel, once per invocation for its rows, instead of a kernel of its
 * own: at decode (a token or a few) the K extra multiply-adds per row cost less than a launch.
 */
const FEW_ROWS = 4;

function fewRows(mm: Node, dims?: DimBindings): boolean {
  const m = knownDim(mm.shape[mm.shape.length - 2]!, dims);
  return m !== undefined && m <= FEW_ROWS;
}

/**
 * `r` reduces the last axis of a tensor whose other dims are the matmul's leading dims (its rows):
 * a per-row statistic the matmul's epilogue can compute for the rows it writes.
 */
function rowStatistic(r: Node, mm: Node): boolean {
  if (!isReduce(r.op)) return false;
  const src = r.args[0]!;
  const rank = mm.shape.length;
  const axes = r.attrs.axes as number[];
  return src.shape.length === rank && axes.length === 1 && axes[0] === rank - 1 && shapeEq(src.shape.slice(0, -1), mm.shape.slice(0, -1));
}

/**
 * Cost model for a normalized matmul operand: when the operand is an elementwise function of a row
 * statistic of a tensor shaped like it (RMSNorm's or layer norm's output: x * g / rms(x)), the
 * statistic needs a kernel of its own anyway, so that kernel, a row kernel, writes the normalized
 * operand once. As a prologue the elementwise part would be recomputed for every tile along the
 * matmul's other output dim (N / tn times for A); materialized it costs one write and one read per
 * element and no extra launch. On lavapipe at the prefill block (T 128, D 512, H 1024) the first
 * matmul with the x * g prologue took about 1 ms more than the same matmul reading the row kernel's
 * output (17.9 vs 16.9 ms for the chain). Returns the node to materialize, or undefined: the
 * operand is a view of memory, has no such statistic, or the other dim is a constant of at most
 * RECOMPUTE_DIM. `stop` marks nodes another kernel writes (the search does not look below them).
 */
export function rowKernelOperand(mm: Node, index: 0 | 1, stop: (n: Node) => boolean, dims?: DimBindings): Node | undefined {
  let a = mm.args[index]!;
  while (isView(a) && !stop(a)) a = a.args[0]!;
  if (a.op === 'input' || stop(a) || !isElementwise(a.op) || a.op === 'const') return undefined;
  // over a few rows, A's statistic is recomputed in the matmul's kernel instead (FEW_ROWS)
  if (index === 0 && fewRows(mm, dims)) return undefined;
  const r = mm.shape.length;
  const other = knownDim(mm.shape[index === 0 ? r - 1 : r - 2]!, dims);
  if (other !== undefined && other <= RECOMPUTE_DIM) return undefined;
  const seen = new Set<Node>();
  const statistic = (n: Node): boolean => {
    if (seen.has(n) || n.op === 'input' || (n !== a && stop(n))) return false;
    seen.add(n);
    if (isReduce(n.op)) return rowFusable(n, a) !== undefined;
    if (!(isElementwise(n.op) || isMovement(n.op))) return false;
    return n.args.some(statistic);
  };
  return statistic(a) ? a : undefined;
}

export function fuse(p: Program, opts: FuseOptions = {}): Fusion {
  const maxBuffers = opts.maxBuffers ?? 8;
  const roots = p.outputs.map((o) => o.node);
  const nodes = topoOrder(roots);
  const uses = useCounts(p);
  const materialized = new Set<Node>(roots);
  for (const n of nodes) {
    if (n.op === 'matmul') materialized.add(n);
    if (n.op === 'compute' && hasReduction(n.attrs.expr as IExpr)) materialized.add(n);
  }

  // Epilogues: a matmul used once, by an elementwise chain of its own shape, is computed in that
  // chain's kernel (bias, activation, residual, scale, cast applied to the accumulators).
  const contraction = new Map<Node, Node>();
  if (opts.matmulFusion !== false) {
    for (const mm of nodes) {
      if (mm.op !== 'matmul' || uses.get(mm) !== 1 || roots.includes(mm)) continue;
      const consumer = nodes.find((n) => n.args.includes(mm))!;
      let root = consumer;
      // climb while the chain stays elementwise over the matmul's shape and unshared
      for (;;) {
        if (!isElementwise(root.op) || !shapeEq(root.shape, mm.shape)) break;
        if (materialized.has(root) || uses.get(root) !== 1) break;
        const up = nodes.find((n) => n.args.includes(root));
        if (!up || !isElementwise(up.op) || !shapeEq(up.shape, mm.shape)) break;
        root = up;
      }
      if (!isElementwise(root.op) || !shapeEq(root.shape, mm.shape) || contraction.has(root) || !elementwisePathTo(root, mm)) continue;
      materialized.delete(mm);
      materialized.add(root);
      contraction.set(root, mm);
    }
  }

  // Normalized operands are written by their statistic's row kernel, not recomputed per tile.
  if (opts.matmulFusion !== false) {
    const stop = (n: Node) => n.op === 'matmul' || materialized.has(n);
    for (const mm of nodes) {
      if (mm.op !== 'matmul') continue;
      for (const i of [0, 1] as const) {
        const a = rowKernelOperand(mm, i, stop, opts.dims);
        if (a) materialized.add(a);
      }
    }
  }

  // Walk each root's producers; `operand` is set below a contraction (its loads are recomputed per tile).
  const walk = (root: Node, visit: (n: Node, operand: boolean) => 'inline' | 'read') => {
    const seen = new Set<Node>();
    const mm = contraction.get(root) ?? (root.op === 'matmul' ? root : undefined);
    const go = (n: Node, operand: boolean) => {
      if (seen.has(n)) return;
      seen.add(n);
      if (n !== root && visit(n, operand) === 'read') return;
      for (const a of n.args) go(a, operand || n === mm);
    };
    go(root, false);
  };
  const prologueCost = new Map<Node, number>();
  const costOf = (n: Node): number => {
    let c = prologueCost.get(n);
    // A broadcast value is computed once per broadcast row (the emitter hoists it), not per element.
    if (n.op === 'expand') return 0;
    if (c === undefined) {
      c = opCost(n) + n.args.reduce((s, a) => s + (a.op === 'input' || materialized.has(a) ? 0 : costOf(a)), 0);
      prologueCost.set(n, c);
    }
    return c;
  };
  let changed = true;
  while (changed) {
    changed = false;
    prologueCost.clear();
    const inlinedBy = new Map<Node, number>();
    for (const root of [...materialized]) {
      walk(root, (n, operand) => {
        if (n.op === 'input' || materialized.has(n)) return 'read';
        let ok: boolean;
        if (n === contraction.get(root)) ok = true;
        else if (operand) ok = isView(n) || n.op === 'const' || (opts.matmulFusion !== false && ((isElementwise(n.op) && costOf(n) <= PROLOGUE_BUDGET) || (n.op === 'compute' && costOf(n) <= DECODE_BUDGET)));
        else if (isElementwise(n.op) || isMovement(n.op) || n.op === 'compute') ok = true;
        else {
          const mm = contraction.get(root);
          ok = rowFusable(n, root) !== undefined || (mm !== undefined && opts.matmulFusion !== false && fewRows(mm, opts.dims) && rowStatistic(n, mm));
        }
        if (ok) {
          inlinedBy.set(n, (inlinedBy.get(n) ?? 0) + 1);
          return 'inline';
        }
        materialized.add(n);
        changed = true;
        return 'read';
      });
      if (!changed) changed = splitIfTooWide(root, materialized, maxBuffers);
    }
    // Cost model: expensive work inlined into several kernels is computed once instead.
    if (!changed) {
      for (const [n, count] of inlinedBy) {
        if (count > 1 && isElementwise(n.op) && costOf(n) >= SHARED_BUDGET) {
          materialized.add(n);
          changed = true;
          break;
        }
      }
    }
  }

  const order = nodes.filter((n) => materialized.has(n));
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
    const mm = contraction.get(root) ?? (root.op === 'matmul' ? root : undefined);
    const kind: GroupKind = mm ? 'matmul' : rowAxes > 0 ? 'row' : isReduce(root.op) || (root.op === 'compute' && hasReduction(root.attrs.expr as IExpr)) ? 'reduce' : 'elementwise';
    return { root, kind, rowAxes, reads, inlined, ...(mm ? { contraction: mm } : {}) };
  });
  return { groups: opts.multiOutput === false ? groups : mergeSiblings(groups, maxBuffers), materialized };
}

/** How `extra` can be written by `host`'s kernel: at each element, once per row, or not at all. */
function siblingMode(host: FusedGroup, extra: FusedGroup): 'element' | 'row' | undefined {
  if (host.kind === 'elementwise' && extra.kind === 'elementwise' && shapeEq(host.root.shape, extra.root.shape)) return 'element';
  if (host.kind !== 'row') return undefined;
  if (extra.kind === 'row' && extra.rowAxes === host.rowAxes && shapeEq(host.root.shape, extra.root.shape)) return 'element';
  // a reduction of the trailing axes of a tensor shaped like the host's rows: one value per row
  if (extra.kind === 'reduce' && isReduce(extra.root.op) && extra.root.op !== 'argmax' && extra.root.op !== 'argmin') {
    const k = rowFusable(extra.root, host.root);
    if (k === host.rowAxes) return 'row';
  }
  return undefined;
}

/**
 * Multi-output fusion: a group that can be computed in the same loops as an earlier, independent
 * group joins its kernel, so shared producers are loaded once and one launch writes both. Only
 * when every group the joiner depends on already ran before the host, and the kernel's buffers fit.
 */
function mergeSiblings(groups: readonly FusedGroup[], maxBuffers: number): FusedGroup[] {
  const out: FusedGroup[] = [...groups];
  const producer = new Map<Node, number>();
  const deps = (g: FusedGroup, pos: ReadonlyMap<Node, number>): Set<number> => {
    const seen = new Set<number>();
    const stack = [...g.reads];
    while (stack.length) {
      const n = stack.pop()!;
      const i = pos.get(n);
      if (i === undefined || seen.has(i)) continue;
      seen.add(i);
      stack.push(...out[i]!.reads);
    }
    return seen;
  };
  for (let i = 0; i < out.length; i++) {
    for (let j = i + 1; j < out.length; j++) {
      const first = out[i]!;
      const second = out[j]!;
      if (second.extra?.length) continue;
      // the kernel is built around whichever of the two can host the other
      const [host, cand] = siblingMode(first, second) ? [first, second] : siblingMode(second, first) && !first.extra?.length ? [second, first] : [undefined, undefined];
      if (!host || !cand) continue;
      producer.clear();
      out.forEach((g, gi) => [g.root, ...(g.extra ?? [])].forEach((n) => producer.set(n, gi)));
      // the merged kernel runs at position i: everything the later group needs must run before it
      if ([...deps(second, producer)].some((d) => d >= i)) continue;
      const reads = [...new Set([...host.reads, ...cand.reads])];
      if (reads.length + 2 + (host.extra?.length ?? 0) > maxBuffers) continue;
      out[i] = { ...host, reads, inlined: [...new Set([...host.inlined, ...cand.inlined])], extra: [...(host.extra ?? []), cand.root] };
      out.splice(j, 1);
      j--;
    }
  }
  return out;
}
