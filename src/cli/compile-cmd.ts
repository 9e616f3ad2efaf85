/**
 * `tessera compile <file> --target wgsl,js --out DIR`: writes, per program, the kernel sources, a
 * manifest.json and a typed TS wrapper under DIR/<program>/. Output is deterministic, so generated
 * files can be committed and diffed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { TesseraError } from '../errors.js';
import type { Program } from '../ir/graph.js';
import { printProgram } from '../ir/text/index.js';
import { compile, STAGES, type CompiledProgram } from '../passes/pipeline.js';
import { DEFAULT_PARAMS, type ScheduleParams } from '../passes/schedule.js';
import { printJS } from '../backends/js/print.js';
import { flag, keyValues, list, UsageError, type CliIO, type Command, type FlagSpec, type Parsed } from './args.js';
import { loadWGSLPrinter } from './backends.js';
import { loadPrograms } from './load.js';
import { buildManifest, manifestText, TARGETS, type Target } from './manifest.js';
import { generateWrapper } from './wrapper.js';

export interface CompileFlags {
  readonly params: Partial<ScheduleParams>;
  readonly dumpAfter: readonly string[];
}

/** Flags `compile` and `run` share. */
export const COMPILE_FLAGS: readonly FlagSpec[] = [
  { name: 'dump-after', value: 'STAGE', repeat: true, help: `print the IR after a stage: ${STAGES.join(', ')}` },
  { name: 'params', value: 'k=v,..', repeat: true, help: `schedule parameters (${Object.keys(DEFAULT_PARAMS).join(', ')})` },
];

export function compileFlags(p: Parsed, command: string): CompileFlags {
  const dumpAfter = list(p, 'dump-after');
  for (const s of dumpAfter) {
    if (!(STAGES as readonly string[]).includes(s)) throw new UsageError(`unknown stage '${s}' for --dump-after; stages are ${STAGES.join(', ')}`, command);
  }
  const params = keyValues(p, 'params', command);
  for (const [k, v] of Object.entries(params)) {
    if (!(k in DEFAULT_PARAMS)) throw new UsageError(`unknown schedule parameter '${k}'; known: ${Object.keys(DEFAULT_PARAMS).join(', ')}`, command);
    if (v < 1) throw new UsageError(`schedule parameter ${k} must be >= 1, got ${v}`, command);
  }
  return { params, dumpAfter };
}

/** compile() with the requested dumps printed to `io.out`, timed. */
export function compileProgram(program: Program, flags: CompileFlags, io: CliIO): { cp: CompiledProgram; ms: number } {
  const t0 = performance.now();
  const cp = compile(program, {
    params: flags.params,
    dumpAfter: flags.dumpAfter,
    printProgram,
    onDump: (stage, text) => io.out(`// ---- ${program.name} after ${stage} ----\n${text.trimEnd()}\n`),
  });
  return { cp, ms: performance.now() - t0 };
}

export function parseTargets(p: Parsed, command: string): Target[] {
  const given = list(p, 'target');
  const targets: Target[] = [];
  for (const t of given.length > 0 ? given : [...TARGETS]) {
    if (t === 'cuda') throw new TesseraError('E_BACKEND', 'the cuda target is not available in this build');
    if (!(TARGETS as readonly string[]).includes(t)) throw new UsageError(`unknown target '${t}'; targets are ${TARGETS.join(', ')}`, command);
    if (!targets.includes(t as Target)) targets.push(t as Target);
  }
  // A fixed order keeps the manifest byte-stable whatever order the flags came in.
  return TARGETS.filter((t) => targets.includes(t));
}

/** Writes one program's files under outDir/<program>/ and returns their paths. */
export async function writeProgram(cp: CompiledProgram, targets: readonly Target[], outDir: string): Promise<string[]> {
  const wgsl = await loadWGSLPrinter();
  const dir = join(outDir, cp.name);
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    written.push(path);
  };
  for (const { kernel } of cp.kernels) {
    if (targets.includes('wgsl')) write(`${kernel.name}.wgsl`, wgsl.print(kernel));
    if (targets.includes('js')) write(`${kernel.name}.js`, printJS(kernel));
  }
  const manifest = buildManifest(cp, targets, wgsl);
  write('manifest.json', manifestText(manifest));
  if (targets.includes('wgsl')) write(`${cp.name}.ts`, await generateWrapper(cp, manifest, wgsl));
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
  usage: ['compile <file.ts|file.tsr> [--target wgsl,js] [--out DIR] [--dump-after STAGE]... [--params k=v,..]'],
  flags: [
    { name: 'target', value: 'wgsl,js', repeat: true, help: `targets to write (default: ${TARGETS.join(',')})` },
    { name: 'out', value: 'DIR', help: 'output folder (default: gen)' },
    ...COMPILE_FLAGS,
  ],
  details: [
    'A .ts/.js file contributes every kernel() definition it exports (also inside an exported array or record);',
    'a .tsr file holds one program in the graph IR text form. For each program P it writes DIR/P/:',
    '  <kernel>.wgsl     WGSL compute shader (entry point main), per kernel, for --target wgsl',
    '  <kernel>.js       JS kernel body for the CPU runtime, per kernel, for --target js',
    '  manifest.json     buffers, bindings, uniforms, launch grid, costs: how to launch without Tessera',
    '  P.ts              typed WebGPU wrapper: runP(device, inputs), self-contained (with --target wgsl)',
    '',
    'Example: tessera compile ops/norm.ts --target wgsl --out gen/',
  ].join('\n'),
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? 'missing <file>' : `expected one file, got ${args.positionals.length}`, 'compile');
    const file = args.positionals[0]!;
    const targets = parseTargets(args, 'compile');
    const flags = compileFlags(args, 'compile');
    const out = flag(args, 'out') ?? 'gen';
    const programs = await loadPrograms(file);
    for (const { program } of programs) {
      const { cp, ms } = compileProgram(program, flags, io);
      const files = await writeProgram(cp, targets, out);
      io.out(`${cp.name}: ${plural(cp.kernels.length, 'kernel')} (${cp.kernels.map((k) => k.kernel.schedule.kind).join(', ')}) compiled in ${ms.toFixed(1)} ms\n`);
      for (const f of files) io.out(`  wrote ${displayPath(f)}\n`);
    }
    return 0;
  },
};
