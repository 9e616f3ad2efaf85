/**
 * Records every kernel the test suite launches on WebGPU, printed as CUDA, so the CUDA compile
 * check (scripts/cuda-check.ts, run by `npm test` after vitest) compiles exactly those kernels with
 * nvcc. Active when TESSERA_EMIT_DIR is set; files are named by content hash, so workers never clash
 * and repeats cost nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { printCudaKernel } from '../../src/backends/cuda/print.js';
import type { Kernel } from '../../src/ir/kernel.js';
import type { BackendRuntime } from '../../src/runtime/backend.js';

const seen = new Set<string>();

export function recordKernel(kernel: Kernel): void {
  const dir = process.env['TESSERA_EMIT_DIR'];
  if (!dir) return;
  let src: string;
  try {
    // Kernels are compiled many to a translation unit: the content hash keeps entry names unique.
    const hash = createHash('sha256').update(printCudaKernel(kernel)).digest('hex').slice(0, 12);
    src = printCudaKernel({ ...kernel, name: `${kernel.name}_${hash}` });
  } catch (e) {
    // A kernel the CUDA printer cannot print is a CUDA check failure, reported by cuda-check.
    src = `#error "kernel ${kernel.name}: the CUDA printer failed: ${String((e as Error).message).replace(/["\n]/g, ' ')}"`;
  }
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
  if (seen.has(hash)) return;
  seen.add(hash);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${hash}.cu`);
  if (!existsSync(file)) writeFileSync(file, src);
}

/** Wraps a runtime so each launch records its kernel (behaviour otherwise unchanged). */
export function recording<R extends BackendRuntime>(rt: R): R {
  const run = rt.run.bind(rt);
  rt.run = (kernel, bindings, dims) => {
    recordKernel(kernel);
    run(kernel, bindings, dims);
  };
  return rt;
}
