/**
 * The CLI's view of the backends: the WGSL printer and WebGPU runtime are loaded lazily (Dawn is
 * heavy, and a build may lack them), and the default runtime is WebGPU when an adapter exists, else
 * the JS runtime, with the reason said out loud. CUDA runs only when asked for (`--backend cuda`, or
 * `--backend cuda-emu`: the same CUDA kernels on the CPU emulator, src/backends/cuda/emulator.ts).
 */
import { TesseraError } from '../errors.js';
import type { DType } from '../ir/dtype.js';
import type { Kernel } from '../ir/kernel.js';
import { JSRuntime } from '../backends/js/runtime.js';
import type { BackendRuntime } from '../runtime/backend.js';

export type BackendChoice = 'js' | 'webgpu' | 'cuda' | 'cuda-emu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['js', 'webgpu', 'cuda', 'cuda-emu'];

/** The WGSL features `tessera compile` prints for: no shader-f16, so the output runs on every device. */
export const WGSL_CAPS = { f16: false } as const;

export interface WGSLPrinter {
  print(kernel: Kernel): string;
  /** WGSL element type of a buffer holding `dtype` (f16 is stored as f32 without shader-f16, bool as u32). */
  storage(dtype: DType): string;
  /** Bytes per element on the device. */
  bytes(dtype: DType): number;
}

function missing(what: string, e: unknown): TesseraError {
  const detail = e instanceof Error ? e.message : String(e);
  return new TesseraError('E_BACKEND', `${what} is not available in this build (${detail})`);
}

function isModuleNotFound(e: unknown): boolean {
  return e instanceof Error && ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || /Cannot find module|Failed to load url/.test(e.message));
}

export async function loadWGSLPrinter(): Promise<WGSLPrinter> {
  try {
    const m = await import('../backends/wgsl/print.js');
    return {
      print: (k) => m.printWGSL(k, WGSL_CAPS),
      storage: (d) => m.storageType(d, WGSL_CAPS),
      bytes: (d) => m.storageBytes(d, WGSL_CAPS),
    };
  } catch (e) {
    if (isModuleNotFound(e)) throw missing('the WGSL backend (src/backends/wgsl)', e);
    throw e;
  }
}

/** A WebGPU runtime, or the reason there is none. */
export async function tryWebGPU(): Promise<{ rt: BackendRuntime } | { reason: string }> {
  let m: typeof import('../backends/wgsl/runtime.js');
  try {
    m = await import('../backends/wgsl/runtime.js');
  } catch (e) {
    if (isModuleNotFound(e)) return { reason: 'the WebGPU runtime (src/backends/wgsl) is not in this build' };
    throw e;
  }
  try {
    const rt = await m.createWebGPURuntime();
    return rt ? { rt } : { reason: m.webgpuUnavailableReason() || 'no WebGPU adapter' };
  } catch (e) {
    return { reason: `creating the WebGPU runtime failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** A runtime made by a lazily imported module (`what` names it when the build lacks it), or why there is none. */
async function tryModule<M>(what: string, load: () => Promise<M>, make: (m: M) => { rt: BackendRuntime } | { reason: string }): Promise<{ rt: BackendRuntime } | { reason: string }> {
  let m: M;
  try {
    m = await load();
  } catch (e) {
    if (isModuleNotFound(e)) return { reason: `${what} is not in this build` };
    throw e;
  }
  return make(m);
}

/** A CUDA runtime on device 0 (the driver addon, a GPU and nvcc), or the reason there is none. */
export function tryCuda(): Promise<{ rt: BackendRuntime } | { reason: string }> {
  return tryModule('the CUDA runtime (src/backends/cuda)', () => import('../backends/cuda/runtime.js'), (m) => {
    const rt = m.createCudaRuntime();
    return rt ? { rt } : { reason: m.cudaUnavailableReason() ?? 'CUDA is not usable' };
  });
}

/** The CUDA runtime over the CPU emulator (g++ and CUDA's headers), or the reason there is none. */
export function tryCudaEmulator(): Promise<{ rt: BackendRuntime } | { reason: string }> {
  return tryModule('the CUDA emulator (src/backends/cuda/emulator.ts)', () => import('../backends/cuda/emulator.js'), (m) => {
    const rt = m.createCudaEmulatorRuntime();
    return rt ? { rt } : { reason: m.cudaEmulatorUnavailableReason() ?? 'the CUDA emulator is not usable' };
  });
}

/** The runtime `run` and `demo` use, and a sentence saying why it was picked. */
export async function pickRuntime(choice: BackendChoice | undefined): Promise<{ rt: BackendRuntime; why: string }> {
  if (choice === 'js') return { rt: new JSRuntime(), why: 'requested with --backend js' };
  if (choice === 'cuda') {
    const cuda = await tryCuda();
    if ('rt' in cuda) return { rt: cuda.rt, why: 'requested with --backend cuda' };
    throw new TesseraError('E_BACKEND', `--backend cuda: no CUDA device: ${cuda.reason}`);
  }
  if (choice === 'cuda-emu') {
    const emu = await tryCudaEmulator();
    if ('rt' in emu) return { rt: emu.rt, why: 'requested with --backend cuda-emu: the CUDA kernels run on the CPU emulator' };
    throw new TesseraError('E_BACKEND', `--backend cuda-emu: the CUDA emulator cannot run here: ${emu.reason}`);
  }
  const gpu = await tryWebGPU();
  if ('rt' in gpu) return { rt: gpu.rt, why: choice === 'webgpu' ? 'requested with --backend webgpu' : 'default: a WebGPU adapter was found' };
  if (choice === 'webgpu') throw new TesseraError('E_BACKEND', `--backend webgpu: no WebGPU adapter: ${gpu.reason}`);
  return { rt: new JSRuntime(), why: `default: no WebGPU adapter (${gpu.reason})` };
}
