/**
 * Making the peers (tfjs-backend-webgpu, onnxruntime-web) find WebGPU in Node: they look for
 * `navigator.gpu` and the `GPUBufferUsage`-style globals a browser has. Both get the very GPU object
 * Dawn's create() returned for Tessera's runtime (device.ts's getGPU()), so every implementation
 * runs on the same adapter of the same Dawn instance, each on its own device.
 */
import { getGPU } from '../../src/backends/wgsl/device.js';

let installed = false;

export async function installNavigatorGPU(): Promise<void> {
  if (installed) return;
  const got = await getGPU();
  if (!got) throw new Error('no WebGPU: create Tessera\'s runtime first');
  const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
  if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: { gpu: got.gpu }, configurable: true, writable: true });
  else if (g.navigator.gpu !== got.gpu) {
    try {
      (g.navigator as { gpu?: GPU }).gpu = got.gpu;
    } catch {
      Object.defineProperty(globalThis, 'navigator', { value: { ...g.navigator, gpu: got.gpu }, configurable: true, writable: true });
    }
  }
  if (got.dawnNode) {
    const spec = 'webgpu';
    const mod = (await import(spec)) as { globals: Record<string, unknown> };
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  installed = true;
}

/**
 * Dawn rejects writeBuffer from views of SharedArrayBuffer memory (onnxruntime-web's wasm heap is
 * one): copy such data to plain memory first. Installed once, only for the ort peer.
 */
export function allowSharedWriteBuffer(): void {
  const Q = (globalThis as { GPUQueue?: { prototype: GPUQueue & { __tesseraShared?: boolean } } }).GPUQueue;
  if (!Q || Q.prototype.__tesseraShared) return;
  const orig = Q.prototype.writeBuffer;
  const shared = (b: unknown): boolean => typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
  Q.prototype.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: GPUSize64, data: GPUAllowSharedBufferSource, dataOffset?: GPUSize64, size?: GPUSize64) {
    let d: GPUAllowSharedBufferSource = data;
    if (ArrayBuffer.isView(d) && shared(d.buffer)) {
      const bytes = new Uint8Array(d.byteLength);
      bytes.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      // The same element type, so dataOffset and size keep counting elements.
      const Ctor = (d as unknown as { constructor: new (b: ArrayBuffer) => ArrayBufferView }).constructor;
      d = (d instanceof DataView ? new DataView(bytes.buffer) : new Ctor(bytes.buffer)) as GPUAllowSharedBufferSource;
    } else if (shared(d)) {
      const bytes = new Uint8Array((d as SharedArrayBuffer).byteLength);
      bytes.set(new Uint8Array(d as SharedArrayBuffer));
      d = bytes.buffer;
    }
    return orig.call(this, buffer, offset, d, dataOffset, size);
  };
  Q.prototype.__tesseraShared = true;
}
