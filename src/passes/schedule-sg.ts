/**
 * The subgroup-shared matmul schedule (ScheduleParams.sg = 1): a register-blocked matmul whose
 * workgroup is one subgroup of S = workgroupSize lanes (Kernel.subgroup). The workgroup owns tm rows
 * and S * tn columns of the output; lane l owns columns l, l + S, ... of the block (so the lanes
 * read B's rows contiguously). K goes in chunks of S: each lane loads A at (row, chunk + l) for
 * each of the tm rows, then for each of the chunk's S steps the lanes take that step's A values
 * from lane kk by a subgroup shuffle and multiply them with their own B values. Every lane loads
 * 1/S of A instead of all of it. Values past K are zero (A's lanes and B's loads), so a partial
 * last chunk adds nothing; the loops' bounds are uniform, so every lane reaches every shuffle.
 *
 * WGSL prints subgroupShuffle, CUDA __shfl_sync (S at most a warp), and the JS backend runs the
 * workgroup's lanes in lockstep at each shuffle, so the reference property tests cover it on
 * every backend.
 */
import { fail } from '../errors.js';
import { dimMul, dimProduct } from '../ir/dims.js';
import { scalarOf, type Kernel, type KExpr, type KStmt } from '../ir/kernel.js';
import { Scope } from './emit.js';
import type { FusedGroup } from './fuse.js';
import * as L from './lexpr.js';
import { blockOf, finish, matmulDims, startMatmul, storeTile, type BufferNames, type ScheduleParams } from './schedule.js';

/** The largest subgroup the schedule takes: a CUDA warp. */
export const MAX_SG = 32;

export function subgroupMatmulSchedule(group: FusedGroup, names: BufferNames, params: ScheduleParams): Kernel {
  const S = params.workgroupSize;
  const { tm, tn } = params;
  if (!Number.isInteger(S) || S < 2 || S > MAX_SG || (S & (S - 1)) !== 0) fail('E_ARG', `subgroup matmul: workgroupSize (the subgroup) must be a power of two from 2 to ${MAX_SG}, got ${S}`);
  for (const [k, v] of Object.entries({ tm, tn })) if (!Number.isInteger(v) || v < 1) fail('E_ARG', `subgroup matmul: ${k} must be a positive integer, got ${v}`);
  const { b, epi, mm } = startMatmul(group, names);
  const { A, B, batchShape, M, N, K } = matmulDims(mm);
  const lo = b.lower;
  const t = scalarOf(mm.dtype);
  const BN = S * tn;
  const { groupsM, groupsN, gm, gn, batch } = blockOf(b, mm, tm, BN);
  const [Me, Ne, Ke] = [lo.dim(M), lo.dim(N), lo.dim(K)];
  const lane = L.lid();
  const ms = Array.from({ length: tm }, (_, i) => L.add(L.mul(gm, L.i32(tm)), L.i32(i)));
  const ns = Array.from({ length: tn }, (_, j) => L.add(L.add(L.mul(gn, L.i32(BN)), L.i32(j * S)), lane));
  const mc = ms.map((m) => L.min(m, L.sub(Me, L.i32(1))));
  const nc = ns.map((n) => L.min(n, L.sub(Ne, L.i32(1))));
  const accs: string[][] = ms.map(() => ns.map(() => b.emitter.fresh('c')));
  for (const row of accs) for (const name of row) b.thread.stmts.push({ k: 'let', name, t, init: { k: 'lit', t, v: 0 }, mut: true });
  const zero = L.lit(t, 0);

  // chunk kc: this lane's A values at K index kc * S + lane, one per row (zero past K)
  const kc = L.variable('kc', 'i32', true);
  const kcScope = new Scope(new Set(['kc']));
  const kcChain = [b.top, b.thread, kcScope];
  const kl = L.add(L.mul(kc, L.i32(S)), lane);
  const aVals = mc.map((m) => L.select(L.lt(kl, Ke), lo.valueAt(A, [...batch, m, L.clampIndex(kl, Ke)]), zero));
  b.emitter.countUses(aVals);
  const aRegs = aVals.map((v) => {
    const name = b.emitter.fresh('sa');
    kcScope.stmts.push({ k: 'let', name, t, init: b.emitter.emit(v, kcChain), mut: false });
    return name;
  });
  // step kk of the chunk: row i's A value from lane kk, B at K index kc * S + kk (zero past K)
  const kk = L.variable('kk', 'i32', true);
  const kkScope = new Scope(new Set(['kk']));
  const kkChain = [...kcChain, kkScope];
  const kIdx = L.add(L.mul(kc, L.i32(S)), kk);
  const bVals = nc.map((n) => L.select(L.lt(kIdx, Ke), lo.valueAt(B, [...batch, L.clampIndex(kIdx, Ke), n]), zero));
  b.emitter.countUses(bVals);
  const bNames = bVals.map((v) => {
    const name = b.emitter.fresh('sb');
    const init = b.emitter.emit(v, kkChain);
    kkScope.stmts.push({ k: 'let', name, t, init, mut: false });
    return name;
  });
  const kkVar: KExpr = { k: 'var', t: 'i32', name: 'kk' };
  const i32 = (x: number): KExpr => ({ k: 'lit', t: 'i32', v: x });
  const aNames = aRegs.map((reg) => {
    const name = b.emitter.fresh('a');
    kkScope.stmts.push({ k: 'let', name, t, init: { k: 'shuffle', t, a: { k: 'var', t, name: reg }, lane: kkVar }, mut: false });
    return name;
  });
  const v = (name: string): KExpr => ({ k: 'var', t, name });
  accs.forEach((row, i) =>
    row.forEach((name, j) => {
      kkScope.stmts.push({ k: 'set', name, value: { k: 'bin', t, op: 'add', a: v(name), b: { k: 'bin', t, op: 'mul', a: v(aNames[i]!), b: v(bNames[j]!) } } });
    }),
  );

  kcScope.stmts.push({ k: 'for', v: 'kk', from: i32(0), to: i32(S), step: 1, body: kkScope.stmts });
  const chunks = b.emitter.emit(L.div(L.add(Ke, L.i32(S - 1)), L.i32(S)), [b.top]);
  b.thread.stmts.push({ k: 'for', v: 'kc', from: i32(0), to: chunks, step: 1, body: kcScope.stmts } satisfies KStmt);

  storeTile(b, group, epi, { batch, ms, ns, mc, nc, Me, Ne, accs, t });
  const threads = dimMul(dimMul(dimProduct(batchShape), dimMul(groupsM, groupsN)), S);
  const kern = finish(group, names, b, threads, 'matmul_sg', { sg: 1, tm, tn, workgroupSize: S }, S, true);
  return { ...kern, subgroup: true };
}
