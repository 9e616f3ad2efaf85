/**
 * The autotuner: for each kernel of a program, times every candidate schedule on the device at the
 * given dims (device timestamps where the backend has them), keeps the fastest whose output equals
 * the default schedule's, and caches the winner on disk (cache.ts). `compileTuned` compiles with the
 * cached winners and falls back to the device's profile (profile.ts), else the default heuristic,
 * for anything untuned.
 */
import { fail } from '../errors.js';
import type { Program } from '../ir/graph.js';
import { printKernel } from '../ir/kernel-print.js';
import { allBuilds, compile, kernelGroups, type CompiledProgram, type CompileOptions } from '../passes/pipeline.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { bindDims, prepare, type HostTensor } from '../runtime/execute.js';
import { median } from '../runtime/median.js';
import { batchFor, differs } from './measure.js';
import { candidatesFor, deviceCaps, type Candidate } from './candidates.js';
import { cacheDir, COMPILER_VERSION, deviceKey, pickEntry, readRecord, tuneKey, writeRecord, type TuneRecord } from './cache.js';
import { profileParams, readProfile, type DeviceProfile } from './profile.js';
import type { FusedGroup } from '../passes/fuse.js';

export { COMPILER_VERSION } from './cache.js';

export interface TuneProgress {
  readonly kernel: string;
  readonly kernelIndex: number;
  readonly kernels: number;
  readonly candidate: number;
  readonly candidates: number;
}

export interface KernelTuning {
  readonly kernel: string;
  readonly kind: string;
  readonly defaultMs: number;
  readonly best: Candidate;
  readonly bestMs: number;
  readonly tried: number;
  readonly rejected: readonly string[];
  readonly cached: boolean;
  readonly tuneMs: number;
}

export interface TuneOptions {
  readonly repeats?: number;
  readonly cacheDir?: string;
  /** Re-time even when the cache has an entry at these dims. */
  readonly force?: boolean;
  readonly onProgress?: (p: TuneProgress) => void;
  /**
   * Tune the program specialized to the inputs' dims (dims as constants, see CompileOptions.specialize);
   * compile it later with `compileTuned(..., { specialize: dims })` to use the winners.
   */
  readonly specialize?: boolean;
  /**
   * Narrows the search: given a kernel's candidates, returns those to time (a quick tune, or one
   * schedule family). Its winners are cached as narrowed: a later search without this option
   * times every candidate again rather than take them.
   */
  readonly candidates?: (all: readonly Candidate[], kernel: { readonly name: string; readonly kind: string }) => readonly Candidate[];
}

/** Interleaved rounds of the winner against the default that confirm a winner (see tuneProgram). */
export const CONFIRM_ROUNDS = 3;

/** Tunes every kernel of `program` on `rt` at the shapes of `inputs`; returns one record per kernel. */
export async function tuneProgram(program: Program, rt: BackendRuntime, inputs: Readonly<Record<string, HostTensor>>, opts: TuneOptions = {}): Promise<KernelTuning[]> {
  const repeats = opts.repeats ?? 7;
  const dir = opts.cacheDir ?? cacheDir();
  const specialize = opts.specialize ? bindDims(compile(program), inputs) : undefined;
  // a device with tensor cores compiles f16 matmuls to the mma schedule by default, as compileTuned does
  const caps = deviceCaps(rt.info);
  const copts = { ...(specialize ? { specialize } : {}), ...(caps.tensorCores ? { tensorCores: true } : {}), ...(caps.bf16TensorCores ? { bf16TensorCores: true } : {}) };
  // the build that runs at these dims (multi-versioning) is the one tuned
  const prep = prepare(compile(program, copts), rt, inputs);
  const base = prep.program;
  const buildOpts: CompileOptions = { ...copts, versions: false, ...(base.specialized ? { specialize: base.specialized } : {}), ...(base.assumed ? { assume: base.assumed } : {}) };
  const results: KernelTuning[] = [];
  try {
    prep.launch(); // every intermediate buffer holds real data before single kernels are timed
    await rt.sync();
    for (const [ki, ck] of base.kernels.entries()) {
      const t0 = performance.now();
      const bindings = ck.bindings.map((n) => prep.buffers.get(n)!);
      const out = bindings[bindings.length - 1]!;
      const key = tuneKey(printKernel(ck.kernel), deviceKey(rt), COMPILER_VERSION);
      const rec: TuneRecord = readRecord(key, dir) ?? { key, kernel: ck.kernel.name, device: deviceKey(rt), compiler: COMPILER_VERSION, entries: [] };
      const hit = rec.entries.find((e) => JSON.stringify(e.dims) === JSON.stringify(prep.dims));
      if (hit && !opts.force && (!hit.narrowed || opts.candidates)) {
        results.push({ kernel: ck.kernel.name, kind: ck.kernel.schedule.kind, defaultMs: hit.defaultMs, best: hit.params, bestMs: hit.medianMs, tried: 0, rejected: [], cached: true, tuneMs: performance.now() - t0 });
        continue;
      }
      // A sample of one launch of a microsecond-scale kernel measures the submission and sync more
      // than the kernel: each sample runs `batch` launches, enough for about SAMPLE_MS, and the time
      // per launch is the sample over the batch (the same batch for every candidate of this kernel).
      let batch = 1;
      const time = async (k: typeof ck.kernel, samples = repeats) => {
        const t = await rt.time(() => {
          for (let i = 0; i < batch; i++) rt.run(k, bindings, prep.dims);
        }, samples);
        return { ...t, medianMs: t.medianMs / batch };
      };
      rt.run(ck.kernel, bindings, prep.dims);
      const expected = await rt.download(out);
      // at least three samples: the batch follows their median, which one preempted launch on a
      // busy host cannot move (the median of two is the slower)
      const probe = await time(ck.kernel, Math.max(repeats, 3));
      batch = batchFor(probe.medianMs);
      const def = batch === 1 ? probe : await time(ck.kernel);
      let best: Candidate = {};
      let bestMs = def.medianMs;
      const rejected: string[] = [];
      const every = candidatesFor(ck.group, deviceCaps(rt.info), prep.dims);
      const cands = opts.candidates ? opts.candidates(every, { name: ck.kernel.name, kind: ck.kernel.schedule.kind }) : every;
      const narrowed = cands.length < every.length || cands.some((c) => !every.includes(c));
      // specialized: after the schedule, whether this kernel is faster with the dims as uniforms
      const refine = specialize ? 1 : 0;
      // the candidate in the build being tuned, compiled alone under that build's conditions
      const variantOf = (cand: Candidate) => compile(program, { ...buildOpts, groupParams: (_g, i) => (i === ki ? cand : undefined) }).kernels[ki]!.kernel;
      for (let ci = 0; ci < cands.length + refine; ci++) {
        const cand: Candidate = ci < cands.length ? cands[ci]! : { ...best, constDims: 0 };
        opts.onProgress?.({ kernel: ck.kernel.name, kernelIndex: ki, kernels: base.kernels.length, candidate: ci + 1, candidates: cands.length + refine });
        const variant = variantOf(cand);
        rt.run(variant, bindings, prep.dims);
        const bad = differs(await rt.download(out), expected, out.dtype);
        if (bad) {
          rejected.push(`${JSON.stringify(cand)}: ${bad}`);
          continue;
        }
        const t = await time(variant);
        if (t.medianMs < bestMs) {
          bestMs = t.medianMs;
          best = cand;
        }
      }
      // The fastest of many noisy timings is biased low: the winner is timed again against the
      // default, interleaved, and kept only if it is still faster (so tuning never picks a kernel
      // that only looked faster once).
      let defaultMs = def.medianMs;
      if (Object.keys(best).length > 0) {
        const winner = variantOf(best);
        const [d, w]: number[][] = [[], []];
        for (let r = 0; r < CONFIRM_ROUNDS; r++) {
          d.push((await time(ck.kernel)).medianMs);
          w.push((await time(winner)).medianMs);
        }
        [defaultMs, bestMs] = [median(d), median(w)];
        if (bestMs >= defaultMs) [best, bestMs] = [{}, defaultMs];
      }
      rec.entries = [...rec.entries.filter((e) => JSON.stringify(e.dims) !== JSON.stringify(prep.dims)), { dims: prep.dims, params: best, medianMs: bestMs, defaultMs, timing: def.source, ...(narrowed ? { narrowed: true as const } : {}) }];
      writeRecord(rec, dir);
      results.push({ kernel: ck.kernel.name, kind: ck.kernel.schedule.kind, defaultMs, best, bestMs, tried: cands.length + refine, rejected, cached: false, tuneMs: performance.now() - t0 });
    }
  } finally {
    prep.free();
  }
  return results;
}

/**
 * Compiles with the tuned parameters cached for `device` (a runtime's `kind:description`), picking
 * the entry tuned at dims nearest `dims`; untuned kernels take the device's profile (profile.ts:
 * calibrated once per device, read from the same cache; `profile: false` ignores it), else the
 * default heuristic. `tuned: false` takes the profile alone (what a device gives a program nobody tuned).
 * Where the profile says launch chaining pays, kernels small at `dims` are chained (`opts.chain`,
 * when given, decides instead).
 */
export function compileTuned(program: Program, device: BackendRuntime | string, opts: CompileOptions & { dims?: Readonly<Record<string, number>>; cacheDir?: string; profile?: DeviceProfile | false; tuned?: boolean } = {}): CompiledProgram {
  const dev = typeof device === 'string' ? device : deviceKey(device);
  if (typeof device !== 'string' && opts.tensorCores === undefined && deviceCaps(device.info).tensorCores) opts = { ...opts, tensorCores: true, ...(deviceCaps(device.info).bf16TensorCores ? { bf16TensorCores: true } : {}) };
  const profile = opts.profile === false ? undefined : (opts.profile ?? readProfile(dev, COMPILER_VERSION, opts.cacheDir ?? cacheDir()));
  const { profile: _p, tuned: _t, chain: asked, ...copts } = opts;
  // tuned records are keyed by the unchained kernels; chaining (asked for, or the profile's) comes last
  const base = compile(program, copts);
  const chain = asked ?? (profile?.chain ? { ...(opts.dims ? { dims: opts.dims } : {}) } : undefined);
  const final: CompileOptions = chain ? { ...copts, chain } : copts;
  // each build (the general one and every version) takes what was tuned for its own kernels
  const chosen = new Map(allBuilds(base).map((b) => [b.version, b.kernels.map((ck) => {
    if (opts.tuned === false) return undefined;
    const rec = readRecord(tuneKey(printKernel(ck.kernel), dev, COMPILER_VERSION), opts.cacheDir ?? cacheDir());
    return rec ? pickEntry(rec, opts.dims)?.params : undefined;
  })]));
  // the profile sees each build's dims: the one-token build's matmuls have one row
  const buildDims = new Map(allBuilds(base).map((b) => [b.version, { ...opts.dims, ...b.specialized }]));
  const profiled = (g: FusedGroup, v: string) => profileParams(profile, g, buildDims.get(v));
  if ([...chosen.values()].every((cs) => cs.every((c) => c === undefined)) && !allBuilds(base).some((b) => b.kernels.some((ck) => profiled(ck.group, b.version)))) return chain ? compile(program, final) : base;
  const tuned = compile(program, { ...final, groupParams: (g, i, v) => ({ ...opts.groupParams?.(g, i, v), ...(chosen.get(v)?.[i] ?? profiled(g, v)) }) });
  // Parameters may add or drop a version (one that prints like the general build is not kept: a
  // general build tuned to taller tiles gains an aligned version), never change a build's groups.
  for (const b of allBuilds(tuned)) {
    const was = allBuilds(base).find((x) => x.version === b.version);
    if (was && was.kernels.length !== b.kernels.flatMap(kernelGroups).length) fail('E_INTERNAL', `tuned parameters changed the kernel count of build ${b.version}`);
  }
  return tuned;
}
