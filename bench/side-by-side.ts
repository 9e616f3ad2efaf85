/**
 * `node --import tsx bench/side-by-side.ts [--quick] [--cases matmul,gemv,...] [--impls ...]`
 * (= `npm run bench:sbs -- ...`)
 *
 * Tessera against hand-written WGSL, tfjs-backend-webgpu and onnxruntime-web's WebGPU provider, in
 * one process on the current adapter (pick the driver with VK_ICD_FILENAMES). For each case every
 * implementation is prepared (buffers uploaded once, pipelines created), checked once against the
 * case's float64 reference at the benchmark size (a mismatch drops that implementation from the
 * case, loudly), then timed in interleaved rounds: each round visits every implementation in turn
 * (starting one further along each round), and an implementation's time is the median of its
 * round medians. Tessera and the hand kernels are timed with device timestamps (one compute pass per
 * repetition); every implementation is also timed by wall clock (`repeats` runs enqueued, then one
 * sync, divided by repeats), the only clock the peers offer: ratios against the peers use wall
 * times on both sides, ratios against the hand kernels device times on both sides.
 *
 * Writes bench/results/side-by-side/<date>-<adapter>.json and .svg (not with --quick, unless
 * --write) and prints a table. --quick uses small sizes and leaves onnxruntime-web out (its wasm
 * compile alone takes about a minute; --ort brings it back).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createWebGPURuntime, webgpuUnavailableReason, type WebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { adapterSlug } from './backend.js';
import { calibrateDevice, describeProfile, type DeviceProfile } from '../src/tune/index.js';
import { renderChart, type ChartData } from './chart.js';
import { handImpl, handVariants } from './hand/runner.js';
import { selectCases, standardCases, type TesseraCase } from './peers/cases.js';
import { ortImpl } from './peers/ort.js';
import { tesseraChainedImpl, tesseraImpl, tesseraUnfusedImpl, tunedImpl } from './peers/tessera.js';
import { tfjsImpl } from './peers/tfjs.js';
import type { CheckResult, Impl, ImplContext, ImplKind, PreparedImpl } from './peers/types.js';
import { median } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const RESULTS = join(HERE, 'results', 'side-by-side');

export const IMPL_GROUPS = ['tessera', 'tessera-unfused', 'tessera-chained', 'tessera-tuned', 'tessera-spec', 'hand', 'tfjs', 'ort'] as const;

export interface SbsOptions {
  readonly quick: boolean;
  readonly cases: readonly string[];
  /** Implementation groups to run (IMPL_GROUPS); empty: all that apply. */
  readonly impls: readonly string[];
  /** Run onnxruntime-web even in --quick. */
  readonly ort: boolean | undefined;
  readonly rounds: number | undefined;
  /** Where to write results: a folder, the default, or nowhere. */
  readonly out: string | 'default' | null;
  readonly log: (line: string) => void;
}

export interface ImplTiming {
  readonly repeats: number;
  /** Device time per run (median of round medians), when the implementation has timestamps. */
  readonly deviceMs?: number;
  readonly deviceRounds?: readonly number[];
  /** Wall time per run: repeats runs enqueued + one sync, over repeats (median of rounds). */
  readonly wallMs: number;
  readonly wallRounds: readonly number[];
  /** The headline time: device where available, else wall. */
  readonly ms: number;
  readonly source: 'device' | 'wall';
}

export interface ImplResult {
  readonly impl: string;
  readonly kind: ImplKind;
  readonly status: 'ok' | 'skipped' | 'mismatch' | 'error';
  readonly message?: string;
  readonly note?: string;
  readonly check?: CheckResult;
  readonly timing?: ImplTiming;
  readonly gflops?: number;
  readonly gbps?: number;
  readonly kernels?: number;
  readonly boundBytes?: number;
  readonly kernelDetail?: readonly { readonly name: string; readonly boundBytes: number }[];
  /** Speed relative to the best hand-written kernel (device vs device when both have it): >1 is faster. */
  readonly vsHand?: number;
  /** Speed relative to tfjs / ort, wall vs wall: >1 is faster. */
  readonly vsTfjs?: number;
  readonly vsOrt?: number;
}

export interface CaseReport {
  readonly id: string;
  readonly label: string;
  readonly family: string;
  readonly dims: Readonly<Record<string, number>>;
  readonly flops: number;
  readonly idealBytes: number;
  readonly tolerance: { readonly rtol: number; readonly atol: number };
  readonly referenceMs: number;
  /** The fastest hand-written variant, reported as 'hand'. */
  readonly bestHand?: string;
  readonly results: readonly ImplResult[];
}

export interface SbsReport {
  readonly schema: 'tessera-side-by-side/1';
  readonly date: string;
  readonly command: string;
  readonly quick: boolean;
  /** `profile`: the device profile the untuned Tessera columns compiled with. */
  readonly adapter: { readonly slug: string; readonly description: string; readonly features: readonly string[]; readonly profile?: DeviceProfile };
  readonly host: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    readonly cpuModel: string;
    /** 1-minute load average at the start and the end: other processes share a software adapter's cores. */
    readonly loadAvg: readonly [number, number];
  };
  readonly versions: Readonly<Record<string, string>>;
  readonly method: string;
  readonly rounds: number;
  readonly cases: readonly CaseReport[];
  readonly files?: { readonly json: string; readonly svg: string };
}

const METHOD =
  'Per case: every implementation prepared once (inputs uploaded, pipelines created), checked once against a float64 reference at the benchmark size, ' +
  'then timed in interleaved rounds (round-robin over implementations, rotating the start); each figure is the median of the round medians. ' +
  'Device time (Tessera, hand): timestamp queries around one compute pass per repetition. Wall time (everyone): repeats runs enqueued, one sync, divided by repeats. ' +
  'GFLOP/s and GB/s use the headline time (device where available, else wall) and the ideal flops and bytes (inputs read once, output written once). ' +
  'vsHand compares device times with the fastest hand-written variant; vsTfjs and vsOrt compare wall times.';

/** The commit measured, with '+dirty' when the compiler's sources differ from it. */
function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'ops', 'bench', ':!bench/results'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

interface Live {
  readonly impl: Impl;
  readonly p: PreparedImpl;
  readonly check: CheckResult;
  readonly repeats: number;
  readonly device: number[];
  readonly wall: number[];
}

async function timeWall(p: PreparedImpl, repeats: number): Promise<number> {
  await p.sync();
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) p.run();
  await p.sync();
  return (performance.now() - t0) / repeats;
}

async function runCase(c: TesseraCase, impls: readonly Impl[], opts: { rounds: number; targetMs: number; minRepeats: number; maxRepeats: number; log: (l: string) => void }): Promise<CaseReport> {
  const { log } = opts;
  log(`\n== ${c.label}`);
  const t0 = performance.now();
  c.reference();
  const referenceMs = performance.now() - t0;
  const results = new Map<Impl, ImplResult>();
  const live: Live[] = [];
  try {
    for (const impl of impls) {
      const why = impl.supports(c);
      if (why !== null) {
        results.set(impl, { impl: impl.name, kind: impl.kind, status: 'skipped', message: why });
        continue;
      }
      let p: PreparedImpl | undefined;
      try {
        const tp = performance.now();
        p = await impl.prepare(c);
        const check = await p.check();
        await p.sync();
        if (check.worst > 1) {
          const message = `${impl.name} does not match the float64 reference on ${c.label}: ${check.firstBad ?? ''} (max |error| ${check.maxAbsError.toExponential(2)}); left out of this case`;
          log(`  MISMATCH ${message}`);
          results.set(impl, { impl: impl.name, kind: impl.kind, status: 'mismatch', message, check, note: p.note });
          p.free();
          continue;
        }
        // Warm-up outside any measurement, then one timed run to choose the repeats.
        p.run();
        await p.sync();
        const one = await timeWall(p, 1);
        const repeats = Math.max(opts.minRepeats, Math.min(opts.maxRepeats, Math.ceil(opts.targetMs / Math.max(one, 1e-3))));
        log(`  ${impl.name.padEnd(16)} ready in ${((performance.now() - tp) / 1000).toFixed(1)} s, check ok (max |error| ${check.maxAbsError.toExponential(2)}), ~${one.toFixed(2)} ms/run, ${repeats} repeats`);
        live.push({ impl, p, check, repeats, device: [], wall: [] });
      } catch (e) {
        const message = `${impl.name} failed on ${c.label}: ${e instanceof Error ? e.message : String(e)}`;
        log(`  ERROR ${message}`);
        results.set(impl, { impl: impl.name, kind: impl.kind, status: 'error', message });
        try {
          p?.free();
        } catch {
          // Already reported.
        }
      }
    }
    for (let r = 0; r < opts.rounds; r++) {
      for (let i = 0; i < live.length; i++) {
        const l = live[(i + r) % live.length]!;
        try {
          if (l.p.time) {
            const t = await l.p.time(l.repeats);
            if (t.source === 'device') l.device.push(t.medianMs);
          }
          l.wall.push(await timeWall(l.p, l.repeats));
        } catch (e) {
          log(`  ERROR timing ${l.impl.name}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    for (const l of live) {
      if (l.wall.length === 0) {
        results.set(l.impl, { impl: l.impl.name, kind: l.impl.kind, status: 'error', message: 'no timing round completed', check: l.check });
        continue;
      }
      const wallMs = median(l.wall);
      const deviceMs = l.device.length > 0 ? median(l.device) : undefined;
      const ms = deviceMs ?? wallMs;
      const timing: ImplTiming = {
        repeats: l.repeats,
        ...(deviceMs !== undefined ? { deviceMs, deviceRounds: l.device } : {}),
        wallMs,
        wallRounds: l.wall,
        ms,
        source: deviceMs !== undefined ? 'device' : 'wall',
      };
      results.set(l.impl, {
        impl: l.impl.name,
        kind: l.impl.kind,
        status: 'ok',
        check: l.check,
        timing,
        gflops: c.flops / (ms * 1e6),
        gbps: c.bytes / (ms * 1e6),
        ...(l.p.note !== undefined ? { note: l.p.note } : {}),
        ...(l.p.kernels !== undefined ? { kernels: l.p.kernels } : {}),
        ...(l.p.boundBytes !== undefined ? { boundBytes: l.p.boundBytes } : {}),
        ...(l.p.kernelDetail !== undefined ? { kernelDetail: l.p.kernelDetail } : {}),
      });
    }
  } finally {
    for (const l of live) l.p.free();
  }
  const ordered = impls.map((i) => results.get(i)!).filter((r) => r !== undefined);
  return withRatios(c, referenceMs, ordered);
}

/** Fill in vsHand / vsTfjs / vsOrt and name the best hand-written variant. */
export function withRatios(c: TesseraCase, referenceMs: number, results: readonly ImplResult[]): CaseReport {
  const ok = results.filter((r) => r.status === 'ok' && r.timing);
  const hands = ok.filter((r) => r.kind === 'hand').sort((a, b) => a.timing!.ms - b.timing!.ms);
  const best = hands[0];
  const tf = ok.find((r) => r.impl === 'tfjs');
  const ort = ok.find((r) => r.impl === 'ort');
  const out = results.map((r): ImplResult => {
    if (r.status !== 'ok' || !r.timing) return r;
    const t = r.timing;
    const vsHand = best ? (best.timing!.deviceMs !== undefined && t.deviceMs !== undefined ? best.timing!.deviceMs / t.deviceMs : best.timing!.wallMs / t.wallMs) : undefined;
    return {
      ...r,
      ...(vsHand !== undefined ? { vsHand } : {}),
      ...(tf ? { vsTfjs: tf.timing!.wallMs / t.wallMs } : {}),
      ...(ort ? { vsOrt: ort.timing!.wallMs / t.wallMs } : {}),
    };
  });
  return {
    id: c.id,
    label: c.label,
    family: c.family,
    dims: c.dims,
    flops: c.flops,
    idealBytes: c.bytes,
    tolerance: c.tolerance,
    referenceMs,
    ...(best ? { bestHand: best.impl } : {}),
    results: out,
  };
}

// -------------------------------------------------------------------------------------------------
// Report

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i <= 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const f = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const ratio = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)}x`);

export function reportTable(cases: readonly CaseReport[]): string {
  const rows: string[][] = [];
  for (const c of cases) {
    for (const r of c.results) {
      if (r.status === 'skipped') continue;
      const t = r.timing;
      const name = r.kind === 'hand' && r.impl === c.bestHand ? `${r.impl} *` : r.impl;
      rows.push([
        c.label,
        name,
        r.status === 'ok' ? 'ok' : r.status.toUpperCase(),
        t ? f(t.ms, 3) : '-',
        t ? (t.source === 'device' ? 'dev' : 'wall') : '-',
        t ? f(t.wallMs, 3) : '-',
        f(r.gflops),
        f(r.gbps),
        r.kernels === undefined ? '-' : String(r.kernels),
        r.boundBytes === undefined ? '-' : f(r.boundBytes / 1e6, 1),
        ratio(r.vsHand),
        ratio(r.vsTfjs),
        ratio(r.vsOrt),
      ]);
    }
  }
  return table(['case', 'impl', 'check', 'ms', 'clock', 'wall ms', 'GFLOP/s', 'GB/s', 'kernels', 'bound MB', 'vs hand', 'vs tfjs', 'vs ort'], rows);
}

/** The chart: GFLOP/s for the compute-bound cases, GB/s for the memory-bound ones; hand = its best variant. */
export function chartData(report: Pick<SbsReport, 'adapter' | 'date' | 'quick' | 'cases'>): ChartData {
  const seriesSet: string[] = [];
  for (const c of report.cases) {
    for (const r of c.results) {
      if (r.status !== 'ok') continue;
      const s = r.kind === 'hand' ? 'hand' : r.impl;
      if (!seriesSet.includes(s)) seriesSet.push(s);
    }
  }
  const order = (s: string) => {
    const i = (IMPL_GROUPS as readonly string[]).indexOf(s);
    return i < 0 ? IMPL_GROUPS.length : i;
  };
  const series = seriesSet.sort((a, b) => order(a) - order(b));
  const valueOf = (c: CaseReport, s: string, metric: 'gflops' | 'gbps'): number | null => {
    const r = c.results.find((x) => x.status === 'ok' && x.impl === (s === 'hand' ? c.bestHand : s));
    const v = r?.[metric];
    return v === undefined ? null : v;
  };
  const compute = report.cases.filter((c) => c.family === 'matmul' || c.family === 'block');
  const memory = report.cases.filter((c) => !(c.family === 'matmul' || c.family === 'block'));
  const panels = [
    { title: 'Compute-bound: GFLOP/s (higher is better)', unit: 'GFLOP/s', groups: compute.map((c) => ({ label: c.label, values: series.map((s) => valueOf(c, s, 'gflops')) })) },
    { title: 'Memory-bound: GB/s of ideal traffic (higher is better)', unit: 'GB/s', groups: memory.map((c) => ({ label: c.label, values: series.map((s) => valueOf(c, s, 'gbps')) })) },
  ].filter((p) => p.groups.length > 0);
  return {
    title: `Tessera side by side on ${report.adapter.slug}${report.quick ? ' (--quick)' : ''}, ${report.date}`,
    subtitle: report.adapter.description,
    series,
    panels,
    footnote: ['Tessera and hand: device timestamps; tfjs and ort: wall clock (runs enqueued + one sync).', 'hand = the fastest hand-written WGSL variant for the case.'],
  };
}

// -------------------------------------------------------------------------------------------------

export async function buildImpls(ctx: ImplContext, groups: readonly string[], quick: boolean, ort: boolean | undefined): Promise<Impl[]> {
  const want = (g: string) => groups.length === 0 || groups.includes(g);
  const impls: Impl[] = [];
  if (want('tessera')) impls.push(tesseraImpl(ctx));
  if (want('tessera-unfused')) impls.push(tesseraUnfusedImpl(ctx));
  if (want('tessera-chained')) impls.push(tesseraChainedImpl(ctx));
  if (want('tessera-tuned')) impls.push(tunedImpl(ctx));
  // tuned and compiled for the case's exact dims (CompileOptions.specialize), as the hand kernels are
  if (want('tessera-spec')) impls.push(tunedImpl(ctx, { specialize: true }));
  if (want('hand')) impls.push(...handVariants().map((v) => handImpl(ctx, v)));
  if (want('tfjs')) impls.push(tfjsImpl(ctx));
  const withOrt = ort ?? (groups.includes('ort') || !quick);
  if (want('ort') && withOrt) impls.push(ortImpl(ctx));
  return impls;
}

export async function runSideBySide(opts: SbsOptions): Promise<SbsReport> {
  const rt: WebGPURuntime | undefined = await createWebGPURuntime();
  if (!rt) throw new Error(`side-by-side needs a WebGPU adapter: ${webgpuUnavailableReason()}`);
  const log = opts.log;
  const slug = adapterSlug(rt);
  const cases = selectCases(standardCases(opts.quick), opts.cases);
  // the untuned Tessera columns run what this device gives a program nobody tuned: its profile
  // (calibrated once per device and compiler version, cached with the tuning records)
  const untuned = opts.impls.length === 0 || opts.impls.some((g) => g === 'tessera' || g === 'tessera-unfused' || g === 'tessera-chained');
  const profile = untuned ? await calibrateDevice(rt) : undefined;
  if (profile) log(`device profile: ${describeProfile(profile)}`);
  const ctx: ImplContext = { rt, log, ...(profile ? { profile } : {}) };
  const impls = await buildImpls(ctx, opts.impls, opts.quick, opts.ort);
  const rounds = opts.rounds ?? (opts.quick ? 2 : 5);
  const load0 = loadavg()[0]!;
  log(`adapter: ${rt.info.description} [${slug}]${opts.quick ? ' --quick' : ''}`);
  log(`implementations: ${impls.map((i) => i.name).join(', ')}; ${rounds} rounds`);
  const reports: CaseReport[] = [];
  try {
    for (const c of cases) {
      reports.push(await runCase(c, impls, { rounds, targetMs: opts.quick ? 30 : 400, minRepeats: opts.quick ? 1 : 3, maxRepeats: opts.quick ? 20 : 50, log }));
    }
  } finally {
    for (const i of impls) await i.close?.();
  }
  const date = new Date().toISOString().slice(0, 10);
  const args = [opts.quick ? '--quick' : '', opts.cases.length ? `--cases ${opts.cases.join(',')}` : '', opts.impls.length ? `--impls ${opts.impls.join(',')}` : ''].filter(Boolean).join(' ');
  const report: SbsReport = {
    schema: 'tessera-side-by-side/1',
    date,
    command: `VK_ICD_FILENAMES=${process.env['VK_ICD_FILENAMES'] ?? ''} node --import tsx bench/side-by-side.ts ${args}`.trim(),
    quick: opts.quick,
    adapter: { slug, description: rt.info.description, features: rt.info.features, ...(profile ? { profile } : {}) },
    host: { node: process.version, platform: platform(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadAvg: [load0, loadavg()[0]!] },
    versions: {
      tessera: gitCommit(),
      '@tensorflow/tfjs-core': packageVersion('@tensorflow/tfjs-core'),
      '@tensorflow/tfjs-backend-webgpu': packageVersion('@tensorflow/tfjs-backend-webgpu'),
      'onnxruntime-web': packageVersion('onnxruntime-web'),
      webgpu: packageVersion('webgpu'),
    },
    method: METHOD,
    rounds,
    cases: reports,
  };
  log(`\nside by side on ${slug} (ms: device where 'dev', else wall; ratios >1 mean faster than that peer; * = fastest hand variant):\n${reportTable(reports)}`);
  if (opts.out === null) return report;
  const dir = opts.out === 'default' ? RESULTS : opts.out;
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${date}-${slug}${opts.quick ? '-quick' : ''}`);
  const files = { json: `${base}.json`, svg: `${base}.svg` };
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.svg, renderChart(chartData(report)));
  log(`\nwrote ${files.json}\nwrote ${files.svg}`);
  return { ...report, files };
}

const USAGE = 'usage: bench/side-by-side.ts [--quick] [--cases ID|FAMILY,...] [--impls tessera,tessera-unfused,tessera-chained,tessera-tuned,tessera-spec,hand,tfjs,ort] [--ort|--no-ort] [--rounds N] [--out DIR|--write|--no-write]';

export function parseArgs(argv: readonly string[]): Omit<SbsOptions, 'log'> {
  let quick = false;
  let cases: string[] = [];
  let impls: string[] = [];
  let ort: boolean | undefined;
  let rounds: number | undefined;
  let out: string | 'default' | null | undefined;
  const value = (i: number, a: string): [string, number] => {
    if (a.includes('=')) return [a.slice(a.indexOf('=') + 1), i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${a} needs a value; ${USAGE}`);
    return [v, i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const flag = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (a === '--quick') quick = true;
    else if (a === '--ort') ort = true;
    else if (a === '--no-ort') ort = false;
    else if (a === '--write') out = 'default';
    else if (a === '--no-write') out = null;
    else if (flag === '--cases' || flag === '--impls' || flag === '--rounds' || flag === '--out') {
      const [v, j] = value(i, a);
      i = j;
      if (flag === '--cases') cases = v.split(',').filter(Boolean);
      else if (flag === '--impls') {
        impls = v.split(',').filter(Boolean);
        const bad = impls.filter((x) => !(IMPL_GROUPS as readonly string[]).includes(x));
        if (bad.length) throw new Error(`--impls: unknown ${bad.join(', ')}; known: ${IMPL_GROUPS.join(', ')}`);
      } else if (flag === '--rounds') {
        rounds = Number(v);
        if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds takes a positive integer, got '${v}'`);
      } else out = v;
    } else if (a === '--help' || a === '-h') throw new Error(USAGE);
    else throw new Error(`unknown argument '${a}'; ${USAGE}`);
  }
  return { quick, cases, impls, ort, rounds, out: out === undefined ? (quick ? null : 'default') : out };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let code = 0;
  try {
    const report = await runSideBySide({ ...parseArgs(process.argv.slice(2)), log: (l) => console.log(l) });
    const bad = report.cases.flatMap((c) => c.results.filter((r) => r.status === 'mismatch' || r.status === 'error').map((r) => `  ${c.label} ${r.impl}: ${r.message ?? r.status}`));
    if (bad.length > 0) {
      console.error(`\n${bad.length} implementation/case pair(s) failed:\n${bad.join('\n')}`);
      // A Tessera mismatch is a bug to fix; a peer's is reported but does not fail the run.
      if (report.cases.some((c) => c.results.some((r) => r.kind !== 'peer' && (r.status === 'mismatch' || r.status === 'error')))) code = 1;
    }
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    code = 1;
  }
  // Dawn and onnxruntime-web keep handles open: leave explicitly.
  process.exit(code);
}
