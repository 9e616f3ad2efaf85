/**
 * Every build of a library op (multi-versioning: the general build, the one-row and aligned
 * versions) timed side by side in one process at the same dims, each build launched directly
 * (`prepare` of the build alone), interleaved rounds, device time where the adapter has timestamps.
 * A build whose conditions the dims do not meet is skipped.
 *
 *   VK_ICD_FILENAMES=... node --import tsx bench/versions.ts [op] [M,N,K ...]
 *   e.g. node --import tsx bench/versions.ts matmul 512,512,512 128,512,1024 1,512,512
 */
import { requireWebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { allBuilds, compile, meetsVersion } from '../src/passes/pipeline.js';
import { prepare, type HostTensor } from '../src/runtime/execute.js';
import { library } from '../ops/index.js';
import { median } from './stats.js';

const [opName = 'matmul', ...sizes] = process.argv.slice(2);
const op = library.find((o) => o.name === opName);
if (!op) throw new Error(`no library op '${opName}'; ops: ${library.map((o) => o.name).join(', ')}`);
const rt = await requireWebGPURuntime();
console.log(`${rt.info.description}: builds of ${op.name} (ms, median of 6 interleaved rounds of 5 launches)`);
for (const size of sizes.length ? sizes : ['512,512,512']) {
  const [m, n, k] = size.split(',').map(Number) as [number, number, number];
  const dims: Record<string, number> = { M: m, N: n, K: k, B: 1 };
  const inputs: Record<string, HostTensor> = {};
  for (const p of op.def.program.inputs) {
    const shape = p.shape.map((d) => (typeof d === 'number' ? d : dims[(d as { sym: string }).sym]!));
    inputs[p.name] = { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37)) };
  }
  const cp = compile(op.def.program);
  const runs = allBuilds(cp)
    .filter((b) => meetsVersion(b, dims))
    .map((b) => ({ version: b.version, p: prepare({ ...b, versions: undefined }, rt, inputs) }));
  for (const r of runs) r.p.launch();
  await rt.sync();
  const times = new Map<string, number[]>(runs.map((r) => [r.version, []]));
  for (let round = 0; round < 6; round++) for (const r of runs) times.get(r.version)!.push((await rt.time(() => r.p.launch(), 5)).medianMs);
  const general = median(times.get('general')!);
  for (const r of runs) {
    const ms = median(times.get(r.version)!);
    console.log(`  ${size.padEnd(16)} ${r.version.padEnd(16)} ${ms.toFixed(3).padStart(9)} ms  ${(general / ms).toFixed(2)}x the general build`);
    r.p.free();
  }
}
rt.destroy();
