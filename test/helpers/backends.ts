/**
 * The backends every property suite runs on: the JS backend always, WebGPU when an adapter exists
 * (and required in CI, see webgpu.ts), and CUDA when a device is usable (the driver addon, a GPU and
 * nvcc; required with TESSERA_CUDA_REQUIRED=1, left out with TESSERA_TEST_CUDA=0), so a test written
 * once covers every backend that can run. Without a GPU nothing changes: createCudaRuntime() returns
 * undefined and CUDA is not listed. With TESSERA_TEST_CUDA_EMU=1 the CUDA kernels also run on the CPU
 * emulator, as 'cuda-emu' (src/backends/cuda/emulator.ts; scripts/test.sh's emulator pass).
 */
import { JSRuntime } from '../../src/backends/js/runtime.js';
import { createCudaRuntime, cudaUnavailableReason } from '../../src/backends/cuda/runtime.js';
import { createCudaEmulatorRuntime, cudaEmulatorUnavailableReason } from '../../src/backends/cuda/emulator.js';
import type { BackendRuntime } from '../../src/runtime/backend.js';
import { getTestWebGPU } from './webgpu.js';

export interface NamedBackend {
  readonly name: string;
  readonly rt: BackendRuntime;
}

/** One CUDA runtime per test worker, or undefined (created on first use). */
let cuda: { rt: BackendRuntime | undefined } | undefined;

function testCuda(): BackendRuntime | undefined {
  if (process.env['TESSERA_TEST_CUDA'] === '0') return undefined;
  if (!cuda) {
    cuda = { rt: createCudaRuntime() };
    if (!cuda.rt && process.env['TESSERA_CUDA_REQUIRED'] === '1') {
      throw new Error(`TESSERA_CUDA_REQUIRED=1 but CUDA is not usable: ${cudaUnavailableReason()}`);
    }
  }
  return cuda.rt;
}

let emulator: { rt: BackendRuntime | undefined } | undefined;

/** The CUDA emulator's runtime when TESSERA_TEST_CUDA_EMU=1 (scripts/test.sh's emulator pass), one per worker. */
function testCudaEmulator(): BackendRuntime | undefined {
  if (process.env['TESSERA_TEST_CUDA_EMU'] !== '1') return undefined;
  if (!emulator) {
    emulator = { rt: createCudaEmulatorRuntime() };
    if (!emulator.rt) throw new Error(`TESSERA_TEST_CUDA_EMU=1 but the CUDA emulator cannot run: ${cudaEmulatorUnavailableReason()}`);
  }
  return emulator.rt;
}

export async function testBackends(): Promise<NamedBackend[]> {
  // The JS backend runs bounds-checked in tests: an out-of-range load or store fails the test.
  const out: NamedBackend[] = [{ name: 'js', rt: new JSRuntime({ boundsCheck: true }) }];
  const gpu = await getTestWebGPU();
  if (gpu) out.push({ name: 'webgpu', rt: gpu });
  const cu = testCuda();
  if (cu) out.push({ name: 'cuda', rt: cu });
  const emu = testCudaEmulator();
  if (emu) out.push({ name: 'cuda-emu', rt: emu });
  return out;
}
