/**
 * `tessera tune <file>`: times every candidate schedule of every kernel on a backend at the given
 * dims, caches the winners (.tessera-cache/tune, or $TESSERA_CACHE_DIR), and checks the tuned program
 * against the reference. Later compiles on the same device pick the tuned schedules up (compileTuned).
 * It first calibrates the device's profile (profile.ts) if it has none: what untuned matmuls take.
 */
import { calibrateDevice, compileTuned, deviceKey, describeProfile, readProfile, tuneProgram, type TuneProgress } from '../tune/index.js';
import { flag, has, intFlag, keyValues, UsageError, type CliIO, type Command } from './args.js';
import { pickRuntime } from './backends.js';
import { loadPrograms } from './load.js';
import { backendFlag, describeCheck, runAndCheck } from './run-cmd.js';
import { checkDimNames, chooseDims, randomInputs } from './verify.js';

/** A one-line progress bar on a terminal; a line per kernel otherwise (CI logs). */
function progressBar(io: CliIO, tty: boolean): (p: TuneProgress) => void {
  let last = '';
  return (p) => {
    const width = 24;
    const filled = Math.round((p.candidate / p.candidates) * width);
    const line = `  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] kernel ${p.kernelIndex + 1}/${p.kernels} ${p.kernel}: candidate ${p.candidate}/${p.candidates}`;
    if (tty) io.out(`\r${line}`);
    else if (p.candidate === p.candidates && line !== last) io.out(`${line}\n`);
    last = line;
  };
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'time every schedule candidate of every kernel on a backend and cache the fastest',
  usage: ['tune <file.ts|file.tsr> [--backend js|webgpu|cuda] [--dims M=64,N=128] [--repeat N] [--force] [--specialize]'],
  flags: [
    { name: 'backend', value: 'js|webgpu|cuda', help: 'where to tune (default: webgpu when an adapter exists, else js)' },
    { name: 'dims', value: 'M=64,..', repeat: true, help: "the shapes to tune at (default: a library op's bench dims, else its sample dims, else 64)" },
    { name: 'repeat', value: 'N', help: 'timed launches per candidate (default 7)' },
    { name: 'force', help: 're-time kernels that are already tuned at these dims, and the device profile' },
    { name: 'specialize', help: 'tune and check the program compiled for exactly these dims (dims as constants where faster)' },
    { name: 'cache', value: 'DIR', help: 'tuning cache folder (default .tessera-cache/tune)' },
  ],
  details: [
    'Every candidate is first run once and its output compared with the default schedule\'s; a candidate that',
    'differs is rejected (and listed). The tuned program is then checked against the float64 reference.',
    'Tuning depends on the device: winners are keyed by the kernel IR, the adapter and the compiler version.',
    'The first tune on a device also calibrates its profile: a probe matmul timed under each schedule family;',
    'a family that beats the default by 1.2x becomes the default for matmuls without a tuned entry.',
  ].join('\n'),
  async run(args, io: CliIO) {
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? 'missing <file>' : `expected one file, got ${args.positionals.length}`, 'tune');
    const choice = backendFlag(args, 'tune');
    // its times are the host's, not a GPU's: tuning there would cache winners for nothing
    if (choice === 'cuda-emu') throw new UsageError('the CUDA emulator checks kernels, it does not time them like a GPU: tune with --backend cuda on a device', 'tune');
    const given = keyValues(args, 'dims', 'tune');
    const repeats = intFlag(args, 'repeat', 7, 1, 'tune');
    const cacheDir = flag(args, 'cache');
    const programs = await loadPrograms(args.positionals[0]!);
    checkDimNames('dims', given, programs.map((p) => p.program), 'tune');
    const { rt, why } = await pickRuntime(choice);
    const tty = Boolean(process.stdout.isTTY);
    let failed = 0;
    try {
      io.out(`backend: ${rt.info.kind} (${why})\n  ${rt.info.description}\n`);
      // the device's profile (once per device): the default for matmuls no tuning covers
      const had = !has(args, 'force') && readProfile(deviceKey(rt), undefined, cacheDir) !== undefined;
      const profile = await calibrateDevice(rt, { force: has(args, 'force'), ...(cacheDir ? { cacheDir } : {}) });
      io.out(`device profile${had ? ' (cached)' : ''}: ${describeProfile(profile)}\n`);
      for (const { program, sampleDims, benchDims, tolerance } of programs) {
        const dims = chooseDims(program, { ...(benchDims ?? sampleDims), ...given }, 64);
        const dimText = Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
        io.out(`${program.name}: tuning at ${dimText}\n`);
        const t0 = performance.now();
        const specialize = has(args, 'specialize');
        const results = await tuneProgram(program, rt, randomInputs(program, dims, 1), { repeats, force: has(args, 'force'), specialize, onProgress: progressBar(io, tty), ...(cacheDir ? { cacheDir } : {}) });
        if (tty) io.out('\n');
        for (const r of results) {
          const params = Object.entries(r.best).map(([k, v]) => `${k}=${v}`).join(' ') || 'default';
          const speedup = r.bestMs > 0 ? r.defaultMs / r.bestMs : 1;
          io.out(`  ${r.kernel} (${r.kind}): ${params}  ${r.bestMs.toFixed(3)} ms vs default ${r.defaultMs.toFixed(3)} ms (${speedup.toFixed(2)}x)${r.cached ? ', cached' : `, ${r.tried} candidates in ${(r.tuneMs / 1000).toFixed(1)} s`}\n`);
          for (const rej of r.rejected) io.out(`    rejected ${rej}\n`);
        }
        const tuned = compileTuned(program, rt, { dims, ...(specialize ? { specialize: dims } : {}), ...(cacheDir ? { cacheDir } : {}) });
        const report = await runAndCheck(tuned, rt, dims, 2, repeats, tolerance);
        for (const c of report.checks) io.out(`  ${describeCheck(c)}\n`);
        io.out(`  tuned${specialize ? ', specialized' : ''} program: ${report.runMs.toFixed(3)} ms (${report.timing} time), tuning took ${((performance.now() - t0) / 1000).toFixed(1)} s, ${report.ok ? 'MATCH' : 'MISMATCH'}\n`);
        if (!report.ok) failed++;
      }
    } finally {
      rt.destroy();
    }
    return failed > 0 ? 1 : 0;
  },
};
