/**
 * Device profiles: what the default heuristic should change on one device, measured once. The
 * default matmul schedule is chosen for no device in particular; on some drivers another family
 * is faster at every shape (on lavapipe the subgroup-shared schedule runs 2-2.5x the default from
 * 256³ to 1024³, on SwiftShader 0.5-0.7x). Neither the compiler nor the device's capabilities can
 * tell which: both report subgroups. `calibrateDevice` times a probe matmul under each family's
 * candidate, interleaved, and keeps the fastest if it beats the default by PROFILE_MARGIN; the
 * profile is cached on disk beside the tuning records (keyed by device and compiler version), and
 * `compileTuned` gives its parameters to every matmul that has no tuned entry of its own.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { dim, kernel, tensor } from '../dsl/kernel.js';
import { matmul } from '../dsl/ops.js';
import { knownDim, type DimBindings } from '../ir/dims.js';
import type { FusedGroup } from '../passes/fuse.js';
import { compile } from '../passes/pipeline.js';
import { MAX_SG } from '../passes/schedule-sg.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { prepare, type Prepared } from '../runtime/execute.js';
import { median } from '../runtime/median.js';
import { batchFor, differs } from './measure.js';
import { cacheDir, COMPILER_VERSION, deviceKey, readCacheFile, writeCacheFile } from './cache.js';
import { deviceCaps, subgroupLanes, type Candidate } from './candidates.js';

/** The probe: an f32 matmul PROBE_N³, big enough for a tile's steady state, quick to compile and time. */
export const PROBE_N = 256;
/**
 * On a device where the default takes PROBE_MS or more at a smaller size (the JS interpreter), the
 * probe stops there: the smallest size tried is PROBE_MIN³.
 */
export const PROBE_MIN = 64;
const PROBE_MS = 5;
/** A family is adopted only when the probe runs at least this much faster under it than under the default. */
export const PROFILE_MARGIN = 1.2;
/** The fewest rows a profile's matmul tile takes; matmuls with fewer keep the default (its one-row bodies). */
export const PROFILE_MIN_ROWS = 16;
/** Interleaved rounds over the families; each sample repeats the launch for about PROBE_SAMPLE_MS. */
const ROUNDS = 7;
const PROBE_SAMPLE_MS = 20;

export interface DeviceProfile {
  readonly device: string;
  readonly compiler: string;
  /** Schedule parameters for f32 matmuls without a tuned entry; `{}` keeps the default. */
  readonly matmul: Candidate;
  /** The probe's size: an f32 matmul n³. */
  readonly n: number;
  /** What the probe measured: ms per launch of each family's candidate (median of interleaved rounds). */
  readonly probe: Readonly<Record<string, number>>;
  readonly timing: 'device' | 'wall';
}

/** The families the probe times, each by one representative candidate (absent where the device lacks what it needs). */
export function probeFamilies(rt: BackendRuntime): Record<string, Candidate> {
  const sg = subgroupLanes(deviceCaps(rt.info));
  return {
    default: {},
    // tall vec4 register tiles in small workgroups (the tuner's pick on lavapipe before subgroups)
    'vec4 16x8': { tiled: 0, vec: 4, tm: 16, tn: 8, workgroupSize: 16 },
    ...(sg ? { 'subgroup-shared 32x8': { sg: 1, vec: 4, tm: 32, tn: 8, workgroupSize: Math.min(sg, MAX_SG) } } : {}),
  };
}

function profileFile(device: string, compiler: string, dir: string): string {
  const key = createHash('sha256').update(device).update('\0').update(compiler).digest('hex').slice(0, 32);
  return join(dir, `profile-${key}.json`);
}

/** The cached profile of `device` (a runtime's `kind:description`), if it was calibrated with this compiler. */
export function readProfile(device: string, compiler = COMPILER_VERSION, dir = cacheDir()): DeviceProfile | undefined {
  const p = readCacheFile(profileFile(device, compiler, dir)) as DeviceProfile | undefined;
  return p?.device === device && p.compiler === compiler && typeof p.matmul === 'object' ? p : undefined;
}

export function writeProfile(p: DeviceProfile, dir = cacheDir()): void {
  writeCacheFile(profileFile(p.device, p.compiler, dir), p);
}

/**
 * Times the probe (PROBE_N³, smaller on a slow device, or `probeN`) under each family
 * (`probeFamilies`), leaving out any that fails to run or whose output differs from the default's,
 * and caches the profile. A cached profile is returned as is unless `force`.
 */
export async function calibrateDevice(rt: BackendRuntime, opts: { cacheDir?: string; force?: boolean; probeN?: number } = {}): Promise<DeviceProfile> {
  const [device, compiler] = [deviceKey(rt), COMPILER_VERSION];
  const dir = opts.cacheDir ?? cacheDir();
  const cached = opts.force ? undefined : readProfile(device, compiler, dir);
  if (cached) return cached;
  const [M, N, K] = [dim('M'), dim('N'), dim('K')];
  const probe = kernel('profile_probe', { a: tensor('f32', [M, K]), b: tensor('f32', [K, N]) }, ({ a, b }) => matmul(a, b));
  const data = (n: number, seed: number) => ({ shape: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37 + seed)) });
  const inputsAt = (n: number) => ({ a: data(n, 1), b: data(n, 2) });
  // the probe's size: PROBE_N³, or smaller where the default already takes PROBE_MS there (a slow device)
  let n = opts.probeN ?? PROBE_MIN;
  let defaultMs = 0;
  for (;;) {
    const p = prepare(compile(probe.program, { versions: false }), rt, inputsAt(n));
    try {
      p.launch();
      await rt.sync();
      defaultMs = (await rt.time(() => p.launch(), 3)).medianMs;
    } finally {
      p.free();
    }
    if (opts.probeN !== undefined || n >= PROBE_N || defaultMs >= PROBE_MS) break;
    n *= 2;
  }
  // each sample repeats the launch for about PROBE_SAMPLE_MS (a batch per family, from one timed launch):
  // one launch of a millisecond is at the mercy of the host's scheduler on a software adapter
  const batchOf = (ms: number) => batchFor(ms, PROBE_SAMPLE_MS, 64);
  const batch = new Map<string, number>([['default', batchOf(defaultMs)]]);
  const inputs = inputsAt(n);
  const families = Object.entries(probeFamilies(rt));
  const preps: (readonly [string, Prepared])[] = [];
  const ms = new Map<string, number[]>(families.map(([name]) => [name, []]));
  let timing: 'device' | 'wall' = 'device';
  try {
    // a family the device cannot run (its kernel fails to build or launch) is left out, as is one
    // whose output differs from the default's; the default itself must run
    let want: Float32Array | undefined;
    const usable = new Set<string>();
    for (const [name, c] of families) {
      let out: Float32Array;
      let launchMs: number;
      try {
        const p = prepare(compile(probe.program, { versions: false, groupParams: () => c }), rt, inputs);
        preps.push([name, p]);
        p.launch();
        out = (await p.read())['out']!.data as Float32Array;
        launchMs = (await rt.time(() => p.launch(), 1)).medianMs;
      } catch (e) {
        if (name === 'default') throw e;
        continue;
      }
      want ??= out;
      if (differs(out, want, 'f32')) continue;
      usable.add(name);
      if (!batch.has(name)) batch.set(name, batchOf(launchMs));
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < preps.length; i++) {
        const [name, p] = preps[(i + r) % preps.length]!;
        if (!usable.has(name)) continue;
        const b = batch.get(name)!;
        const t = await rt.time(() => {
          for (let i = 0; i < b; i++) p.launch();
        }, 3);
        if (t.source === 'wall') timing = 'wall';
        ms.get(name)!.push(t.medianMs / b);
      }
    }
  } finally {
    for (const [, p] of preps) p.free();
  }
  const probeMs = Object.fromEntries([...ms].filter(([, t]) => t.length > 0).map(([name, t]) => [name, Number(median(t).toPrecision(4))]));
  const base = probeMs['default']!;
  let best = 'default';
  for (const [name, t] of Object.entries(probeMs)) if (t * PROFILE_MARGIN <= base && t < probeMs[best]!) best = name;
  const profile: DeviceProfile = { device, compiler, matmul: Object.fromEntries(families)[best]!, n, probe: probeMs, timing };
  writeProfile(profile, dir);
  return profile;
}

/** One line: what the profile changes and what the probe measured. */
export function describeProfile(p: DeviceProfile): string {
  const params = Object.entries(p.matmul).map(([k, v]) => `${k}=${v}`).join(' ');
  const probe = Object.entries(p.probe).map(([name, ms]) => `${name} ${ms.toFixed(3)} ms`).join(', ');
  return `f32 matmuls ${params ? `of ${PROFILE_MIN_ROWS} rows or more: ${params}` : 'keep the default'} (probe ${p.n}³, ${p.timing} time: ${probe})`;
}

/**
 * The profile's parameters for `group` (undefined: keep the default): f32 matmuls whose weights are
 * not decoded in the kernel, with at least PROFILE_MIN_ROWS rows (or rows unknown), the tile no
 * taller than the rows (halved until it fits).
 */
export function profileParams(profile: DeviceProfile | undefined, group: FusedGroup, dims?: DimBindings): Candidate | undefined {
  if (!profile || group.kind !== 'matmul' || Object.keys(profile.matmul).length === 0) return undefined;
  const mm = group.contraction ?? group.root;
  if (mm.dtype !== 'f32' || group.inlined.some((n) => n.op === 'compute')) return undefined;
  const rowsDim = mm.shape[mm.shape.length - 2];
  const rows = rowsDim === undefined ? undefined : knownDim(rowsDim, dims);
  if (rows !== undefined && rows < PROFILE_MIN_ROWS) return undefined;
  let tm = profile.matmul.tm ?? 1;
  while (rows !== undefined && tm > rows) tm = Math.max(1, tm >> 1);
  return { ...profile.matmul, tm };
}
