/**
 * CUDA backend runtime: kernels printed as CUDA C++ (print.ts), compiled to a cubin for the device's
 * own arch (nvcc.ts with compiler 'auto': NVRTC in process when libnvrtc loads, else nvcc; cached on
 * disk), loaded with the driver API through the addon (native.ts) and launched on the primary
 * context's legacy default stream.
 *
 * Storage is native: f32/i32/u32 4 bytes, f16 and bf16 2 bytes (`__half`, `__nv_bfloat16`,
 * converted on upload/download with round-to-nearest-even), bool 1 byte (0/1). Allocations are
 * zero-filled; freed buffers go to the runtime's allocation pool and are reused by size.
 *
 * Launches are asynchronous; uploads (cuMemcpyHtoD) and downloads (cuMemcpyDtoH) are ordered with
 * them on the default stream, so a download sees every earlier launch. Everything run() checks
 * (bindings, dims, limits) is checked on the host before the device is touched, so a bad launch throws
 * a TesseraError and leaves the runtime usable. Driver failures throw E_BACKEND with the driver's
 * error name and text; a fault inside a kernel surfaces at the next sync() or download().
 *
 * The grid is 1-D: ceil(threads / workgroupSize) blocks of workgroupSize threads, folded into y only
 * past the device's grid x limit (2^31 - 1). Kernels compute their linear id as an i32, so a launch
 * may cover at most 2^31 threads.
 */
import { createHash } from 'node:crypto';
import { fail, TesseraError } from '../../errors.js';
import type { DType } from '../../ir/dtype.js';
import { evalDim } from '../../ir/dims.js';
import type { Kernel } from '../../ir/kernel.js';
import { hostMatches, hostTypeName, type BackendInfo, type BackendRuntime, type DeviceBuffer, type HostArray } from '../../runtime/backend.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../runtime/f16.js';
import { median } from '../../runtime/median.js';
import { checkBindings } from '../js/runtime.js';
import { loadCudaAddon, cudaAddonUnavailableReason, type CudaAddon, type CudaDeviceInfo, type CudaProbe, type CuHandle, type CuParam } from './native.js';
import { chooseCudaCompiler, compileCuda, type CompileCudaOptions } from './nvcc.js';
import { cudaBlockSize, cudaElementBytes, cudaEntryName, cudaSharedBytes, printCudaUnit } from './print.js';
import { foldGrid, launchGrid } from '../../runtime/grid.js';

export interface CudaRuntimeOptions {
  /** Device ordinal (default 0). */
  readonly device?: number;
  /** Extra compiler flags, cache folder and compiler (default 'auto') for this runtime's kernels. */
  readonly nvcc?: Pick<CompileCudaOptions, 'extraFlags' | 'cacheDir' | 'cache' | 'compiler'>;
  /**
   * Hand the driver each kernel's CUDA source instead of a cubin: for a driver that compiles source
   * itself (the CPU emulator, emulator.ts). No nvcc or NVRTC is involved.
   */
  readonly loadSource?: boolean;
}

/** Most bytes of freed buffers a runtime keeps for reuse. */
const POOL_BYTES = 1024 * 1024 * 1024;



/** Largest linear thread id + 1 a kernel's i32 id can reach. */

export class CudaBuffer implements DeviceBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly length: number,
    /** Device bytes (at least 4). */
    readonly bytes: number,
    readonly ptr: CuHandle,
    readonly owner: CudaRuntime,
  ) {}
}

interface FunctionEntry {
  readonly module: CuHandle;
  readonly fn: CuHandle;
}

/** The thread's current context, shared by every runtime in this process (contexts are per thread). */
let currentCtx: CuHandle | undefined;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}


/** CUDA's grid for a launch (see src/runtime/grid.ts). */
export const cudaGrid = foldGrid;

export class CudaRuntime implements BackendRuntime {
  readonly info: BackendInfo;
  readonly device: CudaDeviceInfo;
  /** The device's own arch, `sm_XY`, which kernels are compiled for. */
  readonly arch: string;
  private readonly addon: CudaAddon;
  private readonly ctx: CuHandle;
  private readonly opts: CudaRuntimeOptions;
  private readonly modules = new Map<string, FunctionEntry>();
  private readonly byKernel = new WeakMap<Kernel, FunctionEntry>();
  private readonly live = new Set<CudaBuffer>();
  /** Freed device memory by size, reused by alloc (at most POOL_BYTES, and a quarter of the device). */
  private readonly pool = new Map<number, CuHandle[]>();
  private pooledBytes = 0;
  private destroyed = false;

  constructor(addon: CudaAddon, probe: CudaProbe, device: CudaDeviceInfo, opts: CudaRuntimeOptions = {}) {
    this.addon = addon;
    this.device = device;
    this.opts = opts;
    const [major, minor] = device.computeCapability;
    this.arch = `sm_${major}${minor}`;
    try {
      this.ctx = addon.ctxCreate(device.index);
    } catch (e) {
      throw new TesseraError('E_BACKEND', `CUDA device ${device.index} (${device.name}): creating its context failed: ${message(e)}`);
    }
    currentCtx = this.ctx;
    const drv = probe.driverVersion;
    const driver = drv ? `${Math.floor(drv / 1000)}.${Math.floor((drv % 1000) / 10)}` : 'unknown';
    const cc = opts.loadSource ? undefined : chooseCudaCompiler(opts.nvcc?.compiler ?? 'auto', 'cubin');
    const compilerText = cc?.ok ? `${cc.compiler === 'nvrtc' ? 'NVRTC' : 'nvcc'} ${cc.version}` : 'no compiler';
    this.info = {
      kind: 'cuda',
      description: opts.loadSource
        ? `${device.name}: ${this.arch} kernels compiled by ${addon.builtWith}`
        : `${device.name} (${this.arch}, ${device.smCount} SMs, ${(device.totalMem / 2 ** 30).toFixed(1)} GiB, CUDA driver ${driver}, ${compilerText})`,
      // tensor cores (WMMA f16, sm_70+): f16 matmuls default to the mma schedule (deviceCaps, the tuner, `tessera run`)
      features: ['shader-f16', 'subgroups', ...(major >= 7 ? ['tensor-cores'] : []), ...(major >= 8 ? ['tensor-cores-bf16'] : [])],
      limits: {
        // a warp is a subgroup; kernels with subgroup operations use one warp per block
        subgroupMinSize: 32,
        subgroupMaxSize: 32,
        computeCapability: major * 10 + minor,
        smCount: device.smCount,
        totalMem: device.totalMem,
        maxThreadsPerBlock: device.maxThreadsPerBlock,
        maxSharedMemPerBlock: device.maxSharedMemPerBlock,
        maxBlockDimX: device.maxBlockDimX,
        maxGridDimX: device.maxGridDimX,
        maxGridDimY: device.maxGridDimY,
        warpSize: device.warpSize,
      },
    };
  }

  print(kernel: Kernel): string {
    return printCudaUnit([kernel]);
  }

  // ---------------------------------------------------------------------------------------------
  // Driver calls

  /** Run a driver call with this runtime's context current; driver errors become E_BACKEND. */
  private cu<T>(what: string, f: () => T): T {
    this.checkAlive();
    try {
      if (currentCtx !== this.ctx) {
        this.addon.ctxSetCurrent(this.ctx);
        currentCtx = this.ctx;
      }
      return f();
    } catch (e) {
      if (e instanceof TesseraError) throw e;
      throw new TesseraError('E_BACKEND', `CUDA ${what}: ${message(e)}`);
    }
  }

  private checkAlive(): void {
    if (this.destroyed) fail('E_BACKEND', 'the CUDA runtime was destroyed');
  }

  private own(buf: DeviceBuffer, what: string): CudaBuffer {
    if (!(buf instanceof CudaBuffer) || buf.owner !== this) fail('E_BUFFER', `${what}: the buffer was not allocated by this CUDA runtime`);
    if (buf.freed) fail('E_BUFFER', `${what}: the buffer was freed`);
    return buf;
  }

  // ---------------------------------------------------------------------------------------------
  // Buffers

  alloc(dtype: DType, length: number): CudaBuffer {
    this.checkAlive();
    if (!Number.isSafeInteger(length) || length < 0) fail('E_BUFFER', `alloc: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(4, length * cudaElementBytes(dtype));
    if (bytes > this.device.totalMem) fail('E_DEVICE_LIMIT', `alloc: ${length} x ${dtype} needs ${bytes} bytes, over the device's ${this.device.totalMem}`);
    // One allocation pool per device: freed memory of the same size is reused (zeroed below); when the
    // driver is out of memory, the pool is released and the allocation tried once more.
    const pooled = this.pool.get(bytes)?.pop();
    if (pooled !== undefined) this.pooledBytes -= bytes;
    const ptr =
      pooled ??
      this.cu('alloc', () => {
        try {
          return this.addon.memAlloc(bytes);
        } catch (e) {
          if (this.pooledBytes === 0 || !/OUT_OF_MEMORY/.test(message(e))) throw e;
          this.releasePool();
          return this.addon.memAlloc(bytes);
        }
      });
    try {
      this.cu('alloc (zero fill)', () => this.addon.memsetD8(ptr, 0, bytes));
    } catch (e) {
      this.cu('free', () => this.addon.memFree(ptr));
      throw e;
    }
    const b = new CudaBuffer(dtype, length, bytes, ptr, this);
    this.live.add(b);
    return b;
  }

  upload(buf: DeviceBuffer, data: HostArray): void {
    this.checkAlive();
    const b = this.own(buf, 'upload');
    if (!hostMatches(b.dtype, data)) fail('E_BUFFER', `upload: a ${b.dtype} buffer takes a ${hostTypeName(b.dtype)}, got ${data.constructor.name}`);
    if (data.length !== b.length) fail('E_BUFFER', `upload: buffer holds ${b.length} ${b.dtype} elements, data has ${data.length}`);
    if (b.length === 0) return;
    let bytes: ArrayBufferView;
    if (b.dtype === 'f16' || b.dtype === 'bf16') {
      const h = new Uint16Array(b.length);
      const bits = b.dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < b.length; i++) h[i] = bits(data[i]!);
      bytes = h;
    } else if (b.dtype === 'bool') {
      const u = new Uint8Array(b.length);
      for (let i = 0; i < b.length; i++) u[i] = data[i] ? 1 : 0;
      bytes = u;
    } else {
      bytes = data;
    }
    this.cu('upload', () => this.addon.memcpyHtoD(b.ptr, bytes));
  }

  async download(buf: DeviceBuffer): Promise<HostArray> {
    this.checkAlive();
    const b = this.own(buf, 'download');
    const n = b.length;
    switch (b.dtype) {
      case 'f32': case 'i32': case 'u32': {
        const out = b.dtype === 'f32' ? new Float32Array(n) : b.dtype === 'i32' ? new Int32Array(n) : new Uint32Array(n);
        if (n > 0) this.cu('download', () => this.addon.memcpyDtoH(out, b.ptr));
        return out;
      }
      case 'f16': case 'bf16': {
        const h = new Uint16Array(n);
        if (n > 0) this.cu('download', () => this.addon.memcpyDtoH(h, b.ptr));
        const out = new Float32Array(n);
        const value = b.dtype === 'f16' ? f16BitsToF32 : bf16BitsToF32;
        for (let i = 0; i < n; i++) out[i] = value(h[i]!);
        return out;
      }
      case 'bool': {
        const out = new Uint8Array(n);
        if (n > 0) this.cu('download', () => this.addon.memcpyDtoH(out, b.ptr));
        for (let i = 0; i < n; i++) out[i] = out[i] !== 0 ? 1 : 0;
        return out;
      }
    }
  }

  free(buf: DeviceBuffer): void {
    this.checkAlive();
    const b = this.own(buf, 'free');
    b.freed = true;
    this.live.delete(b);
    if (this.pooledBytes + b.bytes <= Math.min(POOL_BYTES, this.device.totalMem / 4)) {
      const list = this.pool.get(b.bytes) ?? [];
      list.push(b.ptr);
      this.pool.set(b.bytes, list);
      this.pooledBytes += b.bytes;
      return;
    }
    this.cu('free', () => this.addon.memFree(b.ptr));
  }

  /** Device bytes held by the allocation pool (freed buffers kept for reuse). */
  get pooled(): number {
    return this.pooledBytes;
  }

  /** Returns the pool's memory to the driver. */
  releasePool(): void {
    const lists = [...this.pool.values()];
    this.pool.clear();
    this.pooledBytes = 0;
    for (const list of lists) for (const ptr of list) this.cu('free', () => this.addon.memFree(ptr));
  }

  // ---------------------------------------------------------------------------------------------
  // Launches

  /** Host-side checks for one launch: buffers, uniforms, thread count, device limits and the grid. */
  private validate(kernel: Kernel, bindings: readonly DeviceBuffer[], dims: Readonly<Record<string, number>>): { bufs: CudaBuffer[]; uniforms: number[]; threads: number; grid: [number, number] } {
    const k = kernel.name;
    checkBindings(kernel, bindings, dims);
    const bufs = bindings.map((b, i) => this.own(b, `kernel '${k}', buffer '${kernel.buffers[i]!.name}'`));
    // Kernel pointers are __restrict__: a buffer bound twice must not be written through either.
    for (let i = 0; i < bufs.length; i++) {
      for (let j = i + 1; j < bufs.length; j++) {
        if (bufs[i] === bufs[j] && (kernel.buffers[i]!.access !== 'read' || kernel.buffers[j]!.access !== 'read')) {
          fail('E_BUFFER', `kernel '${k}': buffers '${kernel.buffers[i]!.name}' and '${kernel.buffers[j]!.name}' are the same device buffer and one is written`);
        }
      }
    }
    const uniforms = kernel.uniforms.map((u) => {
      const v = evalDim({ sym: u }, dims);
      if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) fail('E_ARG', `kernel '${k}': dim '${u}' = ${v} is not an i32`);
      return v;
    });
    const threads = evalDim(kernel.threads, dims);
    if (!Number.isInteger(threads) || threads < 0) fail('E_ARG', `kernel '${k}': thread count ${threads} is not a non-negative integer`);
    const wg = kernel.workgroupSize;
    const block = cudaBlockSize(kernel);
    const d = this.device;
    if (!Number.isInteger(wg) || wg < 1 || block > d.maxThreadsPerBlock || block > d.maxBlockDimX) {
      fail('E_DEVICE_LIMIT', `kernel '${k}': ${block} threads per block${kernel.warp ? ` (${wg} warps)` : ''} is outside the device's 1..${Math.min(d.maxThreadsPerBlock, d.maxBlockDimX)}`);
    }
    if (kernel.subgroup && wg > 32) fail('E_DEVICE_LIMIT', `kernel '${k}': its subgroup operations assume one warp per block, but the block has ${wg} threads`);
    if (kernel.fragments?.length && d.computeCapability[0] < 7) fail('E_DEVICE_LIMIT', `kernel '${k}': its tensor-core (mma) schedule needs compute capability 7.0 or newer, the device has ${d.computeCapability.join('.')}`);
    if (kernel.fragments?.some((f) => f.half === 'bf16') && d.computeCapability[0] < 8) fail('E_DEVICE_LIMIT', `kernel '${k}': its bf16 tensor-core (mma) schedule needs compute capability 8.0 or newer, the device has ${d.computeCapability.join('.')}`);
    const shared = cudaSharedBytes(kernel);
    if (shared > d.maxSharedMemPerBlock) fail('E_DEVICE_LIMIT', `kernel '${k}': ${shared} bytes of shared memory, the device allows ${d.maxSharedMemPerBlock} per block`);
    const grid = launchGrid(k, threads, wg, d.maxGridDimX, d.maxGridDimY);
    return { bufs, uniforms, threads, grid };
  }

  run(kernel: Kernel, bindings: readonly DeviceBuffer[], dims: Readonly<Record<string, number>>): void {
    this.checkAlive();
    const { bufs, uniforms, threads, grid } = this.validate(kernel, bindings, dims);
    if (threads === 0) return;
    const entry = this.functionFor(kernel);
    const params: CuParam[] = [...bufs.map((b) => b.ptr), ...uniforms];
    this.cu(`launch of kernel '${kernel.name}'`, () => this.addon.launchKernel(entry.fn, [grid[0], grid[1], 1], [cudaBlockSize(kernel), 1, 1], 0, params));
  }

  /** Compile and load a kernel ahead of its first run (E_BACKEND if the compiler or the driver rejects it). */
  async compile(kernel: Kernel): Promise<void> {
    this.checkAlive();
    this.functionFor(kernel);
  }

  private functionFor(kernel: Kernel): FunctionEntry {
    const known = this.byKernel.get(kernel);
    if (known) return known;
    const source = this.print(kernel);
    const key = createHash('sha256').update(kernel.name).update('\0').update(source).digest('hex');
    let entry = this.modules.get(key);
    if (!entry) {
      const bytes = this.opts.loadSource ? Buffer.from(source) : compileCuda(source, { ...this.opts.nvcc, compiler: this.opts.nvcc?.compiler ?? 'auto', archs: [this.arch], output: 'cubin' }).bytes;
      const module = this.cu(`loading the module of kernel '${kernel.name}'`, () => this.addon.moduleLoadData(bytes));
      let fn: CuHandle;
      try {
        fn = this.cu(`kernel '${kernel.name}'`, () => this.addon.moduleGetFunction(module, cudaEntryName(kernel)));
      } catch (e) {
        try {
          this.addon.moduleUnload(module);
        } catch {
          // The first error is the one to report.
        }
        throw e;
      }
      entry = { module, fn };
      this.modules.set(key, entry);
    }
    this.byKernel.set(kernel, entry);
    return entry;
  }

  async sync(): Promise<void> {
    this.cu('synchronize', () => this.addon.ctxSynchronize());
  }

  async time(launches: () => void, repeats: number): Promise<{ medianMs: number; source: 'device' | 'wall' }> {
    this.checkAlive();
    const n = Math.max(1, Math.floor(repeats));
    // Warm-up: kernels are compiled and loaded here, outside the measurement.
    launches();
    await this.sync();
    const events: CuHandle[] = [];
    try {
      for (let i = 0; i < 2 * n; i++) events.push(this.cu('event create', () => this.addon.eventCreate(0)));
      for (let r = 0; r < n; r++) {
        this.cu('event record', () => this.addon.eventRecord(events[2 * r]!));
        launches();
        this.cu('event record', () => this.addon.eventRecord(events[2 * r + 1]!));
      }
      this.cu('event synchronize', () => this.addon.eventSynchronize(events[2 * n - 1]!));
      const times: number[] = [];
      for (let r = 0; r < n; r++) times.push(this.cu('event elapsed time', () => this.addon.eventElapsedTime(events[2 * r]!, events[2 * r + 1]!)));
      return { medianMs: median(times), source: 'device' };
    } finally {
      for (const ev of events) {
        try {
          this.addon.eventDestroy(ev);
        } catch {
          // Destroying is best effort; a failing context reports itself elsewhere.
        }
      }
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    try {
      if (currentCtx !== this.ctx) {
        this.addon.ctxSetCurrent(this.ctx);
        currentCtx = this.ctx;
      }
      // Best effort: after a kernel fault the context refuses everything, and releasing it is all that is left.
      for (const b of this.live) {
        b.freed = true;
        try {
          this.addon.memFree(b.ptr);
        } catch {
          // see above
        }
      }
      for (const list of this.pool.values()) {
        for (const ptr of list) {
          try {
            this.addon.memFree(ptr);
          } catch {
            // see above
          }
        }
      }
      for (const e of this.modules.values()) {
        try {
          this.addon.moduleUnload(e.module);
        } catch {
          // see above
        }
      }
    } catch {
      // ctxSetCurrent failed: releasing is still right.
    }
    this.live.clear();
    this.pool.clear();
    this.pooledBytes = 0;
    this.modules.clear();
    this.destroyed = true;
    currentCtx = undefined;
    try {
      this.addon.ctxRelease(this.device.index);
    } catch (e) {
      throw new TesseraError('E_BACKEND', `CUDA destroy: ${message(e)}`);
    }
  }
}

// -----------------------------------------------------------------------------------------------
// Creation

/** Why the last createCudaRuntime() per device failed. */
const createFailure = new Map<number, string>();

type Diagnosis = { ok: true; addon: CudaAddon; probe: CudaProbe; device: CudaDeviceInfo } | { ok: false; reason: string };

function diagnose(index: number, compiler: CompileCudaOptions['compiler'] = 'auto'): Diagnosis {
  const addon = loadCudaAddon();
  if (!addon) return { ok: false, reason: cudaAddonUnavailableReason() ?? 'the CUDA addon did not load' };
  let probe: CudaProbe;
  try {
    probe = addon.probe();
  } catch (e) {
    return { ok: false, reason: `probing the CUDA driver failed: ${message(e)}` };
  }
  if (!probe.available) return { ok: false, reason: probe.reason ?? 'the CUDA driver is not available' };
  const device = probe.devices[index];
  if (!device) return { ok: false, reason: `there is no CUDA device ${index} (the driver reports ${probe.devices.length})` };
  const cc = chooseCudaCompiler(compiler, 'cubin');
  if (!cc.ok) return { ok: false, reason: `no CUDA compiler: ${cc.reason} (set $TESSERA_NVCC or put nvcc on PATH, or make libnvrtc loadable)` };
  return { ok: true, addon, probe, device };
}

/** A CUDA runtime on device `opts.device` (default 0), or undefined (cudaUnavailableReason() says why). */
export function createCudaRuntime(opts: CudaRuntimeOptions = {}): CudaRuntime | undefined {
  const index = opts.device ?? 0;
  createFailure.delete(index);
  const d = diagnose(index, opts.nvcc?.compiler);
  if (!d.ok) {
    createFailure.set(index, d.reason);
    return undefined;
  }
  try {
    return new CudaRuntime(d.addon, d.probe, d.device, opts);
  } catch (e) {
    createFailure.set(index, message(e));
    return undefined;
  }
}

/** Why createCudaRuntime() returned (or would return) undefined; undefined when CUDA is usable. */
export function cudaUnavailableReason(device = 0): string | undefined {
  const failed = createFailure.get(device);
  if (failed !== undefined) return failed;
  const d = diagnose(device);
  return d.ok ? undefined : d.reason;
}

/** Like createCudaRuntime, but E_BACKEND with the reason when CUDA is not usable. */
export function requireCudaRuntime(opts: CudaRuntimeOptions = {}): CudaRuntime {
  const rt = createCudaRuntime(opts);
  if (!rt) throw new TesseraError('E_BACKEND', `no CUDA device: ${cudaUnavailableReason(opts.device ?? 0)}`);
  return rt;
}
