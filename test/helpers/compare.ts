/** Runs a compiled program on a backend and compares every output with the float64 reference. */
import type { KernelDef } from '../../src/dsl/kernel.js';
import type { Program } from '../../src/ir/graph.js';
import { compile, selectVersion, type CompiledProgram } from '../../src/passes/pipeline.js';
import { evalProgram, refFromHost, type RefTensor } from '../../src/ref/index.js';
import type { BackendRuntime, HostArray } from '../../src/runtime/backend.js';
import { bindDims, execute, type HostTensor } from '../../src/runtime/execute.js';

export interface Tolerance {
  rtol: number;
  atol: number;
}

export function mismatch(actual: ArrayLike<number>, expected: RefTensor, tol: Tolerance): string | null {
  if (actual.length !== expected.data.length) return `length ${actual.length}, expected ${expected.data.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected.data[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e);
    if (!ok) return `element ${i} of [${expected.shape.join(', ')}]: got ${a}, expected ${e}`;
  }
  return null;
}

export function reference(p: Program, inputs: Readonly<Record<string, HostTensor>>, dims: Readonly<Record<string, number>> = {}): Record<string, RefTensor> {
  const refIn: Record<string, RefTensor> = {};
  for (const inp of p.inputs) refIn[inp.name] = refFromHost(inp.dtype, [...inputs[inp.name]!.shape], inputs[inp.name]!.data as HostArray);
  return evalProgram(p, refIn, dims);
}

/** Returns null when every output matches, else a description of the first mismatch. */
export async function checkOnBackend(
  def: KernelDef | CompiledProgram,
  rt: BackendRuntime,
  inputs: Readonly<Record<string, HostTensor>>,
  tol: Tolerance,
  dims: Readonly<Record<string, number>> = {},
): Promise<string | null> {
  const cp = 'kernels' in def ? def : compile(def.program);
  const ref = reference(cp.source, inputs, dims);
  // the build dispatch picks at these dims, and the general build too when that is another one
  // (multi-versioning must not leave the general kernels untested at aligned or one-row dims)
  const builds: [string, CompiledProgram][] = [['', cp]];
  if (cp.versions && selectVersion(cp, bindDims(cp, inputs, dims)) !== cp) builds.push([' (general build)', { ...cp, versions: undefined }]);
  for (const [label, build] of builds) {
    const got = await execute(build, rt, inputs, dims);
    for (const o of cp.program.outputs) {
      const m = mismatch(got[o.name]!.data, ref[o.name]!, tol);
      if (m) return `output '${o.name}'${label}: ${m}`;
    }
  }
  return null;
}
