import { fail } from '../errors.js';

/**
 * Launch grids. Kernels are 1-D in the IR (a linear thread id guarded by `tid < threads`); a runtime
 * folds the block count into x and y when it exceeds the per-dimension limit. Shared by the WebGPU
 * and CUDA runtimes so both fold the same way; the manifest describes the same rule.
 */

/** The most threads a linear i32 thread id can address. */
export const MAX_LINEAR_THREADS = 2 ** 31;

/** Blocks of `wg` threads covering `threads`, as [x, y], folded into y only when x is not enough; undefined if it cannot fit. */
export function foldGrid(threads: number, wg: number, maxX: number, maxY: number): [number, number] | undefined {
  const blocks = Math.ceil(threads / wg);
  if (blocks <= maxX) return [Math.max(1, blocks), 1];
  const y = Math.ceil(blocks / maxX);
  if (y > maxY) return undefined;
  return [Math.ceil(blocks / y), y];
}

/** The folded grid for a launch, or E_DEVICE_LIMIT naming the kernel when it cannot be launched. */
export function launchGrid(kernel: string, threads: number, wg: number, maxX: number, maxY: number): [number, number] {
  const grid = foldGrid(threads, wg, maxX, maxY);
  if (!grid) fail('E_DEVICE_LIMIT', `kernel '${kernel}': ${threads} threads need ${Math.ceil(threads / wg)} workgroups of ${wg}, over ${maxX} x ${maxY}`);
  // kernels build a linear i32 thread id over the folded grid
  if (grid[0] * grid[1] * wg > MAX_LINEAR_THREADS) fail('E_DEVICE_LIMIT', `kernel '${kernel}': ${threads} threads exceed the 2^31 a linear i32 thread id can address`);
  return grid;
}
