/**
 * onnxruntime-web's WebGPU execution provider as a side-by-side peer: each case is a one-node ONNX
 * model written by hand (onnx.ts), inputs and the output live in GPU buffers on ORT's device (no
 * host transfer per run), and ORT's session.run() is chained so run() never awaits. Its first
 * session compiles a ~27 MB wasm module (tens of seconds): that cost is paid once per process, in
 * prepare(), outside any measurement. Timed by wall clock.
 */
import { waitFor } from '../../src/backends/wgsl/device.js';
import { allowSharedWriteBuffer, installNavigatorGPU } from './gpu.js';
import { onnxModel, type OnnxNode } from './onnx.js';
import type { CheckResult, Impl, ImplContext, PreparedImpl, SbsCase } from './types.js';

type Ort = typeof import('onnxruntime-web');
type Session = import('onnxruntime-web').InferenceSession;
type OrtTensor = import('onnxruntime-web').Tensor;

const USAGE_MAP_READ = 0x0001;
const MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_STORAGE = 0x0080;
const SPIN = { spinMs: 2 };

let ortLoad: Promise<Ort> | undefined;

async function loadOrt(): Promise<Ort> {
  await installNavigatorGPU();
  allowSharedWriteBuffer();
  const spec = 'onnxruntime-web/webgpu';
  const ort = (await import(spec)) as Ort;
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  return ort;
}

/** The case as one ONNX node, or why there is none. */
function nodeFor(c: SbsCase): { node: OnnxNode; inputs: string[] } | string {
  switch (c.family) {
    case 'matmul':
      return { node: { op: 'MatMul', inputs: ['a', 'b'], outputs: ['out'] }, inputs: ['a', 'b'] };
    case 'gemv':
      // ONNX MatMul has no transposed operand; Gemm does.
      return { node: { op: 'Gemm', inputs: ['a', 'b'], outputs: ['out'], attrs: [{ name: 'transB', i: 1 }] }, inputs: ['a', 'b'] };
    case 'softmax':
      return { node: { op: 'Softmax', inputs: ['x'], outputs: ['out'], attrs: [{ name: 'axis', i: -1 }] }, inputs: ['x'] };
    case 'layernorm':
      return {
        node: { op: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['out'], attrs: [{ name: 'axis', i: -1 }, { name: 'epsilon', f: c.eps ?? 1e-5 }] },
        inputs: ['x', 'g', 'b'],
      };
    case 'block':
      return 'no ONNX graph written for the block chain';
  }
}

class OrtPrepared implements PreparedImpl {
  readonly kernels = undefined;
  readonly note: string;
  private pending: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  constructor(
    private readonly device: GPUDevice,
    private readonly c: SbsCase,
    private readonly session: Session,
    private readonly feeds: Record<string, OrtTensor>,
    private readonly fetches: Record<string, OrtTensor>,
    private readonly buffers: GPUBuffer[],
    private readonly outBuffer: GPUBuffer,
    op: string,
  ) {
    this.note = `onnx ${op}`;
  }
  run(): void {
    this.pending = this.pending.then(() => this.session.run(this.feeds, this.fetches)).catch((e: unknown) => {
      this.failure ??= e;
    });
  }
  async sync(): Promise<void> {
    await this.pending;
    if (this.failure) throw this.failure instanceof Error ? this.failure : new Error(String(this.failure));
    await waitFor(this.device.queue.onSubmittedWorkDone(), true, SPIN);
  }
  async check(): Promise<CheckResult> {
    this.run();
    await this.sync();
    // The output lives in our own GPU buffer: read it back directly.
    const bytes = 4 * this.c.outputShape.reduce((a, b) => a * b, 1);
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 16) * 16, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    try {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(this.outBuffer, 0, staging, 0, staging.size);
      this.device.queue.submit([enc.finish()]);
      await waitFor(staging.mapAsync(MAP_READ), true, SPIN);
      const got = new Float32Array(staging.getMappedRange().slice(0), 0, bytes / 4);
      staging.unmap();
      return this.c.compare(got);
    } finally {
      staging.destroy();
    }
  }
  free(): void {
    void this.session.release();
    for (const b of this.buffers) b.destroy();
  }
}

export function ortImpl(ctx: ImplContext): Impl {
  let ort: Ort | undefined;
  return {
    name: 'ort',
    kind: 'peer',
    supports: (c) => {
      const n = nodeFor(c);
      return typeof n === 'string' ? n : null;
    },
    async prepare(c) {
      const first = !ort;
      const t0 = performance.now();
      ortLoad ??= loadOrt();
      ort ??= await ortLoad;
      const spec = nodeFor(c);
      if (typeof spec === 'string') throw new Error(spec);
      const model = onnxModel({
        name: c.id,
        inputs: spec.inputs.map((name) => ({ name, shape: c.inputs[name]!.shape })),
        outputs: [{ name: 'out', shape: c.outputShape }],
        nodes: [spec.node],
      });
      const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer', graphOptimizationLevel: 'all' });
      const device = (await ort.env.webgpu.device) as GPUDevice;
      const buffers: GPUBuffer[] = [];
      const gpuTensor = (shape: readonly number[], data?: Float32Array): OrtTensor => {
        const n = shape.reduce((a, b) => a * b, 1);
        const buf = device.createBuffer({ size: Math.max(16, Math.ceil((4 * n) / 16) * 16), usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
        if (data) device.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
        buffers.push(buf);
        return ort!.Tensor.fromGpuBuffer(buf, { dataType: 'float32', dims: [...shape] });
      };
      const feeds: Record<string, OrtTensor> = {};
      for (const name of spec.inputs) feeds[name] = gpuTensor(c.inputs[name]!.shape, c.inputs[name]!.data as Float32Array);
      const fetches = { out: gpuTensor(c.outputShape) };
      const p = new OrtPrepared(device, c, session, feeds, fetches, buffers, buffers[buffers.length - 1]!, spec.node.op);
      if (first) {
        // The first run compiles ORT's wasm and its kernels: pay it here, once.
        p.run();
        await p.sync();
        ctx.log(`ort ${ort.env.versions?.web ?? ''} webgpu: first session and run took ${((performance.now() - t0) / 1000).toFixed(1)} s (wasm compile, once per process)`);
      }
      return p;
    },
  };
}
