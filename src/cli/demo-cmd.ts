/**
 * `tessera demo`: the quick start. Compiles the ops/ library (or a built-in set when there is none)
 * to gen/ for every target, runs each program on the default backend at small dims and says what ran
 * where and whether it matched the reference. Exit code 1 when anything mismatched or failed.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isTesseraError } from '../errors.js';
import { flag, intFlag, keyValues, UsageError, type Command } from './args.js';
import { pickRuntime } from './backends.js';
import { compileProgram, displayPath, writeProgram } from './compile-cmd.js';
import { demoPrograms } from './demo-programs.js';
import { loadPrograms, type LoadedProgram } from './load.js';
import { TARGETS } from './manifest.js';
import { backendFlag, runAndCheck } from './run-cmd.js';
import { checkDimNames, chooseDims, fmtErr } from './verify.js';

const OPS_INDEX = fileURLToPath(new URL('../../ops/index.ts', import.meta.url));

async function demoSet(): Promise<{ programs: LoadedProgram[]; from: string }> {
  if (existsSync(OPS_INDEX)) {
    const where = displayPath(OPS_INDEX);
    return { programs: await loadPrograms(OPS_INDEX, 'library'), from: `${where} (library)` };
  }
  return { programs: demoPrograms().map((d) => ({ program: d.program, origin: d.name })), from: 'the built-in demo set (no ops/index.ts)' };
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'compile the op library to gen/ and run every program against the reference',
  usage: ['demo [--out DIR] [--backend js|webgpu|cuda|cuda-emu] [--dims M=16,..] [--seed N] [--repeat N]'],
  flags: [
    { name: 'out', value: 'DIR', help: 'where to write the compiled programs (default: gen)' },
    { name: 'backend', value: 'js|webgpu|cuda|cuda-emu', help: 'where to run (default: webgpu when an adapter exists, else js; cuda only when named; cuda-emu: the CUDA kernels on the CPU, compiled by g++, to check them without a GPU)' },
    { name: 'dims', value: 'M=16,..', repeat: true, help: "override the dims (default: each op's sample dims, else 16)" },
    { name: 'seed', value: 'N', help: 'seed of the random inputs (default 1)' },
    { name: 'repeat', value: 'N', help: 'launches to time per program (default 5)' },
  ],
  async run(args, io) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`, 'demo');
    const out = flag(args, 'out') ?? 'gen';
    const choice = backendFlag(args, 'demo');
    const given = keyValues(args, 'dims', 'demo');
    const seed = intFlag(args, 'seed', 1, 0, 'demo');
    const repeat = intFlag(args, 'repeat', 5, 1, 'demo');
    const { programs, from } = await demoSet();
    checkDimNames('dims', given, programs.map((p) => p.program), 'demo');
    io.out(`tessera demo: ${programs.length} programs from ${from}\n`);

    const t0 = performance.now();
    const compiled = [];
    for (const lp of programs) {
      const { cp } = compileProgram(lp.program, { params: {}, dumpAfter: [] }, io);
      await writeProgram(cp, TARGETS, out);
      compiled.push({ lp, cp });
    }
    const kernels = compiled.reduce((n, c) => n + c.cp.kernels.length, 0);
    io.out(`compiled to ${displayPath(out)}/ for ${TARGETS.join(', ')}: ${compiled.length} programs, ${kernels} kernels in ${(performance.now() - t0).toFixed(0)} ms\n`);

    const { rt, why } = await pickRuntime(choice);
    let failed = 0;
    try {
      io.out(`running on ${rt.info.kind} (${why}): ${rt.info.description}\n`);
      const width = Math.max(...compiled.map((c) => c.cp.name.length));
      for (const { lp, cp } of compiled) {
        const dims = chooseDims(lp.program, { ...lp.sampleDims, ...given });
        const kinds = [...new Set(cp.kernels.map((k) => k.kernel.schedule.kind))].join('+');
        const head = `  ${cp.name.padEnd(width)}  ${String(cp.kernels.length).padStart(2)} kernel${cp.kernels.length === 1 ? ' ' : 's'}  ${kinds.padEnd(18)}`;
        const dimText = Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(' ');
        try {
          const r = await runAndCheck(cp, rt, dims, seed, repeat, lp.tolerance);
          const maxAbs = Math.max(...r.checks.map((c) => c.maxAbs));
          io.out(`${head}  ${dimText.padEnd(18)}  max abs err ${fmtErr(maxAbs).padEnd(7)}  ${r.ok ? 'MATCH   ' : 'MISMATCH'}  run ${r.runMs.toFixed(3)} ms\n`);
          if (!r.ok) {
            failed++;
            for (const c of r.checks) if (c.mismatch !== null) io.out(`      ${c.name}: ${c.mismatch}\n`);
          }
        } catch (e) {
          if (!isTesseraError(e)) throw e;
          failed++;
          io.out(`${head}  ${dimText.padEnd(18)}  FAILED error[${e.code}]: ${e.detail}\n`);
        }
      }
    } finally {
      rt.destroy();
    }
    const ok = compiled.length - failed;
    io.out(`${ok} of ${compiled.length} programs match the reference on ${rt.info.kind}\n`);
    if (failed > 0) io.err(`error: ${failed} program${failed === 1 ? '' : 's'} did not match the reference\n`);
    return failed > 0 ? 1 : 0;
  },
};
