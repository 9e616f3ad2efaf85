/**
 * Tessera as side-by-side implementations: the case's program compiled (untuned: the default
 * heuristic with the device's profile; or whatever a tuning hook returns), and, for chains, the
 * same ops compiled one program each and run back to back through intermediate buffers
 * ('tessera-unfused'). Timed with runtime.time() (device timestamps where the adapter has them).
 */
import { evalShape, numel } from '../../src/ir/dims.js';
import type { Program } from '../../src/ir/graph.js';
import { compileTuned, tuneProgram } from '../../src/tune/index.js';
import { compile, selectVersion, type CompiledProgram, type CompileOptions } from '../../src/passes/pipeline.js';
import type { WebGPURuntime } from '../../src/backends/wgsl/runtime.js';
import type { DeviceBuffer } from '../../src/runtime/backend.js';
import { prepare, type Prepared } from '../../src/runtime/execute.js';
import { DTYPE_BYTES } from '../../ops/index.js';
import type { ChainStep, TesseraCase } from './cases.js';
import type { CheckResult, Impl, ImplContext, PreparedImpl, SbsCase, TimeResult } from './types.js';

/** Bytes of every buffer each kernel binds, per kernel (what fusion leaves in memory). */
export function kernelBytes(cp: CompiledProgram, dims: Readonly<Record<string, number>>): { name: string; boundBytes: number }[] {
  return cp.kernels.map((k) => ({
    name: k.kernel.name,
    boundBytes: k.kernel.buffers.reduce((s, b) => s + DTYPE_BYTES[b.dtype] * numel(evalShape(b.shape, dims)), 0),
  }));
}

const sum = (xs: readonly { boundBytes: number }[]) => xs.reduce((s, x) => s + x.boundBytes, 0);

/** How a Tessera implementation gets its compiled program for a case. */
export type CompileFor = (c: TesseraCase, rt: WebGPURuntime) => Promise<CompiledProgram> | CompiledProgram;

class TesseraPrepared implements PreparedImpl {
  readonly kernels: number;
  readonly boundBytes: number;
  readonly kernelDetail: { name: string; boundBytes: number }[];
  readonly note: string;
  constructor(
    private readonly rt: WebGPURuntime,
    private readonly c: SbsCase,
    private readonly p: Prepared,
    cp: CompiledProgram,
  ) {
    this.kernelDetail = kernelBytes(cp, p.dims);
    this.kernels = cp.kernels.length;
    this.boundBytes = sum(this.kernelDetail);
    this.note = (cp.version === 'general' ? '' : `[${cp.version}] `) + cp.kernels.map((k) => `${k.kernel.schedule.kind}(${Object.entries(k.kernel.schedule.params).map(([a, v]) => `${a}=${v}`).join(',')})`).join(' + ');
  }
  run(): void {
    this.p.launch();
  }
  sync(): Promise<void> {
    return this.rt.sync();
  }
  async check(): Promise<CheckResult> {
    this.p.launch();
    const outs = await this.p.read();
    const first = Object.values(outs)[0];
    if (!first) throw new Error('the program has no output');
    return this.c.compare(first.data);
  }
  time(repeats: number): Promise<TimeResult> {
    return this.rt.time(() => this.p.launch(), repeats);
  }
  free(): void {
    this.p.free();
  }
}

/**
 * What a device gives a program nobody tuned: the default heuristic, with the device's profile
 * (ImplContext.profile: what its untuned matmuls take) where the context has one; no tuned entries.
 */
export function compileUntuned(ctx: ImplContext, program: Program, dims: Readonly<Record<string, number>>, opts: CompileOptions = {}): CompiledProgram {
  return ctx.profile ? compileTuned(program, ctx.rt, { ...opts, dims, tuned: false, profile: ctx.profile }) : compile(program, opts);
}

/**
 * The untuned build with launch chaining forced on at the case's dims (CompileOptions.chain), the
 * device profile's verdict aside: for the chain cases whose launches are small enough to chain (a
 * decode step), so chained and separate launches sit side by side whatever the profile chose.
 */
export function tesseraChainedImpl(ctx: ImplContext): Impl {
  const compileFor = (c: TesseraCase) => compileUntuned(ctx, c.def.program, c.dims, { chain: { dims: c.dims } });
  return {
    ...tesseraImpl(ctx, 'tessera-chained', compileFor),
    supports: (c) => {
      const tc = c as TesseraCase;
      if (!tc.steps) return 'not a chain case';
      return selectVersion(compileFor(tc), tc.dims).kernels.some((k) => k.kernel.schedule.kind === 'chain') ? null : 'no launches small enough to chain';
    },
  };
}

export function tesseraImpl(ctx: ImplContext, name = 'tessera', compileFor: CompileFor = (c) => compileUntuned(ctx, c.def.program, c.dims)): Impl {
  return {
    name,
    kind: 'tessera',
    supports: () => null,
    async prepare(c) {
      const tc = c as TesseraCase;
      const p = prepare(await compileFor(tc, ctx.rt), ctx.rt, tc.inputs);
      // the build that runs at the case's dims (multi-versioning)
      const cp = p.program;
      // Pipelines are created (and the driver's verdict awaited) outside any measurement.
      for (const k of cp.kernels) await ctx.rt.compile(k.kernel, c.dims);
      return new TesseraPrepared(ctx.rt, c, p, cp);
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Unfused: one program per op, chained through named device buffers.

interface LinkedStep {
  readonly cp: CompiledProgram;
  readonly bindings: DeviceBuffer[][];
}

class ChainPrepared implements PreparedImpl {
  readonly kernels: number;
  readonly boundBytes: number;
  readonly kernelDetail: { name: string; boundBytes: number }[];
  readonly note: string;
  constructor(
    private readonly rt: WebGPURuntime,
    private readonly c: SbsCase,
    readonly steps: readonly LinkedStep[],
    private readonly owned: readonly DeviceBuffer[],
    private readonly out: DeviceBuffer,
  ) {
    this.kernelDetail = steps.flatMap((s) => kernelBytes(s.cp, c.dims));
    this.kernels = this.kernelDetail.length;
    this.boundBytes = sum(this.kernelDetail);
    this.note = `${steps.length} programs: ${steps.map((s) => s.cp.name).join(' -> ')}`;
  }
  run(): void {
    for (const s of this.steps) s.cp.kernels.forEach((k, i) => this.rt.run(k.kernel, s.bindings[i]!, this.c.dims));
  }
  sync(): Promise<void> {
    return this.rt.sync();
  }
  async check(): Promise<CheckResult> {
    this.run();
    return this.c.compare(await this.rt.download(this.out));
  }
  time(repeats: number): Promise<TimeResult> {
    return this.rt.time(() => this.run(), repeats);
  }
  free(): void {
    for (const b of this.owned) this.rt.free(b);
  }
}

function linkChain(rt: WebGPURuntime, c: TesseraCase, steps: readonly ChainStep[], compileStep: (program: Program) => CompiledProgram): ChainPrepared {
  const owned: DeviceBuffer[] = [];
  const alloc = (n: number) => {
    const b = rt.alloc('f32', n);
    owned.push(b);
    return b;
  };
  const tensors = new Map<string, DeviceBuffer>();
  for (const [name, t] of Object.entries(c.inputs)) {
    const b = alloc(t.data.length);
    rt.upload(b, t.data);
    tensors.set(name, b);
  }
  const linked: LinkedStep[] = [];
  for (const s of steps) {
    const cp = selectVersion(compileStep(s.def.program), c.dims);
    const bufs = new Map<string, DeviceBuffer>();
    for (const p of cp.program.inputs) {
      const from = s.inputs[p.name];
      const src = from === undefined ? undefined : tensors.get(from);
      if (!src) throw new Error(`chain step ${cp.name}: input '${p.name}' is not bound to a case tensor`);
      const bname = cp.buffers.find((b) => b.role === 'input' && b.name === p.name.replace(/[^A-Za-z0-9_]/g, '_'))!.name;
      bufs.set(bname, src);
    }
    const outName = cp.program.outputs[0]!.name;
    const outBuf = alloc(numel(s.outputShape));
    bufs.set(cp.outputs.get(outName)!, outBuf);
    for (const b of cp.buffers) if (!bufs.has(b.name)) bufs.set(b.name, alloc(numel(evalShape(b.shape, c.dims))));
    tensors.set(s.output, outBuf);
    linked.push({ cp, bindings: cp.kernels.map((k) => k.bindings.map((n) => bufs.get(n)!)) });
  }
  const out = tensors.get(steps[steps.length - 1]!.output)!;
  return new ChainPrepared(rt, c, linked, owned, out);
}

/** The chain cases' ops compiled as separate programs (untuned, as `compileUntuned`), run one after another. */
export function tesseraUnfusedImpl(ctx: ImplContext, opts: CompileOptions = {}): Impl {
  return {
    name: 'tessera-unfused',
    kind: 'tessera',
    supports: (c) => ((c as TesseraCase).steps ? null : 'not a chain case'),
    async prepare(c) {
      const tc = c as TesseraCase;
      const p = linkChain(ctx.rt, tc, tc.steps!, (program) => compileUntuned(ctx, program, tc.dims, opts));
      for (const s of p.steps) for (const k of s.cp.kernels) await ctx.rt.compile(k.kernel, tc.dims);
      return p;
    },
  };
}

// -------------------------------------------------------------------------------------------------
// The tuning hook.

/**
 * 'tessera-tuned': the case's program tuned on this adapter at the case's shapes (tessera tune's
 * tuner: every candidate timed, winners cached in .tessera-cache/tune, or $TESSERA_CACHE_DIR), then
 * compiled with the winners. Tuning time is logged, never counted in the case's timings.
 * 'tessera-spec' (`specialize`): the same, tuned and compiled for the case's exact dims
 * (CompileOptions.specialize: dims as constants, or kept as uniforms per kernel where the tuner
 * measured that faster), as the hand-written kernels are.
 */
export function tunedImpl(ctx: ImplContext, opts: { specialize?: boolean } = {}): Impl {
  const name = opts.specialize ? 'tessera-spec' : 'tessera-tuned';
  return tesseraImpl(ctx, name, async (c, rt) => {
    const t0 = performance.now();
    const results = await tuneProgram(c.def.program, rt, c.inputs, { repeats: 5, ...(opts.specialize ? { specialize: true } : {}) });
    const picks = results.map((r) => `${r.kernel}: ${Object.entries(r.best).map(([k, v]) => `${k}=${v}`).join(' ') || 'default'}${r.cached ? ' (cached)' : ''}`);
    ctx.log(`${name}: tuned ${c.id} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${picks.join('; ')}`);
    return compileTuned(c.def.program, rt, { dims: c.dims, ...(opts.specialize ? { specialize: c.dims } : {}) });
  });
}
