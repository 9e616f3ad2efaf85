/**
 * The schedule variants the tuner tries for a fused group, per schedule kind. Every candidate is a
 * valid schedule (tests run them all against the reference); the tuner only picks the fastest.
 */
import type { FusedGroup } from '../passes/fuse.js';
import type { ScheduleParams } from '../passes/schedule.js';
import { tensorCoresTake } from '../passes/schedule-mma.js';
import { MAX_SG } from '../passes/schedule-sg.js';
import { knownDim, type DimBindings } from '../ir/dims.js';
import { NARROW_LAUNCH, NARROW_WORKGROUP } from '../ir/kernel.js';

export type Candidate = Partial<ScheduleParams>;

const WG = [32, 64, 128, 256];

/** What the device offers that changes the candidates. */
export interface DeviceCaps {
  /** The guaranteed subgroup size, when subgroup operations exist. */
  readonly subgroupSize?: number;
  /** Tensor cores (a CUDA device of compute capability 7.0 or newer): f16 matmuls may take the mma schedule. */
  readonly tensorCores?: boolean;
  /** Tensor cores that take bf16 (compute capability 8.0 or newer). */
  readonly bf16TensorCores?: boolean;
}

/** The caps a runtime reports (subgroup sizes live in its limits; tensor cores are the feature 'tensor-cores'). */
export function deviceCaps(info: { features: readonly string[]; limits: Readonly<Record<string, number>> }): DeviceCaps {
  const sg = info.limits['subgroupMinSize'];
  return {
    ...(info.features.includes('subgroups') && sg ? { subgroupSize: Math.min(sg, 256) } : {}),
    ...(info.features.includes('tensor-cores') ? { tensorCores: true } : {}),
    ...(info.features.includes('tensor-cores-bf16') ? { bf16TensorCores: true } : {}),
  };
}

/** The subgroup size schedules built on one subgroup take (a power of two, 2 or more), if the device has one. */
export function subgroupLanes(caps: DeviceCaps): number | undefined {
  const sg = caps.subgroupSize;
  return sg !== undefined && sg >= 2 && (sg & (sg - 1)) === 0 ? sg : undefined;
}

/**
 * Tensor-core blocks (warps wm x wn, tiles fm x fn per warp, K tiles of bk): from one warp of one
 * tile (small or ragged shapes) to 128 x 128 blocks of eight warps, the usual shapes for big f16
 * GEMMs, two of them double-buffered.
 */
export const MMA_CANDIDATES: readonly Candidate[] = [
  { wm: 1, wn: 1, fm: 1, fn: 1, bk: 32 },
  { wm: 2, wn: 2, fm: 1, fn: 1, bk: 32 },
  { wm: 2, wn: 2, fm: 2, fn: 2, bk: 32 },
  { wm: 2, wn: 2, fm: 2, fn: 2, bk: 64 },
  { wm: 2, wn: 4, fm: 4, fn: 2, bk: 32 },
  { wm: 4, wn: 2, fm: 2, fn: 4, bk: 32 },
  { wm: 2, wn: 2, fm: 4, fn: 4, bk: 32 },
  { wm: 2, wn: 2, fm: 2, fn: 2, bk: 32, db: 1 },
  { wm: 2, wn: 4, fm: 4, fn: 2, bk: 32, db: 1 },
].map((c) => ({ mma: 1, ...c }));

/** Axis `fromEnd` (2: rows M, 1: columns N) of a matmul group's output, when known from its shape or `dims`. */
function matmulExtent(group: FusedGroup, fromEnd: 1 | 2, dims?: DimBindings): number | undefined {
  const mm = group.contraction ?? group.root;
  const d = mm.shape[mm.shape.length - fromEnd];
  return d === undefined ? undefined : knownDim(d, dims);
}
const matmulRows = (group: FusedGroup, dims?: DimBindings) => matmulExtent(group, 2, dims);


/**
 * The candidates for `group` on a device with `caps`; with `dims` (the shapes being tuned for),
 * split-K variants are left out for matmuls with more than 64 rows, where they are never the best
 * and are slow to time, and so are vec4 tiles taller than the rows (or of one or two rows over 64).
 */
export function candidatesFor(group: FusedGroup, caps: DeviceCaps = {}, dims?: DimBindings): Candidate[] {
  switch (group.kind) {
    case 'elementwise':
      return [1, 2, 4, 8].flatMap((perThread) => [64, 128, 256].map((workgroupSize) => ({ perThread, workgroupSize })));
    case 'row':
    case 'reduce': {
      // one invocation per row (or output) at the default ur, and with one chain (ur 1) or the other of
      // 4 and 8 lanes; rows (default 8 lanes, vec4 loads) also with scalar loads
      const row = group.kind === 'row';
      const perRow: Candidate[] = [
        ...WG.map((workgroupSize) => ({ coop: 0, workgroupSize })),
        ...[1, row ? 4 : 8].map((ur) => ({ coop: 0, ur, workgroupSize: 64 })),
        ...(row ? [{ coop: 0, vec: 0, workgroupSize: 64 }] : []),
      ];
      // one workgroup per row with tree reductions: what a real GPU wants for long rows
      const rowWise = group.kind === 'reduce' || group.rowAxes === 1;
      const coop = rowWise ? WG.map((workgroupSize) => ({ coop: 1, workgroupSize })) : [];
      // a workgroup of one subgroup, reductions by subgroup operations
      const sg = subgroupLanes(caps);
      const subgroup = rowWise && sg ? [{ coop: 2, workgroupSize: sg }] : [];
      return [...perRow, ...coop, ...subgroup];
    }
    case 'matmul': {
      const tiles: [number, number][] = [[1, 4], [1, 8], [2, 2], [2, 4], [4, 4], [4, 8], [8, 4], [8, 8]];
      const registerBlocked = tiles.flatMap(([tm, tn]) => [32, 128].map((workgroupSize) => ({ tiled: 0, vec: 0, tm, tn, workgroupSize })));
      // workgroup-memory tiled: (wm*tm) x (wn*tn) blocks, K tiles of bk
      const tiled: Candidate[] = [
        { tiled: 1, tm: 4, tn: 4, wm: 8, wn: 8, bk: 8 },
        { tiled: 1, tm: 4, tn: 4, wm: 16, wn: 16, bk: 8 },
        { tiled: 1, tm: 2, tn: 2, wm: 8, wn: 8, bk: 16 },
        { tiled: 1, tm: 8, tn: 4, wm: 8, wn: 16, bk: 8 },
        { tiled: 1, tm: 1, tn: 4, wm: 4, wn: 16, bk: 32 },
        // double-buffered: one barrier per K tile
        { tiled: 1, tm: 4, tn: 4, wm: 8, wn: 8, bk: 8, db: 1 },
        { tiled: 1, tm: 8, tn: 4, wm: 8, wn: 16, bk: 8, db: 1 },
      ];
      // vec4 loads and FMAs along N (and K) when N and K are multiples of 4, the scalar path otherwise
      const vecTiles: [number, number][] = [[1, 4], [1, 8], [2, 4], [2, 8], [4, 4], [4, 8], [8, 4], [8, 8], [16, 8], [8, 16]];
      // (small workgroups balance the few cores of a software driver: 16x8 in workgroups of 16 measured
      // 1.1x workgroups of 64 at 1024 on lavapipe)
      // Tiles that cannot pay at the rows being tuned are left out: taller than M (the extra rows
      // repeat the last one), or one or two rows for more than 64 (B reloaded for every row).
      const rowsKnown = matmulRows(group, dims);
      const fits = ([tm]: [number, number]) => rowsKnown === undefined || (tm <= rowsKnown && (rowsKnown <= 64 || tm > 2));
      const colsKnown = matmulExtent(group, 1, dims);
      const narrow = ([tm, tn]: [number, number]) => rowsKnown !== undefined && colsKnown !== undefined && Math.ceil(rowsKnown / tm) * Math.ceil(colsKnown / tn) < NARROW_LAUNCH;
      const vectorized = vecTiles.filter(fits).flatMap(([tm, tn]) => [...(narrow([tm, tn]) ? [NARROW_WORKGROUP] : []), 16, 32, 64, 128].map((workgroupSize) => ({ tiled: 0, vec: 4, tm, tn, workgroupSize })));
      // split-K: a workgroup per output tile strides over K and sums its partials (GEMV, small batches)
      const splitK: Candidate[] = [[1, 1], [1, 2], [1, 4], [2, 2], [4, 1]].flatMap(([tm, tn]) => [32, 128].map((workgroupSize) => ({ coop: 1, tm, tn, workgroupSize })));
      const sg = subgroupLanes(caps);
      if (sg) splitK.push({ coop: 2, tm: 1, tn: 1, workgroupSize: sg }, { coop: 2, tm: 1, tn: 4, workgroupSize: sg });
      // subgroup-shared tiles: a workgroup of one subgroup (at most a warp) shares A's values by shuffles
      // (vec4 B where N is a multiple of 4, else their scalar path); tall tiles pay on lavapipe (32x16:
      // 2.45x the default at 1024, bench/matmul-sg.ts), though its compiler takes ~45 s over one
      const shared: Candidate[] = sg
        ? ([[1, 4], [4, 4], [8, 8], [16, 8], [16, 16], [32, 8], [32, 16]] as [number, number][]).filter(fits).map(([tm, tn]) => ({ sg: 1, vec: 4, tm, tn, workgroupSize: Math.min(sg, MAX_SG) }))
        : [];
      // K unrolled by more than the default where B is decoded from packed words (a group's codes per chunk)
      const decodes = group.inlined.some((n) => n.op === 'compute');
      const unrolled: Candidate[] = decodes ? [16, 32].flatMap((uk) => [{ tiled: 0, tm: 1, tn: 4, uk, workgroupSize: 64 }, { coop: 1, tm: 1, tn: 1, uk, workgroupSize: 64 }]) : [];
      const all = [...registerBlocked, ...vectorized, ...tiled, ...shared, ...(rowsKnown === undefined || rowsKnown <= 64 ? splitK : []), ...unrolled];
      // where the tensor cores take the matmul (f16, or bf16 on sm_80+) it also tries the mma schedule (the others say mma 0, since
      // tensor cores make it their default)
      return tensorCoresTake(group, caps) ? [...MMA_CANDIDATES, ...all.map((c) => ({ ...c, mma: 0 }))] : all;
    }
  }
}
