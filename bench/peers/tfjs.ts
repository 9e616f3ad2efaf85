/**
 * tfjs-backend-webgpu as a side-by-side peer, each case written as a tfjs user would write it
 * (tfjs has no layernorm, rmsnorm or silu op: they are composed from its ops). tfjs records work
 * into its own command encoder; sync() ends its pass, submits, and waits for the queue. tfjs gives
 * no per-iteration device time here, so it is timed by wall clock.
 */
import { waitFor } from '../../src/backends/wgsl/device.js';
import { installNavigatorGPU } from './gpu.js';
import type { CheckResult, Impl, ImplContext, PreparedImpl, SbsCase } from './types.js';

/**
 * The slice of tfjs-core used here, typed locally: tfjs-core's own declarations bring an older
 * @webgpu/types that clashes with the project's, so the package is imported untyped.
 */
interface Tensor {
  dispose(): void;
  data(): Promise<Float32Array>;
}
interface TF {
  readonly version_core: string;
  readonly Tensor: abstract new (...args: never[]) => Tensor;
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  backend(): unknown;
  tensor(data: Float32Array, shape: number[], dtype: 'float32'): Tensor;
  tidy(f: () => Tensor): Tensor;
  profile(f: () => Tensor): Promise<{ kernelNames: string[]; kernels: unknown[]; result: unknown }>;
  matMul(a: Tensor, b: Tensor, transposeA?: boolean, transposeB?: boolean): Tensor;
  softmax(x: Tensor): Tensor;
  moments(x: Tensor, axis: number, keepDims: boolean): { mean: Tensor; variance: Tensor };
  add(a: Tensor, b: Tensor | number): Tensor;
  sub(a: Tensor, b: Tensor): Tensor;
  mul(a: Tensor, b: Tensor): Tensor;
  square(x: Tensor): Tensor;
  mean(x: Tensor, axis: number, keepDims: boolean): Tensor;
  rsqrt(x: Tensor): Tensor;
  sigmoid(x: Tensor): Tensor;
}

interface WebGPUBackendLike {
  readonly device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

let tfLoad: Promise<{ tf: TF; backend: WebGPUBackendLike; version: string }> | undefined;

async function loadTf(): Promise<{ tf: TF; backend: WebGPUBackendLike; version: string }> {
  await installNavigatorGPU();
  // Variable specifiers keep the type checker out of the packages' declarations (see TF above).
  const core = '@tensorflow/tfjs-core';
  const webgpu = '@tensorflow/tfjs-backend-webgpu';
  const tf = (await import(core)) as TF;
  await import(webgpu);
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
  await tf.ready();
  return { tf, backend: tf.backend() as unknown as WebGPUBackendLike, version: tf.version_core };
}

/** The case as tfjs ops: a function of the input tensors returning the output. */
function graphFor(tf: TF, c: SbsCase): (t: Record<string, Tensor>) => Tensor {
  const eps = c.eps ?? 1e-5;
  switch (c.family) {
    case 'matmul':
      return ({ a, b }) => tf.matMul(a!, b!);
    case 'gemv':
      return ({ a, b }) => tf.matMul(a!, b!, false, true);
    case 'softmax':
      return ({ x }) => tf.softmax(x!);
    case 'layernorm':
      return ({ x, g, b }) => {
        const { mean, variance } = tf.moments(x!, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(x!, mean), tf.rsqrt(tf.add(variance, eps))), g!), b!);
      };
    case 'block':
      return ({ x, g, w1, w2 }) => {
        const n = tf.mul(tf.mul(x!, tf.rsqrt(tf.add(tf.mean(tf.square(x!), -1, true), eps))), g!);
        const u = tf.matMul(n, w1!);
        const s = tf.mul(u, tf.sigmoid(u));
        return tf.add(x!, tf.matMul(s, w2!));
      };
  }
}

class TfPrepared implements PreparedImpl {
  private out: Tensor | undefined;
  readonly kernels: number | undefined;
  readonly note: string;
  constructor(
    private readonly tf: TF,
    private readonly backend: WebGPUBackendLike,
    private readonly c: SbsCase,
    private readonly inputs: Record<string, Tensor>,
    private readonly f: (t: Record<string, Tensor>) => Tensor,
    kernels: number | undefined,
    kernelNames: readonly string[],
  ) {
    this.kernels = kernels;
    this.note = kernelNames.length > 0 ? `tfjs kernels: ${kernelNames.join(', ')}` : 'tfjs';
  }
  run(): void {
    this.out?.dispose();
    this.out = this.tf.tidy(() => this.f(this.inputs));
  }
  async sync(): Promise<void> {
    // What tfjs itself does before it reads a tensor back.
    this.backend.ensureCommandEncoderReady();
    this.backend.endComputePassEncoder();
    this.backend.submitQueue();
    await waitFor(this.backend.device.queue.onSubmittedWorkDone(), true, { spinMs: 2 });
  }
  async check(): Promise<CheckResult> {
    this.run();
    return this.c.compare(await this.out!.data());
  }
  free(): void {
    this.out?.dispose();
    this.out = undefined;
    for (const t of Object.values(this.inputs)) t.dispose();
  }
}

export function tfjsImpl(ctx: ImplContext): Impl {
  let loaded: { tf: TF; backend: WebGPUBackendLike; version: string } | undefined;
  return {
    name: 'tfjs',
    kind: 'peer',
    supports: () => null,
    async prepare(c) {
      if (!loaded) {
        tfLoad ??= loadTf();
        loaded = await tfLoad;
        ctx.log(`tfjs ${loaded.version} on webgpu`);
      }
      const { tf, backend } = loaded;
      const inputs: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(c.inputs)) inputs[name] = tf.tensor(t.data as Float32Array, [...t.shape], 'float32');
      const f = graphFor(tf, c);
      // Which tfjs kernels one iteration runs (some, like Reshape, dispatch nothing).
      let kernels: number | undefined;
      let names: string[] = [];
      try {
        const info = await tf.profile(() => tf.tidy(() => f(inputs)));
        const res = info.result;
        if (res instanceof tf.Tensor) res.dispose();
        kernels = info.kernels.length;
        names = info.kernelNames;
      } catch {
        // Profiling is only for the report.
      }
      return new TfPrepared(tf, backend, c, inputs, f, kernels, names);
    },
  };
}
