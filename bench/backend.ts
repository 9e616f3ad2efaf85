/**
 * Picking the runtime a benchmark runs on: WebGPU when asked for (or, by default, when an adapter
 * exists), else the JS backend. A short slug names the adapter in result file names.
 */
import { JSRuntime } from '../src/backends/js/runtime.js';
import { createWebGPURuntime, webgpuUnavailableReason } from '../src/backends/wgsl/runtime.js';
import type { BackendRuntime } from '../src/runtime/backend.js';
import type { WGSLCaps } from '../src/backends/wgsl/print.js';

export type BackendChoice = 'js' | 'webgpu' | 'auto';

export interface PickedBackend {
  readonly rt: BackendRuntime;
  /** Why this backend (e.g. the reason WebGPU was not used). */
  readonly note: string;
  /** WGSL printer capabilities: the device's when it is WebGPU, else plain f32 storage. */
  readonly wgslCaps: WGSLCaps;
}

export async function pickBackend(choice: BackendChoice): Promise<PickedBackend> {
  if (choice === 'js') return { rt: new JSRuntime(), note: 'asked for js', wgslCaps: { f16: false } };
  const gpu = await createWebGPURuntime();
  if (gpu) return { rt: gpu, note: choice === 'auto' ? 'auto: a WebGPU adapter was found' : 'asked for webgpu', wgslCaps: gpu.caps };
  if (choice === 'webgpu') throw new Error(`--backend webgpu: no WebGPU adapter: ${webgpuUnavailableReason()}`);
  return { rt: new JSRuntime(), note: `auto: no WebGPU adapter (${webgpuUnavailableReason()})`, wgslCaps: { f16: false } };
}

/** 'js', 'lavapipe', 'swiftshader', or the adapter description made file-name safe. */
export function adapterSlug(rt: BackendRuntime): string {
  if (rt.info.kind === 'js') return 'js';
  const d = rt.info.description.toLowerCase();
  if (d.includes('llvmpipe') || d.includes('lavapipe')) return 'lavapipe';
  if (d.includes('swiftshader')) return 'swiftshader';
  return `${rt.info.kind}-${d.replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40)}`;
}
