/**
 * WebGPU backend runtime: WGSL kernels on a WebGPU device (a browser's, or Dawn in Node).
 *
 * Launches are recorded into one command encoder (one compute pass) and submitted together at the
 * next sync(), download(), upload() or free(); WebGPU orders and synchronizes dispatches within a
 * pass. Everything run() checks is checked on the host before any GPU object is created, so a bad
 * launch throws a TesseraError and leaves the runtime usable. GPU-side failures (a shader the
 * driver rejects, a lost device) surface as E_BACKEND at the next sync() or download().
 */
import { hostMatches, hostTypeName, type BackendInfo, type BackendRuntime, type DeviceBuffer, type HostArray } from '../../runtime/backend.js';
import type { DType } from '../../ir/dtype.js';
import { launchWorkgroupSize, withWorkgroupSize, type Kernel } from '../../ir/kernel.js';
import { evalDim, evalShape, numel, shapeToString } from '../../ir/dims.js';
import { fail, TesseraError } from '../../errors.js';
import { printWGSL, sharedBytes, storageBytes, storageType, type WGSLCaps } from './print.js';
import { requestWebGPUDevice, waitFor, webgpuUnavailableReason, type WebGPUDeviceHandle, type WebGPUOptions } from './device.js';
import { launchGrid } from '../../runtime/grid.js';
import { bf16Round, f16BitsToF32, f32ToF16Bits, f16Round as roundToF16 } from '../../runtime/f16.js';
import { median } from '../../runtime/median.js';

export { webgpuUnavailableReason } from './device.js';
export type { WebGPUOptions } from './device.js';

// GPUBufferUsage / GPUMapMode / GPUShaderStage values (the globals do not exist in Node).
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_UNIFORM = 0x0040;
const USAGE_STORAGE = 0x0080;
const USAGE_QUERY_RESOLVE = 0x0200;
const MAP_READ = 0x0001;
const STAGE_COMPUTE = 0x4;

/** Dispatches recorded before the encoder is submitted anyway, to bound its memory. */
const MAX_BATCH = 4096;
/** Distinct uniform contents kept as immutable buffers. */
const MAX_UNIFORM_CACHE = 512;

export interface WebGPURuntimeOptions extends WebGPUOptions {
  /**
   * Dawn for Node busy-spins the event loop while it waits for the GPU, which starves a software
   * driver's threads. After this many ms of a wait it ticks from a 1 ms timer instead
   * (default 2; Infinity keeps spinning; 0 is polite from the start).
   */
  readonly spinMs?: number;
  /**
   * Print `dot4i8` as WGSL's dot4I8Packed when the implementation has the
   * packed_4x8_integer_dot_product language feature (default true); false tests the shift helper.
   */
  readonly packed4x8Dot?: boolean;
}

let nextBufferId = 1;

/** Most bytes of freed buffers a runtime keeps for reuse. */
const POOL_BYTES = 256 * 1024 * 1024;

/** The adapter's subgroup size range (GPUAdapterInfo), when the device has subgroups. */
function subgroupSizes(handle: WebGPUDeviceHandle): Record<string, number> {
  const info = handle.adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  if (!handle.features.includes('subgroups') || !info?.subgroupMinSize) return {};
  return { subgroupMinSize: info.subgroupMinSize, subgroupMaxSize: info.subgroupMaxSize ?? info.subgroupMinSize };
}

export class WebGPUBuffer implements DeviceBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly length: number,
    /** Device bytes (at least 4, a multiple of 4). */
    readonly bytes: number,
    readonly gpu: GPUBuffer,
    readonly owner: WebGPURuntime,
    readonly id: number,
  ) {}
}

interface PipelineEntry {
  readonly source: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly id: number;
  /** Set once the driver rejected the shader or pipeline. */
  error: string | undefined;
  /** The error was thrown to a caller already (compile() or run()): sync() need not repeat it. */
  reported: boolean;
  /** Resolves when the creation's error scope has been checked. */
  readonly checked: Promise<void>;
}

/** FNV-1a over UTF-16 code units: the pipeline cache key (entries also compare the full source). */
function hashSource(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return `${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}:${s.length}`;
}


/** The bytes of a host array for writeBuffer (which copies at once); Dawn rejects shared memory, so that is copied. */
function plainBytes(data: HostArray): Uint8Array {
  if (data.buffer instanceof ArrayBuffer) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const copy = new Uint8Array(data.byteLength);
  copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return copy;
}

export class WebGPURuntime implements BackendRuntime {
  readonly info: BackendInfo;
  readonly caps: WGSLCaps;
  readonly device: GPUDevice;
  private readonly handle: WebGPUDeviceHandle;
  private readonly spinMs: number;
  private readonly hasTimestamps: boolean;
  private readonly limit: {
    storageBuffers: number;
    bindingSize: number;
    bufferSize: number;
    sharedBytes: number;
    invocations: number;
    sizeX: number;
    groupsPerDim: number;
    uniformBindingSize: number;
  };

  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  /** Freed device buffers by size, reused by alloc (bounded by POOL_BYTES). */
  private readonly pool = new Map<number, GPUBuffer[]>();
  private pooledBytes = 0;
  private batched = 0;
  private passTimestamps: GPUComputePassTimestampWrites | undefined;

  private readonly pipelines = new Map<string, PipelineEntry[]>();
  private readonly byKernel = new WeakMap<Kernel, PipelineEntry>();
  /** Flexible kernels relaunched in narrow workgroups (`launchWorkgroupSize`), by kernel and size. */
  private readonly narrowed = new WeakMap<Kernel, Map<number, Kernel>>();
  private nextPipelineId = 1;
  private readonly uniforms = new Map<string, { buf: GPUBuffer; id: number }>();
  private nextUniformId = 1;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** Cache keys of the bind groups naming each buffer id, so free() can drop them. */
  private readonly bindGroupsOf = new Map<number, string[]>();

  /** Error-scope results not yet reported, each a thunk giving the error text (undefined: none). */
  private pendingChecks: Promise<() => string | undefined>[] = [];
  private readonly asyncErrors: string[] = [];
  private lost: string | undefined;
  private destroyed = false;

  constructor(handle: WebGPUDeviceHandle, opts: WebGPURuntimeOptions = {}) {
    this.handle = handle;
    this.device = handle.device;
    this.spinMs = opts.spinMs ?? 2;
    this.caps = {
      f16: handle.features.includes('shader-f16'),
      packed4x8Dot: opts.packed4x8Dot !== false && handle.wgslLanguageFeatures.includes('packed_4x8_integer_dot_product'),
    };
    this.hasTimestamps = handle.features.includes('timestamp-query');
    const l = handle.limits;
    const num = (k: string, dflt: number): number => l[k] ?? dflt;
    this.limit = {
      storageBuffers: num('maxStorageBuffersPerShaderStage', 8),
      bindingSize: num('maxStorageBufferBindingSize', 134217728),
      bufferSize: num('maxBufferSize', 268435456),
      sharedBytes: num('maxComputeWorkgroupStorageSize', 16384),
      invocations: num('maxComputeInvocationsPerWorkgroup', 256),
      sizeX: num('maxComputeWorkgroupSizeX', 256),
      groupsPerDim: num('maxComputeWorkgroupsPerDimension', 65535),
      uniformBindingSize: num('maxUniformBufferBindingSize', 65536),
    };
    this.info = {
      kind: 'webgpu',
      description: handle.description,
      features: handle.features,
      limits: { ...handle.limits, ...subgroupSizes(handle) },
    };
    this.device.onuncapturederror = (ev: GPUUncapturedErrorEvent): void => {
      this.asyncErrors.push(ev.error.message);
    };
    void this.device.lost.then((info) => {
      if (!this.destroyed) this.lost = `WebGPU device lost (${info.reason}): ${info.message}`;
    });
  }

  print(kernel: Kernel): string {
    return printWGSL(kernel, this.caps);
  }

  // ---------------------------------------------------------------------------------------------
  // Buffers

  alloc(dtype: DType, length: number): WebGPUBuffer {
    this.checkAlive();
    if (!Number.isInteger(length) || length < 0) fail('E_BUFFER', `alloc: length must be a non-negative integer, got ${length}`);
    // 16-byte units: a kernel may bind any f32 buffer as array<vec4<f32>> (vectorized matmul loads).
    const bytes = Math.max(16, Math.ceil((length * storageBytes(dtype, this.caps)) / 16) * 16);
    if (bytes > this.limit.bufferSize) {
      fail('E_DEVICE_LIMIT', `alloc: ${length} x ${dtype} needs ${bytes} bytes, over the device's maxBufferSize ${this.limit.bufferSize}`);
    }
    // One allocation pool per device: freed buffers of the same size are reused (cleared first).
    const pooled = this.pool.get(bytes)?.pop();
    if (pooled) {
      this.pooledBytes -= bytes;
      this.openEncoder();
      this.endPass();
      this.encoder!.clearBuffer(pooled);
      return new WebGPUBuffer(dtype, length, bytes, pooled, this, nextBufferId++);
    }
    const gpu = this.device.createBuffer({ size: bytes, usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
    return new WebGPUBuffer(dtype, length, bytes, gpu, this, nextBufferId++);
  }

  upload(buf: DeviceBuffer, data: HostArray): void {
    this.checkAlive();
    const b = this.own(buf, 'upload');
    if (!hostMatches(b.dtype, data)) {
      fail('E_BUFFER', `upload: a ${b.dtype} buffer takes a ${hostTypeName(b.dtype)}, got ${data.constructor.name}`);
    }
    if (data.length !== b.length) fail('E_BUFFER', `upload: buffer holds ${b.length} ${b.dtype} elements, data has ${data.length}`);
    if (b.length === 0) return;
    const bytes = this.toDevice(b.dtype, data);
    // Launches recorded so far must see the old contents: submit them before the write.
    this.flush();
    this.device.queue.writeBuffer(b.gpu, 0, bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  }

  async download(buf: DeviceBuffer): Promise<HostArray> {
    this.checkAlive();
    const b = this.own(buf, 'download');
    const staging = this.device.createBuffer({ size: b.bytes, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    try {
      const enc = this.openEncoder();
      this.endPass();
      enc.copyBufferToBuffer(b.gpu, 0, staging, 0, b.bytes);
      this.flush();
      try {
        await waitFor(staging.mapAsync(MAP_READ), this.handle.dawnNode, { spinMs: this.spinMs });
      } catch (e) {
        await this.report();
        this.checkAlive();
        fail('E_BACKEND', `download: mapping the staging buffer failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      const raw = staging.getMappedRange().slice(0);
      staging.unmap();
      await this.report();
      return this.fromDevice(b.dtype, b.length, raw);
    } finally {
      staging.destroy();
    }
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf, 'free');
    // Recorded launches may use it: submit them first (destroy waits for submitted work).
    this.flush();
    b.freed = true;
    for (const key of this.bindGroupsOf.get(b.id) ?? []) this.bindGroups.delete(key);
    this.bindGroupsOf.delete(b.id);
    if (this.pooledBytes + b.bytes <= POOL_BYTES) {
      const list = this.pool.get(b.bytes) ?? [];
      list.push(b.gpu);
      this.pool.set(b.bytes, list);
      this.pooledBytes += b.bytes;
    } else b.gpu.destroy();
  }

  private own(buf: DeviceBuffer, what: string): WebGPUBuffer {
    if (!(buf instanceof WebGPUBuffer) || buf.owner !== this) fail('E_BUFFER', `${what}: the buffer was not allocated by this WebGPU runtime`);
    if (buf.freed) fail('E_BUFFER', `${what}: the buffer was freed`);
    return buf;
  }

  private toDevice(dtype: DType, data: HostArray): Uint8Array {
    const n = data.length;
    switch (storageType(dtype, this.caps)) {
      case 'f16': {
        const h = new Uint16Array(Math.ceil(n / 2) * 2);
        for (let i = 0; i < n; i++) h[i] = f32ToF16Bits(data[i]!);
        return new Uint8Array(h.buffer);
      }
      case 'f32': {
        if (dtype !== 'f16' && dtype !== 'bf16') return plainBytes(data);
        const f = new Float32Array(n);
        const round = dtype === 'f16' ? roundToF16 : bf16Round;
        for (let i = 0; i < n; i++) f[i] = round(data[i]!);
        return new Uint8Array(f.buffer);
      }
      case 'i32': case 'u32': {
        if (dtype === 'bool') {
          const u = new Uint32Array(n);
          for (let i = 0; i < n; i++) u[i] = data[i] ? 1 : 0;
          return new Uint8Array(u.buffer);
        }
        return plainBytes(data);
      }
    }
  }

  private fromDevice(dtype: DType, n: number, raw: ArrayBuffer): HostArray {
    switch (dtype) {
      case 'f32': case 'bf16': return new Float32Array(raw, 0, n);
      case 'f16': {
        if (storageType(dtype, this.caps) === 'f32') return new Float32Array(raw, 0, n);
        const h = new Uint16Array(raw, 0, n);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = f16BitsToF32(h[i]!);
        return out;
      }
      case 'i32': return new Int32Array(raw, 0, n);
      case 'u32': return new Uint32Array(raw, 0, n);
      case 'bool': {
        const u = new Uint32Array(raw, 0, n);
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = u[i] !== 0 ? 1 : 0;
        return out;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Launches

  /** Host-side checks for one launch; returns the bound buffers, thread count and uniform values. */
  private validate(
    kernel: Kernel,
    bindings: readonly DeviceBuffer[],
    dims: Readonly<Record<string, number>>,
  ): { bufs: WebGPUBuffer[]; threads: number; uniforms: number[]; grid: [number, number]; launched: Kernel } {
    const k = kernel.name;
    if (bindings.length !== kernel.buffers.length) {
      fail('E_BUFFER', `kernel '${k}': expected ${kernel.buffers.length} buffers (${kernel.buffers.map((b) => b.name).join(', ')}), got ${bindings.length}`);
    }
    const bufs = bindings.map((b, i) => this.own(b, `kernel '${k}', buffer '${kernel.buffers[i]!.name}'`));
    const uniforms = kernel.uniforms.map((u) => {
      const v = evalDim({ sym: u }, dims);
      if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) fail('E_ARG', `kernel '${k}': dim '${u}' = ${v} is not an i32`);
      return v;
    });
    const threads = evalDim(kernel.threads, dims);
    if (!Number.isInteger(threads) || threads < 0) fail('E_ARG', `kernel '${k}': thread count ${threads} is not a non-negative integer`);
    kernel.buffers.forEach((kb, i) => {
      const b = bufs[i]!;
      const shape = evalShape(kb.shape, dims);
      const expected = numel(shape);
      if (b.dtype !== kb.dtype) {
        fail('E_BUFFER', `kernel '${k}', buffer '${kb.name}': expected dtype ${kb.dtype}, found ${b.dtype}`);
      }
      if (b.length !== expected) {
        fail(
          'E_BUFFER',
          `kernel '${k}', buffer '${kb.name}': expected ${expected} elements (shape ${shapeToString(kb.shape)} = [${shape.join(', ')}]), found ${b.length}`,
        );
      }
    });
    // WebGPU forbids a buffer bound writable and bound again in the same dispatch.
    for (let i = 0; i < bufs.length; i++) {
      for (let j = i + 1; j < bufs.length; j++) {
        if (bufs[i] === bufs[j] && (kernel.buffers[i]!.access !== 'read' || kernel.buffers[j]!.access !== 'read')) {
          fail(
            'E_BUFFER',
            `kernel '${k}': buffers '${kernel.buffers[i]!.name}' and '${kernel.buffers[j]!.name}' are the same device buffer and one is written (WebGPU forbids aliasing a writable binding)`,
          );
        }
      }
    }
    const L = this.limit;
    if (kernel.buffers.length > L.storageBuffers) {
      fail('E_DEVICE_LIMIT', `kernel '${k}': ${kernel.buffers.length} storage buffers, the device allows ${L.storageBuffers} per shader stage`);
    }
    const wg = launchWorkgroupSize(kernel, threads);
    if (wg > L.invocations || wg > L.sizeX) {
      fail('E_DEVICE_LIMIT', `kernel '${k}': workgroup size ${wg} exceeds the device's ${Math.min(L.invocations, L.sizeX)} invocations per workgroup`);
    }
    if (kernel.subgroup) {
      const min = this.info.limits['subgroupMinSize'];
      if (!this.info.features.includes('subgroups') || min === undefined) fail('E_DEVICE_LIMIT', `kernel '${k}' uses subgroup operations; this adapter has no subgroups feature`);
      if (wg > min) fail('E_DEVICE_LIMIT', `kernel '${k}': its subgroup operations assume one subgroup per workgroup, but the workgroup has ${wg} invocations and subgroups may be as small as ${min}`);
    }
    const shared = sharedBytes(kernel);
    if (shared > L.sharedBytes) {
      fail('E_DEVICE_LIMIT', `kernel '${k}': ${shared} bytes of workgroup memory, the device allows ${L.sharedBytes}`);
    }
    for (const [i, b] of bufs.entries()) {
      if (b.bytes > L.bindingSize) {
        fail('E_DEVICE_LIMIT', `kernel '${k}', buffer '${kernel.buffers[i]!.name}': ${b.bytes} bytes, over the device's maxStorageBufferBindingSize ${L.bindingSize}`);
      }
    }
    if (uniforms.length * 4 > L.uniformBindingSize) {
      fail('E_DEVICE_LIMIT', `kernel '${k}': ${uniforms.length} uniforms exceed maxUniformBufferBindingSize ${L.uniformBindingSize}`);
    }
    const grid = launchGrid(k, threads, wg, L.groupsPerDim, L.groupsPerDim);
    return { bufs, threads, uniforms, grid, launched: this.inWorkgroups(kernel, wg) };
  }

  /**
   * What a launch of `kernel` at `dims` runs: the kernel itself, or for a narrow launch of a
   * flexible kernel the same kernel in workgroups of `NARROW_WORKGROUP` (see `launchWorkgroupSize`).
   */
  launchedKernel(kernel: Kernel, dims: Readonly<Record<string, number>>): Kernel {
    return this.inWorkgroups(kernel, launchWorkgroupSize(kernel, evalDim(kernel.threads, dims)));
  }

  private inWorkgroups(kernel: Kernel, wg: number): Kernel {
    if (wg === kernel.workgroupSize) return kernel;
    const sizes = this.narrowed.get(kernel) ?? new Map<number, Kernel>();
    this.narrowed.set(kernel, sizes);
    const known = sizes.get(wg);
    if (known) return known;
    const k = withWorkgroupSize(kernel, wg);
    sizes.set(wg, k);
    return k;
  }

  run(kernel: Kernel, bindings: readonly DeviceBuffer[], dims: Readonly<Record<string, number>>): void {
    this.checkAlive();
    const { bufs, threads, uniforms, grid, launched } = this.validate(kernel, bindings, dims);
    if (threads === 0) return;
    const entry = this.pipelineFor(launched);
    if (entry.error !== undefined) {
      entry.reported = true;
      fail('E_BACKEND', entry.error);
    }
    const ubuf = uniforms.length > 0 ? this.uniformBuffer(uniforms) : undefined;
    const bindGroup = this.bindGroup(entry, bufs, ubuf);
    const pass = this.openPass();
    pass.setPipeline(entry.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(grid[0], grid[1], 1);
    if (++this.batched >= MAX_BATCH && this.passTimestamps === undefined) this.flush();
  }

  /**
   * Create (or find) the pipeline for a kernel and wait until the driver accepted it; E_BACKEND if
   * not. With `dims`, the pipeline a launch at those dims runs (`launchedKernel`).
   */
  async compile(kernel: Kernel, dims?: Readonly<Record<string, number>>): Promise<void> {
    this.checkAlive();
    const entry = this.pipelineFor(dims ? this.launchedKernel(kernel, dims) : kernel);
    await waitFor(entry.checked, this.handle.dawnNode, { spinMs: this.spinMs });
    if (entry.error !== undefined) {
      entry.reported = true;
      fail('E_BACKEND', entry.error);
    }
  }

  private pipelineFor(kernel: Kernel): PipelineEntry {
    const known = this.byKernel.get(kernel);
    if (known) return known;
    const source = this.print(kernel);
    const key = hashSource(source);
    const list = this.pipelines.get(key) ?? [];
    let entry = list.find((e) => e.source === source);
    if (!entry) {
      entry = this.createPipeline(kernel, source);
      list.push(entry);
      this.pipelines.set(key, list);
    }
    this.byKernel.set(kernel, entry);
    return entry;
  }

  private createPipeline(kernel: Kernel, source: string): PipelineEntry {
    const d = this.device;
    d.pushErrorScope('validation');
    const module = d.createShaderModule({ code: source, label: kernel.name });
    const entries: GPUBindGroupLayoutEntry[] = kernel.buffers.map((b, i) => ({
      binding: i,
      visibility: STAGE_COMPUTE,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (kernel.uniforms.length > 0) {
      entries.push({ binding: kernel.buffers.length, visibility: STAGE_COMPUTE, buffer: { type: 'uniform' } });
    }
    const layout = d.createBindGroupLayout({ entries, label: kernel.name });
    const pipeline = d.createComputePipeline({
      label: kernel.name,
      layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    const scope = d.popErrorScope();
    const entry: PipelineEntry = {
      source,
      pipeline,
      layout,
      id: this.nextPipelineId++,
      error: undefined,
      reported: false,
      checked: Promise.resolve(),
    };
    const checked = (async (): Promise<void> => {
      const err = await scope;
      if (!err) return;
      let messages: readonly GPUCompilationMessage[] = [];
      try {
        messages = (await module.getCompilationInfo()).messages;
      } catch {
        // Only the detail is lost.
      }
      entry.error = compileErrorMessage(kernel.name, source, messages, err.message);
    })();
    (entry as { checked: Promise<void> }).checked = checked;
    // Evaluated when reported, so an error compile() or run() already threw is not repeated.
    this.pendingChecks.push(
      checked.then(() => () => {
        if (entry.error === undefined || entry.reported) return undefined;
        entry.reported = true;
        return entry.error;
      }),
    );
    return entry;
  }

  private uniformBuffer(values: readonly number[]): { buf: GPUBuffer; id: number } {
    const key = values.join(',');
    const hit = this.uniforms.get(key);
    if (hit) return hit;
    if (this.uniforms.size >= MAX_UNIFORM_CACHE) {
      // Submitted work keeps its buffers alive; the bind groups that name them go too.
      this.flush();
      for (const u of this.uniforms.values()) u.buf.destroy();
      this.uniforms.clear();
      this.clearBindGroups();
    }
    const size = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
    const buf = this.device.createBuffer({ size, usage: USAGE_UNIFORM, mappedAtCreation: true });
    new Int32Array(buf.getMappedRange()).set(values);
    buf.unmap();
    const u = { buf, id: this.nextUniformId++ };
    this.uniforms.set(key, u);
    return u;
  }

  private bindGroup(entry: PipelineEntry, bufs: readonly WebGPUBuffer[], u: { buf: GPUBuffer; id: number } | undefined): GPUBindGroup {
    const key = `${entry.id}|${bufs.map((b) => b.id).join(',')}|${u ? u.id : ''}`;
    const hit = this.bindGroups.get(key);
    if (hit) return hit;
    const entries: GPUBindGroupEntry[] = bufs.map((b, i) => ({ binding: i, resource: { buffer: b.gpu, offset: 0, size: b.bytes } }));
    if (u) entries.push({ binding: bufs.length, resource: { buffer: u.buf } });
    const bg = this.device.createBindGroup({ layout: entry.layout, entries });
    if (this.bindGroups.size >= 4096) this.clearBindGroups();
    this.bindGroups.set(key, bg);
    for (const b of bufs) {
      const keys = this.bindGroupsOf.get(b.id);
      if (keys) keys.push(key);
      else this.bindGroupsOf.set(b.id, [key]);
    }
    return bg;
  }

  private clearBindGroups(): void {
    this.bindGroups.clear();
    this.bindGroupsOf.clear();
  }

  private openEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private openPass(): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    const enc = this.openEncoder();
    const desc: GPUComputePassDescriptor = {};
    if (this.passTimestamps) desc.timestampWrites = this.passTimestamps;
    this.pass = enc.beginComputePass(desc);
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
  }

  /** Submit everything recorded so far. */
  private flush(): void {
    if (!this.encoder) return;
    this.endPass();
    const enc = this.encoder;
    this.encoder = undefined;
    this.batched = 0;
    const d = this.device;
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    d.queue.submit([enc.finish()]);
    const validation = d.popErrorScope();
    const oom = d.popErrorScope();
    this.pendingChecks.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        const msg = v ? `submit: ${v.message}` : o ? `out of device memory: ${o.message}` : undefined;
        return () => msg;
      }),
    );
    if (this.pendingChecks.length > 256) {
      const all = this.pendingChecks;
      this.pendingChecks = [Promise.all(all).then((fs) => () => fs.map((f) => f()).filter((m) => m !== undefined).join('\n') || undefined)];
    }
  }

  /** Throw E_BACKEND for GPU errors recorded since the last report (then forget them). */
  private async report(): Promise<void> {
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    const thunks = checks.length > 0 ? await waitFor(Promise.all(checks), this.handle.dawnNode, { spinMs: this.spinMs }) : [];
    const errors = [...thunks.map((f) => f()).filter((r): r is string => r !== undefined), ...this.asyncErrors.splice(0)];
    if (errors.length > 0) fail('E_BACKEND', errors.join('\n'));
  }

  async sync(): Promise<void> {
    this.checkAlive();
    this.flush();
    await waitFor(this.device.queue.onSubmittedWorkDone(), this.handle.dawnNode, { spinMs: this.spinMs });
    await this.report();
    this.checkAlive();
  }

  async time(launches: () => void, repeats: number): Promise<{ medianMs: number; source: 'device' | 'wall' }> {
    this.checkAlive();
    const n = Math.max(1, Math.floor(repeats));
    // Warm-up: pipelines, bind groups and uniforms are created here, outside the measurement.
    launches();
    await this.sync();
    if (!this.hasTimestamps) {
      const times: number[] = [];
      for (let r = 0; r < n; r++) {
        const t0 = performance.now();
        launches();
        await this.sync();
        times.push(performance.now() - t0);
      }
      return { medianMs: median(times), source: 'wall' };
    }
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * n });
    const resolve = this.device.createBuffer({ size: 16 * n, usage: USAGE_QUERY_RESOLVE | USAGE_COPY_SRC });
    const staging = this.device.createBuffer({ size: 16 * n, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    try {
      const measured: boolean[] = [];
      try {
        for (let r = 0; r < n; r++) {
          this.endPass();
          this.passTimestamps = { querySet, beginningOfPassWriteIndex: 2 * r, endOfPassWriteIndex: 2 * r + 1 };
          launches();
          measured.push(this.pass !== undefined);
          // Nothing launched: an empty pass still writes both timestamps.
          this.openPass();
          this.endPass();
          this.passTimestamps = undefined;
        }
      } catch (e) {
        // Drop the half-recorded measurement (it names the query set destroyed below).
        this.passTimestamps = undefined;
        this.endPass();
        this.encoder = undefined;
        this.batched = 0;
        throw e;
      }
      const enc = this.openEncoder();
      enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
      this.flush();
      await waitFor(staging.mapAsync(MAP_READ), this.handle.dawnNode, { spinMs: this.spinMs });
      const ts = new BigInt64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      await this.report();
      const times: number[] = [];
      for (let r = 0; r < n; r++) times.push(measured[r] ? Number(ts[2 * r + 1]! - ts[2 * r]!) / 1e6 : 0);
      return { medianMs: median(times), source: 'device' };
    } finally {
      querySet.destroy();
      resolve.destroy();
      staging.destroy();
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const list of this.pool.values()) for (const g of list) g.destroy();
    this.pool.clear();
    this.encoder = undefined;
    this.pass = undefined;
    this.uniforms.clear();
    this.clearBindGroups();
    this.pipelines.clear();
    this.device.destroy();
  }

  private checkAlive(): void {
    if (this.destroyed) fail('E_BACKEND', 'the WebGPU runtime was destroyed');
    if (this.lost !== undefined) fail('E_BACKEND', this.lost);
  }
}

/** Error text for a shader or pipeline the driver rejected: each message with its WGSL line. */
function compileErrorMessage(kernel: string, source: string, messages: readonly GPUCompilationMessage[], fallback: string): string {
  const lines = source.split('\n');
  const parts = messages
    .filter((m) => m.type === 'error')
    .map((m) => {
      const text = lines[m.lineNum - 1];
      const where = m.lineNum > 0 ? `${m.lineNum}:${m.linePos}` : '?';
      return `  WGSL ${where}: ${m.message}${text !== undefined ? `\n    ${text.trim()}` : ''}`;
    });
  const detail = parts.length > 0 ? parts.join('\n') : `  ${fallback.trim()}`;
  return `kernel '${kernel}': the WebGPU driver rejected the shader\n${detail}`;
}

/**
 * A WebGPU runtime on the best adapter the host offers, or undefined when there is none
 * (webgpuUnavailableReason() says why).
 */
export async function createWebGPURuntime(opts: WebGPURuntimeOptions = {}): Promise<WebGPURuntime | undefined> {
  const handle = await requestWebGPUDevice(opts);
  if (!handle) return undefined;
  return new WebGPURuntime(handle, opts);
}

/** Like createWebGPURuntime, but E_BACKEND with the reason when there is no adapter. */
export async function requireWebGPURuntime(opts: WebGPURuntimeOptions = {}): Promise<WebGPURuntime> {
  const rt = await createWebGPURuntime(opts);
  if (!rt) throw new TesseraError('E_BACKEND', `no WebGPU adapter: ${webgpuUnavailableReason()}`);
  return rt;
}
