/**
 * `node --import tsx bench/run.ts [--backend js|webgpu|auto] [--quick] [--out FILE] [--no-write]`
 *
 * Compile time of every library op (DSL -> compile() -> WGSL) and throughput of the standard cases
 * on one runtime (WebGPU when an adapter exists, unless --backend js). Prints tables and writes
 * JSON to bench/results/<date>-<adapter>.json. --quick uses tiny sizes (well under a minute on the
 * JS backend) and writes nothing unless --out is given.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { library } from '../ops/index.js';
import { adapterSlug, pickBackend, type BackendChoice } from './backend.js';
import { measureCompileTime, type CompileReport } from './compile-time.js';
import { compileTable, throughputTable } from './report.js';
import { measureThroughput, standardCases, type CaseResult } from './throughput.js';

export interface BenchOptions {
  readonly backend: BackendChoice;
  readonly quick: boolean;
  /** Where to write the JSON: a path, the default results file ('default'), or nowhere (null). */
  readonly out: string | 'default' | null;
  readonly log: (line: string) => void;
}

export interface BenchResult {
  readonly schema: 'tessera-bench/1';
  readonly date: string;
  readonly command: string;
  readonly quick: boolean;
  readonly backend: { readonly kind: string; readonly slug: string; readonly description: string; readonly features: readonly string[]; readonly note: string };
  readonly host: { readonly node: string; readonly platform: string; readonly cpus: number; readonly cpuModel: string };
  readonly compile: CompileReport;
  readonly throughput: readonly CaseResult[];
  /** Where the JSON was written, if anywhere. */
  readonly file?: string;
}

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const picked = await pickBackend(opts.backend);
  const { rt } = picked;
  try {
    const slug = adapterSlug(rt);
    opts.log(`backend: ${rt.info.kind} (${rt.info.description}) [${picked.note}]${opts.quick ? ' --quick' : ''}`);

    const compileReport = measureCompileTime(library, picked.wgslCaps);
    opts.log(`\ncompile time, DSL -> compile() -> WGSL text (median of ${compileReport.runs} runs):\n${compileTable(compileReport)}`);

    const throughput = await measureThroughput(rt, standardCases(opts.quick), { rounds: opts.quick ? 2 : 3, targetMsPerRound: opts.quick ? 50 : 300, log: opts.log });
    opts.log(`\nthroughput on ${slug} (median of rounds; ideal bytes = inputs once + outputs once; bound = buffers each kernel binds):\n${throughputTable(throughput)}`);

    const date = new Date().toISOString().slice(0, 10);
    const result: BenchResult = {
      schema: 'tessera-bench/1',
      date,
      command: `node --import tsx bench/run.ts --backend ${rt.info.kind}${opts.quick ? ' --quick' : ''}`,
      quick: opts.quick,
      backend: { kind: rt.info.kind, slug, description: rt.info.description, features: rt.info.features, note: picked.note },
      host: { node: process.version, platform: platform(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown' },
      compile: compileReport,
      throughput,
    };
    if (opts.out === null) return result;
    const file = opts.out === 'default' ? join(RESULTS, `${date}-${slug}${opts.quick ? '-quick' : ''}.json`) : opts.out;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ ...result, file: undefined }, null, 2)}\n`);
    opts.log(`\nwrote ${file}`);
    return { ...result, file };
  } finally {
    rt.destroy();
  }
}

function parseArgs(argv: readonly string[]): Omit<BenchOptions, 'log'> {
  let backend: BackendChoice = 'auto';
  let quick = false;
  let out: string | 'default' | null | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--no-write') out = null;
    else if (a === '--backend' || a.startsWith('--backend=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v !== 'js' && v !== 'webgpu' && v !== 'auto') throw new Error(`--backend takes js, webgpu or auto, got '${v ?? ''}'`);
      backend = v;
    } else if (a === '--out' || a.startsWith('--out=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error('--out needs a file');
      out = v;
    } else throw new Error(`unknown argument '${a}'; usage: bench/run.ts [--backend js|webgpu|auto] [--quick] [--out FILE] [--no-write]`);
  }
  return { backend, quick, out: out === undefined ? (quick ? null : 'default') : out };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const result = await runBench({ ...parseArgs(process.argv.slice(2)), log: (l) => console.log(l) });
    const failed = result.throughput.filter((c) => c.check !== 'ok');
    if (failed.length > 0) {
      console.error(`\n${failed.length} case(s) did not match their reference:\n${failed.map((c) => `  ${c.check}`).join('\n')}`);
      process.exitCode = 1;
    }
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  }
}
