/**
 * `tessera run <file>`: compiles each program, runs it on a backend with seeded random inputs and
 * compares every output with the float64 reference. Exit code 1 when any output mismatches.
 */
import { allBuilds, selectVersion, type CompiledProgram } from '../passes/pipeline.js';
import type { Kernel } from '../ir/kernel.js';
import type { BackendRuntime } from '../runtime/backend.js';
import { prepare } from '../runtime/execute.js';
import { compileTuned } from '../tune/index.js';
import { flag, intFlag, keyValues, UsageError, type CliIO, type Command, type Parsed } from './args.js';
import { BACKEND_CHOICES, pickRuntime, type BackendChoice } from './backends.js';
import { COMPILE_FLAGS, compileFlags, compileProgram } from './compile-cmd.js';
import { loadPrograms } from './load.js';
import { checkDimNames, checkOutputs, chooseDims, ownDims, fmtErr, randomInputs, type OutputCheck, type Tolerance } from './verify.js';

export interface RunReport {
  readonly checks: readonly OutputCheck[];
  readonly ok: boolean;
  readonly runMs: number;
  readonly timing: 'device' | 'wall';
}

/** Runs a compiled program once, checks it against the reference, then times `repeat` launches. */
export async function runAndCheck(
  cp: CompiledProgram,
  rt: BackendRuntime,
  dims: Readonly<Record<string, number>>,
  seed: number,
  repeat: number,
  floatTol?: Tolerance,
): Promise<RunReport> {
  const inputs = randomInputs(cp.source, dims, seed);
  const prepared = prepare(cp, rt, inputs, dims);
  try {
    prepared.launch();
    const actual = await prepared.read();
    const checks = checkOutputs(cp.source, inputs, actual, dims, floatTol);
    const t = await rt.time(() => prepared.launch(), repeat);
    await rt.sync();
    return { checks, ok: checks.every((c) => c.mismatch === null), runMs: t.medianMs, timing: t.source };
  } finally {
    prepared.free();
  }
}

/** A line per kernel: its schedule, and the workgroup size it launches in where `launched` narrows it. */
export function describeKernels(cp: CompiledProgram, launched?: (k: Kernel) => Kernel): string[] {
  return cp.kernels.map(({ kernel: k }) => {
    const params = Object.entries(k.schedule.params).map(([n, v]) => `${n}=${v}`).join(' ');
    const size = launched?.(k).workgroupSize ?? k.workgroupSize;
    return `${k.name}: ${k.schedule.kind}${params ? ` (${params})` : ''}${size !== k.workgroupSize ? `, launched in workgroups of ${size} (narrow launch)` : ''}`;
  });
}

export function describeCheck(c: OutputCheck): string {
  const num = (x: number) => (x >= 1e-3 ? String(x) : x.toExponential());
  const tol = c.rtol === 0 && c.atol === 0 ? 'exact' : `rtol ${num(c.rtol)}, atol ${num(c.atol)}`;
  const verdict = c.mismatch === null ? 'MATCH' : `MISMATCH ${c.mismatch}`;
  return `${c.name} ${c.dtype}[${c.shape.join(', ')}]: max abs err ${fmtErr(c.maxAbs)}, max rel err ${fmtErr(c.maxRel)} (${tol}) ${verdict}`;
}

export function backendFlag(p: Parsed, command: string): BackendChoice | undefined {
  const b = flag(p, 'backend');
  if (b === undefined || (BACKEND_CHOICES as readonly string[]).includes(b)) return b as BackendChoice | undefined;
  throw new UsageError(`unknown backend '${b}'; backends are ${BACKEND_CHOICES.join(', ')}`, command);
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the programs a file defines on a backend and check them against the reference',
  usage: ['run <file.ts|file.tsr> [--backend js|webgpu|cuda|cuda-emu] [--dims M=64,N=128] [--seed N] [--repeat N] [--dump-after STAGE]...'],
  flags: [
    { name: 'backend', value: 'js|webgpu|cuda|cuda-emu', help: 'where to run (default: webgpu when an adapter exists, else js; cuda only when named; cuda-emu: the CUDA kernels on the CPU, compiled by g++, to check them without a GPU)' },
    { name: 'dims', value: 'M=64,..', repeat: true, help: "values of symbolic dims (default: a library op's sample dims, else 16)" },
    { name: 'seed', value: 'N', help: 'seed of the random inputs (default 1)' },
    { name: 'repeat', value: 'N', help: 'launches to time; the median is printed (default 10)' },
    ...COMPILE_FLAGS,
  ],
  details: [
    'Inputs are seeded random values: floats in [-1, 1), i32 in [-8, 8], u32 in [0, 15], bools 0/1. Outputs are',
    'compared with the float64 reference interpreter: rtol = atol = 1e-4 for f32, 1e-2 for f16 (or the tolerance a',
    'library op declares), exact for ints and bools. Exit code 1 if any output mismatches.',
  ].join('\n'),
  async run(args, io: CliIO) {
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? 'missing <file>' : `expected one file, got ${args.positionals.length}`, 'run');
    const choice = backendFlag(args, 'run');
    const given = keyValues(args, 'dims', 'run');
    for (const [k, v] of Object.entries(given)) if (v < 1) throw new UsageError(`dim ${k} must be >= 1, got ${v}`, 'run');
    const seed = intFlag(args, 'seed', 1, 0, 'run');
    const repeat = intFlag(args, 'repeat', 10, 1, 'run');
    const parsed = compileFlags(args, 'run');
    const programs = await loadPrograms(args.positionals[0]!);
    checkDimNames('dims', given, programs.map((p) => p.program), 'run');
    if (parsed.chain) checkDimNames('chain', parsed.chain, programs.map((p) => p.program), 'run');
    const { rt, why } = await pickRuntime(choice);
    const flags = { ...parsed, tensorCores: rt.info.features.includes('tensor-cores'), bf16TensorCores: rt.info.features.includes('tensor-cores-bf16') };
    let failed = 0;
    try {
      io.out(`backend: ${rt.info.kind} (${why})\n  ${rt.info.description}\n`);
      for (const { program, sampleDims, tolerance } of programs) {
        const compiled = compileProgram(program, flags, io);
        const dims = chooseDims(program, { ...sampleDims, ...given });
        // schedules `tessera tune` cached for this device (tuned kernels, the device's profile), unless --params asks for others
        const tuned = Object.keys(flags.params).length === 0 ? compileTuned(program, rt, { dims, ...(flags.chain ? { chain: { dims: ownDims(program, flags.chain) } } : {}) }) : compiled.cp;
        const params = (c: CompiledProgram) => JSON.stringify(allBuilds(c).map((b) => b.kernels.map((k) => k.kernel.schedule.params)));
        const cp = params(tuned) === params(compiled.cp) ? compiled.cp : tuned;
        const ms = compiled.ms;
        if (cp === tuned && tuned !== compiled.cp) io.out(`${program.name}: using this device's tuned schedules or profile from the tuning cache\n`);
        const report = await runAndCheck(cp, rt, dims, seed, repeat, tolerance);
        const dimText = Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
        // the build dispatch picks at these dims (multi-versioning)
        const ran = selectVersion(cp, dims);
        const build = cp.versions ? `, build ${ran.version}` : '';
        io.out(`${cp.name}: ${ran.kernels.length} kernel${ran.kernels.length === 1 ? '' : 's'} on ${rt.info.kind}, dims ${dimText}${build}, seed ${seed}\n`);
        for (const line of describeKernels(ran, rt.launchedKernel ? (k) => rt.launchedKernel!(k, dims) : undefined)) io.out(`  kernel ${line}\n`);
        for (const c of report.checks) io.out(`  ${describeCheck(c)}\n`);
        io.out(`  compile ${ms.toFixed(1)} ms, run median ${report.runMs.toFixed(3)} ms over ${repeat} (${report.timing} time)\n`);
        io.out(`  ${report.ok ? 'MATCH' : 'MISMATCH'}\n`);
        if (!report.ok) failed++;
      }
    } finally {
      rt.destroy();
    }
    if (failed > 0) io.err(`error: ${failed} of ${programs.length} program${programs.length === 1 ? '' : 's'} did not match the reference\n`);
    return failed > 0 ? 1 : 0;
  },
};
