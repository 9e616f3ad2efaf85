/**
 * The side-by-side cases: the problems every implementation runs, each with seeded f32 inputs, a
 * float64 reference written as plain loops (independent of every implementation, Tessera's
 * compiler included), ideal flops and bytes, and the Tessera program(s) that express it.
 */
import { dim, kernel, matmul, rmsnorm, silu, tensor, type KernelDef } from '../../src/dsl/index.js';
import type { HostTensor } from '../../src/runtime/execute.js';
import { layernormOp, matmulOp, matmulTransBOp, rng, softmaxOp } from '../../ops/index.js';
import type { CaseFamily, CheckResult, SbsCase, Tolerance } from './types.js';

export const NORM_EPS = 1e-5;

/** A Tessera program run as one step of an unfused chain: which case tensors feed its inputs. */
export interface ChainStep {
  readonly def: KernelDef;
  /** Program input name -> case tensor name (a case input or an earlier step's output). */
  readonly inputs: Readonly<Record<string, string>>;
  /** The tensor this step's single output becomes. */
  readonly output: string;
  readonly outputShape: readonly number[];
}

export interface TesseraCase extends SbsCase {
  /** The whole case as one Tessera program. */
  readonly def: KernelDef;
  /** The same computation as one program per op (the block case), for the unfused comparison. */
  readonly steps?: readonly ChainStep[];
}

function uniform(n: number, rand: () => number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

const t = (shape: number[], data: Float32Array): HostTensor => ({ shape, data });

export function compareOutputs(got: ArrayLike<number>, want: Float64Array, tol: Tolerance): CheckResult {
  if (got.length !== want.length) return { maxAbsError: Infinity, worst: Infinity, firstBad: `output has ${got.length} values, expected ${want.length}` };
  let maxAbsError = 0;
  let worst = 0;
  let firstBad: string | undefined;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const d = Math.abs(g - w);
    const r = Number.isNaN(d) ? Infinity : d / (tol.atol + tol.rtol * Math.abs(w));
    if (Number.isNaN(d)) maxAbsError = Infinity;
    else if (d > maxAbsError) maxAbsError = d;
    if (r > worst) worst = r;
    if (r > 1 && firstBad === undefined) firstBad = `element ${i}: got ${g}, want ${w} (|diff| ${d.toExponential(2)} > ${tol.atol} + ${tol.rtol}*|want|)`;
  }
  return firstBad === undefined ? { maxAbsError, worst } : { maxAbsError, worst, firstBad };
}

function makeCase(spec: Omit<TesseraCase, 'reference' | 'compare'> & { ref: () => Float64Array }): TesseraCase {
  let cached: Float64Array | undefined;
  const { ref, ...rest } = spec;
  const reference = () => (cached ??= ref());
  return { ...rest, reference, compare: (got) => compareOutputs(got, reference(), spec.tolerance) };
}

// -------------------------------------------------------------------------------------------------

export function matmulCase(n: number, seed = 11): TesseraCase {
  const rand = rng(seed);
  const a = uniform(n * n, rand, -1, 1);
  const b = uniform(n * n, rand, -1, 1);
  return makeCase({
    id: `matmul-${n}`,
    family: 'matmul',
    label: `matmul ${n}x${n}x${n}`,
    dims: { M: n, N: n, K: n },
    inputs: { a: t([n, n], a), b: t([n, n], b) },
    outputShape: [n, n],
    flops: 2 * n * n * n,
    bytes: 3 * 4 * n * n,
    // f32 accumulation of K products of size <= 1 (the library op's tolerance).
    tolerance: { rtol: 1e-4, atol: 1e-4 },
    def: matmulOp.def,
    ref: () => {
      const out = new Float64Array(n * n);
      const row = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        row.fill(0);
        for (let k = 0; k < n; k++) {
          const av = a[i * n + k]!;
          const bo = k * n;
          for (let j = 0; j < n; j++) row[j]! += av * b[bo + j]!;
        }
        out.set(row, i * n);
      }
      return out;
    },
  });
}

/** out[1,N] = x[1,K] @ w[N,K]^T: a decode step's projection with weights stored [out, in]. */
export function gemvCase(n: number, k: number, seed = 12): TesseraCase {
  const rand = rng(seed);
  const x = uniform(k, rand, -1, 1);
  const w = uniform(n * k, rand, -1, 1);
  return makeCase({
    id: `gemv-${n}x${k}`,
    family: 'gemv',
    label: `gemv 1x${k} @ [${n}x${k}]^T`,
    dims: { M: 1, N: n, K: k },
    inputs: { a: t([1, k], x), b: t([n, k], w) },
    outputShape: [1, n],
    flops: 2 * n * k,
    bytes: 4 * (k + n * k + n),
    // K up to 4096 products of size <= 1: a little more absolute slack than the matmuls.
    tolerance: { rtol: 1e-4, atol: 4e-4 },
    def: matmulTransBOp.def,
    ref: () => {
      const out = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = 0; i < k; i++) s += x[i]! * w[j * k + i]!;
        out[j] = s;
      }
      return out;
    },
  });
}

export function softmaxCase(m: number, n: number, seed = 13): TesseraCase {
  const rand = rng(seed);
  const x = uniform(m * n, rand, -8, 8);
  return makeCase({
    id: `softmax-${m}x${n}`,
    family: 'softmax',
    label: `softmax ${m}x${n}`,
    dims: { M: m, N: n },
    inputs: { x: t([m, n], x) },
    outputShape: [m, n],
    flops: 5 * m * n,
    bytes: 8 * m * n,
    // f32 exp and a 1024-term f32 sum: a few ulp relative (the library op promises 1e-5).
    tolerance: { rtol: 2e-5, atol: 1e-7 },
    def: softmaxOp.def,
    ref: () => {
      const out = new Float64Array(m * n);
      for (let r = 0; r < m; r++) {
        let mx = -Infinity;
        for (let j = 0; j < n; j++) mx = Math.max(mx, x[r * n + j]!);
        let s = 0;
        for (let j = 0; j < n; j++) s += Math.exp(x[r * n + j]! - mx);
        for (let j = 0; j < n; j++) out[r * n + j] = Math.exp(x[r * n + j]! - mx) / s;
      }
      return out;
    },
  });
}

export function layernormCase(m: number, n: number, seed = 14): TesseraCase {
  const rand = rng(seed);
  const x = uniform(m * n, rand, -3, 3);
  const g = uniform(n, rand, 0.5, 1.5);
  const b = uniform(n, rand, -0.5, 0.5);
  return makeCase({
    id: `layernorm-${m}x${n}`,
    family: 'layernorm',
    label: `layernorm ${m}x${n}`,
    dims: { M: m, N: n },
    inputs: { x: t([m, n], x), g: t([n], g), b: t([n], b) },
    outputShape: [m, n],
    flops: 7 * m * n + 4 * m,
    bytes: 4 * (2 * m * n + 2 * n),
    tolerance: { rtol: 2e-5, atol: 2e-5 },
    eps: NORM_EPS,
    def: layernormOp.def,
    ref: () => {
      const out = new Float64Array(m * n);
      for (let r = 0; r < m; r++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[r * n + j]!;
        const mean = s / n;
        let v = 0;
        for (let j = 0; j < n; j++) v += (x[r * n + j]! - mean) ** 2;
        const inv = 1 / Math.sqrt(v / n + NORM_EPS);
        for (let j = 0; j < n; j++) out[r * n + j] = (x[r * n + j]! - mean) * inv * g[j]! + b[j]!;
      }
      return out;
    },
  });
}

// -------------------------------------------------------------------------------------------------
// The transformer-block chain: out = x + silu(rmsnorm(x, g) @ w1) @ w2, x [T, D], w1 [D, H], w2 [H, D].

const T = dim('T');
const D = dim('D');
const H = dim('H');

export function blockDef(): KernelDef {
  return kernel('block', { x: tensor('f32', [T, D]), g: tensor('f32', [D]), w1: tensor('f32', [D, H]), w2: tensor('f32', [H, D]) }, ({ x, g, w1, w2 }) =>
    x.add(matmul(silu(matmul(rmsnorm(x, g, NORM_EPS), w1)), w2)),
  );
}

/** The block as five programs, one op each, chained through intermediate tensors. */
export function blockSteps(tt: number, d: number, h: number): ChainStep[] {
  const norm = kernel('block_rmsnorm', { x: tensor('f32', [T, D]), g: tensor('f32', [D]) }, ({ x, g }) => rmsnorm(x, g, NORM_EPS));
  const mm1 = kernel('block_mm1', { a: tensor('f32', [T, D]), b: tensor('f32', [D, H]) }, ({ a, b }) => matmul(a, b));
  const act = kernel('block_silu', { u: tensor('f32', [T, H]) }, ({ u }) => silu(u));
  const mm2 = kernel('block_mm2', { a: tensor('f32', [T, H]), b: tensor('f32', [H, D]) }, ({ a, b }) => matmul(a, b));
  const res = kernel('block_residual', { x: tensor('f32', [T, D]), y: tensor('f32', [T, D]) }, ({ x, y }) => x.add(y));
  return [
    { def: norm, inputs: { x: 'x', g: 'g' }, output: 'n', outputShape: [tt, d] },
    { def: mm1, inputs: { a: 'n', b: 'w1' }, output: 'u', outputShape: [tt, h] },
    { def: act, inputs: { u: 'u' }, output: 's', outputShape: [tt, h] },
    { def: mm2, inputs: { a: 's', b: 'w2' }, output: 'y', outputShape: [tt, d] },
    { def: res, inputs: { x: 'x', y: 'y' }, output: 'out', outputShape: [tt, d] },
  ];
}

export function blockCase(tt: number, d: number, h: number, seed = 15): TesseraCase {
  const rand = rng(seed);
  const x = uniform(tt * d, rand, -1, 1);
  const g = uniform(d, rand, 0.5, 1.5);
  const s1 = 1 / Math.sqrt(d);
  const s2 = 1 / Math.sqrt(h);
  const w1 = uniform(d * h, rand, -s1, s1);
  const w2 = uniform(h * d, rand, -s2, s2);
  return makeCase({
    id: `block-${tt}x${d}x${h}`,
    family: 'block',
    label: `block T${tt} D${d} H${h}`,
    dims: { T: tt, D: d, H: h },
    inputs: { x: t([tt, d], x), g: t([d], g), w1: t([d, h], w1), w2: t([h, d], w2) },
    outputShape: [tt, d],
    // rmsnorm 4TD+3T, two matmuls 2TDH each, silu 5TH, residual TD
    flops: 4 * tt * d + 3 * tt + 4 * tt * d * h + 5 * tt * h + tt * d,
    bytes: 4 * (2 * tt * d + d + 2 * d * h),
    tolerance: { rtol: 1e-4, atol: 1e-4 },
    eps: NORM_EPS,
    def: blockDef(),
    steps: blockSteps(tt, d, h),
    ref: () => {
      const n = new Float64Array(tt * d);
      for (let r = 0; r < tt; r++) {
        let ss = 0;
        for (let j = 0; j < d; j++) ss += x[r * d + j]! ** 2;
        const inv = 1 / Math.sqrt(ss / d + NORM_EPS);
        for (let j = 0; j < d; j++) n[r * d + j] = x[r * d + j]! * inv * g[j]!;
      }
      const u = new Float64Array(tt * h);
      for (let r = 0; r < tt; r++) {
        for (let k = 0; k < d; k++) {
          const nv = n[r * d + k]!;
          for (let j = 0; j < h; j++) u[r * h + j]! += nv * w1[k * h + j]!;
        }
      }
      for (let i = 0; i < u.length; i++) u[i] = u[i]! / (1 + Math.exp(-u[i]!));
      const out = new Float64Array(tt * d);
      for (let r = 0; r < tt; r++) {
        for (let k = 0; k < h; k++) {
          const sv = u[r * h + k]!;
          for (let j = 0; j < d; j++) out[r * d + j]! += sv * w2[k * d + j]!;
        }
        for (let j = 0; j < d; j++) out[r * d + j]! += x[r * d + j]!;
      }
      return out;
    },
  });
}

/** The standard set: full sizes, or small ones for --quick. */
export function standardCases(quick: boolean): TesseraCase[] {
  if (quick) {
    return [matmulCase(64), matmulCase(128), matmulCase(256), gemvCase(1024, 1024), softmaxCase(256, 256), layernormCase(256, 256), blockCase(32, 128, 256), blockCase(1, 64, 172)];
  }
  // the block twice: a prefill chunk (compute-bound: the matmuls dominate) and one decode step at the
  // FFN shape of models/bytes1M.bin (dim 128, hidden 344), where kernel launches and the small ops weigh
  return [matmulCase(256), matmulCase(512), matmulCase(1024), gemvCase(4096, 4096), softmaxCase(4096, 1024), layernormCase(4096, 1024), blockCase(128, 512, 1024), blockCase(1, 128, 344)];
}

/** Cases whose id or family is in `filter` (comma list); all when the filter is empty. */
export function selectCases<C extends SbsCase>(cases: readonly C[], filter: readonly string[]): C[] {
  if (filter.length === 0) return [...cases];
  const out = cases.filter((c) => filter.includes(c.id) || filter.includes(c.family));
  const known = new Set(cases.flatMap((c) => [c.id, c.family]));
  const unknown = filter.filter((f) => !known.has(f));
  if (unknown.length > 0) throw new Error(`--cases: unknown case(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
  return out;
}

export type { CaseFamily };
