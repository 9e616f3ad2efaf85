/**
 * Device profiles: what the default heuristic should change on one device, measured once. The
 * default matmul schedule is chosen for no device in particular; on some drivers another family
 * is faster at every shape (on lavapipe the subgroup-shared schedule runs 2-2.5x the default from
 * 256³ to 1024³, on SwiftShader 0.5-0.7x). Neither the compiler nor the device's capabilities can
 * tell which: both report subgroups. `calibrateDevice` times a probe matmul under each family's
 * candidate, interleaved, and keeps the fastest if it beats the default by PROFILE_MARGIN; the
 * profile is cached on disk beside the tuning records (keyed by device and compiler version), and
 * `compileTuned` gives its parameters to every matmul that has no tuned entry of its own. The same
 * holds for launch chaining (src/passes/chain.ts): one workgroup running a decode step's kernels
 * in turn ran 1.1-2x as fast as separate launches on lavapipe, where a dispatch costs tens of µs
 * (the ratio moves between processes), and 0.54-0.74x on SwiftShader, where launches are cheap and one
 * workgroup keeps the step on one thread; the profile times a decode step both ways and chains
 * where it pays.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { dim, kernel, tensor } from '../dsl/kernel.js';
import { matmul, silu } from '../dsl/ops.js';
import { rmsnorm } from '../dsl/composites.js';
import { evalShape, knownDim, type DimBindings } from '../ir/dims.js';
import type { FusedGroup } from '../passes/fuse.js';
import { compile, type CompiledProgram } from '../passes/pipeline.js';
import { MAX_SG } from '../passes/schedule-sg.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { prepare, type HostTensor, type Prepared } from '../runtime/execute.js';
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

/**
 * The chain probe: one decode step (T = 1) of a transformer block's FFN (rmsnorm, matmul, silu,
 * matmul, residual) at a small model's width, two kernels when fused.
 */
export const CHAIN_PROBE_DIMS = { T: 1, D: 128, H: 344 } as const;

/** A probe input: deterministic values in [-1, 1]. */
const filled = (shape: number[], seed: number): HostTensor => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + seed)) });

function chainProbe() {
  const [T, Dm, H] = [dim('T'), dim('D'), dim('H')];
  return kernel(
    'profile_chain_probe',
    { x: tensor('f32', [T, Dm]), g: tensor('f32', [Dm]), w1: tensor('f32', [Dm, H]), w2: tensor('f32', [H, Dm]) },
    ({ x, g, w1, w2 }) => matmul(silu(matmul(rmsnorm(x, g, 1e-5), w1)), w2).add(x),
  );
}

export interface DeviceProfile {
  readonly device: string;
  readonly compiler: string;
  /** Schedule parameters for f32 matmuls without a tuned entry; `{}` keeps the default. */
  readonly matmul: Candidate;
  /** The probe's size: an f32 matmul n³. */
  readonly n: number;
  /** What the probe measured: ms per launch of each family's candidate (median of interleaved rounds). */
  readonly probe: Readonly<Record<string, number>>;
  /**
   * Whether `compileTuned` chains small launches (`CompileOptions.chain`): the chain probe (a decode
   * step's FFN block, CHAIN_PROBE_DIMS) ran at least PROFILE_MARGIN faster as one chained kernel.
   */
  readonly chain: boolean;
  /** What the chain probe measured: ms per step, `separate` launches and `chained` (absent where it could not run). */
  readonly chainProbe: Readonly<Record<string, number>>;
  readonly timing: 'device' | 'wall';
}

/** The families the probe times, each by one representative candidate (absent where the device lacks what it needs). */
export function probeFamilies(rt: BackendRuntime): Record<string, Candidate> {
  const sg = subgroupLanes(deviceCaps(rt.info));
  return {
    default: {},
    // scalar register tiles: where vec4 values cost four scalars and more (the JS runtime runs the
    // default's vec4 loop lane by lane)
    'scalar 4x4': { tiled: 0, vec: 0, tm: 4, tn: 4 },
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
  return p?.device === device && p.compiler === compiler && typeof p.matmul === 'object' && typeof p.chain === 'boolean' ? p : undefined;
}

export function writeProfile(p: DeviceProfile, dir = cacheDir()): void {
  writeCacheFile(profileFile(p.device, p.compiler, dir), p);
}

/**
 * Times the probe (PROBE_N³, smaller on a slow device, or `probeN`) under each family
 * (`probeFamilies`), leaving out any that fails to run or whose output differs from the default's,
 * then the chain probe's decode step as separate launches and chained, and caches the profile.
 * A cached profile is returned as is unless `force`.
 */
export async function calibrateDevice(rt: BackendRuntime, opts: { cacheDir?: string; force?: boolean; probeN?: number } = {}): Promise<DeviceProfile> {
  const [device, compiler] = [deviceKey(rt), COMPILER_VERSION];
  const dir = opts.cacheDir ?? cacheDir();
  const cached = opts.force ? undefined : readProfile(device, compiler, dir);
  if (cached) return cached;
  const [M, N, K] = [dim('M'), dim('N'), dim('K')];
  const probe = kernel('profile_probe', { a: tensor('f32', [M, K]), b: tensor('f32', [K, N]) }, ({ a, b }) => matmul(a, b));
  const inputsAt = (n: number) => ({ a: filled([n, n], 1), b: filled([n, n], 2) });
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
  const families = Object.entries(probeFamilies(rt));
  const inputs = inputsAt(n);
  const matmuls = await timeVariants(rt, families.map(([name, c]) => [name, () => compile(probe.program, { versions: false, groupParams: () => c })]), inputs, (name) => (name === 'default' ? defaultMs : undefined));
  const probeMs = matmuls.ms;
  const base = probeMs['default']!;
  let best = 'default';
  for (const [name, t] of Object.entries(probeMs)) if (t * PROFILE_MARGIN <= base && t < probeMs[best]!) best = name;
  // launch chaining: a decode step's kernels as separate launches and as one chained kernel
  const block = chainProbe();
  const chainInputs = Object.fromEntries(block.program.inputs.map((inp, i) => [inp.name, filled(evalShape(inp.shape, CHAIN_PROBE_DIMS), i)]));
  const at = { specialize: CHAIN_PROBE_DIMS };
  const chains = await timeVariants(rt, [['separate', () => compile(block.program, at)], ['chained', () => compile(block.program, { ...at, chain: {} })]], chainInputs);
  const chain = chains.ms['chained'] !== undefined && chains.ms['chained'] * PROFILE_MARGIN <= chains.ms['separate']!;
  const profile: DeviceProfile = {
    device, compiler, matmul: Object.fromEntries(families)[best]!, n, probe: probeMs,
    chain, chainProbe: chains.ms, timing: matmuls.timing === 'wall' || chains.timing === 'wall' ? 'wall' : 'device',
  };
  writeProfile(profile, dir);
  return profile;
}

/**
 * Times each variant of a program (its first variant the reference: it must build and run) in
 * ROUNDS interleaved rounds, each sample a batch of launches of about PROBE_SAMPLE_MS (one launch
 * of a millisecond is at the mercy of the host's scheduler on a software adapter); leaves out a
 * variant that fails to build or launch, or whose output differs from the first's. Returns ms per
 * launch (median) by variant name. `knownMs` may give a variant's launch time already measured.
 */
async function timeVariants(
  rt: BackendRuntime,
  variants: readonly (readonly [string, () => CompiledProgram])[],
  inputs: Readonly<Record<string, HostTensor>>,
  knownMs: (name: string) => number | undefined = () => undefined,
): Promise<{ ms: Record<string, number>; timing: 'device' | 'wall' }> {
  const preps: { name: string; p: Prepared; batch: number }[] = [];
  const ms = new Map<string, number[]>();
  let timing: 'device' | 'wall' = 'device';
  try {
    let want: Float32Array | undefined;
    for (const [i, [name, build]] of variants.entries()) {
      let p: Prepared | undefined;
      try {
        p = prepare(build(), rt, inputs);
        p.launch();
        const out = (await p.read())['out']!.data as Float32Array;
        const launchMs = knownMs(name) ?? (await rt.time(() => p!.launch(), 1)).medianMs;
        if (want && differs(out, want, 'f32')) {
          p.free();
          continue;
        }
        want ??= out;
        preps.push({ name, p, batch: batchFor(launchMs, PROBE_SAMPLE_MS, 64) });
        ms.set(name, []);
      } catch (e) {
        p?.free();
        // the first variant is the reference and must run; another the device cannot run is left out
        if (i === 0) throw e;
      }
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < preps.length; i++) {
        const { name, p, batch } = preps[(i + r) % preps.length]!;
        const t = await rt.time(() => {
          for (let j = 0; j < batch; j++) p.launch();
        }, 3);
        if (t.source === 'wall') timing = 'wall';
        ms.get(name)!.push(t.medianMs / batch);
      }
    }
  } finally {
    for (const { p } of preps) p.free();
  }
  return { ms: Object.fromEntries([...ms].map(([name, t]) => [name, Number(median(t).toPrecision(4))])), timing };
}

/** One line: what the profile changes and what the probe measured. */
export function describeProfile(p: DeviceProfile): string {
  const params = Object.entries(p.matmul).map(([k, v]) => `${k}=${v}`).join(' ');
  const probe = Object.entries(p.probe).map(([name, ms]) => `${name} ${ms.toFixed(3)} ms`).join(', ');
  const chain = Object.entries(p.chainProbe).map(([name, ms]) => `${name} ${ms.toFixed(3)} ms`).join(', ');
  return `f32 matmuls ${params ? `of ${PROFILE_MIN_ROWS} rows or more: ${params}` : 'keep the default'} (probe ${p.n}³, ${p.timing} time: ${probe}); small launches ${p.chain ? 'chained' : 'separate'} (decode step T${CHAIN_PROBE_DIMS.T} D${CHAIN_PROBE_DIMS.D} H${CHAIN_PROBE_DIMS.H}: ${chain})`;
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
