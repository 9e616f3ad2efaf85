/**
 * The tensor-core matmul schedule (ScheduleParams.mma = 1) for f16 x f16 matmuls: a warp kernel
 * (Kernel.warp) whose invocations are warps. A block of wm x wn warps computes a BM x BN block of
 * the output, BM = 16 fm wm and BN = 16 fn wn; each warp holds fm x fn f32 accumulator tiles of 16 x
 * 16. Per K tile of bk (a multiple of 16) the block stages A (BM x bk) and B (bk x BN) in half
 * shared arrays (zero outside the matrices, so any M, N, K work), synchronises, and each warp runs
 * bk / 16 steps of fm a-tile loads, fn b-tile loads and fm x fn mma. With db = 1 the arrays are
 * doubled and tile kt + 1 is staged into one while tile kt is read from the other. The epilogue goes tile by tile
 * through a per-warp f32 staging area, the warp's lanes splitting the 256 elements, each guarded
 * and stored through the group's epilogue (bias, activation, residual, cast).
 *
 * CUDA prints WMMA (nvcuda::wmma, m16n16k16, sm_70+); the CPU and WebGPU backends run each warp as
 * one invocation and the mma statements as loops over the same f16-rounded values, so the reference
 * property tests cover this schedule on every backend. Staging rows are padded by 8 halves (16
 * bytes), the usual cure for shared-memory bank conflicts of tensor-core tile loads.
 */
import { fail } from '../errors.js';
import { isFloat, isHalf } from '../ir/dtype.js';
import { dimCdiv, dimMul, dimProduct } from '../ir/dims.js';
import type { KExpr, KFragment, Kernel, KStmt } from '../ir/kernel.js';
import { scalarOf } from '../ir/kernel.js';
import { Scope } from './emit.js';
import type { FusedGroup } from './fuse.js';
import * as L from './lexpr.js';
import type { LExpr } from './lexpr.js';
import { blockOf, finish, matmulDims, stageKTiles, startMatmul, tileOperands, type BufferNames, type ScheduleParams } from './schedule.js';

/** Warps per block and tiles per warp when a caller asks for mma without saying: a 64 x 64 block of four warps, K tiles of 32. */
export const MMA_DEFAULTS = { wm: 2, wn: 2, fm: 2, fn: 2, bk: 32 } as const;

/** Can the group's matmul run on tensor cores: both operands f16 or both bf16 (any view or prologue), a float output, one output? */
export function mmaApplies(group: FusedGroup): boolean {
  if (group.kind !== 'matmul') return false;
  const mm = group.contraction ?? group.root;
  const [A, B] = mm.args;
  return A !== undefined && isHalf(A.dtype) && B?.dtype === A.dtype && isFloat(group.root.dtype) && !(group.extra ?? []).length;
}

/** The 16-bit type of a matmul tensor cores can take (mmaApplies), else undefined. */
export function mmaHalf(group: FusedGroup): 'f16' | 'bf16' | undefined {
  return mmaApplies(group) ? ((group.contraction ?? group.root).args[0]!.dtype === 'bf16' ? 'bf16' : 'f16') : undefined;
}

/** Whether a target's tensor cores take the group's matmul: f16 where it has them, bf16 where they also take bf16 (sm_80+). */
export function tensorCoresTake(group: FusedGroup, target: { readonly tensorCores?: boolean; readonly bf16TensorCores?: boolean }): boolean {
  const half = mmaHalf(group);
  return half !== undefined && target.tensorCores === true && (half === 'f16' || target.bf16TensorCores === true);
}

const PAD = 8;

/** A tile staged from a plain f16 operand by 8-half copies (see stageCopy). */
interface TileCopy {
  readonly buf: string;
  /** The tile's first row and column in the operand matrix, and the matrix's rows and columns. */
  readonly row0: LExpr;
  readonly col0: LExpr;
  readonly rows: LExpr;
  readonly cols: LExpr;
  readonly src: (row: LExpr, col: LExpr) => LExpr;
}
const i32 = (v: number): KExpr => ({ k: 'lit', t: 'i32', v });

export function mmaMatmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  if (!mmaApplies(group)) fail('E_INTERNAL', `the mma schedule got a matmul of ${group.root.dtype} that is not f16 x f16 or bf16 x bf16`);
  const wm = params.wm;
  const wn = params.wn;
  const fm = params.fm ?? MMA_DEFAULTS.fm;
  const fn = params.fn ?? MMA_DEFAULTS.fn;
  const bk = params.bk;
  for (const [k, v] of Object.entries({ wm, wn, fm, fn, bk })) if (!Number.isInteger(v) || v < 1) fail('E_ARG', `mma schedule: ${k} must be a positive integer, got ${v}`);
  if (bk % 16 !== 0) fail('E_ARG', `mma schedule: bk must be a multiple of 16 (the tensor-core K step), got ${bk}`);
  const W = wm * wn;
  if (W * 32 > 1024) fail('E_ARG', `mma schedule: wm x wn = ${W} warps is ${W * 32} threads per block, more than 1024`);

  const { b, epi, mm } = startMatmul(group, names);
  const { batchShape, M, N, K } = matmulDims(mm);
  const lo = b.lower;
  const BM = 16 * fm * wm;
  const BN = 16 * fn * wn;
  const lda = bk + PAD;
  const ldb = BN + PAD;
  const { groupsM, groupsN, gm, gn, batch } = blockOf(b, mm, BM, BN);
  const [Me, Ne] = [lo.dim(M), lo.dim(N)];
  const sa = b.emitter.fresh('sa');
  const sb = b.emitter.fresh('sb');
  const stg = b.emitter.fresh('stg');
  const db = params.db === 1;
  const sizeA = BM * lda;
  const sizeB = bk * ldb;
  const bufs = db ? 2 : 1;
  const half = mmaHalf(group)!;
  b.shared.push({ name: sa, t: 'f32', size: bufs * sizeA, half }, { name: sb, t: 'f32', size: bufs * sizeB, half }, { name: stg, t: 'f32', size: W * 256 });

  const fragments: KFragment[] = [];
  const frag = (use: KFragment['use'], prefix: string) => {
    const name = b.emitter.fresh(prefix);
    fragments.push(use === 'acc' || half === 'f16' ? { name, use } : { name, use, half });
    return name;
  };
  const accs = Array.from({ length: fm }, () => Array.from({ length: fn }, () => frag('acc', 'fc')));
  const fa = Array.from({ length: fm }, () => frag('a', 'fa'));
  const fb = Array.from({ length: fn }, () => frag('b', 'fb'));
  for (const row of accs) for (const c of row) b.thread.stmts.push({ k: 'mmaFill', frag: c });

  // The block's 32 W threads take consecutive items of a tile (coalesced reads): item e of `total`
  // is done by lane e % 32 of warp (e / 32) % W, in ceil(total / 32 W) rounds.
  const kt = L.variable('mkt', 'i32', true);
  const ktScope = new Scope(['mkt']);
  const acrossBlock = (chain: readonly Scope[], total: number, item: (e: LExpr, chain: readonly Scope[]) => KStmt) => {
    const cv = b.emitter.fresh('ml');
    const jv = b.emitter.fresh('mj');
    const outer = new Scope([cv]);
    const lanes = new Scope([jv]);
    const e = L.add(L.mul(L.add(L.mul(L.variable(cv, 'i32', true), L.i32(W)), L.lid()), L.i32(32)), L.variable(jv, 'i32', true, 32));
    const laneChain = [...chain, outer, lanes];
    const guarded = total % (32 * W) !== 0;
    const inner = guarded ? new Scope([]) : lanes;
    inner.stmts.push(item(e, guarded ? [...laneChain, inner] : laneChain));
    if (guarded) lanes.stmts.push({ k: 'if', cond: b.emitter.emit(L.lt(e, L.i32(total)), laneChain), then: inner.stmts, else: [] });
    outer.stmts.push({ k: 'for', v: jv, from: i32(0), to: i32(32), step: 1, body: lanes.stmts, lanes: true });
    chain[chain.length - 1]!.stmts.push({ k: 'for', v: cv, from: i32(0), to: i32(Math.ceil(total / (32 * W))), step: 1, body: outer.stmts });
  };
  // Element by element: element e of a rows x cols tile goes to arr[off + (e / cols) * ld + e % cols].
  const stage = (chain: readonly Scope[], arr: string, off: LExpr, rows: number, cols: number, ld: number, value: (row: LExpr, col: LExpr) => LExpr) =>
    acrossBlock(chain, rows * cols, (e, at) => {
      const [row, col] = [L.div(e, L.i32(cols)), L.mod(e, L.i32(cols))];
      const v = value(row, col);
      const index = L.add(off, L.add(L.mul(row, L.i32(ld)), col));
      b.emitter.countUses([v, index]);
      return { k: 'sstore', arr, index: b.emitter.emit(index, at), value: b.emitter.emit(v, at) };
    });
  // Eight halves at a time (scopy8: 16-byte and, on sm_80+, asynchronous copies) from a plain f16
  // operand whose rows are a multiple of 8 long: chunk e covers columns 8 (e % (cols / 8)) + 0..7 of
  // tile row e / (cols / 8), all inside the matrix or all outside (zeros). `src` is the operand's
  // element index at a matrix (row, col), both clamped into it so every address is valid.
  const stageCopy = (chain: readonly Scope[], arr: string, off: LExpr, rows: number, cols: number, ld: number, copy: TileCopy) =>
    acrossBlock(chain, (rows * cols) / 8, (e, at) => {
      const per = cols / 8;
      const [row, col] = [L.div(e, L.i32(per)), L.mul(L.mod(e, L.i32(per)), L.i32(8))];
      const [gr, gc] = [L.add(copy.row0, row), L.add(copy.col0, col)];
      const src = copy.src(L.min(gr, L.sub(copy.rows, L.i32(1))), L.min(gc, L.sub(copy.cols, L.i32(8))));
      const valid = L.and(L.lt(gr, copy.rows), L.lt(gc, copy.cols));
      const index = L.add(off, L.add(L.mul(row, L.i32(ld)), col));
      b.emitter.countUses([src, valid, index]);
      return { k: 'scopy8', arr, index: b.emitter.emit(index, at), buf: copy.buf, src: b.emitter.emit(src, at), valid: b.emitter.emit(valid, at) };
    });
  // Where an operand is a plain f16 buffer: the copy path under a uniform test of its row length
  // (K for A, N for B) being a multiple of 8, the element path otherwise.
  const bufOf = (x: typeof mm) => (group.reads.includes(x) && x.dtype === half ? names.readOf(x) : undefined);
  const [bufA, bufB] = [bufOf(mm.args[0]!), bufOf(mm.args[1]!)];
  const [Ke] = [lo.dim(K)];
  const eight = (d: LExpr) => L.bin('eq', L.mod(d, L.i32(8)), L.i32(0));
  const operand = (chain: readonly Scope[], arr: string, off: LExpr, rows: number, cols: number, ld: number, value: (row: LExpr, col: LExpr) => LExpr, copy: TileCopy | undefined, cond: LExpr) => {
    if (!copy || (cond.k === 'lit' && cond.v === 0)) return stage(chain, arr, off, rows, cols, ld, value);
    if (cond.k === 'lit') return stageCopy(chain, arr, off, rows, cols, ld, copy);
    const [fast, slow] = [new Scope([]), new Scope([])];
    stageCopy([...chain, fast], arr, off, rows, cols, ld, copy);
    stage([...chain, slow], arr, off, rows, cols, ld, value);
    chain[chain.length - 1]!.stmts.push({ k: 'if', cond: b.emitter.emit(cond, chain), then: fast.stmts, else: slow.stmts });
  };
  const zero = L.lit('f32', 0);
  const loadIndex = (x: LExpr): LExpr => (x.k === 'load' ? x.index : fail('E_INTERNAL', 'mma staging: a plain operand that is not a load'));
  // Both operand tiles of K tile `tile` (zero outside the matrices), at offsets offA and offB.
  const stageTiles = (chain: readonly Scope[], tile: LExpr, offA: LExpr, offB: LExpr) => {
    const { a, b: bAt } = tileOperands(b, mm, { gm, gn, batch }, BM, BN, bk, tile, zero);
    const k0 = L.mul(tile, L.i32(bk));
    const copyA = bufA ? { buf: bufA, row0: L.mul(gm, L.i32(BM)), col0: k0, rows: Me, cols: Ke, src: (r: LExpr, c: LExpr) => loadIndex(lo.valueAt(mm.args[0]!, [...batch, r, c])) } : undefined;
    const copyB = bufB ? { buf: bufB, row0: k0, col0: L.mul(gn, L.i32(BN)), rows: Ke, cols: Ne, src: (r: LExpr, c: LExpr) => loadIndex(lo.valueAt(mm.args[1]!, [...batch, r, c])) } : undefined;
    operand(chain, sa, offA, BM, bk, lda, a, copyA, eight(Ke));
    operand(chain, sb, offB, bk, BN, ldb, bAt, copyB, eight(Ne));
  };
  const tiles = lo.dim(dimCdiv(K, bk));
  // double-buffered (db) as in the tiled schedule: tile kt + 1 is staged into the other buffer
  // while this one feeds the tensor cores, one barrier per tile
  const [curA, curB] = stageKTiles(b, ktScope, kt, tiles, db, [sizeA, sizeB], stageTiles);

  // bk / 16 tensor-core steps per staged tile; warp (wy, wx) of the block owns rows wy * 16 fm + 16 i
  // and columns wx * 16 fn + 16 j
  const wy = L.div(L.lid(), L.i32(wn));
  const wx = L.mod(L.lid(), L.i32(wn));
  const kk = L.variable('mks', 'i32', true);
  const kkScope = new Scope(new Set(['mks']));
  const kkChain = [b.top, b.thread, ktScope, kkScope];
  const offA = fa.map((_, i) => L.add(curA, L.add(L.mul(L.add(L.mul(wy, L.i32(16 * fm)), L.i32(16 * i)), L.i32(lda)), L.mul(kk, L.i32(16)))));
  const offB = fb.map((_, j) => L.add(curB, L.add(L.mul(L.mul(kk, L.i32(16)), L.i32(ldb)), L.add(L.mul(wx, L.i32(16 * fn)), L.i32(16 * j)))));
  b.emitter.countUses([...offA, ...offB]);
  fa.forEach((f, i) => kkScope.stmts.push({ k: 'mmaLoad', frag: f, arr: sa, offset: b.emitter.emit(offA[i]!, kkChain), ld: lda }));
  fb.forEach((f, j) => kkScope.stmts.push({ k: 'mmaLoad', frag: f, arr: sb, offset: b.emitter.emit(offB[j]!, kkChain), ld: ldb }));
  accs.forEach((row, i) => row.forEach((c, j) => kkScope.stmts.push({ k: 'mma', d: c, a: fa[i]!, b: fb[j]! })));
  ktScope.stmts.push({ k: 'for', v: 'mks', from: i32(0), to: i32(bk / 16), step: 1, body: kkScope.stmts });
  ktScope.stmts.push({ k: 'barrier' });
  b.thread.stmts.push({ k: 'for', v: 'mkt', from: i32(0), to: b.emitter.emit(tiles, [b.top]), step: 1, body: ktScope.stmts });

  // Epilogue, one accumulator tile at a time: staged as f32 (16 x 16 at lid * 256), then element e
  // (row e / 16, column e % 16) of the tile by lane e % 32, through the group's epilogue.
  const root = group.root;
  const stgBase = L.mul(L.lid(), L.i32(256));
  const m0 = L.add(L.mul(gm, L.i32(BM)), L.mul(wy, L.i32(16 * fm)));
  const n0 = L.add(L.mul(gn, L.i32(BN)), L.mul(wx, L.i32(16 * fn)));
  b.emitter.countUses([stgBase, stgBase]);
  const stgK = b.emitter.emit(stgBase, [b.top, b.thread]);
  accs.forEach((row, i) =>
    row.forEach((c, j) => {
      b.thread.stmts.push({ k: 'mmaStore', frag: c, arr: stg, offset: stgK, ld: 16 });
      const ev = b.emitter.fresh('me');
      const e = L.variable(ev, 'i32', true, 256);
      const lanes = new Scope(new Set([ev]));
      const accName = b.emitter.fresh('acc');
      const m = L.add(m0, L.add(L.i32(16 * i), L.div(e, L.i32(16))));
      const n = L.add(n0, L.add(L.i32(16 * j), L.mod(e, L.i32(16))));
      const clamped = [...batch, L.min(m, L.sub(Me, L.i32(1))), L.min(n, L.sub(Ne, L.i32(1)))];
      const chain = [b.top, b.thread, lanes];
      lanes.stmts.push({ k: 'let', name: accName, t: 'f32', init: { k: 'sload', t: 'f32', arr: stg, index: b.emitter.emit(L.add(stgBase, e), chain) }, mut: false });
      epi.held = { idx: clamped, acc: L.variable(accName, 'f32') };
      lo.forget();
      const elem = new Scope(new Set([accName]));
      const value = L.cast(scalarOf(root.dtype), root === mm ? epi.held.acc : lo.compute(root, clamped));
      const inside = L.and(L.lt(m, Me), L.lt(n, Ne));
      const index = lo.linearize([...batch, m, n], root.shape);
      b.emitter.countUses([inside, index, value]);
      const cond = b.emitter.emit(inside, chain);
      const idx = b.emitter.emit(index, chain);
      const val = b.emitter.emit(value, [...chain, elem]);
      lanes.stmts.push({ k: 'if', cond, then: [...elem.stmts, { k: 'store', buf: b.out, index: idx, value: val }], else: [] });
      b.thread.stmts.push({ k: 'for', v: ev, from: i32(0), to: i32(256), step: 1, body: lanes.stmts, lanes: true });
    }),
  );

  const threads = dimMul(dimMul(dimProduct(batchShape), dimMul(groupsM, groupsN)), W);
  const kern = finish(group, names, b, threads, 'matmul_mma', { mma: 1, wm, wn, fm, fn, bk, ...(db ? { db: 1 } : {}), workgroupSize: W }, W, true);
  return { ...kern, warp: true, fragments };
}

/** Kernel statements of a warp kernel that would run once per lane on CUDA (for tests and checks). */
export function storesOutsideLanes(body: readonly KStmt[], inLanes = false): number {
  let n = 0;
  for (const s of body) {
    if ((s.k === 'store' || s.k === 'store4' || s.k === 'sstore') && !inLanes) n++;
    if (s.k === 'for') n += storesOutsideLanes(s.body, inLanes || s.lanes === true);
    if (s.k === 'if') n += storesOutsideLanes(s.then, inLanes) + storesOutsideLanes(s.else, inLanes);
  }
  return n;
}
