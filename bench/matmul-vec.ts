/**
 * f32 matmul GFLOP/s on the WebGPU device (VK_ICD_FILENAMES picks the driver): the default
 * schedule, the best scalar register-blocked candidate and the best vec4 candidate.
 *   VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json npx tsx bench/matmul-vec.ts 512 1024
 */
import * as D from '../src/dsl/index.js';
import { requireWebGPURuntime } from '../src/backends/wgsl/runtime.js';
import { compile } from '../src/passes/pipeline.js';
import { prepare } from '../src/runtime/execute.js';
import { candidatesFor, type Candidate } from '../src/tune/candidates.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const def = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b));
const sizes = process.argv.slice(2).map(Number);
const rt = await requireWebGPURuntime();
console.log(rt.info.description ?? rt.info);
for (const n of sizes.length ? sizes : [512]) {
  const data = () => ({ shape: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)) });
  const ins = { a: data(), b: data() };
  const base = compile(def.program);
  const flops = 2 * n * n * n;
  const measure = async (cand: Candidate | undefined) => {
    const cp = compile(def.program, { groupParams: () => cand });
    const prep = prepare(cp, rt, ins);
    prep.launch();
    const ck = prep.program.kernels[0]!.kernel;
    const t = await rt.time(() => prep.launch(), n >= 1024 ? 3 : 5);
    prep.free();
    return { ms: t.medianMs, gflops: flops / (t.medianMs * 1e6), params: ck.schedule.params };
  };
  const rows: { name: string; ms: number; gflops: number; params: unknown }[] = [];
  rows.push({ name: 'default', ...(await measure(undefined)) });
  const cands = candidatesFor(base.kernels[0]!.group).filter((c) => !c.tiled && (n < 1024 || (c.tm! >= 4 && c.tn! >= 4)));
  let bestScalar: (typeof rows)[number] | undefined;
  let bestVec: (typeof rows)[number] | undefined;
  for (const c of cands) {
    const r = { name: JSON.stringify(c), ...(await measure(c)) };
    if (c.vec) { if (!bestVec || r.gflops > bestVec.gflops) bestVec = r; }
    else if (!bestScalar || r.gflops > bestScalar.gflops) bestScalar = r;
    console.error(`  ${n} ${r.name}: ${r.gflops.toFixed(2)} GFLOP/s`);
  }
  rows.push({ ...bestScalar!, name: `best scalar ${bestScalar!.name}` }, { ...bestVec!, name: `best vec4 ${bestVec!.name}` });
  for (const r of rows) console.log(`${n}x${n}x${n} ${r.name}: ${r.ms.toFixed(2)} ms, ${r.gflops.toFixed(2)} GFLOP/s`);
}
rt.destroy?.();
