/**
 * Loads the CUDA driver addon (build/Release/tessera_cuda.node, built by `npm ci` from binding.gyp
 * and src/backends/cuda/native/addon.cc). Importing this module never throws: when the .node file is
 * missing or fails to load, loadCudaAddon() returns undefined and cudaAddonUnavailableReason() says why.
 *
 * The addon dlopens libcuda.so.1 on first use. Without a driver it still loads, probe() returns
 * {available: false, reason: 'libcuda.so.1 not found: ...'} and every other function throws that
 * reason. Every failing driver call throws an Error naming the call with cuGetErrorName /
 * cuGetErrorString (the runtime maps these to TesseraError('E_BACKEND')).
 *
 * NVRTC (nvrtcProbe / nvrtcCompile) is dlopen'ed the same way, on first use; src/backends/cuda/nvrtc.ts
 * wraps it.
 *
 * Handles are BigInt values (the pointer bits); device pointers can be offset with BigInt arithmetic.
 * TESSERA_CUDA_ADDON=<path> loads another build of the addon.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface CudaDeviceInfo {
  readonly index: number;
  readonly name: string;
  readonly computeCapability: readonly [number, number];
  /** Bytes of device memory. */
  readonly totalMem: number;
  readonly smCount: number;
  readonly maxThreadsPerBlock: number;
  /** Static shared memory a block may use without opting in (48 KiB on current GPUs). */
  readonly maxSharedMemPerBlock: number;
  readonly maxSharedMemPerBlockOptin: number;
  readonly maxBlockDimX: number;
  readonly maxGridDimX: number;
  readonly maxGridDimY: number;
  readonly warpSize: number;
}

export interface CudaProbe {
  readonly available: boolean;
  readonly reason?: string;
  /** cuDriverGetVersion: 1000 * major + 10 * minor (12040 is 12.4). */
  readonly driverVersion?: number;
  readonly devices: readonly CudaDeviceInfo[];
}

/** What nvrtcProbe() found. */
export interface NvrtcProbeResult {
  readonly available: boolean;
  /** Why not: every library tried and what dlopen / dlsym said. */
  readonly reason?: string;
  /** nvrtcVersion as 'major.minor', e.g. '12.4'. */
  readonly version?: string;
  readonly major?: number;
  readonly minor?: number;
  /** The file that was loaded. */
  readonly path?: string;
}

export interface NvrtcCompileOutput {
  /** When the options name a real arch (-arch=sm_XX). */
  readonly cubin?: Buffer;
  /** When they name a virtual one (-arch=compute_XX) or none; without the trailing NUL. */
  readonly ptx?: Buffer;
  /** The program log (warnings); '' when there are none. */
  readonly log: string;
}

/** Properties the addon sets on errors from failing NVRTC calls. */
export interface NvrtcCallError extends Error {
  readonly nvrtcResult?: number;
  readonly nvrtcError?: string;
  readonly log?: string;
}

export type CuHandle = bigint;

/** A kernel parameter: a BigInt is passed as 64 bits (a device pointer), a number as a 32-bit int. */
export type CuParam = bigint | number;

export interface CudaAddon {
  probe(): CudaProbe;
  /** Retains the device's primary context (what the CUDA runtime and PyTorch use) and makes it current. */
  ctxCreate(device: number): CuHandle;
  ctxSetCurrent(ctx: CuHandle): void;
  /** Unbinds the current context and releases the device's primary context. */
  ctxRelease(device: number): void;
  ctxSynchronize(): void;
  memAlloc(bytes: number): CuHandle;
  memFree(ptr: CuHandle): void;
  memsetD8(ptr: CuHandle, value: number, bytes: number): void;
  /** Copies all of src's bytes to dst (synchronous for the host). */
  memcpyHtoD(dst: CuHandle, src: ArrayBufferView | ArrayBuffer): void;
  /** Fills all of dst's bytes from src, after all earlier work on the default stream. */
  memcpyDtoH(dst: ArrayBufferView | ArrayBuffer, src: CuHandle): void;
  /** cuModuleLoadData on a cubin, fatbin or PTX image. */
  moduleLoadData(image: ArrayBufferView | ArrayBuffer): CuHandle;
  moduleUnload(mod: CuHandle): void;
  moduleGetFunction(mod: CuHandle, name: string): CuHandle;
  /** Enqueues a launch on the legacy default stream. grid and block take 1 to 3 dims. */
  launchKernel(fn: CuHandle, grid: readonly number[], block: readonly number[], sharedBytes: number, params: readonly CuParam[]): void;
  eventCreate(flags?: number): CuHandle;
  eventRecord(ev: CuHandle): void;
  eventSynchronize(ev: CuHandle): void;
  /** Milliseconds between two completed events. */
  eventElapsedTime(start: CuHandle, end: CuHandle): number;
  eventDestroy(ev: CuHandle): void;
  /** 'cuda.h' or 'vendored cuda_min.h': which header the build used. */
  readonly builtWith: string;
  /**
   * dlopens libnvrtc once: `path` first (when given), then libnvrtc.so, .so.13, .so.12, .so.11. A
   * failure is not remembered; once loaded, the library stays (later paths are ignored). Never throws
   * for a missing library.
   */
  nvrtcProbe(path?: string): NvrtcProbeResult;
  /** Compiles in process: a cubin when `options` name an sm_XX arch, else PTX. Throws an NvrtcCallError. */
  nvrtcCompile(source: string, name: string, options: readonly string[]): NvrtcCompileOutput;
  /** 'nvrtc.h' or 'vendored nvrtc_min.h'. */
  readonly nvrtcBuiltWith: string;
}

/** Properties the addon sets on errors from failing driver calls. */
export interface CudaCallError extends Error {
  readonly cudaResult?: number;
  readonly cudaError?: string;
}

export function cudaAddonPath(): string {
  return process.env['TESSERA_CUDA_ADDON'] ?? fileURLToPath(new URL('../../../build/Release/tessera_cuda.node', import.meta.url));
}

let state: { addon: CudaAddon | undefined; reason: string | undefined } | undefined;

function tryLoad(): { addon: CudaAddon | undefined; reason: string | undefined } {
  const file = cudaAddonPath();
  if (!existsSync(file)) {
    return { addon: undefined, reason: `the CUDA addon is not built (${file} is missing; run \`npm ci\` or \`npx node-gyp rebuild\`)` };
  }
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(file) as CudaAddon, reason: undefined };
  } catch (e) {
    return { addon: undefined, reason: `the CUDA addon ${file} failed to load: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** The addon, loaded once; undefined when it is not built or does not load. */
export function loadCudaAddon(): CudaAddon | undefined {
  state ??= tryLoad();
  return state.addon;
}

/** Why loadCudaAddon() returned undefined (undefined when it loaded). */
export function cudaAddonUnavailableReason(): string | undefined {
  state ??= tryLoad();
  return state.reason;
}
