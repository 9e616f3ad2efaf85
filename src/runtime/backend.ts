/**
 * The contract every backend runtime (JS, WebGPU, CUDA) implements, so program execution,
 * tests and benchmarks are written once. Host data is always the logical values:
 * f32, f16 and bf16 as Float32Array (f16 and bf16 are converted on upload/download), i32 as Int32Array,
 * u32 as Uint32Array, bool as Uint8Array of 0/1.
 */
import type { DType } from '../ir/dtype.js';
import type { Kernel } from '../ir/kernel.js';

export type HostArray = Float32Array | Int32Array | Uint32Array | Uint8Array;

export function hostArrayFor(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'f32': case 'f16': case 'bf16': return new Float32Array(length);
    case 'i32': return new Int32Array(length);
    case 'u32': return new Uint32Array(length);
    case 'bool': return new Uint8Array(length);
  }
}

/** The host array type that carries a dtype's values (for messages). */
export function hostTypeName(d: DType): string {
  switch (d) {
    case 'f32': case 'f16': case 'bf16': return 'Float32Array';
    case 'i32': return 'Int32Array';
    case 'u32': return 'Uint32Array';
    case 'bool': return 'Uint8Array';
  }
}

/** Whether `data` is the host array type for `d`. */
export function hostMatches(d: DType, data: HostArray): boolean {
  switch (d) {
    case 'f32': case 'f16': case 'bf16': return data instanceof Float32Array;
    case 'i32': return data instanceof Int32Array;
    case 'u32': return data instanceof Uint32Array;
    case 'bool': return data instanceof Uint8Array;
  }
}

export interface DeviceBuffer {
  readonly dtype: DType;
  /** Number of logical elements. */
  readonly length: number;
}

export interface BackendInfo {
  readonly kind: 'js' | 'webgpu' | 'cuda';
  /** Adapter or device name, driver, and what it supports, for `tessera devices` and bench reports. */
  readonly description: string;
  readonly features: readonly string[];
  readonly limits: Readonly<Record<string, number>>;
}

export interface BackendRuntime {
  readonly info: BackendInfo;
  /** This backend's source text for a kernel (what `tessera compile` writes). */
  print(kernel: Kernel): string;
  alloc(dtype: DType, length: number): DeviceBuffer;
  upload(buf: DeviceBuffer, data: HostArray): void;
  download(buf: DeviceBuffer): Promise<HostArray>;
  /**
   * Enqueue one launch. `bindings` follow kernel.buffers in order; `dims` binds every symbolic dim
   * in kernel.uniforms and kernel.threads. Validates sizes and limits before touching the device.
   */
  run(kernel: Kernel, bindings: readonly DeviceBuffer[], dims: Readonly<Record<string, number>>): void;
  /**
   * What `run` launches for `kernel` at `dims` when that differs from the kernel itself (a backend
   * that runs narrow launches of flexible kernels in smaller workgroups); absent: the kernel.
   */
  launchedKernel?(kernel: Kernel, dims: Readonly<Record<string, number>>): Kernel;
  /** Wait until every enqueued launch finished. */
  sync(): Promise<void>;
  /** Device time of `launches()` in ms when the backend can measure it (timestamp queries), else wall time. */
  time(launches: () => void, repeats: number): Promise<{ medianMs: number; source: 'device' | 'wall' }>;
  free(buf: DeviceBuffer): void;
  destroy(): void;
}
