/**
 * One WebGPU runtime per test worker (adapters are slow to create and software drivers are shared).
 *
 * When TESSERA_WEBGPU_REQUIRED=1 (CI, or scripts/test.sh with a Vulkan driver present) a missing
 * adapter throws with the reason instead of letting WebGPU suites skip silently; TESSERA_TEST_WEBGPU=0
 * leaves WebGPU out (the CUDA emulator's pass).
 */
import { recording } from './emitted.js';
import { createWebGPURuntime, webgpuUnavailableReason, type WebGPURuntime } from '../../src/backends/wgsl/runtime.js';

const cache = new Map<string, Promise<WebGPURuntime | undefined>>();

export function webgpuRequired(): boolean {
  return process.env['TESSERA_WEBGPU_REQUIRED'] === '1';
}

/** The smoke pass (scripts/test.sh, on SwiftShader) sets TESSERA_SMOKE=1: keep expensive cases out. */
export function smokeRun(): boolean {
  return process.env['TESSERA_SMOKE'] === '1';
}

/**
 * The worker's shared runtime, or undefined when there is no adapter and WebGPU is not required.
 * `f16: false` gives a second runtime that stores f16 as f32 even where the adapter has shader-f16.
 */
export async function getTestWebGPU(opts: { f16?: boolean } = {}): Promise<WebGPURuntime | undefined> {
  // the CUDA emulator's pass (scripts/test.sh) leaves WebGPU to the other passes
  if (process.env['TESSERA_TEST_WEBGPU'] === '0') return undefined;
  const key = opts.f16 === false ? 'nof16' : 'default';
  let p = cache.get(key);
  if (!p) {
    p = createWebGPURuntime(opts.f16 === false ? { f16: false } : {}).then((r) => (r ? recording(r) : r));
    cache.set(key, p);
  }
  const rt = await p;
  if (!rt) {
    const why = webgpuUnavailableReason();
    if (webgpuRequired()) throw new Error(`TESSERA_WEBGPU_REQUIRED=1 but there is no WebGPU adapter: ${why}`);
    console.warn(`[tessera] WebGPU tests skipped: ${why}`);
  }
  return rt;
}
