/**
 * The subgroup-shared matmul schedule (ScheduleParams.sg = 1): a register-blocked matmul whose
 * workgroup is one subgroup of S = workgroupSize lanes (Kernel.subgroup). The workgroup owns tm rows
 * and S * tn columns of the output. K goes in chunks of S: each lane loads A at (row, chunk + l)
 * for each of the tm rows, then for each of the chunk's steps the lanes take that step's A values
 * from lane kk by a subgroup shuffle and multiply them with their own B values. Every lane loads
 * 1/S of A instead of all of it. Whole chunks run S steps; the last, partial chunk runs K % S (a
 * uniform bound, so every lane reaches every shuffle, and no B value past K is read).
 *
 * Scalar path: lane l owns columns l, l + S, ... of the block. Vector path (vec = 4, tn a multiple
 * of 4, B a plain f32 buffer, taken when N is a multiple of 4, a uniform test): lane l owns the
 * column quads 4 l, 4 (l + S), ... and reads B a vec4 at a time, accumulating with vec4 FMAs.
 *
 * WGSL prints subgroupShuffle, CUDA __shfl_sync (S at most a warp), and the JS backend runs the
 * workgroup's lanes in lockstep at each shuffle, so the reference property tests cover it on
 * every backend.
 */
import { fail } from '../errors.js';
import { dimMul, dimProduct } from '../ir/dims.js';
import { scalarOf, type Kernel, type KExpr, type KStmt, type KType } from '../ir/kernel.js';
import { Scope } from './emit.js';
import type { FusedGroup } from './fuse.js';
import * as L from './lexpr.js';
import type { LExpr } from './lexpr.js';
import { blockOf, finish, matmulDims, startMatmul, storeTile, storeTile4, type BufferNames, type ScheduleParams } from './schedule.js';

/** The largest subgroup the schedule takes: a CUDA warp. */
export const MAX_SG = 32;

/**
 * Steps of a whole chunk taken at a time by default (ScheduleParams.uk): each accumulator gets
 * that many multiply-adds in one chain, so it is loaded and stored once per chain where the
 * driver keeps it in memory (a 32x16 tile's 512 floats per lane on lavapipe). Two steps measured
 * 1.07-1.17x one at 256-1024 on lavapipe for tiles of 8x8 and up (4x4 and 1x4 even), 1.07x on
 * SwiftShader; four and eight were slower than two on lavapipe.
 */
export const SG_STEPS = 2;

const i32 = (x: number): KExpr => ({ k: 'lit', t: 'i32', v: x });

export function subgroupMatmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const S = params.workgroupSize;
  const { tm, tn } = params;
  const vec = params.vec ?? 0;
  if (!Number.isInteger(S) || S < 2 || S > MAX_SG || (S & (S - 1)) !== 0) fail('E_ARG', `subgroup matmul: workgroupSize (the subgroup) must be a power of two from 2 to ${MAX_SG}, got ${S}`);
  for (const [k, v] of Object.entries({ tm, tn })) if (!Number.isInteger(v) || v < 1) fail('E_ARG', `subgroup matmul: ${k} must be a positive integer, got ${v}`);
  if (vec !== 0 && (vec !== 4 || tn % 4 !== 0)) fail('E_ARG', `subgroup matmul: vec=${vec} needs vec=4 and tn a multiple of 4, got tn=${tn}`);
  const { b, epi, mm } = startMatmul(group, names);
  const { A, B, batchShape, M, N, K } = matmulDims(mm);
  const lo = b.lower;
  const t = scalarOf(mm.dtype);
  const BN = S * tn;
  const { groupsM, groupsN, gm, gn, batch } = blockOf(b, mm, tm, BN);
  const [Me, Ne, Ke] = [lo.dim(M), lo.dim(N), lo.dim(K)];
  const lane = L.lid();
  const ms = Array.from({ length: tm }, (_, i) => L.add(L.mul(gm, L.i32(tm)), L.i32(i)));
  const mc = ms.map((m) => L.min(m, L.sub(Me, L.i32(1))));
  const n0 = L.mul(gn, L.i32(BN));
  const zero = L.lit(t, 0);

  // Whole chunks run S steps, then the last chunk K % S (none where K is a known multiple of S). `chunk` fills a scope for the chunk at
  // K index kBase with `steps` steps: the lanes' A values, then the step loop calling `step`.
  const full = L.div(Ke, L.i32(S));
  // whole chunks take U steps at a time: each accumulator's U multiply-adds in one chain
  const U = Math.min(params.uk || SG_STEPS, S);
  if (!Number.isInteger(U) || U < 1 || S % U !== 0) fail('E_ARG', `subgroup matmul: uk must be a positive integer that divides the subgroup (${S}), got ${params.uk}`);
  const chunks = (into: KStmt[], step: (ks: readonly LExpr[], a: readonly (readonly KExpr[])[], chain: readonly Scope[]) => void) => {
    // `whole`: a whole chunk's lanes all load within K (kBase + S <= K), unguarded
    const chunk = (scope: Scope, kBase: LExpr, steps: KExpr, whole: boolean) => {
      const u = whole ? U : 1;
      const chain = [b.top, b.thread, scope];
      const kl = L.add(kBase, lane);
      const aVals = mc.map((m) => (whole ? lo.valueAt(A, [...batch, m, kl]) : L.select(L.lt(kl, Ke), lo.valueAt(A, [...batch, m, L.clampIndex(kl, Ke)]), zero)));
      b.emitter.countUses(aVals);
      const regs = aVals.map((v) => {
        const name = b.emitter.fresh('sa');
        scope.stmts.push({ k: 'let', name, t, init: b.emitter.emit(v, chain), mut: false });
        return name;
      });
      const kk = L.variable('kk', 'i32', true);
      const kkScope = new Scope(new Set(['kk']));
      const kkVar: KExpr = { k: 'var', t: 'i32', name: 'kk' };
      const a = Array.from({ length: u }, (_, q) =>
        regs.map((reg) => {
          const name = b.emitter.fresh('a');
          const at: KExpr = q === 0 ? kkVar : { k: 'bin', t: 'i32', op: 'add', a: kkVar, b: i32(q) };
          kkScope.stmts.push({ k: 'let', name, t, init: { k: 'shuffle', t, a: { k: 'var', t, name: reg }, lane: at }, mut: false });
          return { k: 'var', t, name } as KExpr;
        }),
      );
      step(a.map((_, q) => L.add(kBase, q === 0 ? kk : L.add(kk, L.i32(q)))), a, [...chain, kkScope]);
      scope.stmts.push({ k: 'for', v: 'kk', from: i32(0), to: steps, step: u, body: kkScope.stmts });
    };
    const kc = L.variable('kc', 'i32', true);
    const kcScope = new Scope(new Set(['kc']));
    chunk(kcScope, L.mul(kc, L.i32(S)), i32(S), true);
    into.push({ k: 'for', v: 'kc', from: i32(0), to: b.emitter.emit(full, [b.top]), step: 1, body: kcScope.stmts });
    // no partial chunk where K is known (a constant, or assumed) to be a multiple of S
    if (L.knownMultiple(Ke) % S === 0) return;
    // The partial chunk is a loop of at most one trip (kt from K / S while kt * S < K), so that its
    // A values, which depend on kt, are loaded inside it: loaded outside, as loop invariants, they
    // would stay live in tm registers across the whole-chunk loop (10% slower on lavapipe at 32x16).
    const kt = L.variable('kt', 'i32', true);
    const tail = new Scope(new Set(['kt']));
    const tailBase = L.mul(kt, L.i32(S));
    b.emitter.countUses([tailBase, tailBase]);
    chunk(tail, tailBase, b.emitter.emit(L.sub(Ke, tailBase), [b.top, tail]), false);
    into.push({ k: 'for', v: 'kt', from: b.emitter.emit(full, [b.top]), to: b.emitter.emit(L.div(L.add(Ke, L.i32(S - 1)), L.i32(S)), [b.top]), step: 1, body: tail.stmts });
  };
  const v = (name: string, ty: KType = t): KExpr => ({ k: 'var', t: ty, name });

  const vecB = vec === 4 && t === 'f32' && group.reads.includes(B) && B.dtype === 'f32';
  const fastCond = vecB ? L.bin('eq', L.mod(Ne, L.i32(4)), L.i32(0)) : L.lit('bool', 0);
  const fast = fastCond.k === 'lit' ? fastCond.v !== 0 : undefined;
  const fastStmts: KStmt[] = [];
  const slowStmts: KStmt[] = fast === undefined ? [] : b.thread.stmts;

  if (vecB && fast !== false) {
    // lane l: column quads j: columns 4 (j S + l) .. + 3 of the block, loaded as vec4 number
    // (row of B) * N/4 + column/4, at a column clamped to N - 4 (the stores are guarded)
    const quads = tn / 4;
    const q0 = Array.from({ length: quads }, (_, j) => L.add(n0, L.mul(L.add(L.i32(j * S), lane), L.i32(4))));
    const ns = q0.flatMap((q) => [0, 1, 2, 3].map((c) => L.add(q, L.i32(c))));
    const nc = ns.map((n) => L.min(n, L.sub(Ne, L.i32(1))));
    const cols = q0.map((q) => L.div(L.min(q, L.sub(Ne, L.i32(4))), L.i32(4)));
    const rowsB = B.shape.slice(0, -1);
    const vaccs = ms.map(() =>
      q0.map(() => {
        const name = b.emitter.fresh('cv');
        fastStmts.push({ k: 'let', name, t: 'vec4f', init: { k: 'splat', t: 'vec4f', a: { k: 'lit', t: 'f32', v: 0 } }, mut: true });
        return name;
      }),
    );
    chunks(fastStmts, (ks, a, chain) => {
      const scope = chain[chain.length - 1]!;
      const bs = ks.map((k) => {
        const idx = cols.map((c) => L.add(L.mul(lo.linearize([...batch, k], rowsB), L.div(Ne, L.i32(4))), c));
        b.emitter.countUses(idx);
        return idx.map((q) => {
          const name = b.emitter.fresh('sb');
          const index: KExpr = { k: 'bin', t: 'i32', op: 'mul', a: b.emitter.emit(q, chain), b: i32(4) };
          scope.stmts.push({ k: 'let', name, t: 'vec4f', init: { k: 'load4', t: 'vec4f', buf: names.readOf(B), index }, mut: false });
          return name;
        });
      });
      vaccs.forEach((row, i) =>
        row.forEach((name, j) =>
          scope.stmts.push({ k: 'set', name, value: ks.reduce<KExpr>((acc, _, q) => ({ k: 'fma4', t: 'vec4f', a: { k: 'splat', t: 'vec4f', a: a[q]![i]! }, b: v(bs[q]![j]!, 'vec4f'), c: acc }), v(name, 'vec4f')) }),
        ),
      );
    });
    const accs = vaccs.map((row) =>
      row.flatMap((name) =>
        ([0, 1, 2, 3] as const).map((q) => {
          const s = b.emitter.fresh('c');
          fastStmts.push({ k: 'let', name: s, t, init: { k: 'comp', t: 'f32', a: v(name, 'vec4f'), i: q }, mut: false });
          return s;
        }),
      ),
    );
    const tile = { batch, ms, ns, mc, nc, Me, Ne, accs, t };
    if (group.root.dtype === 'f32') storeTile4(b, group, epi, tile, fastStmts);
    else storeTile(b, group, epi, tile, fastStmts);
    if (fast) b.thread.stmts.push(...fastStmts);
  }

  if (fast !== true) {
    // lane l: columns j S + l of the block
    const ns = Array.from({ length: tn }, (_, j) => L.add(L.add(n0, L.i32(j * S)), lane));
    const nc = ns.map((n) => L.min(n, L.sub(Ne, L.i32(1))));
    const accs: string[][] = ms.map(() => ns.map(() => b.emitter.fresh('c')));
    for (const row of accs) for (const name of row) slowStmts.push({ k: 'let', name, t, init: { k: 'lit', t, v: 0 }, mut: true });
    chunks(slowStmts, (ks, a, chain) => {
      const scope = chain[chain.length - 1]!;
      const bs = ks.map((k) => {
        const bVals = nc.map((n) => lo.valueAt(B, [...batch, k, n]));
        b.emitter.countUses(bVals);
        return bVals.map((x) => {
          const name = b.emitter.fresh('sb');
          scope.stmts.push({ k: 'let', name, t, init: b.emitter.emit(x, chain), mut: false });
          return name;
        });
      });
      accs.forEach((row, i) =>
        row.forEach((name, j) =>
          scope.stmts.push({ k: 'set', name, value: ks.reduce<KExpr>((acc, _, q) => ({ k: 'bin', t, op: 'add', a: acc, b: { k: 'bin', t, op: 'mul', a: a[q]![i]!, b: v(bs[q]![j]!) } }), v(name)) }),
        ),
      );
    });
    storeTile(b, group, epi, { batch, ms, ns, mc, nc, Me, Ne, accs, t }, slowStmts);
  }
  if (fast === undefined) b.thread.stmts.push({ k: 'if', cond: b.emitter.emit(fastCond, [b.top]), then: fastStmts, else: slowStmts });

  const threads = dimMul(dimMul(dimProduct(batchShape), dimMul(groupsM, groupsN)), S);
  const kern = finish(group, names, b, threads, 'matmul_sg', { sg: 1, tm, tn, vec: vecB ? 4 : 0, uk: U, workgroupSize: S }, S, true);
  return { ...kern, subgroup: true };
}
