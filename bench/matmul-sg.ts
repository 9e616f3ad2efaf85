/**
 * The subgroup-shared matmul schedule (sg = 1: a workgroup of one subgroup sharing A's values by
 * shuffles) against the default register-blocked schedule, f32 matmul n x n x n, in one process
 * (each tile also with a chunk's steps one at a time, uk 1, against its default of two):
 * interleaved rounds, device time where the adapter has timestamps, each checked against the
 * default's output first.
 *   VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json node --import tsx bench/matmul-sg.ts 256 512
 */
import * as D from '../src/dsl/index.js';
import { requireWebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { compile } from '../src/passes/pipeline.js';
import { prepare, type Prepared } from '../src/runtime/execute.js';
import { candidatesFor, deviceCaps, type Candidate } from '../src/tune/candidates.js';
import { median } from './stats.js';

const ROUNDS = 5;
const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const def = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b));
const rt = await requireWebGPURuntime();
const caps = deviceCaps(rt.info);
if (!caps.subgroupSize) throw new Error(`${rt.info.description}: no subgroups`);
console.log(`${rt.info.description}: subgroup ${caps.subgroupSize}; ms (median of ${ROUNDS} interleaved rounds), GFLOP/s`);
for (const n of process.argv.slice(2).length ? process.argv.slice(2).map(Number) : [256, 512]) {
  const data = (seed: number) => ({ shape: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37 + seed)) });
  const ins = { a: data(1), b: data(2) };
  const group = compile(def.program).kernels[0]!.group;
  const cands: [string, Candidate | undefined][] = [['default', undefined], ...candidatesFor(group, caps, { M: n, N: n, K: n }).filter((c) => c.sg === 1).flatMap((c): [string, Candidate][] => {
    const name = `sg ${c.tm}x${c.tn}${c.vec ? ' vec4' : ''} in ${c.workgroupSize}`;
    return [[name, c], [`${name}, uk 1`, { ...c, uk: 1 }]];
  })];
  const preps: [string, Prepared][] = cands.map(([name, c]) => [name, prepare(compile(def.program, { groupParams: () => c }), rt, ins)]);
  let want: ArrayLike<number> | undefined;
  for (const [name, p] of preps) {
    p.launch();
    const out = (await p.read())['out']!.data as Float32Array;
    want ??= out;
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - want[i]!) / (1e-3 + Math.abs(want[i]!)));
    if (worst > 1e-3) throw new Error(`${name} differs from the default (relative ${worst})`);
  }
  const times = new Map<string, number[]>(preps.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < preps.length; i++) {
      const [name, p] = preps[(i + r) % preps.length]!;
      times.get(name)!.push((await rt.time(() => p.launch(), 3)).medianMs);
    }
  }
  const base = median(times.get('default')!);
  for (const [name, p] of preps) {
    const ms = median(times.get(name)!);
    console.log(`  ${n}^3 ${name.padEnd(24)} ${ms.toFixed(2).padStart(8)} ms ${((2 * n ** 3) / (ms * 1e6)).toFixed(2).padStart(6)} GFLOP/s  ${(base / ms).toFixed(2)}x the default (${JSON.stringify(p.program.kernels[0]!.kernel.schedule.params)})`);
    p.free();
  }
}
process.exit(0);
