/**
 * Running a library op against its reference on any backend: seeded inputs at given dims, compile,
 * execute, compare. Shared by the tests and the benchmark so both check the same way.
 */
import { compile, selectVersion, type CompiledProgram, type CompileOptions } from '../src/passes/pipeline.js';
import { evalShape, numel } from '../src/ir/dims.js';
import type { DType } from '../src/ir/dtype.js';
import { hostArrayFor, type BackendRuntime } from '../src/runtime/backend.js';
import { bindDims, execute, type HostTensor } from '../src/runtime/execute.js';
import { refFromHost, refMismatch, type RefTensor } from '../src/ref/index.js';
import { dimNames, type Dims, type OpSpec } from './spec.js';
import { mulberry32 } from '../src/fuzz/rng.js';

/** mulberry32: small, fast, and the same stream on every platform. */
export const rng = mulberry32;

function fill(dtype: DType, n: number, rand: () => number, range: number): HostTensor['data'] {
  const a = hostArrayFor(dtype, n);
  // u32 inputs are bit patterns (packed codes): every bit random
  for (let i = 0; i < n; i++) a[i] = dtype === 'bool' ? (rand() < 0.5 ? 1 : 0) : dtype === 'f32' || dtype === 'f16' ? (2 * rand() - 1) * range : dtype === 'u32' ? Math.floor(rand() * 2 ** 32) : Math.floor(rand() * 2 * range - range);
  return a;
}

/** Inputs for `op` at `dims`, uniform in [-range, range) (Math.fround-exact for f32). */
export function makeInputs(op: OpSpec, dims: Dims, seed = 1): Record<string, HostTensor> {
  const rand = rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const p of op.def.program.inputs) {
    const shape = evalShape(p.shape, dims);
    out[p.name] = { shape, data: fill(p.dtype, numel(shape), rand, op.inputRange ?? 3) };
  }
  return out;
}

export function refInputs(op: OpSpec, inputs: Readonly<Record<string, HostTensor>>): Record<string, RefTensor> {
  const out: Record<string, RefTensor> = {};
  for (const p of op.def.program.inputs) {
    const t = inputs[p.name]!;
    out[p.name] = refFromHost(p.dtype, t.shape, t.data);
  }
  return out;
}

/**
 * Dims that catch tiling and indexing mistakes: every dim 1; every dim 7; every dim 13; and a mix
 * of 13, 7, 1, ... so no two axes have the same size (a swapped index shows).
 */
export function awkwardDims(op: OpSpec): Dims[] {
  const names = dimNames(op.def);
  const all = (v: number): Dims => Object.fromEntries(names.map((n) => [n, v]));
  const mixed: Dims = Object.fromEntries(names.map((n, i) => [n, [13, 7, 1, 5][i % 4]!]));
  return [all(1), all(7), all(13), mixed];
}

export interface OpRun {
  readonly compiled: CompiledProgram;
  readonly outputs: Record<string, HostTensor>;
  readonly expected: Record<string, RefTensor>;
  /** Per output, null when it matches the reference within the op's tolerance, else the first mismatch. */
  readonly mismatches: Record<string, string | null>;
}

/** Compiles `op`, runs it on `rt` at `dims` with seeded inputs and compares every output. */
export async function runOp(op: OpSpec, rt: BackendRuntime, dims: Dims, opts: { seed?: number; compile?: CompileOptions; compiled?: CompiledProgram } = {}): Promise<OpRun> {
  const compiled = opts.compiled ?? compile(op.def.program, opts.compile);
  const inputs = makeInputs(op, dims, opts.seed);
  const outputs = await execute(compiled, rt, inputs);
  const expected = op.reference(refInputs(op, inputs));
  const against = (outs: Record<string, HostTensor>, o: string, label: string): string | null => {
    const got = outs[o];
    const want = expected[o];
    if (!got || !want) return `output '${o}' missing${label}`;
    const m = refMismatch(got.data, want, op.tolerance.rtol, op.tolerance.atol);
    return m === null ? null : `${m}${label}`;
  };
  const mismatches: Record<string, string | null> = {};
  for (const o of op.def.program.outputs) mismatches[o.name] = against(outputs, o.name, '');
  // where dispatch picked a version (an aligned or one-row build), the general build is checked too
  if (compiled.versions && selectVersion(compiled, bindDims(compiled, inputs)) !== compiled) {
    const general = await execute({ ...compiled, versions: undefined }, rt, inputs);
    for (const o of op.def.program.outputs) mismatches[o.name] ??= against(general, o.name, ' (general build)');
  }
  return { compiled, outputs, expected, mismatches };
}

/** A one-line failure description, or null when every output matched. */
export function describeMismatch(op: OpSpec, dims: Dims, run: OpRun): string | null {
  const bad = Object.entries(run.mismatches).filter(([, m]) => m !== null);
  if (bad.length === 0) return null;
  return `${op.name} at ${JSON.stringify(dims)}: ${bad.map(([o, m]) => `${o} ${m}`).join('; ')}`;
}
