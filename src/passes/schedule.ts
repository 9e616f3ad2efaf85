/**
 * Schedules: turn a fused group into a kernel. Each schedule decides what one invocation computes
 * and which loops it runs; the group's value comes from NodeLowering and the statements from the
 * Emitter, so schedules stay small.
 *
 * - elementwise: each invocation computes `perThread` consecutive output elements.
 * - reduce: one invocation per output element, the reduction loop inside.
 * - row: one invocation per row (all but the trailing `rowAxes` axes); row reductions are computed
 *   once per row before the loop that writes the row.
 * - matmul: register-blocked from global memory: each invocation accumulates a TM x TN tile of the
 *   output over K, loading operands through their views (transposes and broadcasts cost nothing).
 */
import { fail } from '../errors.js';
import { dimCdiv, dimMul, dimProduct, dimSymbols, type Dim } from '../ir/dims.js';
import type { Node } from '../ir/graph.js';
import { scalarOf, type KBuffer, type KExpr, type Kernel, type KStmt } from '../ir/kernel.js';
import { Emitter, Scope } from './emit.js';
import type { FusedGroup } from './fuse.js';
import * as L from './lexpr.js';
import type { LExpr } from './lexpr.js';
import { NodeLowering } from './lower-node.js';

export interface ScheduleParams {
  workgroupSize: number;
  perThread: number; // elementwise
  tm: number; // matmul
  tn: number;
}

export const DEFAULT_PARAMS: ScheduleParams = { workgroupSize: 64, perThread: 4, tm: 4, tn: 4 };

export interface BufferNames {
  /** Buffer a materialized node (input, temp or output) is read from. */
  readOf(node: Node): string;
  /** Buffer a group root is written to. */
  writeOf(root: Node): string;
}

interface Build {
  lower: NodeLowering;
  emitter: Emitter;
  top: Scope;
  thread: Scope;
  out: string;
}

function start(group: FusedGroup, names: BufferNames, override?: (node: Node, idx: readonly LExpr[]) => LExpr | undefined): Build {
  const reads = new Set(group.reads);
  const lower = new NodeLowering({ bufferOf: (n) => (reads.has(n) && (n !== group.root || n.op === 'input') ? names.readOf(n) : undefined), ...(override ? { override } : {}) });
  return { lower, emitter: new Emitter(), top: new Scope(new Set()), thread: new Scope(new Set(['tid'])), out: names.writeOf(group.root) };
}

function finish(group: FusedGroup, names: BufferNames, b: Build, threads: Dim, kind: string, params: Record<string, number>, workgroupSize: number): Kernel {
  const guard: KStmt = { k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: { k: 'tid' }, b: emitDim(b, threads) }, then: b.thread.stmts, else: [] };
  const seen = new Set<string>();
  const buffers: KBuffer[] = [];
  for (const n of group.reads) {
    const name = names.readOf(n);
    if (seen.has(name)) continue;
    seen.add(name);
    buffers.push({ name, dtype: n.dtype, access: 'read', shape: n.shape });
  }
  buffers.push({ name: b.out, dtype: group.root.dtype, access: 'read_write', shape: group.root.shape });
  for (const d of dimSymbols(threads)) b.lower.uniforms.add(d);
  return {
    name: `${kind}_${b.out}`.replace(/[^A-Za-z0-9_]/g, '_'),
    buffers,
    uniforms: [...b.lower.uniforms].sort(),
    workgroupSize,
    threads,
    shared: [],
    body: [...b.top.stmts, guard],
    schedule: { kind, params },
  };
}

function emitDim(b: Build, d: Dim): KExpr {
  return b.emitter.emit(b.lower.dim(d), [b.top]);
}

function store(b: Build, chain: Scope[], index: LExpr, value: LExpr, root: Node): void {
  const v = L.cast(scalarOf(root.dtype), value);
  b.emitter.countUses([index, v]);
  const idx = b.emitter.emit(index, chain);
  const val = b.emitter.emit(v, chain);
  chain[chain.length - 1]!.stmts.push({ k: 'store', buf: b.out, index: idx, value: val });
}

export function scheduleGroup(group: FusedGroup, names: BufferNames, params: ScheduleParams = DEFAULT_PARAMS): Kernel {
  switch (group.kind) {
    case 'matmul': return matmulSchedule(group, names, params);
    case 'row': return rowSchedule(group, names, params);
    default: return elementwiseSchedule(group, names, group.kind === 'elementwise' ? params.perThread : 1, params.workgroupSize);
  }
}

function elementwiseSchedule(group: FusedGroup, names: BufferNames, perThread: number, wg: number): Kernel {
  const b = start(group, names);
  const root = group.root;
  const total = dimProduct(root.shape);
  const n = b.lower.dim(total);
  let chain = [b.top, b.thread];
  let lin: LExpr = L.tid();
  if (perThread > 1) {
    // A loop over the invocation's elements; the guard defines the element index `i`, so every load
    // and every computation that depends on it is placed inside the guard, never past the end.
    const loop = new Scope(new Set(['e']));
    const inner = new Scope(new Set(['i']));
    lin = L.variable('i');
    chain = [b.top, b.thread, loop, inner];
    const idx = b.lower.delinearize(lin, root.shape);
    store(b, chain, lin, b.lower.compute(root, idx), root);
    const start = b.emitter.emit(L.add(L.mul(L.tid(), L.i32(perThread)), L.variable('e')), [b.top, b.thread, loop]);
    const nK = b.emitter.emit(n, [b.top]);
    const iRef: KExpr = { k: 'var', t: 'i32', name: 'i' };
    loop.stmts.push({ k: 'let', name: 'i', t: 'i32', init: start, mut: false });
    loop.stmts.push({ k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: iRef, b: nK }, then: inner.stmts, else: [] });
    b.thread.stmts.push({ k: 'for', v: 'e', from: { k: 'lit', t: 'i32', v: 0 }, to: { k: 'lit', t: 'i32', v: perThread }, step: 1, body: loop.stmts });
    return finish(group, names, b, dimCdiv(total, perThread), 'elementwise', { perThread, workgroupSize: wg }, wg);
  }
  const idx = b.lower.delinearize(lin, root.shape);
  store(b, chain, lin, b.lower.compute(root, idx), root);
  return finish(group, names, b, total, group.kind, { workgroupSize: wg }, wg);
}

function rowSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const b = start(group, names);
  const root = group.root;
  const r = root.shape.length;
  const outer = root.shape.slice(0, r - group.rowAxes);
  const inner = root.shape.slice(r - group.rowAxes);
  const rowIdx = b.lower.delinearize(L.tid(), outer);
  // One nested loop per trailing axis, so a reduction over fewer axes hoists to its own level.
  const loops: Scope[] = [];
  const innerIdx = inner.map((_, i) => {
    loops.push(new Scope(new Set([`j${i}`])));
    return L.variable(`j${i}`);
  });
  const idx = [...rowIdx, ...innerIdx];
  const chain = [b.top, b.thread, ...loops];
  store(b, chain, b.lower.linearize(idx, root.shape), b.lower.compute(root, idx), root);
  for (let i = loops.length - 1; i >= 0; i--) {
    const parent = i === 0 ? b.thread : loops[i - 1]!;
    parent.stmts.push({ k: 'for', v: `j${i}`, from: { k: 'lit', t: 'i32', v: 0 }, to: b.emitter.emit(b.lower.dim(inner[i]!), chain.slice(0, 2 + i)), step: 1, body: loops[i]!.stmts });
  }
  return finish(group, names, b, dimProduct(outer), 'row', { rowAxes: group.rowAxes, workgroupSize: params.workgroupSize }, params.workgroupSize);
}

function matmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const root = group.root;
  const mm = group.contraction ?? root;
  // The epilogue reads the matmul at the element being stored: that is the accumulator `held`.
  let held: { idx: readonly LExpr[]; acc: LExpr } | undefined;
  const b = start(group, names, (node, idx) => {
    if (node !== mm || !held) return undefined;
    if (idx.some((x, i) => x !== held!.idx[i])) fail('E_INTERNAL', `epilogue of %${root.id} reads the matmul at another element`);
    return held.acc;
  });
  const [A, B] = mm.args as [Node, Node];
  const r = mm.shape.length;
  const batchShape = mm.shape.slice(0, r - 2);
  const [M, N] = [mm.shape[r - 2]!, mm.shape[r - 1]!];
  const K = A.shape[r - 1]!;
  const { tm, tn } = params;
  const tilesN = dimCdiv(N, tn);
  const tilesM = dimCdiv(M, tm);
  const lo = b.lower;
  const tnE = L.mod(L.tid(), lo.dim(tilesN));
  const rest = L.div(L.tid(), lo.dim(tilesN));
  const tmE = L.mod(rest, lo.dim(tilesM));
  const batch = lo.delinearize(L.div(rest, lo.dim(tilesM)), batchShape);
  const m0 = L.mul(tmE, L.i32(tm));
  const n0 = L.mul(tnE, L.i32(tn));
  const Me = lo.dim(M);
  const Ne = lo.dim(N);
  const ms = Array.from({ length: tm }, (_, i) => L.add(m0, L.i32(i)));
  const ns = Array.from({ length: tn }, (_, j) => L.add(n0, L.i32(j)));
  // Clamped indices keep every load in bounds; the stores are guarded instead.
  const mc = ms.map((m) => L.min(m, L.sub(Me, L.i32(1))));
  const nc = ns.map((n) => L.min(n, L.sub(Ne, L.i32(1))));
  const k = L.variable('k');
  const loop = new Scope(new Set(['k']));
  const chain = [b.top, b.thread, loop];
  const av = mc.map((m) => lo.valueAt(A, [...batch, m, k]));
  const bv = nc.map((n) => lo.valueAt(B, [...batch, k, n]));
  b.emitter.countUses([...av, ...bv, ...av, ...bv]); // each operand value is used by a whole row/column of the tile
  const t = scalarOf(mm.dtype);
  const accs: string[][] = ms.map(() => ns.map(() => b.emitter.fresh('c')));
  for (const row of accs) for (const name of row) b.thread.stmts.push({ k: 'let', name, t, init: { k: 'lit', t, v: 0 }, mut: true });
  const aK = av.map((v) => b.emitter.emit(v, chain));
  const bK = bv.map((v) => b.emitter.emit(v, chain));
  accs.forEach((row, i) =>
    row.forEach((name, j) => {
      const acc: KExpr = { k: 'var', t, name };
      loop.stmts.push({ k: 'set', name, value: { k: 'bin', t, op: 'add', a: acc, b: { k: 'bin', t, op: 'mul', a: aK[i]!, b: bK[j]! } } });
    }),
  );
  b.thread.stmts.push({ k: 'for', v: 'k', from: { k: 'lit', t: 'i32', v: 0 }, to: b.emitter.emit(lo.dim(K), [b.top]), step: 1, body: loop.stmts });
  accs.forEach((row, i) =>
    row.forEach((name, j) => {
      // The epilogue reads its other operands at clamped indices (in bounds wherever it is placed);
      // only the store is guarded.
      const idx = [...batch, ms[i]!, ns[j]!];
      const clamped = [...batch, mc[i]!, nc[j]!];
      held = { idx: clamped, acc: L.variable(name, t) };
      // A scope per element: the epilogue of one accumulator is not shared with the next.
      const elem = new Scope(new Set([name]));
      const tchain = [b.top, b.thread, elem];
      const value = L.cast(scalarOf(root.dtype), root === mm ? held.acc : lo.compute(root, clamped));
      const inside = L.and(L.lt(ms[i]!, Me), L.lt(ns[j]!, Ne));
      const index = lo.linearize(idx, root.shape);
      b.emitter.countUses([inside, index, value]);
      const cond = b.emitter.emit(inside, tchain.slice(0, 2));
      const idxK = b.emitter.emit(index, tchain.slice(0, 2));
      const val = b.emitter.emit(value, tchain);
      b.thread.stmts.push({ k: 'if', cond, then: [...elem.stmts, { k: 'store', buf: b.out, index: idxK, value: val }], else: [] });
    }),
  );
  const threads = dimMul(dimProduct(batchShape), dimMul(tilesM, tilesN));
  return finish(group, names, b, threads, 'matmul', { tm, tn, workgroupSize: params.workgroupSize }, params.workgroupSize);
}
