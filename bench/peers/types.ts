/**
 * The side-by-side benchmark's plug-in interface. An implementation (Tessera, a hand-written WGSL
 * kernel, tfjs, onnxruntime-web, or anything added later such as a tuned Tessera) is
 *
 *   { name, prepare(case) -> { run(): void, sync(), check(): Promise<CheckResult>, free() } }
 *
 * `run()` enqueues one execution of the case on the GPU (nothing is awaited), `sync()` waits until
 * everything enqueued has finished, `check()` reads the result back and compares it with the
 * case's float64 reference. Implementations that can time themselves on the device (timestamp
 * queries) also give `time(repeats)`; the others are timed by wall clock around run() x repeats +
 * sync().
 */
import type { HostTensor } from '../../src/runtime/execute.js';
import type { WebGPURuntime } from '../../src/backends/wgsl/runtime.js';
import type { DeviceProfile } from '../../src/tune/profile.js';

export type CaseFamily = 'matmul' | 'gemv' | 'softmax' | 'layernorm' | 'block';

export interface Tolerance {
  /** |got - want| <= atol + rtol * |want|, element by element. */
  readonly rtol: number;
  readonly atol: number;
}

export interface CheckResult {
  /** Largest |got - want| over the output. */
  readonly maxAbsError: number;
  /** Largest |got - want| / (atol + rtol |want|): the output matches when this is <= 1. */
  readonly worst: number;
  /** The first element out of tolerance, described; undefined when all match. */
  readonly firstBad?: string;
}

export interface SbsCase {
  /** Stable id, e.g. 'matmul-1024', used by --cases (family names match too). */
  readonly id: string;
  readonly family: CaseFamily;
  /** Row label, e.g. 'matmul 1024x1024x1024'. */
  readonly label: string;
  readonly dims: Readonly<Record<string, number>>;
  /** f32 inputs by name, generated from a fixed seed (the same data for every implementation). */
  readonly inputs: Readonly<Record<string, HostTensor>>;
  readonly outputShape: readonly number[];
  /** Ideal arithmetic and memory traffic (inputs read once, output written once). */
  readonly flops: number;
  readonly bytes: number;
  readonly tolerance: Tolerance;
  /** The expected output in float64 (computed on first use, then cached). */
  reference(): Float64Array;
  /** Compare an implementation's output with the reference. */
  compare(got: ArrayLike<number>): CheckResult;
  /** Case-specific parameters (e.g. the norm epsilon). */
  readonly eps?: number;
}

export interface TimeResult {
  readonly medianMs: number;
  readonly source: 'device' | 'wall';
}

export interface PreparedImpl {
  /** Enqueue one execution (never awaits). */
  run(): void;
  /** Wait for everything enqueued. */
  sync(): Promise<void>;
  /** Run once, read the output back, compare with the reference. */
  check(): Promise<CheckResult>;
  /** Per-iteration device time (timestamp queries), when the implementation has it. */
  time?(repeats: number): Promise<TimeResult>;
  /** Kernel dispatches per iteration, when known. */
  readonly kernels?: number;
  /** Bytes of the buffers each dispatch binds, summed over the dispatches of one iteration, when known. */
  readonly boundBytes?: number;
  /** Per-kernel detail for the report: name and bound bytes. */
  readonly kernelDetail?: readonly { readonly name: string; readonly boundBytes: number }[];
  /** A note for the report (which kernel variant, what the graph is). */
  readonly note?: string;
  free(): void;
}

export type ImplKind = 'tessera' | 'hand' | 'peer';

export interface Impl {
  readonly name: string;
  readonly kind: ImplKind;
  /** null when the implementation runs the case, else why it does not (reported as skipped). */
  supports(c: SbsCase): string | null;
  prepare(c: SbsCase): Promise<PreparedImpl>;
  /** Release process-wide resources (sessions, backends). */
  close?(): Promise<void> | void;
}

/** What implementations get to build on: Tessera's runtime (its device is the hand kernels' too). */
export interface ImplContext {
  readonly rt: WebGPURuntime;
  readonly log: (line: string) => void;
  /** The adapter's calibrated profile: the untuned Tessera implementations compile with it. */
  readonly profile?: DeviceProfile;
}
