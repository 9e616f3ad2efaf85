/**
 * `npm run bench:quant [-- --quick] [-- --skip-quality] [-- --skip-gemv]`
 *
 * The low-bit weights report in one command: the quality table on both models in models/ (every
 * format's bits per weight, KL divergence, top-1 agreement and NLL against float32; see
 * quant-quality.ts) and the GEMV benchmark on the current WebGPU adapter (each format fused vs dense
 * f32 vs a dequantize-then-matmul pair; see quant-gemv.ts; pick the driver with VK_ICD_FILENAMES).
 * Results go to bench/results/quant/ (JSON, Markdown, SVG).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const pass = args.filter((a) => a !== '--skip-quality' && a !== '--skip-gemv');
const steps: [string, string][] = [];
if (!args.includes('--skip-quality')) steps.push(['quality table', 'quant-quality.ts']);
if (!args.includes('--skip-gemv')) steps.push(['GEMV benchmark', 'quant-gemv.ts']);
let status = 0;
for (const [label, file] of steps) {
  console.log(`\n== ${label} (bench/${file} ${pass.join(' ')})`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(HERE, file), ...pass], { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
