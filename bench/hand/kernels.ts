/**
 * Hand-written WGSL kernels, the yardstick Tessera's generated code is measured against. Written for
 * software Vulkan drivers (lavapipe, SwiftShader), where an invocation is one SIMD lane of a CPU
 * core: register blocking straight from global memory beats workgroup-memory tiling, and one row
 * per invocation beats a workgroup tree reduction (see shared/ENVIRONMENT.md). Every kernel reads
 * vec4s, so the vectorised axis must be a multiple of 4 (`constraints` says which sizes a kernel
 * takes; the harness refuses others). Sizes are WGSL constants, so each pipeline is specialised
 * to its problem, as a hand-tuned kernel would be.
 */

export interface HandKernel {
  /** Label for reports, e.g. 'hand matmul 8x8'. */
  readonly name: string;
  readonly wgsl: string;
  readonly workgroupSize: number;
  /** Invocations the dispatch needs. */
  readonly threads: number;
  /** Buffer binding order: input names, then the output ('out'). */
  readonly bindings: readonly string[];
}

/** Why `dims` cannot run on a variant, or null. */
export type Constraint = (dims: Readonly<Record<string, number>>) => string | null;

const multiple = (name: string, v: number, m: number): string | null => (v % m === 0 ? null : `${name}=${v} is not a multiple of ${m}`);

// -------------------------------------------------------------------------------------------------
// Matmul: out[M,N] = a[M,K] @ b[K,N], row-major. Each invocation owns a TM x (4*TNV) block of out:
// per step of 4 along K it loads TM vec4s of A (one per row) and 4*TNV vec4s of B, and does
// 4*TM*TNV vec4 multiply-adds, all in registers. Neighbouring invocations own neighbouring column
// blocks, so a SIMD group reads contiguous B.

export interface MatmulVariant {
  /** Rows of out per invocation. */
  readonly tm: number;
  /** vec4 columns of out per invocation. */
  readonly tnv: number;
  readonly workgroupSize: number;
}

export function matmulConstraint(v: MatmulVariant): Constraint {
  return ({ M, N, K }) => multiple('M', M!, v.tm) ?? multiple('N', N!, 4 * v.tnv) ?? multiple('K', K!, 4);
}

export function matmulKernel(v: MatmulVariant, dims: Readonly<Record<string, number>>): HandKernel {
  const { tm, tnv } = v;
  const accs: string[] = [];
  const loadsA: string[] = [];
  const fma: string[] = [];
  const stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tnv; j++) accs.push(`var c${i}_${j} = vec4<f32>(0.0);`);
    loadsA.push(`let a${i} = a[(row + ${i}u) * KV + kv];`);
  }
  const loadsB: string[] = [];
  for (let kk = 0; kk < 4; kk++) for (let j = 0; j < tnv; j++) loadsB.push(`let b${kk}_${j} = b[(k + ${kk}u) * NV + col + ${j}u];`);
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tnv; j++) {
      fma.push(`c${i}_${j} = fma(vec4<f32>(a${i}.x), b0_${j}, fma(vec4<f32>(a${i}.y), b1_${j}, fma(vec4<f32>(a${i}.z), b2_${j}, fma(vec4<f32>(a${i}.w), b3_${j}, c${i}_${j}))));`);
      stores.push(`out[(row + ${i}u) * NV + col + ${j}u] = c${i}_${j};`);
    }
  }
  const wgsl = `// hand-written matmul: ${tm}x${4 * tnv} outputs per invocation, vec4 loads from global memory
const M = ${dims.M}u;
const N = ${dims.N}u;
const K = ${dims.K}u;
const NV = N / 4u;
const KV = K / 4u;
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${v.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.y * nwg.x * ${v.workgroupSize}u + gid.x;
  let colBlocks = NV / ${tnv}u;
  if (t >= colBlocks * (M / ${tm}u)) { return; }
  let col = (t % colBlocks) * ${tnv}u;
  let row = (t / colBlocks) * ${tm}u;
  ${accs.join('\n  ')}
  for (var kv = 0u; kv < KV; kv++) {
    let k = kv * 4u;
    ${loadsA.join('\n    ')}
    ${loadsB.join('\n    ')}
    ${fma.join('\n    ')}
  }
  ${stores.join('\n  ')}
}
`;
  const { M, N, K } = dims as { M: number; N: number; K: number };
  return { name: `hand matmul ${tm}x${4 * tnv}`, wgsl, workgroupSize: v.workgroupSize, threads: (M / tm) * (N / (4 * tnv)), bindings: ['a', 'b', 'out'] };
}

// -------------------------------------------------------------------------------------------------
// GEMV: out[1,N] = x[1,K] @ w[N,K]^T (weights stored [out, in]). One output row per invocation
// (`rows` > 1 gives each invocation that many rows, sharing the x loads), vec4 loads along K, four
// independent partial sums to break the add chain.

export interface GemvVariant {
  readonly rows: number;
  readonly workgroupSize: number;
}

export function gemvConstraint(v: GemvVariant): Constraint {
  return ({ M, N, K }) => (M !== 1 ? `M=${M}: GEMV takes one input row` : multiple('N', N!, v.rows) ?? multiple('K', K!, 4));
}

export function gemvKernel(v: GemvVariant, dims: Readonly<Record<string, number>>): HandKernel {
  const r = v.rows;
  const accs = Array.from({ length: r }, (_, i) => `var s${i} = vec4<f32>(0.0);`);
  const body = Array.from({ length: r }, (_, i) => `s${i} = fma(w[(n + ${i}u) * KV + kv], xv, s${i});`);
  const stores = Array.from({ length: r }, (_, i) => `out[n + ${i}u] = dot(s${i}, vec4<f32>(1.0));`);
  const wgsl = `// hand-written GEMV: ${r} weight row(s) per invocation, vec4 loads along K
const N = ${dims.N}u;
const K = ${dims.K}u;
const KV = K / 4u;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${v.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.y * nwg.x * ${v.workgroupSize}u + gid.x;
  if (t >= N / ${r}u) { return; }
  let n = t * ${r}u;
  ${accs.join('\n  ')}
  for (var kv = 0u; kv < KV; kv++) {
    let xv = x[kv];
    ${body.join('\n    ')}
  }
  ${stores.join('\n  ')}
}
`;
  const { N, K } = dims as { N: number; K: number };
  return { name: `hand gemv ${r} row/inv`, wgsl, workgroupSize: v.workgroupSize, threads: N / r, bindings: ['x', 'w', 'out'] };
}

// -------------------------------------------------------------------------------------------------
// Row ops over the last axis of x[M,N]: one row per invocation, vec4 loads.

export interface RowVariant {
  readonly workgroupSize: number;
}

export function rowConstraint(): Constraint {
  return ({ N }) => multiple('N', N!, 4);
}

/** Softmax: an online max/sum pass (rescaling the running sum when the max grows), then one write pass. */
export function softmaxKernel(v: RowVariant, dims: Readonly<Record<string, number>>): HandKernel {
  const wgsl = `// hand-written softmax: one row per invocation, online max and sum, vec4 loads
const M = ${dims.M}u;
const N = ${dims.N}u;
const NV = N / 4u;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${v.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.y * nwg.x * ${v.workgroupSize}u + gid.x;
  if (r >= M) { return; }
  let base = r * NV;
  var m = vec4<f32>(-3.4028234e38);
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < NV; j++) {
    let v = x[base + j];
    let m2 = max(m, v);
    s = s * exp(m - m2) + exp(v - m2);
    m = m2;
  }
  let mx = max(max(m.x, m.y), max(m.z, m.w));
  let total = dot(s * exp(m - vec4<f32>(mx)), vec4<f32>(1.0));
  let inv = 1.0 / total;
  for (var j = 0u; j < NV; j++) {
    out[base + j] = exp(x[base + j] - vec4<f32>(mx)) * inv;
  }
}
`;
  const { M, N } = dims as { M: number; N: number };
  return { name: 'hand softmax row/inv', wgsl, workgroupSize: v.workgroupSize, threads: M, bindings: ['x', 'out'] };
}

/** Layer norm: a mean pass, a centred variance pass (accurate where sum-of-squares cancels), a write pass. */
export function layernormKernel(v: RowVariant, dims: Readonly<Record<string, number>>, eps: number): HandKernel {
  const wgsl = `// hand-written layernorm: one row per invocation, two-pass mean and variance, vec4 loads
const M = ${dims.M}u;
const N = ${dims.N}u;
const NV = N / 4u;
const EPS = ${eps.toExponential()};
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${v.workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.y * nwg.x * ${v.workgroupSize}u + gid.x;
  if (r >= M) { return; }
  let base = r * NV;
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < NV; j++) { s += x[base + j]; }
  let mean = vec4<f32>(dot(s, vec4<f32>(1.0)) / f32(N));
  var q = vec4<f32>(0.0);
  for (var j = 0u; j < NV; j++) { let d = x[base + j] - mean; q = fma(d, d, q); }
  let inv = vec4<f32>(inverseSqrt(dot(q, vec4<f32>(1.0)) / f32(N) + EPS));
  for (var j = 0u; j < NV; j++) {
    out[base + j] = fma((x[base + j] - mean) * inv, g[j], b[j]);
  }
}
`;
  const { M, N } = dims as { M: number; N: number };
  return { name: 'hand layernorm row/inv', wgsl, workgroupSize: v.workgroupSize, threads: M, bindings: ['x', 'g', 'b', 'out'] };
}
