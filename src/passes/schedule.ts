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
import { dimCdiv, dimMul, dimProduct, dimSymbols, shapeEq, type Dim, type Shape } from '../ir/dims.js';
import type { Node } from '../ir/graph.js';
import type { Scalar } from '../ir/kernel.js';
import { scalarOf, type KBuffer, type KExpr, type Kernel, type KShared, type KStmt } from '../ir/kernel.js';
import { Emitter, Scope } from './emit.js';
import type { FusedGroup } from './fuse.js';
import * as L from './lexpr.js';
import type { LExpr } from './lexpr.js';
import { NodeLowering } from './lower-node.js';
import { mmaApplies, mmaMatmulSchedule } from './schedule-mma.js';
import { subgroupMatmulSchedule } from './schedule-sg.js';

export interface ScheduleParams {
  workgroupSize: number;
  perThread: number; // elementwise
  tm: number; // matmul: the micro-tile one invocation accumulates
  tn: number;
  /** matmul: 0 = register-blocked from global memory; 1 = workgroup-memory tiled (wm x wn invocations, K tiles of bk). */
  tiled: number;
  wm: number;
  wn: number;
  bk: number;
  /**
   * row and reduce: 0 = one invocation per row (or output); 1 = one workgroup per row, reductions as a
   * tree in workgroup memory; 2 = the same with a workgroup of one subgroup, reductions by subgroup
   * operations (the workgroup size must not exceed the device's subgroup size).
   */
  coop: number;
  /**
   * register-blocked matmul: 4 = a vectorized path (vec4 loads of B, and of A when it is a plain
   * buffer, vec4 FMAs) taken when N and K are multiples of 4, the scalar path otherwise; tn must be
   * a multiple of 4. 0 = scalar only.
   * row with coop 0 and ur a multiple of 4: 4 = the unrolled lanes read contiguous f32 rows and
   * write f32 outputs a vec4 at a time, taken when the innermost row length is a multiple of 4 (the
   * scalar body otherwise); the default for rows. 0 = scalar only.
   */
  vec: number;
  /**
   * register-blocked matmul, scalar path: unroll the K loop by uk (a K % uk tail loop follows); 0 or 1
   * = no unrolling. With uk a multiple of a packed operand's codes per word, the unrolled iterations
   * share one word load and shift by constants (see lexpr.ts divModAffine). 0 picks 8 for operands
   * read through a decoding prologue (a compute node) and no unrolling otherwise. Subgroup-shared
   * matmul: the steps of a whole chunk taken at a time, each accumulator's multiply-adds chained
   * (divides the subgroup; 0 picks SG_STEPS, 2).
   */
  uk?: number;
  /**
   * matmul: stage small tables the kernel gathers from (codebooks, decode tables) in workgroup
   * memory (see stage.ts); 0 turns it off. Default on.
   */
  stage?: number;
  /**
   * Under CompileOptions.specialize: 1 (the default) prints the specialized dims as constants, 0 keeps
   * them uniforms in this kernel (the program still runs at those dims only). Which is faster depends
   * on the driver's compiler (constants win on SwiftShader, lose at some sizes on lavapipe); the
   * tuner tries both.
   */
  constDims?: number;
  /**
   * row and reduce with coop 0: each sum, max, min and online max+sum reduction runs over chunks of
   * ur consecutive elements with ur independent accumulators (so ur dependency chains, each ur times
   * shorter), combined after the loop, then a tail loop over extent % ur; a row schedule's innermost
   * write loop runs over chunks of ur elements likewise. 1 = no unrolling. Cooperative reductions
   * (coop 1/2) already split the row across invocations and ignore it; argmax/argmin keep one chain.
   * Default 8 for rows (with vec 4), ROW_UNROLL for reduce schedules.
   */
  ur?: number;
  /**
   * matmul: 1 = the tensor-core schedule (schedule-mma.ts) for f16 x f16 matmuls, a block of wm x wn
   * warps each holding fm x fn accumulator tiles of 16 x 16, K tiles of bk (a multiple of 16); other
   * matmuls keep their schedule. 0 = off. On by default where CompileOptions.tensorCores says the
   * target has tensor cores.
   */
  mma?: number;
  fm?: number;
  fn?: number;
  /**
   * workgroup-memory tiled and tensor-core matmuls: 1 = double-buffered shared tiles (the next K
   * tile is staged into the other buffer while this one is used, one barrier per tile instead of
   * two); 0 (default) = one buffer.
   */
  db?: number;
  /**
   * matmul: 1 = subgroup-shared register tiles (schedule-sg.ts): a workgroup of one subgroup
   * (workgroupSize lanes, at most the device's subgroup size and 32) owns tm rows x workgroupSize *
   * tn columns; per chunk of workgroupSize along K each lane loads one A value per row and the lanes
   * share them by subgroup shuffles instead of every lane loading every A value. 0 = off.
   */
  sg?: number;
}

/**
 * The default ur for reduce schedules and scalar row schedules (rows default to 8 with vec4 loads,
 * see pipeline.ts): 4 measured 1.1-1.2x over 1 on lavapipe and 1.2-1.6x on SwiftShader for softmax
 * and layernorm over 4096x1024 with scalar loads; 8 was within 10% of 4 there.
 */
export const ROW_UNROLL = 4;

export const DEFAULT_PARAMS: ScheduleParams = { workgroupSize: 64, perThread: 4, tm: 4, tn: 4, tiled: 0, wm: 8, wn: 8, bk: 8, coop: 0, vec: 0 };

export interface BufferNames {
  /** Buffer a materialized node (input, temp or output) is read from. */
  readOf(node: Node): string;
  /** Buffer a group root is written to. */
  writeOf(root: Node): string;
  /** Dims fixed at compile time (a specialized program): constants in the kernel, not uniforms. */
  readonly dims?: Readonly<Record<string, number>>;
  /** What each assumed dim is a multiple of (CompileOptions.assume): tests on it fold at compile time. */
  readonly assume?: Readonly<Record<string, number>>;
}

export interface Build {
  lower: NodeLowering;
  emitter: Emitter;
  top: Scope;
  thread: Scope;
  out: string;
  shared: KShared[];
}

function start(group: FusedGroup, names: BufferNames, override?: (node: Node, idx: readonly LExpr[]) => LExpr | undefined): Build {
  const reads = new Set(group.reads);
  const lower = new NodeLowering({ bufferOf: (n) => (reads.has(n) && (n !== group.root || n.op === 'input') ? names.readOf(n) : undefined), ...(override ? { override } : {}), ...(names.dims ? { dims: names.dims } : {}), ...(names.assume ? { assume: names.assume } : {}) });
  return { lower, emitter: new Emitter(), top: new Scope(new Set()), thread: new Scope(new Set(['tid', 'lid', 'wid'])), out: names.writeOf(group.root), shared: [] };
}

export function finish(group: FusedGroup, names: BufferNames, b: Build, threads: Dim, kind: string, params: Record<string, number>, workgroupSize: number, byWorkgroup = false): Kernel {
  // Kernels with barriers guard on the workgroup index, which is uniform across a workgroup.
  const guard: KStmt = byWorkgroup
    ? { k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: { k: 'wid' }, b: emitDim(b, dimCdiv(threads, workgroupSize)) }, then: b.thread.stmts, else: [] }
    : { k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: { k: 'tid' }, b: emitDim(b, threads) }, then: b.thread.stmts, else: [] };
  const seen = new Set<string>();
  const buffers: KBuffer[] = [];
  for (const n of group.reads) {
    const name = names.readOf(n);
    if (seen.has(name)) continue;
    seen.add(name);
    // written in place (memory.ts): one read-write binding for the read and the result
    buffers.push(name === b.out ? { name, dtype: n.dtype, access: 'read_write', shape: n.shape, inPlace: true } : { name, dtype: n.dtype, access: 'read', shape: n.shape });
  }
  if (!seen.has(b.out)) buffers.push({ name: b.out, dtype: group.root.dtype, access: 'read_write', shape: group.root.shape });
  for (const x of group.extra ?? []) buffers.push({ name: names.writeOf(x), dtype: x.dtype, access: 'read_write', shape: x.shape });
  for (const d of dimSymbols(threads)) if (names.dims?.[d] === undefined) b.lower.uniforms.add(d);
  return {
    name: `${kind}_${b.out}`.replace(/[^A-Za-z0-9_]/g, '_'),
    buffers,
    uniforms: [...b.lower.uniforms].sort(),
    workgroupSize,
    threads,
    shared: b.shared,
    body: [...b.top.stmts, guard],
    schedule: { kind, params },
  };
}

function emitDim(b: Build, d: Dim): KExpr {
  return b.emitter.emit(b.lower.dim(d), [b.top]);
}

function store(b: Build, chain: Scope[], index: LExpr, value: LExpr, root: Node, buf = b.out): void {
  const v = L.cast(scalarOf(root.dtype), value);
  b.emitter.countUses([index, v]);
  const idx = b.emitter.emit(index, chain);
  const val = b.emitter.emit(v, chain);
  chain[chain.length - 1]!.stmts.push({ k: 'store', buf, index: idx, value: val });
}

/** Stores every root of the group (the root and its multi-output siblings) at element `idx`. */
function storeAll(b: Build, group: FusedGroup, names: BufferNames, chain: Scope[], idx: readonly LExpr[], lin: LExpr): void {
  store(b, chain, lin, b.lower.compute(group.root, idx), group.root);
  for (const x of group.extra ?? []) {
    if (shapeEq(x.shape, group.root.shape)) store(b, chain, lin, b.lower.compute(x, idx), x, names.writeOf(x));
  }
}

export function scheduleGroup(group: FusedGroup, names: BufferNames, params: ScheduleParams = DEFAULT_PARAMS): Kernel {
  switch (group.kind) {
    case 'matmul': return params.mma && mmaApplies(group) ? mmaMatmulSchedule(group, names, params) : params.sg ? subgroupMatmulSchedule(group, names, params) : params.tiled ? tiledMatmulSchedule(group, names, params) : params.coop ? splitKMatmulSchedule(group, names, params) : matmulSchedule(group, names, params);
    case 'row': return params.coop && group.rowAxes === 1 ? cooperativeSchedule(group, names, params) : rowSchedule(group, names, params);
    case 'reduce': return params.coop ? cooperativeSchedule(group, names, params) : elementwiseSchedule(group, names, 1, params.workgroupSize, params.ur ?? ROW_UNROLL);
    default: return elementwiseSchedule(group, names, group.kind === 'elementwise' ? params.perThread : 1, params.workgroupSize);
  }
}

function elementwiseSchedule(group: FusedGroup, names: BufferNames, perThread: number, wg: number, ur = 1): Kernel {
  const b = start(group, names);
  b.emitter.unroll = ur;
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
    storeAll(b, group, names, chain, idx, lin);
    const start = b.emitter.emit(L.add(L.mul(L.tid(), L.i32(perThread)), L.variable('e')), [b.top, b.thread, loop]);
    const nK = b.emitter.emit(n, [b.top]);
    const iRef: KExpr = { k: 'var', t: 'i32', name: 'i' };
    loop.stmts.push({ k: 'let', name: 'i', t: 'i32', init: start, mut: false });
    loop.stmts.push({ k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: iRef, b: nK }, then: inner.stmts, else: [] });
    b.thread.stmts.push({ k: 'for', v: 'e', from: { k: 'lit', t: 'i32', v: 0 }, to: { k: 'lit', t: 'i32', v: perThread }, step: 1, body: loop.stmts });
    return finish(group, names, b, dimCdiv(total, perThread), 'elementwise', { perThread, workgroupSize: wg }, wg);
  }
  const idx = b.lower.delinearize(lin, root.shape);
  storeAll(b, group, names, chain, idx, lin);
  return finish(group, names, b, total, group.kind, group.kind === 'elementwise' ? { perThread: 1, workgroupSize: wg } : { coop: 0, ur, workgroupSize: wg }, wg);
}

function rowSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const b = start(group, names);
  const root = group.root;
  const r = root.shape.length;
  const outer = root.shape.slice(0, r - group.rowAxes);
  const inner = root.shape.slice(r - group.rowAxes);
  const ur = Math.max(1, Math.floor(params.ur ?? ROW_UNROLL));
  b.emitter.unroll = ur;
  const vec = params.vec ?? 0;
  if (vec !== 0 && vec !== 4) fail('E_ARG', `row vec=${vec} must be 0 or 4`);
  // The vector path (vec 4, ur a multiple of 4): unrolled lanes read f32 inputs and write f32
  // outputs a vec4 at a time where the row is contiguous. It runs when the innermost row length is
  // a multiple of 4 (a uniform test, so every row starts at a multiple of 4), the scalar body otherwise.
  const Ne = inner.length > 0 ? b.lower.dim(inner[inner.length - 1]!) : L.i32(1);
  const cond = vec === 4 && ur % 4 === 0 && inner.length > 0 ? L.bin('eq', L.mod(Ne, L.i32(4)), L.i32(0)) : L.lit('bool', 0);
  const rowVec = { bufs: f32Reads(group, names), aligned: (base: LExpr) => multipleOf4(base, Ne) };
  const body = (thread: Scope, vector: boolean) => {
    b.emitter.vec4 = vector ? rowVec : undefined;
    rowBody(b, group, names, thread, outer, inner, ur, vector);
    b.emitter.vec4 = undefined;
  };
  if (cond.k === 'lit') {
    body(b.thread, cond.v !== 0);
  } else {
    const [fast, slow] = [new Scope(b.thread.vars), new Scope(b.thread.vars)];
    body(fast, true);
    body(slow, false);
    b.thread.stmts.push({ k: 'if', cond: b.emitter.emit(cond, [b.top]), then: fast.stmts, else: slow.stmts });
  }
  return finish(group, names, b, dimProduct(outer), 'row', { rowAxes: group.rowAxes, coop: 0, ur, vec, workgroupSize: params.workgroupSize }, params.workgroupSize);
}

/** A row schedule's body for one invocation (one row), in `thread`; `vector`: the vec4 path. */
function rowBody(b: Build, group: FusedGroup, names: BufferNames, thread: Scope, outer: Shape, inner: Shape, ur: number, vector: boolean): void {
  const root = group.root;
  const rowIdx = b.lower.delinearize(L.tid(), outer);
  // One nested loop per trailing axis, so a reduction over fewer axes hoists to its own level.
  const loops: Scope[] = [];
  const innerIdx = inner.map((_, i) => {
    loops.push(new Scope([`j${i}`]));
    return L.variable(`j${i}`);
  });
  const idx = [...rowIdx, ...innerIdx];
  const chain = [b.top, thread, ...loops];
  // The innermost write loop is unrolled by ur too (a chunk loop, then a tail loop): measured 1.03-1.05x
  // on lavapipe and 1.4x on SwiftShader for softmax and layernorm over unrolling the reductions alone.
  const last = loops.length - 1;
  const wu = last >= 0 ? ur : 1;
  const jv = `j${last}`;
  const lin = b.lower.linearize(idx, root.shape);
  const quads = vector && last >= 0 && wu % 4 === 0 ? new Map<LExpr, string[]>() : undefined;
  if (quads) {
    // every root the row loop writes (the root and its same-shape multi-output siblings); a vec4
    // store of four lanes where the row is contiguous and the output f32
    const writes = [root, ...(group.extra ?? []).filter((x) => shapeEq(x.shape, root.shape))].map((x) => ({
      node: x,
      buf: x === root ? b.out : names.writeOf(x),
      value: L.cast(scalarOf(x.dtype), b.lower.compute(x, idx)),
    }));
    const base = L.offsetOf(lin, jv);
    const store4 = base !== undefined && b.emitter.vec4!.aligned(base);
    const values = writes.map((w) => Array.from({ length: wu }, (_, q) => b.emitter.lane(w.value, jv, q, quads, wu, chain)));
    b.emitter.countUses(values.flat());
    writes.forEach((w, i) => {
      if (store4 && w.node.dtype === 'f32') {
        for (let g = 0; g < wu / 4; g++) {
          const lanes = [0, 1, 2, 3].map((c) => b.emitter.emit(values[i]![4 * g + c]!, chain)) as [KExpr, KExpr, KExpr, KExpr];
          const at = L.add(base!, L.add(innerIdx[last]!, L.i32(4 * g)));
          b.emitter.countUses([at]);
          loops[last]!.stmts.push({ k: 'store4', buf: w.buf, index: b.emitter.emit(at, chain), value: { k: 'vec4', t: 'vec4f', a: lanes } });
        }
      } else {
        for (let q = 0; q < wu; q++) {
          const at = L.substVar(lin, jv, L.add(innerIdx[last]!, L.i32(q)));
          b.emitter.countUses([at]);
          loops[last]!.stmts.push({ k: 'store', buf: w.buf, index: b.emitter.emit(at, chain), value: b.emitter.emit(values[i]![q]!, chain) });
        }
      }
    });
  } else {
    const lane = (q: number): LExpr[] => [...rowIdx, ...innerIdx.slice(0, last), L.add(innerIdx[last]!, L.i32(q))];
    for (let q = 0; q < wu; q++) storeAll(b, group, names, chain, lane(q), b.lower.linearize(lane(q), root.shape));
  }
  const tail = new Scope([jv]);
  if (wu > 1) storeAll(b, group, names, [...chain.slice(0, -1), tail], idx, lin);
  // siblings with one value per row (a row statistic) are stored once per row
  for (const x of group.extra ?? []) {
    if (shapeEq(x.shape, root.shape)) continue;
    const keep = x.shape.length === root.shape.length;
    const xIdx = keep ? [...rowIdx, ...innerIdx.map(() => L.i32(0))] : rowIdx;
    store(b, [b.top, thread], b.lower.linearize(xIdx, x.shape), b.lower.compute(x, xIdx), x, names.writeOf(x));
  }
  for (let i = loops.length - 1; i >= 0; i--) {
    const outerChain = chain.slice(0, 2 + i); // ends with the loop's parent
    if (i === last && wu > 1) {
      b.emitter.chunkedLoops(jv, b.lower.dim(inner[i]!), wu, outerChain, loops[i]!.stmts, tail.stmts);
      continue;
    }
    const to = b.emitter.emit(b.lower.dim(inner[i]!), outerChain);
    outerChain[outerChain.length - 1]!.stmts.push({ k: 'for', v: `j${i}`, from: { k: 'lit', t: 'i32', v: 0 }, to, step: 1, body: loops[i]!.stmts });
  }
}

/** The epilogue reads the matmul at the element being stored: that is the accumulator `held`. */
export interface Epilogue {
  held?: { idx: readonly LExpr[]; acc: LExpr };
}

export function startMatmul(group: FusedGroup, names: BufferNames): { b: Build; epi: Epilogue; mm: Node } {
  const mm = group.contraction ?? group.root;
  const epi: Epilogue = {};
  const b = start(group, names, (node, idx) => {
    const held = epi.held;
    if (node !== mm || !held) return undefined;
    if (idx.some((x, i) => x !== held.idx[i])) fail('E_INTERNAL', `epilogue of %${group.root.id} reads the matmul at another element`);
    return held.acc;
  });
  // Reductions in a prologue or epilogue (a norm's statistic over a row of A, often hoisted above
  // the thread guard: one token's) run unrolled, reading vec4s where the row starts at a known
  // multiple of 4 (one row, or dims assumed aligned): on SwiftShader a scalar read with a dynamic
  // component costs more than the FMA it feeds.
  b.emitter.unroll = ROW_UNROLL;
  b.emitter.vec4 = { bufs: f32Reads(group, names), aligned: (base) => L.knownMultiple(base) % 4 === 0, anywhere: true };
  return { b, epi, mm };
}

export interface Tile {
  batch: LExpr[];
  ms: LExpr[]; // output rows and columns of the tile, unclamped (stores are guarded)
  ns: LExpr[];
  mc: LExpr[]; // clamped, for reads
  nc: LExpr[];
  Me: LExpr;
  Ne: LExpr;
  accs: string[][];
  t: Scalar;
}

/**
 * A scope for a tile's stores, which follow its K loop: the thread's indices, guards and epilogue
 * operands are computed there, each just before its store, rather than hoisted above the loop, where
 * they would stay live (in registers, or spilled) across it (lavapipe, 8x8 vec4 tile at 1024: 4-5%
 * faster). Reductions the thread already computed are reused, not recomputed.
 */
function storesScope(b: Build): Scope {
  const after = new Scope(b.thread.vars);
  for (const [e, k] of b.thread.cache) if (e.k === 'red') after.cache.set(e, k);
  return after;
}

/** Guarded stores of a tile of accumulators, each through the group's epilogue, appended to `into`. */
export function storeTile(b: Build, group: FusedGroup, epi: Epilogue, tile: Tile, into: KStmt[] = b.thread.stmts): void {
  const { batch, ms, ns, mc, nc, Me, Ne, accs, t } = tile;
  const root = group.root;
  const mm = group.contraction ?? root;
  const lo = b.lower;
  const after = storesScope(b);
  accs.forEach((row, i) =>
    row.forEach((name, j) => {
      // The epilogue reads its other operands at clamped indices (in bounds wherever it is placed);
      // only the store is guarded.
      const idx = [...batch, ms[i]!, ns[j]!];
      const clamped = [...batch, mc[i]!, nc[j]!];
      epi.held = { idx: clamped, acc: L.variable(name, t) };
      lo.forget(); // the epilogue's value at these indices now means this accumulator
      // A scope per element: the epilogue of one accumulator is not shared with the next.
      const elem = new Scope(new Set([name]));
      const tchain = [b.top, after, elem];
      const value = L.cast(scalarOf(root.dtype), root === mm ? epi.held.acc : lo.compute(root, clamped));
      const inside = L.and(L.lt(ms[i]!, Me), L.lt(ns[j]!, Ne));
      const index = lo.linearize(idx, root.shape);
      b.emitter.countUses([inside, index, value]);
      const cond = b.emitter.emit(inside, tchain.slice(0, 2));
      const idxK = b.emitter.emit(index, tchain.slice(0, 2));
      const val = b.emitter.emit(value, tchain);
      into.push(...after.stmts.splice(0), { k: 'if', cond, then: [...elem.stmts, { k: 'store', buf: b.out, index: idxK, value: val }], else: [] });
    }),
  );
}

/**
 * storeTile for the vectorized path: each run of four columns (a multiple of 4, with N a multiple
 * of 4) goes out as one vec4 store of its four epilogue values, guarded on its row and first column.
 * Only for an f32 output; measured 1.15x on a 16x8 tile on lavapipe over four scalar stores.
 */
export function storeTile4(b: Build, group: FusedGroup, epi: Epilogue, tile: Tile, into: KStmt[]): void {
  const { batch, ms, ns, mc, nc, Me, Ne, accs, t } = tile;
  const root = group.root;
  const mm = group.contraction ?? root;
  const lo = b.lower;
  const after = storesScope(b);
  accs.forEach((row, i) => {
    for (let j = 0; j < row.length; j += 4) {
      const lanes = row.slice(j, j + 4);
      const elem = new Scope(new Set(lanes));
      const tchain = [b.top, after, elem];
      const vals = lanes.map((name, q) => {
        epi.held = { idx: [...batch, mc[i]!, nc[j + q]!], acc: L.variable(name, t) };
        lo.forget();
        const value = root === mm ? epi.held.acc : lo.compute(root, epi.held.idx);
        b.emitter.countUses([value]);
        return b.emitter.emit(value, tchain);
      }) as [KExpr, KExpr, KExpr, KExpr];
      const inside = L.and(L.lt(ms[i]!, Me), L.lt(ns[j]!, Ne));
      const index = lo.linearize([...batch, ms[i]!, ns[j]!], root.shape);
      b.emitter.countUses([inside, index]);
      const cond = b.emitter.emit(inside, tchain.slice(0, 2));
      const idxK = b.emitter.emit(index, tchain.slice(0, 2));
      into.push(...after.stmts.splice(0), { k: 'if', cond, then: [...elem.stmts, { k: 'store4', buf: b.out, index: idxK, value: { k: 'vec4', t: 'vec4f', a: vals } }], else: [] });
    }
  });
}

/** The lane variable of vectorizeLanes: the k of lane 0. */
const kqVar = () => L.variable('kq', 'i32', true);

/** Buffers of the group's f32 inputs (those a vec4 load may read). */
function f32Reads(group: FusedGroup, names: BufferNames): Set<string> {
  return new Set(group.reads.filter((r) => r.dtype === 'f32').map((r) => names.readOf(r)));
}

/** For a load of an f32 buffer at base + kq, base a multiple of 4: base (a vec4 load's start). */
function load4Base(e: LExpr, f32Bufs: ReadonlySet<string>, Ke: LExpr): LExpr | undefined {
  if (e.k !== 'load' || e.t !== 'f32' || !f32Bufs.has(e.buf)) return undefined;
  const base = L.offsetOf(e.index, 'kq');
  return base !== undefined && multipleOf4(base, Ke) ? base : undefined;
}

const isLaneOp = (e: LExpr): e is Extract<LExpr, { k: 'bin' }> & { op: 'add' | 'sub' | 'mul' | 'div' } =>
  e.k === 'bin' && e.t === 'f32' && (e.op === 'add' || e.op === 'sub' || e.op === 'mul' || e.op === 'div');

/** Does `e` (written with the lane variable kq) vectorize with vec4 loads and lane-wise ops only (no per-lane values)? */
function lanesVectorize(e: LExpr, f32Bufs: ReadonlySet<string>, Ke: LExpr): boolean {
  if (!e.free.has('kq')) return true;
  if (e.k === 'load') return load4Base(e, f32Bufs, Ke) !== undefined;
  return isLaneOp(e) && lanesVectorize(e.a, f32Bufs, Ke) && lanesVectorize(e.b, f32Bufs, Ke);
}

/** Is `e` a multiple of 4 wherever the vec4 path runs (K a multiple of 4)? */
function multipleOf4(e: LExpr, Ke: LExpr): boolean {
  if (e.k === 'lit') return e.v % 4 === 0;
  if (e === Ke) return true;
  if (e.k === 'bin' && e.op === 'add') return multipleOf4(e.a, Ke) && multipleOf4(e.b, Ke);
  if (e.k === 'bin' && e.op === 'mul') return multipleOf4(e.a, Ke) || multipleOf4(e.b, Ke);
  return false;
}

/**
 * The element index 4 * q of vec4 number q, emitted with q (not the product) as the value a kernel
 * may let-bind: backends print a load4/store4 index 4 * q as vec4 number q, which a let-bound
 * product would hide behind a shift (the one-row body of a partial tile shares its B indices with
 * the tile's body, so they are let-bound there).
 */
function quadIndex(b: Build, q: LExpr, chain: readonly Scope[]): KExpr {
  return { k: 'bin', t: 'i32', op: 'mul', a: b.emitter.emit(q, chain), b: { k: 'lit', t: 'i32', v: 4 } };
}

/**
 * The vec4 of `e` (an f32 value written with the lane variable kq) at k = k4, k4 + 1, k4 + 2, k4 + 3,
 * let-bound in `loop`: a load at base + kq with a base that is a multiple of 4 becomes one vec4
 * load, + - * / act lane-wise, values without kq are computed once and splat (hoisted by the
 * emitter), and anything else is evaluated per lane. A matmul prologue (x * g of a norm, a scale)
 * costs one vec4 op per row instead of four scalar ones.
 */
function vectorizeLanes(b: Build, e: LExpr, kv: LExpr, Ke: LExpr, f32Bufs: ReadonlySet<string>, chain: readonly Scope[], loop: Scope, memo: Map<LExpr, KExpr>): KExpr {
  const vt = 'vec4f' as const;
  const hit = memo.get(e);
  if (hit) return hit;
  let value: KExpr;
  const base = load4Base(e, f32Bufs, Ke);
  if (!e.free.has('kq')) {
    value = { k: 'splat', t: vt, a: b.emitter.emit(e, chain) };
  } else if (base !== undefined) {
    // element (base/4 + kv) * 4: printed as vec4 number base/4 + kv (see the vec4 B loads)
    value = { k: 'load4', t: vt, buf: (e as Extract<LExpr, { k: 'load' }>).buf, index: quadIndex(b, L.add(L.div(base, L.i32(4)), kv), chain) };
  } else if (isLaneOp(e)) {
    const x = vectorizeLanes(b, e.a, kv, Ke, f32Bufs, chain, loop, memo);
    const y = vectorizeLanes(b, e.b, kv, Ke, f32Bufs, chain, loop, memo);
    value = { k: 'bin4', t: vt, op: e.op, a: x, b: y };
  } else {
    const k4 = L.mul(kv, L.i32(4));
    const lanes = [0, 1, 2, 3].map((q) => L.substVar(e, 'kq', L.add(k4, L.i32(q))));
    b.emitter.countUses(lanes);
    value = { k: 'vec4', t: vt, a: lanes.map((l) => b.emitter.emit(l, chain)) as [KExpr, KExpr, KExpr, KExpr] };
  }
  if (value.k === 'splat') {
    memo.set(e, value); // the scalar is placed (and hoisted) by the emitter
    return value;
  }
  const name = b.emitter.fresh('p');
  loop.stmts.push({ k: 'let', name, t: vt, init: value, mut: false });
  const ref: KExpr = { k: 'var', t: vt, name };
  memo.set(e, ref);
  return ref;
}

/** Operands and dims of a matmul [...batch, M, K] x [...batch, K, N]. */
export function matmulDims(mm: Node): { A: Node; B: Node; batchShape: Shape; M: Dim; N: Dim; K: Dim } {
  const [A, B] = mm.args as [Node, Node];
  const r = mm.shape.length;
  return { A, B, batchShape: mm.shape.slice(0, r - 2), M: mm.shape[r - 2]!, N: mm.shape[r - 1]!, K: A.shape[r - 1]! };
}

/** What a K-loop step reads and where it accumulates: operands, tile rows/columns (clamped), accumulators. */
interface KOperands {
  A: Node;
  B: Node;
  batch: LExpr[];
  mc: LExpr[];
  nc: LExpr[];
  t: Scalar;
  accs: string[][];
}

/** A's values [step][row] and B's values [step][column] at the K indices `ks`. */
function operandValues(b: Build, o: KOperands, ks: readonly LExpr[]): { av: LExpr[][]; bv: LExpr[][] } {
  return {
    av: ks.map((k) => o.mc.map((m) => b.lower.valueAt(o.A, [...o.batch, m, k]))),
    bv: ks.map((k) => o.nc.map((n) => b.lower.valueAt(o.B, [...o.batch, k, n]))),
  };
}

const sumOf = (xs: readonly LExpr[]): LExpr => xs.slice(1).reduce((s, x) => L.add(s, x), xs[0]!);

/**
 * Adds a[m, k] * b[k, n] over the K indices `ks` (one step, or an unrolled chunk) to each accumulator,
 * in the last scope of `chain`. Each operand value is used by a whole row/column of the tile. In a
 * chunk, where B's value is (c - z) * s (or c * s) with z and s the same at every step (a group's
 * zero and scale), the chunk adds s * (sum a*c - z * sum a): the scale and zero leave the per-element
 * work, one multiply-add per weight after unpacking (f32 only; the sum is reassociated).
 */
function accumulate(b: Build, o: KOperands, ks: readonly LExpr[], chain: readonly Scope[]): void {
  const loop = chain[chain.length - 1]!;
  const { av, bv } = operandValues(b, o, ks);
  const factors = o.nc.map((_, j) => (o.t === 'f32' && ks.length > 1 ? groupFactor(bv.map((row) => row[j]!)) : undefined));
  const asum = o.mc.map((_, i) => sumOf(av.map((row) => row[i]!)));
  const terms: LExpr[][] = o.mc.map((_, i) =>
    o.nc.map((_, j) => {
      const f = factors[j];
      if (!f) return sumOf(av.map((row, u) => L.mul(row[i]!, bv[u]![j]!)));
      const dot = sumOf(av.map((row, u) => L.mul(row[i]!, f.codes[u]!)));
      return L.mul(f.scale, f.zero ? L.sub(dot, L.mul(f.zero, asum[i]!)) : dot);
    }),
  );
  // operand values (codes, for a factored column) are used by a whole row/column of the tile: bound
  // once, A's first, then B's, then the accumulations
  const bUsed = o.nc.flatMap((_, j) => ks.map((_, u) => factors[j]?.codes[u] ?? bv[u]![j]!));
  const operands = [...av.flat(), ...bUsed];
  b.emitter.countUses([...operands, ...operands]);
  b.emitter.countUses(terms.flat());
  for (const v of operands) b.emitter.emit(v, chain);
  o.accs.forEach((row, i) =>
    row.forEach((name, j) => {
      const acc: KExpr = { k: 'var', t: o.t, name };
      loop.stmts.push({ k: 'set', name, value: { k: 'bin', t: o.t, op: 'add', a: acc, b: b.emitter.emit(terms[i]![j]!, chain) } });
    }),
  );
}

/**
 * How many chunks share one scale and zero: P when, in every column's factored B (see groupFactor),
 * the chunk counter `kk` appears only as kk / P (a group of P * uk weights along K); else undefined.
 */
function groupPeriod(b: Build, o: KOperands, ks: readonly LExpr[], kk: LExpr): number | undefined {
  if (o.t !== 'f32') return undefined;
  const periods = new Set<number>();
  let bare = false;
  // each shared subexpression once (expressions are DAGs: a walk of the tree can be exponential)
  const seen = new Set<LExpr>();
  const visit = (e: LExpr): void => {
    if (seen.has(e)) return;
    seen.add(e);
    if (e.k === 'bin' && e.op === 'div' && e.a === kk && e.b.k === 'lit' && e.b.v > 1) periods.add(e.b.v);
    else if (e === kk) bare = true;
    else L.children(e).forEach(visit);
  };
  const { bv } = operandValues(b, o, ks);
  for (const [j] of o.nc.entries()) {
    const f = groupFactor(bv.map((row) => row[j]!));
    if (!f) return undefined;
    visit(f.scale);
    if (f.zero) visit(f.zero);
  }
  return !bare && periods.size === 1 ? [...periods][0] : undefined;
}

/**
 * The K loop over whole groups of P chunks: kg counts groups, kq (below P) chunks within one, so the
 * group's scale and zero depend on kg alone. Each invocation sums a*c and a per group into
 * registers and applies acc += s * (sum a*c - z * sum a) once per group: per weight, one unpack and
 * one multiply-add.
 */
function accumulateGroups(b: Build, o: KOperands, P: number, chunkKs: (c: LExpr) => LExpr[], groups: LExpr, into: KStmt[]): boolean {
  const kgName = 'kg';
  const kqName = `kq${P}`;
  const kg = L.variable(kgName, 'i32', true);
  const kq = L.variable(kqName, 'i32', true, P);
  const ks = chunkKs(L.add(L.mul(kg, L.i32(P)), kq));
  const { av, bv } = operandValues(b, o, ks);
  const factors = o.nc.map((_, j) => groupFactor(bv.map((row) => row[j]!)));
  // the scale and zero must not vary within a group (they are applied after its inner loop)
  if (factors.some((f) => !f || f.scale.free.has(kqName) || f.zero?.free.has(kqName))) return false;
  const fs = factors as NonNullable<(typeof factors)[number]>[];
  const fresh = (p: string) => b.emitter.fresh(p);
  const dots = o.mc.map(() => o.nc.map(() => fresh('d')));
  const sums = o.mc.map(() => fresh('as'));
  const outer = new Scope(new Set([kgName, ...dots.flat(), ...sums]));
  const inner = new Scope(new Set([kqName]));
  const zero: KExpr = { k: 'lit', t: 'f32', v: 0 };
  for (const row of dots) for (const name of row) outer.stmts.push({ k: 'let', name, t: 'f32', init: zero, mut: true });
  const needSums = fs.some((f) => f.zero);
  if (needSums) for (const name of sums) outer.stmts.push({ k: 'let', name, t: 'f32', init: zero, mut: true });
  const chainIn = [b.top, b.thread, outer, inner];
  const dotTerms = o.mc.map((_, i) => o.nc.map((_, j) => sumOf(av.map((row, u) => L.mul(row[i]!, fs[j]!.codes[u]!)))));
  const sumTerms = o.mc.map((_, i) => sumOf(av.map((row) => row[i]!)));
  const operands = [...av.flat(), ...fs.flatMap((f) => f.codes)];
  b.emitter.countUses([...operands, ...operands]);
  b.emitter.countUses([...dotTerms.flat(), ...(needSums ? sumTerms : [])]);
  for (const v of operands) b.emitter.emit(v, chainIn);
  const fv = (name: string): KExpr => ({ k: 'var', t: 'f32', name });
  dots.forEach((row, i) => row.forEach((name, j) => inner.stmts.push({ k: 'set', name, value: { k: 'bin', t: 'f32', op: 'add', a: fv(name), b: b.emitter.emit(dotTerms[i]![j]!, chainIn) } })));
  if (needSums) sums.forEach((name, i) => inner.stmts.push({ k: 'set', name, value: { k: 'bin', t: 'f32', op: 'add', a: fv(name), b: b.emitter.emit(sumTerms[i]!, chainIn) } }));
  outer.stmts.push({ k: 'for', v: kqName, from: { k: 'lit', t: 'i32', v: 0 }, to: { k: 'lit', t: 'i32', v: P }, step: 1, body: inner.stmts });
  // the group's scale and zero (functions of kg only) applied once
  const chainOut = [b.top, b.thread, outer];
  const finals = o.mc.map((_, i) => o.nc.map((_, j) => {
    const f = fs[j]!;
    const d = L.variable(dots[i]![j]!, 'f32');
    return L.mul(f.scale, f.zero ? L.sub(d, L.mul(f.zero, L.variable(sums[i]!, 'f32'))) : d);
  }));
  b.emitter.countUses(finals.flat());
  o.accs.forEach((row, i) => row.forEach((name, j) => outer.stmts.push({ k: 'set', name, value: { k: 'bin', t: 'f32', op: 'add', a: fv(name), b: b.emitter.emit(finals[i]![j]!, chainOut) } })));
  into.push({ k: 'for', v: kgName, from: { k: 'lit', t: 'i32', v: 0 }, to: b.emitter.emit(groups, [b.top]), step: 1, body: outer.stmts });
  return true;
}

/**
 * B's values over one unrolled chunk as codes * scale or (codes - zero) * scale with one scale and
 * zero for the whole chunk, or undefined. Zero is left out when it is the literal 0.
 */
function groupFactor(vals: readonly LExpr[]): { codes: LExpr[]; scale: LExpr; zero?: LExpr } | undefined {
  const split = (v: LExpr): [LExpr, LExpr][] => (v.k === 'bin' && v.op === 'mul' ? [[v.a, v.b], [v.b, v.a]] : []);
  for (const [, scale] of split(vals[0]!)) {
    const xs: LExpr[] = [];
    for (const v of vals) {
      const hit = split(v).find(([, s]) => s === scale);
      if (!hit) break;
      xs.push(hit[0]);
    }
    if (xs.length !== vals.length) continue;
    const zero = xs[0]!.k === 'bin' && xs[0]!.op === 'sub' ? xs[0]!.b : undefined;
    if (zero && xs.every((x) => x.k === 'bin' && x.op === 'sub' && x.b === zero)) {
      return { codes: xs.map((x) => (x as Extract<LExpr, { k: 'bin' }>).a), scale, ...(zero.k === 'lit' && zero.v === 0 ? {} : { zero }) };
    }
    return { codes: xs, scale };
  }
  return undefined;
}

/**
 * The tm x tn output tile of a matmul that linear index `linear` (an invocation or a workgroup)
 * owns, column tiles fastest. Clamped indices keep every load in bounds (and anything hoisted out of
 * the K loop, such as a prologue's per-row scale); the stores are guarded instead.
 */
function tileOf(b: Build, linear: LExpr, mm: Node, tm: number, tn: number): { tilesM: Dim; tilesN: Dim; tile: Omit<Tile, 'accs'> } {
  const { batchShape, M, N } = matmulDims(mm);
  const lo = b.lower;
  const tilesN = dimCdiv(N, tn);
  const tilesM = dimCdiv(M, tm);
  const rest = L.div(linear, lo.dim(tilesN));
  const batch = lo.delinearize(L.div(rest, lo.dim(tilesM)), batchShape);
  const m0 = L.mul(L.mod(rest, lo.dim(tilesM)), L.i32(tm));
  const n0 = L.mul(L.mod(linear, lo.dim(tilesN)), L.i32(tn));
  const [Me, Ne] = [lo.dim(M), lo.dim(N)];
  const ms = Array.from({ length: tm }, (_, i) => L.add(m0, L.i32(i)));
  const ns = Array.from({ length: tn }, (_, j) => L.add(n0, L.i32(j)));
  const mc = ms.map((m) => L.min(m, L.sub(Me, L.i32(1))));
  const nc = ns.map((n) => L.min(n, L.sub(Ne, L.i32(1))));
  return { tilesM, tilesN, tile: { batch, ms, ns, mc, nc, Me, Ne, t: scalarOf(mm.dtype) } };
}

/** uk: the parameter, or 8 for operands read through a decoding prologue (a compute node), else 1. */
function defaultUnroll(group: FusedGroup, params: ScheduleParams): number {
  return params.uk ? params.uk : group.inlined.some((n) => n.op === 'compute') ? 8 : 1;
}

/**
 * The K loops of a register-blocked tile into `into`: chunks of uk (k = kk * uk + u unrolled, so
 * packed loads are shared), then the K % uk tail. With stride 1 (one invocation per tile) whole
 * quantization groups come first where B's scale and zero allow it (accumulateGroups); with stride
 * s (split-K) invocation lid takes chunks and tail steps lid, lid + s, ...
 */
function kLoops(b: Build, o: KOperands, Ke: LExpr, uk: number, into: KStmt[], { stride }: { stride: number }): void {
  const offset = stride === 1 ? L.i32(0) : L.lid();
  const loopFrom = (e: LExpr) => b.emitter.emit(e, stride === 1 ? [b.top] : [b.top, b.thread]);
  const push = (v: string, from: LExpr, to: LExpr, body: KStmt[]) => {
    const f = loopFrom(from);
    const t = b.emitter.emit(to, [b.top]);
    if (!(f.k === 'lit' && t.k === 'lit' && f.v >= t.v)) into.push({ k: 'for', v, from: f, to: t, step: stride, body });
  };
  let tailFrom = offset;
  if (uk > 1) {
    const kk = L.variable('kk', 'i32', true);
    const chunkKs = (c: LExpr) => Array.from({ length: uk }, (_, u) => L.add(L.mul(c, L.i32(uk)), L.i32(u)));
    const chunks = L.div(Ke, L.i32(uk));
    let chunkFrom = offset;
    const P = stride === 1 ? groupPeriod(b, o, chunkKs(kk), kk) : undefined;
    if (P !== undefined) {
      const groups = L.div(chunks, L.i32(P));
      if (accumulateGroups(b, o, P, chunkKs, groups, into)) chunkFrom = L.mul(groups, L.i32(P));
    }
    const loop = new Scope(new Set(['kk']));
    accumulate(b, o, chunkKs(kk), [b.top, b.thread, loop]);
    push('kk', chunkFrom, chunks, loop.stmts);
    tailFrom = L.add(L.mul(chunks, L.i32(uk)), offset);
  }
  const k = L.variable('k', 'i32', true);
  const loop = new Scope(new Set(['k']));
  accumulate(b, o, [k], [b.top, b.thread, loop]);
  push('k', tailFrom, Ke, loop.stmts);
}

function matmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const { b, epi, mm } = startMatmul(group, names);
  const { batchShape, M } = matmulDims(mm);
  // M known (a shape constant, or a specialized dim): a micro-tile taller than M only repeats the
  // last row (GEMV: M = 1)
  const Mlit = b.lower.dim(M);
  const Mknown = typeof M === 'number' ? M : Mlit.k === 'lit' ? Mlit.v : undefined;
  const tm = Mknown !== undefined ? Math.min(params.tm, Mknown) : params.tm;
  const { tn } = params;
  const vec = params.vec ?? 0;
  if (vec !== 0 && (vec !== 4 || tn % 4 !== 0)) fail('E_ARG', `matmul vec=${vec} needs vec=4 and tn a multiple of 4, got tn=${tn}`);
  const { tilesM, tilesN, tile } = tileOf(b, L.tid(), mm, tm, tn);
  // M a constant, or assumed, multiple of tm: every tile is whole
  if (tm === 1 || L.knownMultiple(Mlit) % tm === 0) matmulTile(b, group, names, params, epi, tile);
  else partialTiles(b, group, names, params, epi, tile, tm);
  const threads = dimMul(dimProduct(batchShape), dimMul(tilesM, tilesN));
  return finish(group, names, b, threads, 'matmul', { tiled: 0, tm, tn, vec, ...(params.uk ? { uk: params.uk } : {}), workgroupSize: params.workgroupSize }, params.workgroupSize);
}

/**
 * A tm-row tile where the last row of tiles may be partial (M symbolic, or not a multiple of tm): a
 * tile with at most tm / 4 rows left (at least 1) runs a one-row body for each of them, instead of
 * computing its last row tm times over; any other runs the tm-row body (a partial one repeating its
 * last row). One decode token on an 8-row tile does one row's work. Each one-row pass reads B again:
 * measured on lavapipe at K = N = 1024 with an 8-row tile, 1 row took 0.38 ms one-row and 0.91 ms
 * as a tile, 2 rows 0.68 vs 0.91, 4 rows 1.27 vs 0.92. (Bodies for 4, 2 and 1 rows would cover the
 * middle but double the shader, and the software drivers' compilers take minutes over the largest
 * tiles.) The extra body costs whole tiles about 3% on lavapipe (matmul 512, symbolic M, same
 * process); a specialized M that is a multiple of tm has no partial tiles and no extra body.
 */
function partialTiles(b: Build, group: FusedGroup, names: BufferNames, params: ScheduleParams, epi: Epilogue, tile: Omit<Tile, 'accs'>, tm: number): void {
  const m0 = tile.ms[0]!;
  const thread = b.thread.vars;
  const full = new Scope(new Set(thread));
  matmulTile({ ...b, thread: full }, group, names, params, epi, tile);
  const rv = 'mr';
  const row = L.add(m0, L.variable(rv, 'i32', true));
  const part = new Scope(new Set([...thread, rv]));
  // every row of a one-row body is in bounds: no clamped copy
  matmulTile({ ...b, thread: part }, group, names, params, epi, { ...tile, ms: [row], mc: [row] });
  const left = L.sub(tile.Me, m0);
  const few = L.bin('gt', left, L.i32(Math.max(1, Math.floor(tm / 4))));
  b.emitter.countUses([few, left, left]);
  const cond = b.emitter.emit(few, [b.top, b.thread]);
  const to = b.emitter.emit(left, [b.top, b.thread]);
  b.thread.stmts.push({ k: 'if', cond, then: full.stmts, else: [{ k: 'for', v: rv, from: { k: 'lit', t: 'i32', v: 0 }, to, step: 1, body: part.stmts }] });
}

/**
 * The register-blocked body for one tile (its rows `tile.ms`, clamped `tile.mc`) into b.thread:
 * the vec4 path along N or along K where it applies (under a uniform test when the dims are not
 * known), else the scalar path, each followed by the tile's stores through the epilogue.
 */
function matmulTile(b: Build, group: FusedGroup, names: BufferNames, params: ScheduleParams, epi: Epilogue, tile: Omit<Tile, 'accs'>): void {
  const mm = group.contraction ?? group.root;
  const { A, B, K } = matmulDims(mm);
  const { tn } = params;
  const vec = params.vec ?? 0;
  const { batch, ms, ns, mc, nc, Ne, t } = tile;
  const lo = b.lower;
  const Ke = lo.dim(K);
  const n0 = ns[0]!;

  // The vectorized path reads B (and A, when it is a plain f32 buffer) four elements at a time: B
  // must be an f32 buffer in row-major [...batch, K, N] (no view, no prologue). It is taken when N
  // and K are multiples of 4 (a uniform test), so every row offset is a multiple of 4.
  const plain = (x: Node) => group.reads.includes(x) && x.dtype === 'f32';
  const vecB = vec === 4 && t === 'f32' && plain(B);
  // Otherwise, where both operands read four consecutive k with vec4 loads (B stored [N, K] and
  // read transposed: weights as [out, in], a GEMV), the vec4 path runs along K: vec4 partial sums
  // per output, their lanes added after the loop. Taken when K is a multiple of 4.
  const bufs32 = f32Reads(group, names);
  const kq = kqVar();
  const vecK = vec === 4 && t === 'f32' && !vecB && lanesVectorize(lo.valueAt(A, [...batch, mc[0]!, kq]), bufs32, Ke) && lanesVectorize(lo.valueAt(B, [...batch, kq, nc[0]!]), bufs32, Ke);
  const k4ok = L.bin('eq', L.mod(Ke, L.i32(4)), L.i32(0));
  const fastCond = vecB ? L.and(L.bin('eq', L.mod(Ne, L.i32(4)), L.i32(0)), k4ok) : vecK ? k4ok : L.lit('bool', 0);
  const fast = fastCond.k === 'lit' ? fastCond.v !== 0 : undefined; // known at compile time, or undefined
  const fastStmts: KStmt[] = [];
  const slowStmts: KStmt[] = fast === undefined ? [] : b.thread.stmts;

  // Both vec4 paths: a loop counting vec4 steps along K (kv), vec4 accumulators zeroed before it.
  // Every vec4 index is a hoisted base in vec4 units plus a multiple of kv (k4 = 4 kv), printed
  // without a shift (measured 1.1x on SwiftShader).
  const kv = L.variable('kv', 'i32', true);
  const loop = new Scope(new Set(['kv']));
  const chain = [b.top, b.thread, loop];
  const vt = 'vec4f' as const;
  const vvar = (name: string): KExpr => ({ k: 'var', t: vt, name });
  const vecAccs = (rows: number, cols: number): string[][] =>
    Array.from({ length: rows }, () =>
      Array.from({ length: cols }, () => {
        const name = b.emitter.fresh('cv');
        fastStmts.push({ k: 'let', name, t: vt, init: { k: 'splat', t: vt, a: { k: 'lit', t: 'f32', v: 0 } }, mut: true });
        return name;
      }),
    );
  const pushLoop = () => {
    const steps = L.div(Ke, L.i32(4));
    b.emitter.countUses([steps, steps]); // a let outside the loop, not a division per iteration
    fastStmts.push({ k: 'for', v: 'kv', from: { k: 'lit', t: 'i32', v: 0 }, to: b.emitter.emit(steps, [b.top]), step: 1, body: loop.stmts });
  };

  if (vecK && fast !== false) {
    const memo = new Map<LExpr, KExpr>();
    const av = mc.map((m) => vectorizeLanes(b, lo.valueAt(A, [...batch, m, kq]), kv, Ke, bufs32, chain, loop, memo));
    const bv = nc.map((n) => vectorizeLanes(b, lo.valueAt(B, [...batch, kq, n]), kv, Ke, bufs32, chain, loop, memo));
    const vaccs = vecAccs(mc.length, nc.length);
    vaccs.forEach((row, i) => row.forEach((name, j) => loop.stmts.push({ k: 'set', name, value: { k: 'fma4', t: vt, a: av[i]!, b: bv[j]!, c: vvar(name) } })));
    pushLoop();
    const lane = (name: string, q: 0 | 1 | 2 | 3): KExpr => ({ k: 'comp', t: 'f32', a: { k: 'var', t: vt, name }, i: q });
    const add = (x: KExpr, y: KExpr): KExpr => ({ k: 'bin', t: 'f32', op: 'add', a: x, b: y });
    const accs = vaccs.map((row) =>
      row.map((name) => {
        const c = b.emitter.fresh('c');
        fastStmts.push({ k: 'let', name: c, t, init: add(add(lane(name, 0), lane(name, 1)), add(lane(name, 2), lane(name, 3))), mut: false });
        return c;
      }),
    );
    storeTile(b, group, epi, { ...tile, accs }, fastStmts);
    if (fast) b.thread.stmts.push(...fastStmts);
  } else if (fast !== false) {
    const kks = [0, 1, 2, 3] as const;
    const quarter = (x: LExpr) => L.div(x, L.i32(4));
    // loads below take vec4 numbers q (quadIndex: element index 4 * q)
    // A: one vec4 per row (its four k values as lanes), or four scalar values through its view
    const vecA = plain(A);
    let aAt: (i: number, kk: 0 | 1 | 2 | 3) => KExpr;
    if (vecA) {
      const names4 = mc.map((m) => {
        const name = b.emitter.fresh('a');
        const idx = quadIndex(b, L.add(quarter(lo.linearize([...batch, m, L.i32(0)], A.shape)), kv), chain);
        loop.stmts.push({ k: 'let', name, t: vt, init: { k: 'load4', t: vt, buf: names.readOf(A), index: idx }, mut: false });
        return name;
      });
      aAt = (i, kk) => ({ k: 'comp', t: 'f32', a: vvar(names4[i]!), i: kk });
    } else {
      // A read through a prologue: its value at four consecutive k, vectorized where it can be
      const memo = new Map<LExpr, KExpr>(); // shared by the rows: a column factor is loaded once
      const vecs = mc.map((m) => vectorizeLanes(b, lo.valueAt(A, [...batch, m, kq]), kv, Ke, bufs32, chain, loop, memo));
      aAt = (i, kk) => ({ k: 'comp', t: 'f32', a: vecs[i]!, i: kk });
    }
    // B: for each k, tn / 4 vec4s along N, at a column clamped to N - 4 (a multiple of 4): vec4
    // number (row of B) * N/4 + column/4
    const cols = Array.from({ length: tn / 4 }, (_, j) => L.min(L.add(n0, L.i32(4 * j)), L.sub(Ne, L.i32(4))));
    const rowsB = B.shape.slice(0, -1);
    // kv * (4 N/4) + ((batch row + kk) * N/4 + column/4): one add per load, the rest hoisted
    const bIdx = kks.map((kk) => cols.map((n) => L.add(L.mul(kv, L.mul(L.i32(4), quarter(Ne))), L.add(L.mul(lo.linearize([...batch, L.i32(kk)], rowsB), quarter(Ne)), quarter(n)))));
    b.emitter.countUses(bIdx.flat());
    const bNames = bIdx.map((row) =>
      row.map((q) => {
        const name = b.emitter.fresh('b');
        loop.stmts.push({ k: 'let', name, t: vt, init: { k: 'load4', t: vt, buf: names.readOf(B), index: quadIndex(b, q, chain) }, mut: false });
        return name;
      }),
    );
    const vaccs = vecAccs(mc.length, cols.length);
    vaccs.forEach((row, i) =>
      row.forEach((name, j) => {
        let acc: KExpr = vvar(name);
        for (const kk of kks) acc = { k: 'fma4', t: vt, a: { k: 'splat', t: vt, a: aAt(i, kk) }, b: vvar(bNames[kk]![j]!), c: acc };
        loop.stmts.push({ k: 'set', name, value: acc });
      }),
    );
    pushLoop();
    // the lanes as scalar accumulators, stored through the epilogue like the scalar path's
    const accs = vaccs.map((row) =>
      row.flatMap((name) =>
        kks.map((q) => {
          const s = b.emitter.fresh('c');
          fastStmts.push({ k: 'let', name: s, t, init: { k: 'comp', t: 'f32', a: vvar(name), i: q }, mut: false });
          return s;
        }),
      ),
    );
    // the stores follow the K loop (when the vector path is known to apply, it is the whole body)
    if (group.root.dtype === 'f32') storeTile4(b, group, epi, { ...tile, accs }, fastStmts);
    else storeTile(b, group, epi, { ...tile, accs }, fastStmts);
    if (fast) b.thread.stmts.push(...fastStmts);
  }

  if (fast !== true) {
    const accs: string[][] = ms.map(() => ns.map(() => b.emitter.fresh('c')));
    for (const row of accs) for (const name of row) slowStmts.push({ k: 'let', name, t, init: { k: 'lit', t, v: 0 }, mut: true });
    const operands: KOperands = { A, B, batch, mc, nc, t, accs };
    kLoops(b, operands, Ke, defaultUnroll(group, params), slowStmts, { stride: 1 });
    storeTile(b, group, epi, { ...tile, accs }, slowStmts);
  }
  if (fast === undefined) b.thread.stmts.push({ k: 'if', cond: b.emitter.emit(fastCond, [b.top]), then: fastStmts, else: slowStmts });
}

/**
 * Split-K matmul for skinny shapes (GEMV, small batches): one workgroup per tm x tn output tile; its
 * invocations stride over K (in chunks of uk, so adjacent invocations read adjacent packed words and
 * weights), each accumulating a partial tile, then the partials are summed across the workgroup
 * (coop = 1: a tree in workgroup memory; coop = 2: subgroup operations, the workgroup one subgroup)
 * and invocation 0 stores the tile through the epilogue.
 */
function splitKMatmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const wg = params.workgroupSize;
  if (wg & (wg - 1)) fail('E_ARG', `a split-K matmul needs a power-of-two workgroup size, got ${wg}`);
  const { b, epi, mm } = startMatmul(group, names);
  const subgroup = params.coop === 2;
  const coop = { scope: b.thread, wg, shared: b.shared, subgroup };
  const { A, B, batchShape, M, N, K } = matmulDims(mm);
  const tm = typeof M === 'number' ? Math.min(params.tm, M) : params.tm;
  const tn = typeof N === 'number' ? Math.min(params.tn, N) : params.tn;
  const { tilesM, tilesN, tile } = tileOf(b, L.wid(), mm, tm, tn);
  const { batch, ms, ns, mc, nc, t } = tile;
  const Ke = b.lower.dim(K);
  const accs: string[][] = ms.map(() => ns.map(() => b.emitter.fresh('c')));
  for (const row of accs) for (const name of row) b.thread.stmts.push({ k: 'let', name, t, init: { k: 'lit', t, v: 0 }, mut: true });
  const operands: KOperands = { A, B, batch, mc, nc, t, accs };
  kLoops(b, operands, Ke, defaultUnroll(group, params), b.thread.stmts, { stride: wg });
  // partial tiles summed across the workgroup; invocation 0 stores
  const sums = b.emitter.combineSums(coop, b.thread, accs.flat().map((name): KExpr => ({ k: 'var', t, name })), t);
  const total = accs.map((row, i) =>
    row.map((_, j) => {
      const name = b.emitter.fresh('s');
      b.thread.stmts.push({ k: 'let', name, t, init: sums[i * tn + j]!, mut: false });
      return name;
    }),
  );
  const stores: KStmt[] = [];
  storeTile(b, group, epi, { ...tile, accs: total }, stores);
  b.thread.stmts.push({ k: 'if', cond: { k: 'bin', t: 'bool', op: 'eq', a: { k: 'lid' }, b: { k: 'lit', t: 'i32', v: 0 } }, then: stores, else: [] });
  const threads = dimMul(dimMul(dimProduct(batchShape), dimMul(tilesM, tilesN)), wg);
  const kern = finish(group, names, b, threads, 'matmul_splitk', { coop: params.coop, tm, tn, ...(params.uk ? { uk: params.uk } : {}), workgroupSize: wg }, wg, true);
  return subgroup ? { ...kern, subgroup: true } : kern;
}

/**
 * The BM x BN output block a workgroup owns (blocks along N fastest, then M, then the batch): the
 * block counts, the block's row and column indices and its batch indices.
 */
export function blockOf(b: Build, mm: Node, BM: number, BN: number): { groupsM: Dim; groupsN: Dim; gm: LExpr; gn: LExpr; batch: LExpr[] } {
  const { batchShape, M, N } = matmulDims(mm);
  const lo = b.lower;
  const groupsN = dimCdiv(N, BN);
  const groupsM = dimCdiv(M, BM);
  const gn = L.mod(L.wid(), lo.dim(groupsN));
  const rest = L.div(L.wid(), lo.dim(groupsN));
  const gm = L.mod(rest, lo.dim(groupsM));
  return { groupsM, groupsN, gm, gn, batch: lo.delinearize(L.div(rest, lo.dim(groupsM)), batchShape) };
}

/**
 * The values a block stages for K tile `tile` (K tiles of bk) of a BM x BN block: A at (row, col) of
 * its BM x bk tile and B at (row, col) of its bk x BN tile, read through the operands' views and
 * prologues at clamped indices, `zero` outside the matrices.
 */
export function tileOperands(b: Build, mm: Node, { gm, gn, batch }: { gm: LExpr; gn: LExpr; batch: readonly LExpr[] }, BM: number, BN: number, bk: number, tile: LExpr, zero: LExpr): { a: (row: LExpr, col: LExpr) => LExpr; b: (row: LExpr, col: LExpr) => LExpr } {
  const { A, B, M, N, K } = matmulDims(mm);
  const lo = b.lower;
  const [Me, Ne, Ke] = [lo.dim(M), lo.dim(N), lo.dim(K)];
  const kBase = L.mul(tile, L.i32(bk));
  return {
    a: (row, col) => {
      const m = L.add(L.mul(gm, L.i32(BM)), row);
      const k = L.add(kBase, col);
      return L.select(L.and(L.lt(m, Me), L.lt(k, Ke)), lo.valueAt(A, [...batch, L.clampIndex(m, Me), L.clampIndex(k, Ke)]), zero);
    },
    b: (row, col) => {
      const k = L.add(kBase, row);
      const n = L.add(L.mul(gn, L.i32(BN)), col);
      return L.select(L.and(L.lt(k, Ke), L.lt(n, Ne)), lo.valueAt(B, [...batch, L.clampIndex(k, Ke), L.clampIndex(n, Ne)]), zero);
    },
  };
}

/**
 * The staging of a K-tiled matmul (`stageTiles` stages both operand tiles of a K tile at given
 * buffer offsets). One buffer: tile kt is staged at the top of iteration kt, then a barrier (the
 * schedule ends the iteration with another: the next tile overwrites this one). Double-buffered
 * (`db`): tile 0 is staged before the loop; iteration kt stages tile kt + 1 into the other buffer
 * under a uniform test, reads this one, and its closing barrier is the only one: everyone is done
 * reading this buffer before the next iteration overwrites it, and the next tile is in place.
 * Returns this iteration's offsets into the A and B arrays.
 */
export function stageKTiles(b: Build, ktScope: Scope, kt: LExpr, tiles: LExpr, db: boolean, [sizeA, sizeB]: readonly [number, number], stageTiles: (chain: readonly Scope[], tile: LExpr, offA: LExpr, offB: LExpr) => void): [LExpr, LExpr] {
  if (!db) {
    stageTiles([b.top, b.thread, ktScope], kt, L.i32(0), L.i32(0));
    ktScope.stmts.push({ k: 'barrier' });
    return [L.i32(0), L.i32(0)];
  }
  stageTiles([b.top, b.thread], L.i32(0), L.i32(0), L.i32(0));
  b.thread.stmts.push({ k: 'barrier' });
  const next = L.add(kt, L.i32(1));
  const parity = (x: LExpr) => L.mod(x, L.i32(2));
  const prefetch = new Scope(new Set());
  stageTiles([b.top, b.thread, ktScope, prefetch], next, L.mul(parity(next), L.i32(sizeA)), L.mul(parity(next), L.i32(sizeB)));
  const more = L.lt(next, tiles);
  b.emitter.countUses([more]);
  ktScope.stmts.push({ k: 'if', cond: b.emitter.emit(more, [b.top, b.thread, ktScope]), then: prefetch.stmts, else: [] });
  return [L.mul(parity(kt), L.i32(sizeA)), L.mul(parity(kt), L.i32(sizeB))];
}

/**
 * Workgroup-memory tiled matmul: a workgroup of wm x wn invocations computes a (wm*tm) x (wn*tn)
 * block of the output; per K tile of bk, the workgroup stages the A and B tiles in shared memory
 * (zero outside the matrix), synchronises, and each invocation accumulates its tm x tn micro-tile
 * from shared memory. Guards on the workgroup index keep barriers in uniform control flow.
 */
function tiledMatmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const { b, epi, mm } = startMatmul(group, names);
  const { batchShape, M, N, K } = matmulDims(mm);
  const { tm, tn, wm, wn, bk } = params;
  const wg = wm * wn;
  const BM = tm * wm;
  const BN = tn * wn;
  const lo = b.lower;
  const { groupsM, groupsN, gm, gn, batch } = blockOf(b, mm, BM, BN);
  const tx = L.mod(L.lid(), L.i32(wn));
  const ty = L.div(L.lid(), L.i32(wn));
  const Me = lo.dim(M);
  const Ne = lo.dim(N);
  const t = scalarOf(mm.dtype);
  const db = params.db === 1;
  const sa = b.emitter.fresh('sa');
  const sb = b.emitter.fresh('sb');
  const sizeA = BM * bk;
  const sizeB = bk * BN;
  b.shared.push({ name: sa, t, size: db ? 2 * sizeA : sizeA }, { name: sb, t, size: db ? 2 * sizeB : sizeB });
  const accs: string[][] = Array.from({ length: tm }, () => Array.from({ length: tn }, () => b.emitter.fresh('c')));
  for (const row of accs) for (const name of row) b.thread.stmts.push({ k: 'let', name, t, init: { k: 'lit', t, v: 0 }, mut: true });

  const zero = L.lit(t, 0);
  const kt = L.variable('kt', 'i32', true);
  const ktScope = new Scope(new Set(['kt']));
  // Cooperative loads of one tile into `scope`: element e = l * wg + lid of a rows x cols tile,
  // e < rows * cols, stored at arr[off + e].
  const stage = (chain: readonly Scope[], arr: string, off: LExpr, rows: number, cols: number, value: (row: LExpr, col: LExpr) => LExpr) => {
    const scope = chain[chain.length - 1]!;
    const lv = b.emitter.fresh('l');
    const ev = b.emitter.fresh('e');
    const loop = new Scope(new Set([lv]));
    const guard = new Scope(new Set([ev]));
    const e = L.variable(ev);
    const v = value(L.div(e, L.i32(cols)), L.mod(e, L.i32(cols)));
    const at = L.add(off, e);
    b.emitter.countUses([v, at]);
    const inner = [...chain, loop, guard];
    const vk = b.emitter.emit(v, inner);
    guard.stmts.push({ k: 'sstore', arr, index: b.emitter.emit(at, inner), value: vk });
    const start = b.emitter.emit(L.add(L.mul(L.variable(lv), L.i32(wg)), L.lid()), [...chain, loop]);
    loop.stmts.push({ k: 'let', name: ev, t: 'i32', init: start, mut: false });
    loop.stmts.push({ k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: { k: 'var', t: 'i32', name: ev }, b: { k: 'lit', t: 'i32', v: rows * cols } }, then: guard.stmts, else: [] });
    scope.stmts.push({ k: 'for', v: lv, from: { k: 'lit', t: 'i32', v: 0 }, to: { k: 'lit', t: 'i32', v: Math.ceil((rows * cols) / wg) }, step: 1, body: loop.stmts });
  };
  // Both operand tiles of K tile `tile` (zero outside the matrices), at offsets offA and offB.
  const stageTiles = (chain: readonly Scope[], tile: LExpr, offA: LExpr, offB: LExpr) => {
    const { a, b: bAt } = tileOperands(b, mm, { gm, gn, batch }, BM, BN, bk, tile, zero);
    stage(chain, sa, offA, BM, bk, a);
    stage(chain, sb, offB, bk, BN, bAt);
  };
  const tiles = lo.dim(dimCdiv(K, bk));
  const i32 = (v: number): KExpr => ({ k: 'lit', t: 'i32', v });
  const offs = stageKTiles(b, ktScope, kt, tiles, db, [sizeA, sizeB], stageTiles);
  // this tile's offsets, bound once per tile (not recomputed per kk)
  b.emitter.countUses([...offs, ...offs]);
  const [curA, curB] = offs.map((o) => b.emitter.emit(o, [b.top, b.thread, ktScope])) as [KExpr, KExpr];
  // Accumulate the micro-tile from shared memory.
  const kk: KExpr = { k: 'var', t: 'i32', name: 'kk' };
  const tyK = b.emitter.emit(ty, [b.top, b.thread]);
  const txK = b.emitter.emit(tx, [b.top, b.thread]);
  const add = (a: KExpr, c: KExpr): KExpr => (c.k === 'lit' && c.v === 0 ? a : { k: 'bin', t: 'i32', op: 'add', a, b: c });
  const mul = (a: KExpr, c: KExpr): KExpr => ({ k: 'bin', t: 'i32', op: 'mul', a, b: c });
  const inner: KStmt[] = [];
  const aNames = accs.map((_, i) => {
    const name = `a${i}`;
    inner.push({ k: 'let', name, t, init: { k: 'sload', t, arr: sa, index: add(add(mul(add(mul(tyK, i32(tm)), i32(i)), i32(bk)), kk), curA) }, mut: false });
    return name;
  });
  const bNames = accs[0]!.map((_, j) => {
    const name = `b${j}`;
    inner.push({ k: 'let', name, t, init: { k: 'sload', t, arr: sb, index: add(add(mul(kk, i32(BN)), add(mul(txK, i32(tn)), i32(j))), curB) }, mut: false });
    return name;
  });
  accs.forEach((row, i) =>
    row.forEach((name, j) => {
      const acc: KExpr = { k: 'var', t, name };
      inner.push({ k: 'set', name, value: { k: 'bin', t, op: 'add', a: acc, b: { k: 'bin', t, op: 'mul', a: { k: 'var', t, name: aNames[i]! }, b: { k: 'var', t, name: bNames[j]! } } } });
    }),
  );
  ktScope.stmts.push({ k: 'for', v: 'kk', from: i32(0), to: i32(bk), step: 1, body: inner });
  ktScope.stmts.push({ k: 'barrier' });
  b.thread.stmts.push({ k: 'for', v: 'kt', from: i32(0), to: b.emitter.emit(tiles, [b.top]), step: 1, body: ktScope.stmts });

  const m0 = L.add(L.mul(gm, L.i32(BM)), L.mul(ty, L.i32(tm)));
  const n0 = L.add(L.mul(gn, L.i32(BN)), L.mul(tx, L.i32(tn)));
  const ms = Array.from({ length: tm }, (_, i) => L.add(m0, L.i32(i)));
  const ns = Array.from({ length: tn }, (_, j) => L.add(n0, L.i32(j)));
  const mc = ms.map((m) => L.min(m, L.sub(Me, L.i32(1))));
  const nc = ns.map((n) => L.min(n, L.sub(Ne, L.i32(1))));
  storeTile(b, group, epi, { batch, ms, ns, mc, nc, Me, Ne, accs, t });
  const threads = dimMul(dimMul(dimProduct(batchShape), dimMul(groupsM, groupsN)), wg);
  return finish(group, names, b, threads, 'matmul_tiled', { tm, tn, wm, wn, bk, ...(db ? { db: 1 } : {}), workgroupSize: wg }, wg, true);
}

/**
 * Cooperative rows: one workgroup per row (for 'reduce', per output element). Reductions of the row
 * are split across the workgroup and combined through workgroup memory (Emitter.coop), and the
 * row's elements are written by the invocations in turn. Guards use the workgroup index, so every
 * barrier is in uniform control flow. Per-row results are written by invocation 0.
 */
function cooperativeSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const wg = params.workgroupSize;
  if (wg & (wg - 1)) fail('E_ARG', `a cooperative schedule needs a power-of-two workgroup size, got ${wg}`);
  const b = start(group, names);
  const subgroup = params.coop === 2;
  b.emitter.coop = { scope: b.thread, wg, shared: b.shared, subgroup };
  const root = group.root;
  const isRow = group.kind === 'row';
  const r = root.shape.length;
  const outer = isRow ? root.shape.slice(0, r - 1) : root.shape;
  const rowIdx = b.lower.delinearize(L.wid(), outer);
  const first: KExpr = { k: 'bin', t: 'bool', op: 'eq', a: { k: 'lid' }, b: { k: 'lit', t: 'i32', v: 0 } };
  const perRow = (x: Node, xIdx: LExpr[]) => {
    // computed by every invocation (its reductions are cooperative), written by one
    const v = L.cast(scalarOf(x.dtype), b.lower.compute(x, xIdx));
    const index = b.lower.linearize(xIdx, x.shape);
    b.emitter.countUses([v, index]);
    const val = b.emitter.emit(v, [b.top, b.thread]);
    const idx = b.emitter.emit(index, [b.top, b.thread]);
    b.thread.stmts.push({ k: 'if', cond: first, then: [{ k: 'store', buf: names.writeOf(x), index: idx, value: val }], else: [] });
  };
  if (!isRow) {
    perRow(root, rowIdx);
  } else {
    const loop = new Scope(new Set(['j0']));
    const j = L.variable('j0');
    const idx = [...rowIdx, j];
    storeAll(b, group, names, [b.top, b.thread, loop], idx, b.lower.linearize(idx, root.shape));
    b.thread.stmts.push({ k: 'for', v: 'j0', from: { k: 'lid' }, to: b.emitter.emit(b.lower.dim(root.shape[r - 1]!), [b.top, b.thread]), step: wg, body: loop.stmts });
    for (const x of group.extra ?? []) {
      if (shapeEq(x.shape, root.shape)) continue;
      perRow(x, x.shape.length === r ? [...rowIdx, L.i32(0)] : rowIdx);
    }
  }
  const threads = dimMul(dimProduct(outer), wg);
  const k = finish(group, names, b, threads, isRow ? 'row_coop' : 'reduce_coop', { coop: params.coop, workgroupSize: wg }, wg, true);
  return subgroup ? { ...k, subgroup: true } : k;
}
