/**
 * Narrow launches: the transformer block (fused, and the same ops unfused) at a decode step, with
 * the default workgroup size (flexible: launches under NARROW_LAUNCH invocations take workgroups of
 * NARROW_WORKGROUP) against every kernel forced to 8, 16, 32 and 64 (a chosen size is never
 * narrowed). One process, interleaved rounds, device time per chain over a batch of chains; every
 * implementation checked against float64 first.
 *
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node --import tsx bench/launch-width.ts [T,D,H ...]
 */
import { requireWebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { compile, type CompileOptions } from '../src/passes/pipeline.js';
import { blockCase } from './peers/cases.js';
import { tesseraImpl, tesseraUnfusedImpl } from './peers/tessera.js';
import type { PreparedImpl } from './peers/types.js';
import { median } from './stats.js';

const ROUNDS = 8;
const BATCH = 20;
const SIZES = [8, 16, 32, 64];

const rt = await requireWebGPURuntime();
console.log(`${rt.info.description}: ms per chain, median of ${ROUNDS} interleaved rounds of ${BATCH} chains`);
for (const arg of process.argv.slice(2).length ? process.argv.slice(2) : ['1,128,344']) {
  const [t, d, h] = arg.split(',').map(Number) as [number, number, number];
  const c = blockCase(t, d, h);
  const ctx = { rt, log: () => {} };
  const forced = (size: number): CompileOptions => ({ groupParams: () => ({ workgroupSize: size }) });
  const impls: [string, PreparedImpl][] = [];
  impls.push(['fused, default', await tesseraImpl(ctx).prepare(c)]);
  for (const s of SIZES) impls.push([`fused, ${s}`, await tesseraImpl(ctx, 'forced', (x) => compile(x.def.program, forced(s))).prepare(c)]);
  impls.push(['unfused, default', await tesseraUnfusedImpl(ctx).prepare(c)]);
  for (const s of SIZES) impls.push([`unfused, ${s}`, await tesseraUnfusedImpl(ctx, forced(s)).prepare(c)]);
  for (const [name, p] of impls) {
    const r = await p.check();
    if (r.worst > 1) throw new Error(`${name} does not match the reference: ${r.firstBad}`);
  }
  const times = new Map<string, number[]>(impls.map(([n]) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < impls.length; j++) {
      const [name, p] = impls[(j + r) % impls.length]!;
      times.get(name)!.push((await rt.time(() => { for (let i = 0; i < BATCH; i++) p.run(); }, 5)).medianMs / BATCH);
    }
  }
  console.log(`block T${t} D${d} H${h}`);
  for (const [name, p] of impls) console.log(`  ${name.padEnd(18)} ${median(times.get(name)!).toFixed(4)} ms  (${p.kernels} kernels)`);
  const ms = (n: string) => median(times.get(n)!);
  console.log(`  fused vs unfused, default: ${(ms('unfused, default') / ms('fused, default')).toFixed(2)}x; default vs 64 forced: fused ${(ms('fused, 64') / ms('fused, default')).toFixed(2)}x, unfused ${(ms('unfused, 64') / ms('unfused, default')).toFixed(2)}x`);
  for (const [, p] of impls) p.free();
}
process.exit(0);
