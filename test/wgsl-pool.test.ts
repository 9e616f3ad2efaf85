/** The WebGPU runtime's allocation pool: freed buffers are reused, and come back cleared. */
import { describe, expect, it } from 'vitest';
import { WebGPUBuffer } from '../src/backends/wgsl/runtime.js';
import { getTestWebGPU } from './helpers/webgpu.js';

// Throws when WebGPU is required (CI); skipped, loudly, only on a machine without a driver.
const rt = await getTestWebGPU();

describe.skipIf(!rt)('WebGPU allocation pool', () => {
  it('reuses a freed buffer of the same size, zeroed', async () => {
    if (!rt) throw new Error('unreachable');
    const a = rt.alloc('f32', 1000) as WebGPUBuffer;
    rt.upload(a, Float32Array.from({ length: 1000 }, (_, i) => i + 1));
    const gpu = a.gpu;
    rt.free(a);
    const b = rt.alloc('f32', 1000) as WebGPUBuffer;
    expect(b.gpu).toBe(gpu);
    expect([...(await rt.download(b))].every((v) => v === 0)).toBe(true);
    const c = rt.alloc('f32', 1000) as WebGPUBuffer;
    expect(c.gpu).not.toBe(gpu);
    rt.free(b);
    rt.free(c);
  });
});
