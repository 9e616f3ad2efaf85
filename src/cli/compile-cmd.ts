/**
 * `tessera compile <file> --target wgsl,js --out DIR`: writes, per program, the kernel sources, a
 * manifest.json and a typed TS wrapper under DIR/<program>/. Output is deterministic, so generated
 * files can be committed and diffed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Program } from '../ir/graph.js';
import { printProgram } from '../ir/text/print.js';
import { allBuilds, compile, STAGES, type CompiledProgram } from '../passes/pipeline.js';
import type { ScheduleParams } from '../passes/schedule.js';
import { CHAIN_BELOW } from '../passes/chain.js';
import { printJSModule } from '../backends/js/print.js';
import { printCudaUnit } from '../backends/cuda/print.js';
import { archNumber, compileCuda, DEFAULT_ARCHS, NVCC_FLAGS, nvccAvailable } from '../backends/cuda/nvcc.js';
import { flag, keyValues, list, UsageError, type CliIO, type Command, type FlagSpec, type Parsed } from './args.js';
import { loadWGSLPrinter } from './backends.js';
import { loadPrograms } from './load.js';
import { ALL_TARGETS, buildManifest, manifestText, TARGETS, type Target } from './manifest.js';
import { generateTorchModule } from './torch-emit.js';
import { checkDimNames, ownDims } from './verify.js';
import { generateWrapper } from './wrapper.js';

export interface CompileFlags {
  readonly params: Partial<ScheduleParams>;
  readonly dumpAfter: readonly string[];
  /** Compile for tensor cores (f16 matmuls take the mma schedule by default; see CompileOptions.tensorCores). */
  readonly tensorCores?: boolean;
  /** bf16 matmuls take the mma schedule too (sm_80+). */
  readonly bf16TensorCores?: boolean;
  /** false: the general build only (what `compile` writes); else the program's versions too (CompileOptions.versions). */
  readonly versions?: boolean;
  /** Launch chaining at these dims (CompileOptions.chain). */
  readonly chain?: Readonly<Record<string, number>>;
}

/**
 * Every schedule parameter `--params` takes, with its least value: 0 where 0 turns a path off
 * (tiled, coop, vec, uk, stage, constDims, mma, db, sg), else 1.
 */
export const PARAM_MIN: Readonly<Record<keyof ScheduleParams, number>> = {
  workgroupSize: 1, perThread: 1, tm: 1, tn: 1, tiled: 0, wm: 1, wn: 1, bk: 1, coop: 0, vec: 0,
  uk: 0, stage: 0, constDims: 0, ur: 1, mma: 0, fm: 1, fn: 1, db: 0, sg: 0,
};

/** Flags `compile` and `run` share. */
export const COMPILE_FLAGS: readonly FlagSpec[] = [
  { name: 'dump-after', value: 'STAGE', repeat: true, help: `print the IR after a stage: ${STAGES.join(', ')}` },
  { name: 'params', value: 'k=v,..', repeat: true, help: `schedule parameters (${Object.keys(PARAM_MIN).join(', ')})` },
  { name: 'chain', value: 'DIM=N,..', repeat: true, help: `run kernels that launch under ${CHAIN_BELOW} invocations at these dims (a decode step's) as one kernel of one workgroup` },
];

export function compileFlags(p: Parsed, command: string): CompileFlags {
  const dumpAfter = list(p, 'dump-after');
  for (const s of dumpAfter) {
    if (!(STAGES as readonly string[]).includes(s)) throw new UsageError(`unknown stage '${s}' for --dump-after; stages are ${STAGES.join(', ')}`, command);
  }
  const params = keyValues(p, 'params', command);
  for (const [k, v] of Object.entries(params)) {
    const min = PARAM_MIN[k as keyof ScheduleParams];
    if (min === undefined) throw new UsageError(`unknown schedule parameter '${k}'; known: ${Object.keys(PARAM_MIN).join(', ')}`, command);
    if (v < min) throw new UsageError(`schedule parameter ${k} must be >= ${min}, got ${v}`, command);
  }
  const chain = keyValues(p, 'chain', command);
  for (const [k, v] of Object.entries(chain)) if (v < 1) throw new UsageError(`--chain: dim ${k} must be >= 1, got ${v}`, command);
  return { params, dumpAfter, ...(p.flags.has('chain') ? { chain } : {}) };
}

/** compile() with the requested dumps printed to `io.out`, timed. */
export function compileProgram(program: Program, flags: CompileFlags, io: CliIO): { cp: CompiledProgram; ms: number } {
  const t0 = performance.now();
  const cp = compile(program, {
    params: flags.params,
    ...(flags.tensorCores ? { tensorCores: true } : {}),
    ...(flags.bf16TensorCores ? { bf16TensorCores: true } : {}),
    ...(flags.versions === false ? { versions: false } : {}),
    ...(flags.chain ? { chain: { dims: ownDims(program, flags.chain) } } : {}),
    dumpAfter: flags.dumpAfter,
    printProgram,
    onDump: (stage, text) => io.out(`// ---- ${program.name} after ${stage} ----\n${text.trimEnd()}\n`),
  });
  return { cp, ms: performance.now() - t0 };
}

export function parseTargets(p: Parsed, command: string): Target[] {
  // --emit is an alias of --target (`--emit torch`).
  const given = [...list(p, 'target'), ...list(p, 'emit')];
  const targets: Target[] = [];
  for (const t of given.length > 0 ? given : [...TARGETS]) {
    if (!(ALL_TARGETS as readonly string[]).includes(t)) throw new UsageError(`unknown target '${t}'; targets are ${ALL_TARGETS.join(', ')}`, command);
    if (!targets.includes(t as Target)) targets.push(t as Target);
  }
  // A fixed order keeps the manifest byte-stable whatever order the flags came in.
  return ALL_TARGETS.filter((t) => targets.includes(t));
}

const ARCH = /^sm_\d{2,3}[a-z]?$/;

/** `--archs sm_80,sm_90`: the GPUs the CUDA binaries are built for (default DEFAULT_ARCHS). */
export function parseArchs(p: Parsed, command: string): string[] {
  const given = list(p, 'archs');
  for (const a of given) if (!ARCH.test(a)) throw new UsageError(`--archs expects GPU architectures like sm_80,sm_90, got '${a}'`, command);
  const archs = [...new Set(given.length > 0 ? given : DEFAULT_ARCHS)];
  // Sorted by number, so the order of the flag does not change the output.
  return archs.sort((a, b) => archNumber(a) - archNumber(b) || (a < b ? -1 : a > b ? 1 : 0));
}

export interface WriteOptions {
  /** GPUs for the CUDA binaries (default DEFAULT_ARCHS). */
  readonly archs?: readonly string[];
  /** Called with a sentence worth telling the user (nvcc missing). */
  readonly onNote?: (text: string) => void;
}

/** Writes one program's files under outDir/<program>/ and returns their paths. */
export async function writeProgram(cp: CompiledProgram, targets: readonly Target[], outDir: string, opts: WriteOptions = {}): Promise<string[]> {
  const wgsl = await loadWGSLPrinter();
  const dir = join(outDir, cp.name);
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, text: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    written.push(path);
  };
  // every build's kernels (multi-versioning: version kernels carry their build's tag in the name)
  const kernels = allBuilds(cp).flatMap((b) => b.kernels.map((k) => k.kernel));
  for (const kernel of kernels) {
    if (targets.includes('wgsl')) write(`${kernel.name}.wgsl`, wgsl.print(kernel));
    if (targets.includes('js')) write(`${kernel.name}.js`, printJSModule(kernel));
  }
  const archs = opts.archs ?? DEFAULT_ARCHS;
  const withCuda = targets.includes('cuda') || targets.includes('torch');
  const cudaUnit = withCuda ? `${printCudaUnit(kernels)}\n` : '';
  let binaries: { fatbin?: string; ptx?: string } = {};
  if (targets.includes('cuda')) {
    write(`${cp.name}.cu`, cudaUnit);
    if (nvccAvailable()) {
      const fat = compileCuda(cudaUnit, { archs, output: 'fatbin' });
      const ptx = compileCuda(cudaUnit, { archs, output: 'ptx' });
      write(`${cp.name}.fatbin`, fat.bytes);
      write(`${cp.name}.ptx`, ptx.bytes);
      binaries = { fatbin: `${cp.name}.fatbin`, ptx: `${cp.name}.ptx` };
    } else {
      opts.onNote?.(`${cp.name}: nvcc not found, so no CUDA binary was produced: wrote ${cp.name}.cu only, without ${cp.name}.fatbin and ${cp.name}.ptx (install the CUDA toolkit, or set $TESSERA_NVCC)`);
    }
  }
  const manifest = buildManifest(cp, targets, wgsl, withCuda ? { archs, nvccFlags: NVCC_FLAGS, ...binaries } : undefined);
  write('manifest.json', manifestText(manifest));
  if (targets.includes('wgsl')) write(`${cp.name}.ts`, await generateWrapper(cp, manifest, wgsl));
  if (targets.includes('torch')) write(`${cp.name}_torch.py`, generateTorchModule(cp, manifest, cudaUnit).python);
  return written;
}

/** A path relative to the current directory when it lies inside it, else absolute. */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? resolve(p) : rel;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export const compileCommand: Command = {
  name: 'compile',
  summary: 'compile the programs a file defines into kernel sources, a manifest and a typed wrapper',
  usage: ['compile <file.ts|file.tsr> [--target wgsl,js,cuda,torch] [--archs sm_80,sm_90] [--out DIR] [--dump-after STAGE]... [--params k=v,..]'],
  flags: [
    { name: 'target', value: ALL_TARGETS.join(','), repeat: true, help: `targets to write (default: ${TARGETS.join(',')})` },
    { name: 'emit', value: 'TARGET', repeat: true, help: 'the same as --target (`--emit torch`)' },
    { name: 'archs', value: 'sm_80,..', repeat: true, help: `GPU architectures of the CUDA binaries (default: ${DEFAULT_ARCHS.join(',')})` },
    { name: 'out', value: 'DIR', help: 'output folder (default: gen)' },
    ...COMPILE_FLAGS,
  ],
  details: [
    'A .ts/.js file contributes every kernel() definition it exports (also inside an exported array or record);',
    'a .tsr file holds one program in the graph IR text form. For each program P it writes DIR/P/:',
    '  <kernel>.wgsl     WGSL compute shader (entry point main), per kernel, for --target wgsl',
    '  <kernel>.js       JS kernel body for the CPU runtime, per kernel, for --target js',
    '  P.cu              CUDA C++: every kernel as an extern "C" __global__ function, for --target cuda;',
    '  P.fatbin, P.ptx   with nvcc: machine code for each --archs plus PTX of the highest, and PTX of the',
    '                    lowest (without nvcc only P.cu is written, and compile says so)',
    '  P_torch.py        PyTorch module: P(inputs...) -> {output: tensor}, compiled with load_inline, for',
    '                    --target torch (needs PyTorch and nvcc where it runs, not here)',
    '  manifest.json     buffers, bindings, uniforms, launch grid, costs: how to launch without Tessera',
    '                    (with cuda or torch also kernels[].cuda: entry, parameters, block and grid;',
    '                    versions[]: builds for one token or aligned dims, their kernels named <kernel>__<tag>)',
    '  P.ts              typed WebGPU wrapper: runP(device, inputs), self-contained (with --target wgsl)',
    '',
    'Examples: tessera compile ops/norm.ts --target wgsl --out gen/',
    '          tessera compile examples/torch/rmsnorm_silu.ts --target cuda,torch --archs sm_90',
  ].join('\n'),
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? 'missing <file>' : `expected one file, got ${args.positionals.length}`, 'compile');
    const file = args.positionals[0]!;
    const targets = parseTargets(args, 'compile');
    const archs = parseArchs(args, 'compile');
    if (args.flags.has('archs') && !targets.includes('cuda')) throw new UsageError('--archs applies to --target cuda (add cuda to the targets)', 'compile');
    // CUDA-only output for GPUs with tensor cores (every arch sm_70+, as the default --archs): f16
    // matmuls take the mma schedule; with wgsl or js among the targets they keep one that runs well
    // everywhere (--params mma=1 or mma=0 decides either way)
    const cudaOnly = targets.every((t) => t === 'cuda' || t === 'torch');
    // (bf16 matmuls when every arch is sm_80+, where tensor cores take bf16)
    const flags = { ...compileFlags(args, 'compile'), tensorCores: cudaOnly && archs.every((a) => archNumber(a) >= 70), bf16TensorCores: cudaOnly && archs.every((a) => archNumber(a) >= 80) };
    const out = flag(args, 'out') ?? 'gen';
    const programs = await loadPrograms(file);
    if (flags.chain) checkDimNames('chain', flags.chain, programs.map((p) => p.program), 'compile');
    for (const { program } of programs) {
      const { cp, ms } = compileProgram(program, flags, io);
      const notes: string[] = [];
      const files = await writeProgram(cp, targets, out, { archs, onNote: (n) => notes.push(n) });
      const versions = cp.versions ? ` and versions ${cp.versions.map((v) => `${v.version} (${plural(v.kernels.length, 'kernel')})`).join(', ')}` : '';
      io.out(`${cp.name}: ${plural(cp.kernels.length, 'kernel')} (${cp.kernels.map((k) => k.kernel.schedule.kind).join(', ')})${versions} compiled in ${ms.toFixed(1)} ms\n`);
      for (const f of files) io.out(`  wrote ${displayPath(f)}\n`);
      for (const n of notes) io.err(`warning: ${n}\n`);
    }
    return 0;
  },
};
