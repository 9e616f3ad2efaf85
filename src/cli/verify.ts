/**
 * What `run` and `demo` check: seeded random inputs at chosen dims, and each backend output against
 * the float64 reference interpreter, with a tolerance by dtype.
 */
import { evalShape, numel, shapeSymbols } from '../ir/dims.js';
import { isFloat, type DType } from '../ir/dtype.js';
import type { Program } from '../ir/graph.js';
import { hostArrayFor, type HostArray } from '../runtime/backend.js';
import type { HostTensor } from '../runtime/execute.js';
import { evalProgram, refFromHost, refMismatch, type RefTensor } from '../ref/index.js';
import { mulberry32 } from '../fuzz/rng.js';
import { UsageError } from './args.js';

/** The symbolic dims of a program's inputs and outputs, sorted. */
export function programDims(p: Program): string[] {
  const syms = new Set<string>();
  for (const i of p.inputs) shapeSymbols(i.shape, syms);
  for (const o of p.outputs) shapeSymbols(o.node.shape, syms);
  return [...syms].sort();
}

/** The dims a program needs: every symbol in its inputs and outputs, `given` first, else `dflt`. */
export function chooseDims(p: Program, given: Readonly<Record<string, number>>, dflt = 16): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const s of programDims(p)) dims[s] = given[s] ?? dflt;
  return dims;
}

/** The entries of `dims` that name dims of `p` (a flag's dims apply to every program of a file that has them). */
export function ownDims(p: Program, dims: Readonly<Record<string, number>>): Record<string, number> {
  const own = new Set(programDims(p));
  return Object.fromEntries(Object.entries(dims).filter(([k]) => own.has(k)));
}

/**
 * A dim that `--<flag>` names but none of `programs` has is an error, not ignored: `--dims t=1` for a
 * program of `T` would otherwise run at the default T and say nothing.
 */
export function checkDimNames(flagName: string, given: Readonly<Record<string, number>>, programs: readonly Program[], command: string): void {
  const known = new Set(programs.flatMap(programDims));
  const unknown = Object.keys(given).filter((k) => !known.has(k));
  if (unknown.length === 0) return;
  const one = programs.length === 1;
  const which = one ? `program ${programs[0]!.name}` : `any of the ${programs.length} programs`;
  const dims = known.size > 0 ? `${one ? 'its' : 'their'} dims are ${[...known].sort().join(', ')}` : `${one ? 'it has' : 'they have'} no symbolic dims`;
  throw new UsageError(`--${flagName}: ${unknown.length === 1 ? 'dim' : 'dims'} ${unknown.join(', ')} not in ${which}; ${dims}`, command);
}

/** mulberry32 (src/fuzz/rng.ts), so `--seed` reproduces a run exactly. */
export const rng = mulberry32;

function randomArray(dtype: DType, n: number, next: () => number): HostArray {
  const a = hostArrayFor(dtype, n);
  for (let i = 0; i < n; i++) {
    const r = next();
    switch (dtype) {
      case 'f32': case 'f16': case 'bf16': a[i] = r * 2 - 1; break;
      case 'i32': a[i] = Math.floor(r * 17) - 8; break;
      case 'u32': a[i] = Math.floor(r * 16); break;
      case 'bool': a[i] = r < 0.5 ? 1 : 0; break;
    }
  }
  return a;
}

/** Inputs with values uniform in [-1, 1) (floats), [-8, 8] (i32), [0, 15] (u32), or 0/1 (bool). */
export function randomInputs(p: Program, dims: Readonly<Record<string, number>>, seed: number): Record<string, HostTensor> {
  const next = rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const i of p.inputs) {
    const shape = evalShape(i.shape, dims);
    out[i.name] = { shape, data: randomArray(i.dtype, numel(shape), next) };
  }
  return out;
}

export function tolerance(dtype: DType): Tolerance {
  if (dtype === 'f32') return { rtol: 1e-4, atol: 1e-4 };
  if (dtype === 'f16') return { rtol: 1e-2, atol: 1e-2 };
  if (dtype === 'bf16') return { rtol: 2e-2, atol: 2e-2 };
  return { rtol: 0, atol: 0 };
}

export interface OutputCheck {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly maxAbs: number;
  /** Over elements whose expected value is nonzero. */
  readonly maxRel: number;
  readonly rtol: number;
  readonly atol: number;
  /** null when every element is within tolerance, else where the first one is not. */
  readonly mismatch: string | null;
}

function errors(actual: HostArray, expected: RefTensor): { maxAbs: number; maxRel: number } {
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected.data[i]!;
    if (Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e))) continue;
    const abs = Math.abs(a - e);
    const d = Number.isNaN(abs) ? Infinity : abs;
    maxAbs = Math.max(maxAbs, d);
    if (e !== 0) maxRel = Math.max(maxRel, d / Math.abs(e));
  }
  return { maxAbs, maxRel };
}

export type Tolerance = { readonly rtol: number; readonly atol: number };

/**
 * Every output of `p` against the reference evaluated on the same inputs. `floatTol` (an op's
 * declared tolerance) replaces the dtype default for float outputs.
 */
export function checkOutputs(
  p: Program,
  inputs: Readonly<Record<string, HostTensor>>,
  actual: Readonly<Record<string, HostTensor>>,
  dims: Readonly<Record<string, number>>,
  floatTol?: Tolerance,
): OutputCheck[] {
  const refInputs: Record<string, RefTensor> = {};
  for (const i of p.inputs) refInputs[i.name] = refFromHost(i.dtype, inputs[i.name]!.shape, inputs[i.name]!.data);
  const expected = evalProgram(p, refInputs, dims);
  return p.outputs.map((o) => {
    const exp = expected[o.name]!;
    const got = actual[o.name]!;
    const { rtol, atol } = floatTol && isFloat(o.node.dtype) ? floatTol : tolerance(o.node.dtype);
    return { name: o.name, dtype: o.node.dtype, shape: exp.shape, ...errors(got.data, exp), rtol, atol, mismatch: refMismatch(got.data, exp, rtol, atol) };
  });
}

export const fmtErr = (x: number) => (x === 0 ? '0' : x.toExponential(1));
