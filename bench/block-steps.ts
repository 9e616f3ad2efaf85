/**
 * Where the unfused transformer block's time goes: each of its five programs (rmsnorm, matmul,
 * silu, matmul, residual) timed alone on the WebGPU device, interleaved rounds, device timestamps
 * where present. The share of the small ops bounds what any fusion of the block can gain there.
 *   VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json node --import tsx bench/block-steps.ts 128,512,1024 1,128,344
 */
import { requireWebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { blockCase } from './peers/cases.js';
import { tesseraUnfusedImpl } from './peers/tessera.js';
import { median } from './stats.js';

const ROUNDS = 5;
const rt = await requireWebGPURuntime();
console.log(rt.info.description ?? rt.info.kind);
for (const arg of process.argv.slice(2).length ? process.argv.slice(2) : ['128,512,1024']) {
  const [tt, d, h] = arg.split(',').map(Number) as [number, number, number];
  const c = blockCase(tt, d, h);
  const p = (await tesseraUnfusedImpl({ rt, log: () => {} } as never).prepare(c)) as unknown as {
    steps: { cp: { name: string; kernels: { kernel: Parameters<typeof rt.run>[0] }[] }; bindings: Parameters<typeof rt.run>[1][] }[];
    free(): void;
  };
  const times: number[][] = p.steps.map(() => []);
  for (let r = 0; r < ROUNDS; r++)
    for (const [i, s] of p.steps.entries()) times[i]!.push((await rt.time(() => s.cp.kernels.forEach((k, j) => rt.run(k.kernel, s.bindings[j]!, c.dims)), 5)).medianMs);
  const ms = times.map(median);
  const total = ms.reduce((a, b) => a + b, 0);
  const small = ms.filter((_, i) => !p.steps[i]!.cp.name.includes('_mm')).reduce((a, b) => a + b, 0);
  console.log(`block T${tt} D${d} H${h}: ${total.toFixed(3)} ms over ${p.steps.length} programs`);
  p.steps.forEach((s, i) => console.log(`  ${s.cp.name.padEnd(16)} ${ms[i]!.toFixed(3).padStart(8)} ms  ${((100 * ms[i]!) / total).toFixed(1).padStart(5)}%`));
  console.log(`  small ops ${((100 * small) / total).toFixed(1)}%: removing them entirely would be ${(total / (total - small)).toFixed(2)}x`);
  p.free();
}
process.exit(0);
