/**
 * Runs the hand-written WGSL kernels (kernels.ts) as a side-by-side implementation, on the device
 * of Tessera's WebGPU runtime (one adapter, one device for both; Tessera's runtime only submits at
 * its own syncs, so the two never interleave within a command buffer). Device time comes from
 * timestamp queries, one compute pass per repetition, exactly as Tessera's runtime.time() does.
 */
import { waitFor } from '../../src/backends/wgsl/device.js';
import type { WebGPURuntime } from '../../src/backends/wgsl/runtime.js';
import { median } from '../stats.js';
import type { CaseFamily, CheckResult, Impl, ImplContext, PreparedImpl, SbsCase, TimeResult } from '../peers/types.js';
import {
  gemvConstraint,
  gemvKernel,
  layernormKernel,
  matmulConstraint,
  matmulKernel,
  rowConstraint,
  softmaxKernel,
  type Constraint,
  type GemvVariant,
  type HandKernel,
  type MatmulVariant,
} from './kernels.js';

const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_STORAGE = 0x0080;
const USAGE_QUERY_RESOLVE = 0x0200;
const MAP_READ = 0x0001;
const SPIN = { spinMs: 2 };
const MAX_GROUPS = 65535;

/** One hand-written variant: the kernel it builds for a case and the sizes it takes. */
export interface HandVariant {
  readonly label: string;
  readonly family: CaseFamily;
  readonly constraint: Constraint;
  build(c: SbsCase): HandKernel;
}

export const MATMUL_VARIANTS: readonly MatmulVariant[] = [
  { tm: 4, tnv: 1, workgroupSize: 64 },
  { tm: 8, tnv: 1, workgroupSize: 64 },
  { tm: 4, tnv: 2, workgroupSize: 64 },
  { tm: 8, tnv: 2, workgroupSize: 64 },
  { tm: 16, tnv: 2, workgroupSize: 64 },
];
export const GEMV_VARIANTS: readonly GemvVariant[] = [
  { rows: 1, workgroupSize: 64 },
  { rows: 2, workgroupSize: 64 },
  { rows: 4, workgroupSize: 64 },
];

/** Every hand-written variant; the harness runs each and reports the best per case as 'hand'. */
export function handVariants(): HandVariant[] {
  return [
    ...MATMUL_VARIANTS.map((v): HandVariant => ({ label: `${v.tm}x${4 * v.tnv}`, family: 'matmul', constraint: matmulConstraint(v), build: (c) => matmulKernel(v, c.dims) })),
    ...GEMV_VARIANTS.map((v): HandVariant => ({ label: `${v.rows}row`, family: 'gemv', constraint: gemvConstraint(v), build: (c) => gemvKernel(v, c.dims) })),
    { label: 'row', family: 'softmax', constraint: rowConstraint(), build: (c) => softmaxKernel({ workgroupSize: 64 }, c.dims) },
    { label: 'row', family: 'layernorm', constraint: rowConstraint(), build: (c) => layernormKernel({ workgroupSize: 64 }, c.dims, c.eps ?? 1e-5) },
  ];
}

/** The GEMV kernel binds the input as x and the weights as w; cases name them a and b. */
const ALIASES: Readonly<Record<string, string>> = { x: 'a', w: 'b' };

class HandPrepared implements PreparedImpl {
  readonly kernels = 1;
  readonly boundBytes: number;
  readonly kernelDetail: { name: string; boundBytes: number }[];
  readonly note: string;
  private readonly buffers: GPUBuffer[] = [];
  private readonly out: GPUBuffer;
  private readonly outBytes: number;
  private readonly bindGroup: GPUBindGroup;
  private encoder: GPUCommandEncoder | undefined;

  constructor(
    private readonly rt: WebGPURuntime,
    private readonly c: SbsCase,
    private readonly k: HandKernel,
    private readonly pipeline: GPUComputePipeline,
  ) {
    const d = rt.device;
    let bound = 0;
    const entries: GPUBindGroupEntry[] = [];
    this.outBytes = 4 * c.outputShape.reduce((a, b) => a * b, 1);
    let out: GPUBuffer | undefined;
    k.bindings.forEach((name, i) => {
      if (name === 'out') {
        out = d.createBuffer({ size: this.outBytes, usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
        this.buffers.push(out);
        bound += this.outBytes;
        entries.push({ binding: i, resource: { buffer: out } });
        return;
      }
      const t = c.inputs[name] ?? c.inputs[ALIASES[name] ?? ''];
      if (!t) throw new Error(`hand kernel ${k.name}: the case has no input '${name}'`);
      const data = t.data as Float32Array;
      const buf = d.createBuffer({ size: data.byteLength, usage: USAGE_STORAGE | USAGE_COPY_DST });
      d.queue.writeBuffer(buf, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
      this.buffers.push(buf);
      bound += data.byteLength;
      entries.push({ binding: i, resource: { buffer: buf } });
    });
    this.out = out!;
    this.boundBytes = bound;
    this.kernelDetail = [{ name: k.name, boundBytes: bound }];
    this.note = k.name;
    this.bindGroup = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  }

  private grid(): [number, number] {
    const groups = Math.ceil(this.k.threads / this.k.workgroupSize);
    if (groups <= MAX_GROUPS) return [groups, 1];
    return [MAX_GROUPS, Math.ceil(groups / MAX_GROUPS)];
  }

  private dispatch(pass: GPUComputePassEncoder): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    const [x, y] = this.grid();
    pass.dispatchWorkgroups(x, y, 1);
  }

  run(): void {
    this.encoder ??= this.rt.device.createCommandEncoder();
    const pass = this.encoder.beginComputePass();
    this.dispatch(pass);
    pass.end();
  }

  private submit(): void {
    if (!this.encoder) return;
    this.rt.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
  }

  async sync(): Promise<void> {
    this.submit();
    await waitFor(this.rt.device.queue.onSubmittedWorkDone(), true, SPIN);
  }

  async check(): Promise<CheckResult> {
    this.run();
    const d = this.rt.device;
    const staging = d.createBuffer({ size: this.outBytes, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    try {
      this.encoder!.copyBufferToBuffer(this.out, 0, staging, 0, this.outBytes);
      this.submit();
      await waitFor(staging.mapAsync(MAP_READ), true, SPIN);
      const got = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return this.c.compare(got);
    } finally {
      staging.destroy();
    }
  }

  async time(repeats: number): Promise<TimeResult> {
    const d = this.rt.device;
    const n = Math.max(1, Math.floor(repeats));
    const querySet = d.createQuerySet({ type: 'timestamp', count: 2 * n });
    const resolve = d.createBuffer({ size: 16 * n, usage: USAGE_QUERY_RESOLVE | USAGE_COPY_SRC });
    const staging = d.createBuffer({ size: 16 * n, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    try {
      this.submit();
      const enc = d.createCommandEncoder();
      for (let r = 0; r < n; r++) {
        const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * r, endOfPassWriteIndex: 2 * r + 1 } });
        this.dispatch(pass);
        pass.end();
      }
      enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
      d.queue.submit([enc.finish()]);
      await waitFor(staging.mapAsync(MAP_READ), true, SPIN);
      const ts = new BigInt64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      const times: number[] = [];
      for (let r = 0; r < n; r++) times.push(Number(ts[2 * r + 1]! - ts[2 * r]!) / 1e6);
      return { medianMs: median(times), source: 'device' };
    } finally {
      querySet.destroy();
      resolve.destroy();
      staging.destroy();
    }
  }

  free(): void {
    this.encoder = undefined;
    for (const b of this.buffers) b.destroy();
  }
}

/** Create the pipeline for a hand kernel and wait for the driver's verdict. */
async function pipelineFor(rt: WebGPURuntime, k: HandKernel): Promise<GPUComputePipeline> {
  const d = rt.device;
  d.pushErrorScope('validation');
  const module = d.createShaderModule({ code: k.wgsl, label: k.name });
  const pipeline = d.createComputePipeline({ label: k.name, layout: 'auto', compute: { module, entryPoint: 'main' } });
  const err = await waitFor(d.popErrorScope(), true, SPIN);
  if (err) {
    const info = await module.getCompilationInfo();
    const msgs = info.messages.map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
    throw new Error(`${k.name}: the driver rejected the shader: ${err.message}\n${msgs}`);
  }
  return pipeline;
}

/** One hand-written variant as an implementation named `hand <family> <label>`. */
export function handImpl(ctx: ImplContext, v: HandVariant): Impl {
  return {
    name: `hand ${v.family} ${v.label}`,
    kind: 'hand',
    supports: (c) => (c.family !== v.family ? `not a ${v.family} case` : v.constraint(c.dims)),
    async prepare(c) {
      const k = v.build(c);
      const pipeline = await pipelineFor(ctx.rt, k);
      return new HandPrepared(ctx.rt, c, k, pipeline);
    },
  };
}
