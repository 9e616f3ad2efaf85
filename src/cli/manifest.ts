/**
 * The JSON manifest `tessera compile` writes next to the kernels: everything another engine needs
 * to allocate, bind and launch them with no Tessera runtime (buffers and their sizes, binding
 * indices and storage types, the uniform struct, the launch grid), plus per-kernel costs where they
 * can be counted exactly from the graph. Dims are strings in the text-form syntax.
 */
import { readFileSync } from 'node:fs';
import { dimCdiv, dimKey, dimSymbols, dimToString, shapeSymbols, type Dim, type Shape } from '../ir/dims.js';
import type { DType } from '../ir/dtype.js';
import { NARROW_LAUNCH, NARROW_WORKGROUP, type Kernel } from '../ir/kernel.js';
import { isBinary, isReduce, isUnary } from '../ir/ops.js';
import { kernelGroups, type CompiledKernel, type CompiledProgram } from '../passes/pipeline.js';
import { cudaBlockSize, cudaElementBytes, cudaSharedBytes, cudaStorageType } from '../backends/cuda/print.js';
import { WGSL_CAPS, type WGSLPrinter } from './backends.js';

/** Every target `compile` can write, in the fixed order the manifest lists them. */
export const ALL_TARGETS = ['wgsl', 'js', 'cuda', 'torch'] as const;
export type Target = (typeof ALL_TARGETS)[number];
/** The targets written when none is named (and by `demo`). */
export const TARGETS: readonly Target[] = ['wgsl', 'js'];
/** Targets with one source file per kernel (the others write one file per program). */
export const PER_KERNEL_TARGETS: readonly Target[] = ['wgsl', 'js'];

/** A CUDA block can hold at most this many blocks in grid x; past it the launch folds into y. */
export const CUDA_MAX_GRID_X = 2147483647;
export const CUDA_MAX_GRID_Y = 65535;

export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly string[];
  /** The buffer that holds it. */
  readonly buffer: string;
}

export interface DimEntry {
  readonly name: string;
  /** The first input axis that is exactly this dim (`x.shape[0]`), or null when it must be passed. */
  readonly from: string | null;
}

export interface BufferEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly string[];
  readonly role: 'input' | 'output' | 'temp';
  readonly elements: string;
  /** WGSL element type on the device. */
  readonly storage: string;
  /** Device bytes: elements * bytes per storage element (allocate at least 16, rounded up to 16). */
  readonly bytes: string;
  /** With --target cuda or torch: the CUDA element type and bytes (f16 2, bool 1: native storage). */
  readonly cuda?: { readonly type: string; readonly bytes: string };
}

export interface BindingEntry {
  readonly binding: number;
  readonly buffer: string;
  readonly dtype: DType;
  readonly storage: string;
  readonly access: 'read' | 'read_write';
  /** GPUBufferBindingType for the bind group layout. */
  readonly type: 'read-only-storage' | 'storage';
}

export interface UniformEntry {
  readonly binding: number;
  readonly struct: 'Dims';
  /** Bytes of the uniform buffer: 4 per field, padded to a multiple of 16. */
  readonly size: number;
  readonly fields: readonly { readonly name: string; readonly type: 'i32'; readonly offset: number }[];
}

/** One parameter of a CUDA kernel, in the order the kernel takes them. */
export type CudaParamEntry =
  | { readonly name: string; readonly type: string; readonly buffer: string }
  | { readonly name: string; readonly type: 'int'; readonly dim: string };

/** How to launch one kernel from the CUDA translation unit (with --target cuda or torch). */
export interface CudaKernelEntry {
  /** The `extern "C" __global__` function's name. */
  readonly entry: string;
  /** Buffer pointers in binding order, then one int per uniform dim. */
  readonly params: readonly CudaParamEntry[];
  /** Threads per block: [workgroupSize, 1, 1], or [32 * workgroupSize, 1, 1] for a warp kernel (one warp per invocation). */
  readonly block: readonly [number, number, number];
  /** Blocks to launch: cdiv(threads, workgroupSize) (no launch when threads is 0). */
  readonly blocks: string;
  /** How blocks become the grid (folded into y past the x limit). */
  readonly grid: string;
  readonly dynamicSharedBytes: 0;
  /** `__shared__` arrays the kernel declares (bytes per block), when any. */
  readonly staticSharedBytes?: number;
}

export interface KernelEntry {
  readonly name: string;
  readonly files: Partial<Record<Target, string>>;
  readonly entryPoint: 'main';
  readonly workgroupSize: number;
  /**
   * The WGSL takes its workgroup size as the pipeline constant `wg_size` (default workgroupSize) and
   * computes the same for any size: see the convention `flexibleWorkgroup`.
   */
  readonly flexibleWorkgroup?: true;
  readonly threads: string;
  readonly workgroups: string;
  readonly bindings: readonly BindingEntry[];
  readonly uniforms?: UniformEntry;
  readonly workgroupMemoryBytes?: number;
  readonly schedule: { readonly kind: string; readonly params: Readonly<Record<string, number>> };
  readonly flops?: string;
  readonly bytesRead?: string;
  readonly bytesWritten?: string;
  readonly cuda?: CudaKernelEntry;
}

/** Program-level CUDA facts: where the source and binaries are. */
export interface CudaProgramEntry {
  /** The translation unit (`--target cuda`), or null when only the torch module embeds it. */
  readonly source: string | null;
  /** nvcc outputs written next to it; absent when nvcc was not available. */
  readonly fatbin?: string;
  readonly ptx?: string;
  readonly archs: readonly string[];
  readonly nvccFlags: readonly string[];
  /** The PyTorch module (`--target torch`). */
  readonly torch?: string;
}

/**
 * Another build of the program (multi-versioning), for dims that meet `when`: every dim in `equals`
 * has that value and every dim in `multipleOf` is a multiple of it. Its buffers, output buffers and
 * kernels replace the top-level ones; inputs and dims are the program's.
 */
export interface VersionEntry {
  readonly version: string;
  readonly when: { readonly equals?: Readonly<Record<string, number>>; readonly multipleOf?: Readonly<Record<string, number>> };
  readonly kernelCount: number;
  readonly outputs: readonly TensorEntry[];
  readonly buffers: readonly BufferEntry[];
  readonly kernels: readonly KernelEntry[];
}

export interface Manifest {
  readonly program: string;
  readonly tessera: string;
  readonly kernelCount: number;
  readonly targets: readonly Target[];
  readonly inputs: readonly TensorEntry[];
  readonly outputs: readonly TensorEntry[];
  readonly dims: readonly DimEntry[];
  readonly buffers: readonly BufferEntry[];
  readonly kernels: readonly KernelEntry[];
  /** Faster builds for some dims: launch the first whose `when` the dims meet instead of `kernels`. */
  readonly versions?: readonly VersionEntry[];
  readonly cuda?: CudaProgramEntry;
  readonly conventions: Readonly<Record<string, string>>;
}

/** What `compile` knows about the CUDA outputs when it builds the manifest. */
export interface CudaManifestOptions {
  readonly archs: readonly string[];
  readonly nvccFlags: readonly string[];
  /** Written binaries (file names relative to the program folder). */
  readonly fatbin?: string;
  readonly ptx?: string;
}

let version: string | undefined;
export function tesseraVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

const shapeStrings = (s: Shape): string[] => s.map(dimToString);

/** What the manifest's words mean; written into it so the file explains itself. */
const BASE_CONVENTIONS: Record<string, string> = {
  dims: 'Dims are written as in the text form: M, 4, M*N, (M+1), cdiv(M, 4) = ceil(M / 4); a / b is floor division. Bind each dim from the input axis named in `dims[].from` (or pass it).',
  launch: 'Launch the kernels in the listed order, each after the previous one (one compute pass in order is enough). For each: workgroups = ceil(threads / workgroupSize); when that exceeds maxComputeWorkgroupsPerDimension, dispatch (x, y, 1) with y = ceil(workgroups / max) and x = ceil(workgroups / y), else (workgroups, 1, 1).',
  threadId: 'The WGSL computes its linear id as (workgroup_id.y * num_workgroups.x + workgroup_id.x) * workgroupSize + local_invocation_index and returns when it is >= threads, so the padding of a folded grid is harmless.',
  flexibleWorkgroup: `A kernel with flexibleWorkgroup declares its workgroup size as the WGSL override wg_size (default workgroupSize) and computes the same for any positive size: set it with the pipeline constant wg_size and use that size in place of workgroupSize for the workgroup count. Tessera's runtime and the generated wrapper launch such a kernel in workgroups of ${NARROW_WORKGROUP} when it has fewer than ${NARROW_LAUNCH} invocations, so a small launch (a decode step's matmuls) spreads over more of the device's cores.`,
  bindings: 'Bind group 0: the storage buffers at the listed binding indices, then the uniform struct Dims (one i32 per field, in order, padded to 16 bytes) at binding = number of storage buffers. A kernel without uniforms has no uniform binding.',
  storage: 'WGSL printed without shader-f16: f16 tensors are stored as f32 words holding f16-rounded values (round the inputs to f16 before upload), bf16 tensors likewise with bf16-rounded values; bool tensors are u32 0/1; i32/u32/f32 are themselves. Buffers are dense row-major; allocate max(16, ceil(bytes / 16) * 16) bytes (a vectorized kernel may bind an f32 buffer as array<vec4<f32>>).',
  js: 'A .js kernel is a standalone ES module: import { run, bindings } from it and call run(bufs, dims) with the typed arrays in binding order (Float32Array for f32 and f16, Int32Array, Uint32Array, Uint8Array for bool) and dims = { dim: value }; it imports nothing.',
};

/** Added to the conventions with --target cuda or torch. */
const CUDA_CONVENTION: Record<string, string> = {
  cuda: 'kernels[].cuda says how to launch each kernel of the CUDA translation unit: <<<grid, block, 0, stream>>> with the listed parameters in order (buffer pointers as device addresses of dense row-major storage, then each dim as int). block is kernels[].cuda.block (32 threads per invocation for a tensor-core kernel, whose invocations are warps). grid: blocks = ceil(threads / workgroupSize); when blocks <= 2147483647 the grid is (blocks, 1, 1), else y = ceil(blocks / 2147483647) and x = ceil(blocks / y); skip the launch when threads is 0. A launch may cover at most 2^31 threads (the kernels compute an int linear id and guard tid < threads). Storage is native: f32 float, f16 __half, bf16 __nv_bfloat16, i32 int, u32 unsigned int, bool unsigned char 0/1 (buffers[].cuda). No dynamic shared memory.',
};

/** Added when the program has versions. */
const VERSION_CONVENTION: Record<string, string> = {
  versions: 'versions[] are other builds of the program for some dims: after binding the dims, take the first entry whose when.equals dims have exactly those values and whose when.multipleOf dims are multiples of those numbers, and allocate and launch its buffers and kernels (its outputs name the buffers to read back) instead of the top-level ones; when none matches, use the top-level buffers and kernels, which serve any dims.',
};

const MORE_CONVENTIONS: Record<string, string> = {
  costs: 'flops counts graph ops once per element computed (a transcendental counts 1, casts, selects and data movement 0; a reduction 1 per input element; a matmul 2*M*N*K); bytesRead/bytesWritten are compulsory traffic: every bound buffer once at its device size. Omitted where not exact: flops for index-expression (compute) kernels, bytesRead for kernels that may read only part of a buffer (slice, gather, compute).',
};

/**
 * A sum of products of dims with integer coefficients, collected by monomial so costs read as
 * `3*M*N + 8*N` rather than as a chain of additions.
 */
class Poly {
  private readonly terms = new Map<string, { coef: number; factors: Dim[] }>();

  add(coef: number, dims: readonly Dim[]): this {
    let c = coef;
    const factors: Dim[] = [];
    const walk = (d: Dim): void => {
      if (typeof d === 'number') c *= d;
      else if ('op' in d && d.op === '*') {
        walk(d.a);
        walk(d.b);
      } else factors.push(d);
    };
    dims.forEach(walk);
    factors.sort((a, b) => (dimKey(a) < dimKey(b) ? -1 : dimKey(a) > dimKey(b) ? 1 : 0));
    const key = factors.map(dimKey).join('*');
    const t = this.terms.get(key);
    if (t) t.coef += c;
    else this.terms.set(key, { coef: c, factors });
    return this;
  }

  addPoly(p: Poly): this {
    for (const t of p.terms.values()) this.add(t.coef, t.factors);
    return this;
  }

  toString(): string {
    const wrap = (d: Dim) => (typeof d === 'object' && 'op' in d && d.op !== '*' && d.op !== 'cdiv' ? `(${dimToString(d)})` : dimToString(d));
    const parts = [...this.terms.entries()]
      .filter(([, t]) => t.coef !== 0)
      .sort(([ka, a], [kb, b]) => b.factors.length - a.factors.length || (ka < kb ? -1 : ka > kb ? 1 : 0))
      .map(([, t]) => (t.factors.length === 0 ? String(t.coef) : `${t.coef === 1 ? '' : `${t.coef}*`}${t.factors.map(wrap).join('*')}`));
    return parts.length > 0 ? parts.join(' + ') : '0';
  }
}

/** Exact graph FLOPs of a kernel's group, or undefined when it holds an op whose cost is not counted. */
function groupFlops(k: CompiledKernel): Poly | undefined {
  const total = new Poly();
  for (const n of kernelGroups(k).flatMap((g) => g.inlined)) {
    if (n.op === 'compute') return undefined;
    if (isUnary(n.op) || isBinary(n.op)) total.add(1, n.shape);
    else if (isReduce(n.op)) total.add(1, n.args[0]!.shape);
    else if (n.op === 'matmul') {
      const a = n.args[0]!;
      total.add(2, [...n.shape, a.shape[a.shape.length - 1]!]);
    }
    // input, const, cast, where and data movement: 0
  }
  return total;
}

const PARTIAL_READS = new Set(['slice', 'gather', 'compute']);

/** `cdiv(threads, wg)` and the grid rule as the manifest writes them. */
function cudaLaunch(threads: Dim, wg: number): { blocks: string; grid: string } {
  const blocks = dimToString(dimCdiv(threads, wg));
  return { blocks, grid: `blocks <= ${CUDA_MAX_GRID_X} ? (blocks, 1, 1) : (cdiv(blocks, y), y, 1) with y = cdiv(blocks, ${CUDA_MAX_GRID_X})` };
}

export function buildManifest(cp: CompiledProgram, targets: readonly Target[], wgsl: WGSLPrinter, cudaOpts?: CudaManifestOptions): Manifest {
  const top = buildOne(cp, targets, wgsl, cudaOpts);
  if (!cp.versions?.length) return top;
  const versions = cp.versions.map((v): VersionEntry => {
    const m = buildOne(v, targets, wgsl, cudaOpts);
    const when = { ...(v.specialized ? { equals: { ...v.specialized } } : {}), ...(v.assumed ? { multipleOf: { ...v.assumed } } : {}) };
    return { version: v.version, when, kernelCount: m.kernelCount, outputs: m.outputs, buffers: m.buffers, kernels: m.kernels };
  });
  const { cuda, conventions, ...rest } = top;
  return { ...rest, versions, ...(cuda ? { cuda } : {}), conventions: { ...conventions, ...VERSION_CONVENTION } };
}

function buildOne(cp: CompiledProgram, targets: readonly Target[], wgsl: WGSLPrinter, cudaOpts?: CudaManifestOptions): Manifest {
  const withCuda = targets.includes('cuda') || targets.includes('torch');
  const bufferBytes = new Map<string, Poly>();
  const buffers: BufferEntry[] = cp.buffers.map((b) => {
    const bytes = new Poly().add(wgsl.bytes(b.dtype), b.shape);
    bufferBytes.set(b.name, bytes);
    const cuda = withCuda ? { cuda: { type: cudaStorageType(b.dtype), bytes: new Poly().add(cudaElementBytes(b.dtype), b.shape).toString() } } : {};
    return { name: b.name, dtype: b.dtype, shape: shapeStrings(b.shape), role: b.role, elements: new Poly().add(1, b.shape).toString(), storage: wgsl.storage(b.dtype), bytes: bytes.toString(), ...cuda };
  });
  const inputBuffer = (name: string) => cp.buffers.find((b) => b.role === 'input' && b.name === name.replace(/[^A-Za-z0-9_]/g, '_'))?.name ?? name;
  const inputs = cp.program.inputs.map((p) => ({ name: p.name, dtype: p.dtype, shape: shapeStrings(p.shape), buffer: inputBuffer(p.name) }));
  const outputs = cp.program.outputs.map((o) => ({ name: o.name, dtype: o.node.dtype, shape: shapeStrings(o.node.shape), buffer: cp.outputs.get(o.name) ?? o.name }));

  const symbols = new Set<string>();
  for (const b of cp.buffers) shapeSymbols(b.shape, symbols);
  for (const k of cp.kernels) {
    dimSymbols(k.kernel.threads, symbols);
    for (const u of k.kernel.uniforms) symbols.add(u);
  }
  const dims = [...symbols].sort().map((name) => {
    for (const p of cp.program.inputs) {
      const axis = p.shape.findIndex((d) => typeof d === 'object' && 'sym' in d && d.sym === name);
      if (axis >= 0) return { name, from: `${p.name}.shape[${axis}]` };
    }
    return { name, from: null };
  });

  const kernels = cp.kernels.map((ck): KernelEntry => {
    const k = ck.kernel;
    const bindings = k.buffers.map((b, i): BindingEntry => ({
      binding: i,
      buffer: ck.bindings[i]!,
      dtype: b.dtype,
      storage: wgsl.storage(b.dtype),
      access: b.access,
      type: b.access === 'read' ? 'read-only-storage' : 'storage',
    }));
    const files: Partial<Record<Target, string>> = {};
    for (const t of targets) if (PER_KERNEL_TARGETS.includes(t)) files[t] = `${k.name}.${t}`;
    const flops = groupFlops(ck);
    const partial = kernelGroups(ck).some((g) => g.inlined.some((n) => PARTIAL_READS.has(n.op)));
    const read = new Poly();
    const written = new Poly();
    bindings.forEach((b, i) => {
      (b.access === 'read' ? read : written).addPoly(bufferBytes.get(b.buffer)!);
      if (k.buffers[i]!.inPlace) read.addPoly(bufferBytes.get(b.buffer)!); // read, then written in place
    });
    const shared = k.shared.reduce((acc, s) => acc + Math.ceil((s.size * 4) / 16) * 16, 0);
    return {
      name: k.name,
      files,
      entryPoint: 'main',
      workgroupSize: k.workgroupSize,
      ...(k.flexibleWorkgroup ? { flexibleWorkgroup: true as const } : {}),
      threads: dimToString(k.threads),
      workgroups: dimToString(dimCdiv(k.threads, k.workgroupSize)),
      bindings,
      ...(k.uniforms.length > 0
        ? {
            uniforms: {
              binding: k.buffers.length,
              struct: 'Dims' as const,
              size: Math.max(16, Math.ceil((k.uniforms.length * 4) / 16) * 16),
              fields: k.uniforms.map((name, i) => ({ name, type: 'i32' as const, offset: 4 * i })),
            },
          }
        : {}),
      ...(shared > 0 ? { workgroupMemoryBytes: shared } : {}),
      schedule: { kind: k.schedule.kind, params: { ...k.schedule.params } },
      ...(flops !== undefined ? { flops: flops.toString() } : {}),
      ...(partial ? {} : { bytesRead: read.toString() }),
      bytesWritten: written.toString(),
      ...(withCuda ? { cuda: cudaKernelEntry(k) } : {}),
    };
  });

  return {
    program: cp.name,
    tessera: tesseraVersion(),
    kernelCount: kernels.length,
    targets: [...targets],
    inputs,
    outputs,
    dims,
    buffers,
    kernels,
    ...(withCuda
      ? {
          cuda: {
            source: targets.includes('cuda') ? `${cp.name}.cu` : null,
            ...(cudaOpts?.fatbin ? { fatbin: cudaOpts.fatbin } : {}),
            ...(cudaOpts?.ptx ? { ptx: cudaOpts.ptx } : {}),
            archs: [...(cudaOpts?.archs ?? [])],
            nvccFlags: [...(cudaOpts?.nvccFlags ?? [])],
            ...(targets.includes('torch') ? { torch: `${cp.name}_torch.py` } : {}),
          },
        }
      : {}),
    conventions: { ...BASE_CONVENTIONS, ...(withCuda ? CUDA_CONVENTION : {}), ...MORE_CONVENTIONS, wgslCaps: `printed with ${JSON.stringify(WGSL_CAPS)}` },
  };
}


/** The launch facts of one kernel as printed by src/backends/cuda/print.ts. */
export function cudaKernelEntry(k: Kernel): CudaKernelEntry {
  const params: CudaParamEntry[] = [
    ...k.buffers.map((b) => ({ name: `b_${b.name}`, type: `${b.access === 'read' ? 'const ' : ''}${cudaStorageType(b.dtype)}*`, buffer: b.name })),
    ...k.uniforms.map((u) => ({ name: `d_${u}`, type: 'int' as const, dim: u })),
  ];
  const shared = cudaSharedBytes(k);
  return {
    entry: k.name,
    params,
    block: [cudaBlockSize(k), 1, 1],
    ...cudaLaunch(k.threads, k.workgroupSize),
    dynamicSharedBytes: 0,
    ...(shared > 0 ? { staticSharedBytes: shared } : {}),
  };
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * JSON laid out for people: a value that fits in `width` columns stays on one line, anything longer
 * is broken one entry per line. With `bareKeys`, identifier keys are unquoted (a TS object literal).
 */
export function prettyJSON(v: unknown, opts: { readonly width?: number; readonly bareKeys?: boolean } = {}, indent = '', lead = 0): string {
  const width = opts.width ?? 130;
  const key = (k: string) => (opts.bareKeys && IDENT.test(k) ? k : JSON.stringify(k));
  const entries = (x: object) => Object.entries(x).filter(([, e]) => e !== undefined);
  const inline = (x: unknown): string => {
    if (Array.isArray(x)) return `[${x.map(inline).join(', ')}]`;
    if (x !== null && typeof x === 'object') {
      const es = entries(x);
      return es.length > 0 ? `{ ${es.map(([k, e]) => `${key(k)}: ${inline(e)}`).join(', ')} }` : '{}';
    }
    return JSON.stringify(x);
  };
  const flat = inline(v);
  if (v === null || typeof v !== 'object' || indent.length + lead + flat.length <= width) return flat;
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => inner + prettyJSON(x, opts, inner)).join(',\n')}\n${indent}]`;
  return `{\n${entries(v).map(([k, x]) => `${inner}${key(k)}: ${prettyJSON(x, opts, inner, key(k).length + 2)}`).join(',\n')}\n${indent}}`;
}

/** The manifest as written to disk, with a trailing newline; byte-stable for the same program. */
export function manifestText(m: Manifest): string {
  return `${prettyJSON(m)}\n`;
}
