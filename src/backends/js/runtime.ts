/**
 * The CPU runtime: kernels printed as JavaScript and run with `new Function`. Always available,
 * it is the default backend when no WebGPU adapter exists.
 */
import { fail } from '../../errors.js';
import type { DType } from '../../ir/dtype.js';
import { evalDim, evalShape, numel } from '../../ir/dims.js';
import type { Kernel } from '../../ir/kernel.js';
import { hostArrayFor, type BackendInfo, type BackendRuntime, type DeviceBuffer, type HostArray } from '../../runtime/backend.js';
import { bf16Round, f16Round } from '../../runtime/f16.js';
import { JS_HELPERS, printJS } from './print.js';

type KernelFn = (bufs: HostArray[], u: Record<string, number>, nThreads: number, h: typeof HELPERS) => void;

// f16 and bf16 in the CPU runtime round with the exact bit-level conversions the uploads use
const HELPERS = { ...JS_HELPERS.math, ld: JS_HELPERS.ld, st: JS_HELPERS.st, f16: f16Round, bf16: bf16Round };

class JSBuffer implements DeviceBuffer {
  constructor(readonly dtype: DType, readonly length: number, readonly data: HostArray) {}
}

export interface JSRuntimeOptions {
  /** Check every buffer access and throw on one out of range (a sanitizer for generated kernels). */
  readonly boundsCheck?: boolean;
}

export class JSRuntime implements BackendRuntime {
  readonly info: BackendInfo;
  private cache = new Map<string, KernelFn>();

  constructor(private readonly opts: JSRuntimeOptions = {}) {
    const node = typeof process !== 'undefined' ? ` (Node ${process.version})` : '';
    // invocations of a workgroup run in lockstep when they synchronise, so a subgroup can be the whole workgroup
    const features = ['subgroups', ...(opts.boundsCheck ? ['bounds-check'] : [])];
    this.info = { kind: 'js', description: `JavaScript on the CPU${node}${opts.boundsCheck ? ', bounds-checked' : ''}`, features, limits: { subgroupMinSize: 256, subgroupMaxSize: 256 } };
  }

  print(kernel: Kernel): string {
    return printJS(kernel, this.opts);
  }

  private fn(kernel: Kernel): KernelFn {
    const src = printJS(kernel, this.opts);
    let f = this.cache.get(src);
    if (!f) {
      f = new Function('bufs', 'u', 'nThreads', 'H', src) as KernelFn;
      this.cache.set(src, f);
    }
    return f;
  }

  alloc(dtype: DType, length: number): DeviceBuffer {
    return new JSBuffer(dtype, length, hostArrayFor(dtype, length));
  }

  upload(buf: DeviceBuffer, data: HostArray): void {
    const b = buf as JSBuffer;
    if (data.length !== b.length) fail('E_BUFFER', `upload of ${data.length} elements into a buffer of ${b.length}`);
    if (b.dtype === 'f16') for (let i = 0; i < data.length; i++) b.data[i] = f16Round(data[i]!);
    else if (b.dtype === 'bf16') for (let i = 0; i < data.length; i++) b.data[i] = bf16Round(data[i]!);
    else b.data.set(data);
  }

  async download(buf: DeviceBuffer): Promise<HostArray> {
    return (buf as JSBuffer).data.slice();
  }

  run(kernel: Kernel, bindings: readonly DeviceBuffer[], dims: Readonly<Record<string, number>>): void {
    checkBindings(kernel, bindings, dims);
    const threads = evalDim(kernel.threads, dims);
    const u: Record<string, number> = {};
    for (const name of kernel.uniforms) u[name] = evalDim({ sym: name }, dims);
    this.fn(kernel)(bindings.map((b) => (b as JSBuffer).data), u, threads, HELPERS);
  }

  async sync(): Promise<void> {}

  async time(launches: () => void, repeats: number): Promise<{ medianMs: number; source: 'device' | 'wall' }> {
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      launches();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { medianMs: times[Math.floor(times.length / 2)]!, source: 'wall' };
  }

  free(): void {}
  destroy(): void {
    this.cache.clear();
  }
}

/** Shared dispatch validation: binding count, dtypes and sizes against the kernel's buffers. */
export function checkBindings(kernel: Kernel, bindings: readonly DeviceBuffer[], dims: Readonly<Record<string, number>>): void {
  if (bindings.length !== kernel.buffers.length) fail('E_BUFFER', `kernel ${kernel.name} takes ${kernel.buffers.length} buffers, got ${bindings.length}`);
  kernel.buffers.forEach((kb, i) => {
    const b = bindings[i]!;
    if (b.dtype !== kb.dtype) fail('E_BUFFER', `kernel ${kernel.name} buffer '${kb.name}' expects ${kb.dtype}, got a ${b.dtype} buffer`);
    const want = numel(evalShape(kb.shape, dims));
    if (b.length !== want) fail('E_BUFFER', `kernel ${kernel.name} buffer '${kb.name}' needs ${want} elements, got ${b.length}`);
  });
}
