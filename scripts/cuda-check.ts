/**
 * The CUDA compile check `npm test` runs after vitest: every kernel the test suite launched on
 * WebGPU (recorded as CUDA under TESSERA_EMIT_DIR by test/helpers/emitted.ts) is compiled by nvcc
 * for sm_80 and sm_90, a few hundred kernels per nvcc invocation, cached by content hash.
 * Prints `N passed, M failed` and exits non-zero on any failure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CUDA_PRELUDE } from '../src/backends/cuda/print.js';
import { compileCuda, nvccAvailable } from '../src/backends/cuda/nvcc.js';

const dir = process.argv[2] ?? process.env['TESSERA_EMIT_DIR'];
const archs = (process.env['TESSERA_CUDA_ARCHS'] ?? 'sm_80,sm_90').split(',');
if (!dir) {
  console.error('usage: cuda-check <dir of recorded .cu kernels>');
  process.exit(2);
}
if (!nvccAvailable()) {
  console.error('cuda-check: nvcc not found; install the CUDA toolkit or set PATH (CI machines have it)');
  process.exit(process.env['CI'] ? 1 : 0);
}
const files = readdirSync(dir).filter((f) => f.endsWith('.cu')).sort();
if (files.length === 0) {
  console.error(`cuda-check: no kernels recorded in ${dir}; did the WebGPU suite run?`);
  process.exit(1);
}
const BATCH = 200;
let passed = 0;
let failed = 0;
const t0 = performance.now();
const unit = (fs: readonly string[]) => [CUDA_PRELUDE, ...fs.map((f) => readFileSync(join(dir, f), 'utf8'))].join('\n');

/** Compiles a batch; when it fails, halves it to name the failing kernels with few extra nvcc runs. */
function check(batch: readonly string[]): void {
  try {
    const r = compileCuda(unit(batch), { archs, output: 'fatbin' });
    passed += batch.length;
    if (batch.length > 1) console.log(`cuda-check: ${batch.length} kernels ${r.cached ? '(cached)' : 'compiled'} for ${archs.join(', ')}`);
  } catch (e) {
    if (batch.length === 1) {
      failed++;
      console.error(`cuda-check: ${batch[0]} failed:\n${(e as Error).message}\n`);
      return;
    }
    const mid = Math.ceil(batch.length / 2);
    check(batch.slice(0, mid));
    check(batch.slice(mid));
  }
}

for (let i = 0; i < files.length; i += BATCH) check(files.slice(i, i + BATCH));
console.log(`cuda-check: ${files.length} kernels in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
