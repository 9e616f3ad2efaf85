/**
 * The backends every property suite runs on: the JS backend always, WebGPU when an adapter exists
 * (and required in CI, see webgpu.ts), so a test written once covers every backend that can run.
 */
import { JSRuntime } from '../../src/backends/js/runtime.js';
import type { BackendRuntime } from '../../src/runtime/backend.js';
import { getTestWebGPU } from './webgpu.js';

export interface NamedBackend {
  readonly name: string;
  readonly rt: BackendRuntime;
}

export async function testBackends(): Promise<NamedBackend[]> {
  // The JS backend runs bounds-checked in tests: an out-of-range load or store fails the test.
  const out: NamedBackend[] = [{ name: 'js', rt: new JSRuntime({ boundsCheck: true }) }];
  const gpu = await getTestWebGPU();
  if (gpu) out.push({ name: 'webgpu', rt: gpu });
  return out;
}
