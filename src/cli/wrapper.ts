/**
 * The typed TS wrapper `tessera compile` writes per program, generated with ts-morph: input/output
 * interfaces, the WGSL sources of every build, the manifest, and an async `run<Program>(device,
 * inputs)` that picks the build the dims select and binds and launches its kernels with plain
 * WebGPU calls. It imports nothing, so another engine can copy
 * it in as is; `runtimeSource` below is the part every wrapper shares.
 */
import type { Dim, Shape } from '../ir/dims.js';
import { dimSymbols } from '../ir/dims.js';
import type { DType } from '../ir/dtype.js';
import { NARROW_LAUNCH, NARROW_WORKGROUP } from '../ir/kernel.js';
import type { CompiledKernel, CompiledProgram } from '../passes/pipeline.js';
import type { WGSLPrinter } from './backends.js';
import { prettyJSON, type Manifest } from './manifest.js';

const HOST_TYPE: Record<DType, string> = { f32: 'Float32Array', f16: 'Float32Array', bf16: 'Float32Array', i32: 'Int32Array', u32: 'Uint32Array', bool: 'Uint8Array' };

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `silu_affine` -> `SiluAffine`. */
export function pascalCase(name: string): string {
  const s = name
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
  return /^[0-9]/.test(s) || s.length === 0 ? `P${s}` : s;
}

const prop = (name: string) => (IDENT.test(name) ? name : JSON.stringify(name));
const str = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** A dim as a TS expression over `d` (the bound dims): `/` floors, `cdiv` rounds up. */
export function dimToTS(d: Dim): string {
  if (typeof d === 'number') return String(d);
  if ('sym' in d) return IDENT.test(d.sym) ? `d.${d.sym}` : `d[${JSON.stringify(d.sym)}]`;
  const a = dimToTS(d.a);
  const b = dimToTS(d.b);
  switch (d.op) {
    case '/': return `Math.floor(${a} / ${b})`;
    case 'cdiv': return `Math.ceil(${a} / ${b})`;
    default: return `(${a} ${d.op} ${b})`;
  }
}

/** `(d) => expr`, or `() => expr` when no dim is read (so strict unused-parameter checks pass). */
function dimFn(body: string, dims: Iterable<Dim>): string {
  let uses = false;
  for (const d of dims) if (dimSymbols(d).size > 0) uses = true;
  return uses ? `(d) => ${body}` : `() => ${body}`;
}

const shapeFn = (s: Shape) => dimFn(`[${s.map(dimToTS).join(', ')}]`, s);
const productFn = (s: Shape, scale: number) => dimFn(s.length === 0 ? String(scale) : [...(scale === 1 ? [] : [String(scale)]), ...s.map(dimToTS)].join(' * '), s);

function templateLiteral(s: string): string {
  return `\`${s.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')}\``;
}

/** The typed tensor a wrapper takes or returns for a dtype and rank. */
function tensorType(dtype: DType, rank: number): string {
  return `{ readonly data: ${HOST_TYPE[dtype]}; readonly shape: readonly [${Array<string>(rank).fill('number').join(', ')}] }`;
}

/**
 * What every wrapper contains, after its program-specific tables (PROGRAM, DIM_NAMES, INPUTS,
 * OUTPUTS, BUILDS). Written once here, type-checked in every generated file.
 */
const RUNTIME = `
type HostArray = Float32Array | Int32Array | Uint32Array | Uint8Array;
type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32' | 'bool';

interface HostTensor {
  readonly data: HostArray;
  readonly shape: readonly number[];
}

interface BufferPlan {
  readonly name: string;
  /** Device bytes: elements times 4 (f16 and bf16 are stored as f32 words, bool as u32). */
  readonly bytes: (d: Dims) => number;
}

interface TensorPlan {
  readonly name: string;
  readonly buffer: string;
  readonly dtype: DType;
  readonly shape: (d: Dims) => number[];
}

interface InputPlan extends TensorPlan {
  /** The dims this input's shape binds, as [dim, axis]. */
  readonly binds: readonly (readonly [keyof Dims, number])[];
}

/**
 * One build of the program: its buffers, the buffer each output is read from (in OUTPUTS order) and
 * its kernels. BUILDS lists the versions first and the general build last; the first whose \`when\`
 * the dims meet runs.
 */
interface BuildPlan {
  readonly version: string;
  readonly when: (d: Dims) => boolean;
  readonly buffers: readonly BufferPlan[];
  readonly outputBuffers: readonly string[];
  readonly kernels: readonly KernelPlan[];
}

interface KernelPlan {
  readonly name: string;
  readonly code: string;
  readonly workgroupSize: number;
  /** Computes the same in any workgroup size (its WGSL takes the size as the override wg_size). */
  readonly flexible: boolean;
  readonly threads: (d: Dims) => number;
  readonly bindings: readonly { readonly buffer: string; readonly type: GPUBufferBindingType }[];
  /** Fields of the Dims uniform struct, bound after the storage buffers. */
  readonly uniforms: readonly (keyof Dims)[];
}

// GPUBufferUsage, GPUMapMode and GPUShaderStage values, spelled out: Node has no such globals.
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_UNIFORM = 0x0040;
const USAGE_STORAGE = 0x0080;
const MAP_READ = 0x0001;
const STAGE_COMPUTE = 0x4;
/** Launches of fewer invocations run flexible kernels in workgroups of NARROW_WORKGROUP, so the device's cores share them. */
const NARROW_LAUNCH = ${NARROW_LAUNCH};
const NARROW_WORKGROUP = ${NARROW_WORKGROUP};

const HOST_ARRAY: Readonly<Record<DType, string>> = { f32: 'Float32Array', f16: 'Float32Array', bf16: 'Float32Array', i32: 'Int32Array', u32: 'Uint32Array', bool: 'Uint8Array' };

function fail(message: string): never {
  throw new Error(\`\${PROGRAM}: \${message}\`);
}

/** x rounded to the nearest f16 value (ties to even, overflow to infinity): f16 tensors live in f32 words. */
function f16round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const step = 2 ** (Math.max(e, -14) - 10);
  const q = a / step;
  const f = Math.floor(q);
  const r = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return (x < 0 ? -r : r) * step;
}

/** x rounded to the nearest bfloat16 value (ties to even): bf16 tensors live in f32 words. */
function bf16round(x: number): number {
  const w = new Float32Array([x]);
  const b = new Uint32Array(w.buffer);
  if (Number.isNaN(x)) return x;
  b[0] = ((b[0]! + 0x7fff + ((b[0]! >>> 16) & 1)) >>> 16) << 16;
  return w[0]!;
}

function toDevice(dtype: DType, data: HostArray): Float32Array | Int32Array | Uint32Array {
  switch (dtype) {
    case 'f32': return Float32Array.from(data);
    case 'f16': return Float32Array.from(data, f16round);
    case 'bf16': return Float32Array.from(data, bf16round);
    case 'i32': return Int32Array.from(data);
    case 'u32': return Uint32Array.from(data);
    case 'bool': return Uint32Array.from(data, (v) => (v !== 0 ? 1 : 0));
  }
}

function fromDevice(dtype: DType, raw: ArrayBuffer, n: number): HostArray {
  switch (dtype) {
    case 'f32': case 'f16': case 'bf16': return new Float32Array(raw, 0, n);
    case 'i32': return new Int32Array(raw, 0, n);
    case 'u32': return new Uint32Array(raw, 0, n);
    case 'bool': return Uint8Array.from(new Uint32Array(raw, 0, n), (v) => (v !== 0 ? 1 : 0));
  }
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Binds every dim from the input shapes (and \`given\`), then checks each input's shape, size and type. */
function bindDims(inputs: Readonly<Record<string, HostTensor>>, given: Readonly<Record<string, number | undefined>>): Dims {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(given)) if (v !== undefined) d[k] = v;
  for (const p of INPUTS) {
    const t = inputs[p.name];
    if (t === undefined) return fail(\`input '\${p.name}' is missing\`);
    for (const [dim, axis] of p.binds) {
      const v = t.shape[axis];
      const prev = d[dim];
      if (v === undefined) return fail(\`input '\${p.name}' has rank \${t.shape.length}, it needs axis \${axis}\`);
      if (prev !== undefined && prev !== v) fail(\`dim \${dim} is \${prev} but input '\${p.name}' axis \${axis} is \${v}\`);
      d[dim] = v;
    }
  }
  for (const name of DIM_NAMES) {
    const v = d[name];
    if (v === undefined) return fail(\`dim \${name} has no value: pass it in dims\`);
    if (!Number.isInteger(v) || v < 1) fail(\`dim \${name} must be a positive integer, got \${v}\`);
  }
  const dims = d as Dims;
  for (const p of INPUTS) {
    const t = inputs[p.name];
    const want = p.shape(dims);
    if (t === undefined) return fail(\`input '\${p.name}' is missing\`);
    if (t.shape.length !== want.length || t.shape.some((v, i) => v !== want[i])) {
      fail(\`input '\${p.name}' has shape [\${t.shape.join(', ')}], expected [\${want.join(', ')}]\`);
    }
    if (t.data.length !== numel(want)) fail(\`input '\${p.name}' has \${t.data.length} values, its shape holds \${numel(want)}\`);
    const ctor = HOST_ARRAY[p.dtype];
    if (t.data.constructor.name !== ctor) fail(\`input '\${p.name}' is \${p.dtype}: pass a \${ctor}, got a \${t.data.constructor.name}\`);
  }
  return dims;
}

interface Pipeline {
  readonly module: GPUShaderModule;
  readonly layout: GPUBindGroupLayout;
  /** By workgroup size: a flexible kernel takes its size as the pipeline constant wg_size. */
  readonly bySize: Map<number, GPUComputePipeline>;
}

/** The workgroup size a launch of \`threads\` invocations of \`k\` takes (narrow launches of flexible kernels are narrower). */
function launchWorkgroupSize(k: KernelPlan, threads: number): number {
  return k.flexible && threads < NARROW_LAUNCH && k.workgroupSize > NARROW_WORKGROUP ? NARROW_WORKGROUP : k.workgroupSize;
}

function pipelineAt(device: GPUDevice, k: KernelPlan, p: Pipeline, size: number): GPUComputePipeline {
  const hit = p.bySize.get(size);
  if (hit) return hit;
  const pipeline = device.createComputePipeline({
    label: k.name,
    layout: device.createPipelineLayout({ label: k.name, bindGroupLayouts: [p.layout] }),
    compute: { module: p.module, entryPoint: 'main', ...(k.flexible ? { constants: { wg_size: size } } : {}) },
  });
  p.bySize.set(size, pipeline);
  return pipeline;
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, readonly Pipeline[]>>();

/** One compute pipeline per kernel of a build, with an explicit bind group layout, cached per device. */
function pipelinesFor(device: GPUDevice, build: BuildPlan): readonly Pipeline[] {
  const byBuild = pipelineCache.get(device) ?? new Map<string, readonly Pipeline[]>();
  pipelineCache.set(device, byBuild);
  const hit = byBuild.get(build.version);
  if (hit) return hit;
  const made = build.kernels.map((k): Pipeline => {
    const entries: GPUBindGroupLayoutEntry[] = k.bindings.map((b, i) => ({ binding: i, visibility: STAGE_COMPUTE, buffer: { type: b.type } }));
    if (k.uniforms.length > 0) entries.push({ binding: k.bindings.length, visibility: STAGE_COMPUTE, buffer: { type: 'uniform' } });
    const layout = device.createBindGroupLayout({ label: k.name, entries });
    return { module: device.createShaderModule({ label: k.name, code: k.code }), layout, bySize: new Map() };
  });
  byBuild.set(build.version, made);
  return made;
}

/** Allocates, uploads, records every launch and the output copies, submits; returns the staging buffers. */
function encode(device: GPUDevice, build: BuildPlan, dims: Dims, inputs: Readonly<Record<string, HostTensor>>, owned: GPUBuffer[]): GPUBuffer[] {
  const pipelines = pipelinesFor(device, build);
  const buffers = new Map<string, GPUBuffer>();
  const buf = (name: string): GPUBuffer => buffers.get(name) ?? fail(\`no buffer '\${name}'\`);
  for (const b of build.buffers) {
    // 16-byte units: a vectorized kernel may bind an f32 buffer as array<vec4<f32>>
    const size = Math.max(16, Math.ceil(b.bytes(dims) / 16) * 16);
    const gpu = device.createBuffer({ label: b.name, size, usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
    owned.push(gpu);
    buffers.set(b.name, gpu);
  }
  for (const p of INPUTS) {
    const t = inputs[p.name] ?? fail(\`input '\${p.name}' is missing\`);
    device.queue.writeBuffer(buf(p.buffer), 0, toDevice(p.dtype, t.data));
  }
  const encoder = device.createCommandEncoder({ label: PROGRAM });
  const pass = encoder.beginComputePass({ label: PROGRAM });
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  build.kernels.forEach((k, i) => {
    const threads = k.threads(dims);
    if (threads <= 0) return;
    const size = launchWorkgroupSize(k, threads);
    // The grid is 1-D for the kernel; fold it into x/y past the per-dimension limit.
    const groups = Math.ceil(threads / size);
    const y = groups > maxGroups ? Math.ceil(groups / maxGroups) : 1;
    const x = Math.ceil(groups / y);
    if (y > maxGroups) fail(\`kernel \${k.name}: \${groups} workgroups exceed \${maxGroups} x \${maxGroups}\`);
    const entries: GPUBindGroupEntry[] = k.bindings.map((b, j) => ({ binding: j, resource: { buffer: buf(b.buffer) } }));
    if (k.uniforms.length > 0) {
      const values = new Int32Array(Math.ceil(k.uniforms.length / 4) * 4);
      k.uniforms.forEach((u, j) => {
        values[j] = dims[u];
      });
      const ubuf = device.createBuffer({ label: \`\${k.name} dims\`, size: values.byteLength, usage: USAGE_UNIFORM | USAGE_COPY_DST });
      owned.push(ubuf);
      device.queue.writeBuffer(ubuf, 0, values);
      entries.push({ binding: k.bindings.length, resource: { buffer: ubuf } });
    }
    const p = pipelines[i] ?? fail(\`no pipeline for kernel \${k.name}\`);
    pass.setPipeline(pipelineAt(device, k, p, size));
    pass.setBindGroup(0, device.createBindGroup({ label: k.name, layout: p.layout, entries }));
    pass.dispatchWorkgroups(x, y, 1);
  });
  pass.end();
  const staging = OUTPUTS.map((o, i) => {
    const src = buf(build.outputBuffers[i] ?? fail(\`no buffer for output '\${o.name}'\`));
    const s = device.createBuffer({ label: \`\${o.name} readback\`, size: src.size, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    owned.push(s);
    encoder.copyBufferToBuffer(src, 0, s, 0, src.size);
    return s;
  });
  device.queue.submit([encoder.finish()]);
  return staging;
}

/** Runs the program once: allocate, upload, launch every kernel in order, read the outputs back, free. */
async function executeProgram(device: GPUDevice, inputs: Readonly<Record<string, HostTensor>>, given: Readonly<Record<string, number | undefined>>): Promise<Record<string, HostTensor>> {
  const dims = bindDims(inputs, given);
  const owned: GPUBuffer[] = [];
  try {
    device.pushErrorScope('validation');
    let staging: GPUBuffer[] = [];
    try {
      // the first build whose conditions the dims meet (the general one, last, takes any dims)
      const build = BUILDS.find((b) => b.when(dims)) ?? fail('no build for these dims');
      staging = encode(device, build, dims, inputs, owned);
    } finally {
      const error = await device.popErrorScope();
      if (error) fail(\`WebGPU rejected the launch: \${error.message}\`);
    }
    await Promise.all(staging.map((s) => s.mapAsync(MAP_READ)));
    const result: Record<string, HostTensor> = {};
    OUTPUTS.forEach((o, i) => {
      const s = staging[i] ?? fail(\`no readback buffer for '\${o.name}'\`);
      const shape = o.shape(dims);
      result[o.name] = { data: fromDevice(o.dtype, s.getMappedRange().slice(0), numel(shape)), shape };
      s.unmap();
    });
    return result;
  } finally {
    for (const b of owned) b.destroy();
  }
}
`;

type TsMorph = typeof import('ts-morph');
type StatementStructures = import('ts-morph').StatementStructures;
type CodeBlockWriter = import('ts-morph').CodeBlockWriter;
let tsMorph: Promise<TsMorph> | undefined;
let project: import('ts-morph').Project | undefined;
/**
 * Each wrapper gets a file name of its own: a file re-created under a name the project has seen is
 * re-parsed incrementally against the old text, and ts-morph then reports "A syntax error was
 * inserted" (two schedules of one program compiled in one process).
 */
let fileCount = 0;

/** The wrapper module's source text. Deterministic: the same program prints the same bytes. */
export async function generateWrapper(cp: CompiledProgram, manifest: Manifest, wgsl: WGSLPrinter): Promise<string> {
  tsMorph ??= import('ts-morph');
  const tm = await tsMorph;
  // One in-memory project without lib files: formatting needs no types, and it keeps generation fast.
  project ??= new tm.Project({
    useInMemoryFileSystem: true,
    skipLoadingLibFiles: true,
    manipulationSettings: { indentationText: tm.IndentationText.TwoSpaces, quoteKind: tm.QuoteKind.Single, newLineKind: tm.NewLineKind.LineFeed },
  });
  const P = pascalCase(cp.name);
  const sf = project.createSourceFile(`${cp.name}.${fileCount++}.ts`, '');
  const { VariableDeclarationKind: VDK, StructureKind: SK } = tm;
  // Collected first and added in one call: ts-morph re-parses the file after every manipulation.
  const statements: (string | StatementStructures)[] = [];
  const dimNames = manifest.dims.map((d) => d.name);

  statements.push([
    `/**`,
    ` * ${cp.name}: ${manifest.kernelCount} WGSL kernel${manifest.kernelCount === 1 ? '' : 's'}, compiled by Tessera ${manifest.tessera}. Generated by \`tessera compile\`: do not edit.`,
    ` *`,
    ` * Self-contained: plain WebGPU calls, no imports, so it can be copied into another engine.`,
    ` * \`run${P}(device, inputs)\` picks the build its dims select (BUILDS: versions first, the general`,
    ` * build last), creates its pipelines (cached per device), uploads the inputs, launches its kernels`,
    ` * in order and reads the outputs back. \`manifest\` says the same in data.`,
    ` */`,
  ].join('\n'));

  statements.push({
    kind: SK.TypeAlias,
    name: `${P}Dims`,
    isExported: true,
    docs: [dimNames.length > 0 ? `Symbolic dims, bound from the input shapes (${manifest.dims.map((d) => `${d.name} = ${d.from ?? 'passed in dims'}`).join(', ')}).` : 'This program has no symbolic dims.'],
    type: dimNames.length > 0 ? `{ ${dimNames.map((n) => `readonly ${prop(n)}: number`).join('; ')} }` : 'Record<never, number>',
  });
  statements.push({ kind: SK.TypeAlias, name: 'Dims', type: `${P}Dims` });

  statements.push({
    kind: SK.Interface,
    name: `${P}Inputs`,
    isExported: true,
    docs: [`Inputs of ${cp.name}: f32/f16/bf16 as Float32Array, i32 as Int32Array, u32 as Uint32Array, bool as Uint8Array (0/1), row-major.`],
    properties: cp.program.inputs.map((p) => ({
      name: prop(p.name),
      isReadonly: true,
      type: tensorType(p.dtype, p.shape.length),
      docs: [`${p.dtype}[${manifest.inputs.find((i) => i.name === p.name)!.shape.join(', ')}]`],
    })),
  });
  statements.push({
    kind: SK.Interface,
    name: `${P}Outputs`,
    isExported: true,
    docs: [`Outputs of ${cp.name}.`],
    properties: manifest.outputs.map((o) => ({
      name: prop(o.name),
      isReadonly: true,
      type: tensorType(o.dtype, o.shape.length),
      docs: [`${o.dtype}[${o.shape.join(', ')}]`],
    })),
  });

  const constName = (k: string) => `${k.toUpperCase()}_WGSL`;
  // versions first, the general build last (it serves any dims)
  const builds = [...(cp.versions ?? []), cp];
  for (const ck of builds.flatMap((b) => b.kernels)) {
    statements.push({
      kind: SK.VariableStatement,
      isExported: true,
      declarationKind: VDK.Const,
      docs: [`WGSL of kernel ${ck.kernel.name} (entry point \`main\`, workgroup size ${ck.kernel.workgroupSize}).`],
      declarations: [{ name: constName(ck.kernel.name), initializer: templateLiteral(wgsl.print(ck.kernel)) }],
    });
  }
  statements.push({
    kind: SK.VariableStatement,
    isExported: true,
    declarationKind: VDK.Const,
    docs: ['How to bind and launch the kernels without this wrapper (the manifest.json written next to it).'],
    declarations: [{ name: 'manifest', initializer: `${prettyJSON(manifest, { bareKeys: true })} as const` }],
  });

  const table = (name: string, type: string, rows: readonly string[]) =>
    statements.push({ kind: SK.VariableStatement, declarationKind: VDK.Const, declarations: [{ name, type, initializer: rows.length > 0 ? `[\n${rows.map((r) => `  ${r},`).join('\n')}\n]` : '[]' }] });
  statements.push({ kind: SK.VariableStatement, declarationKind: VDK.Const, declarations: [{ name: 'PROGRAM', initializer: str(cp.name) }] });
  table('DIM_NAMES', 'readonly (keyof Dims)[]', dimNames.map(str));
  table(
    'INPUTS',
    'readonly InputPlan[]',
    cp.program.inputs.map((p) => {
      const entry = manifest.inputs.find((i) => i.name === p.name)!;
      const binds = p.shape.flatMap((d, axis) => (typeof d === 'object' && 'sym' in d ? [`[${str(d.sym)}, ${axis}]`] : []));
      return `{ name: ${str(p.name)}, buffer: ${str(entry.buffer)}, dtype: ${str(p.dtype)}, shape: ${shapeFn(p.shape)}, binds: [${binds.join(', ')}] }`;
    }),
  );
  table(
    'OUTPUTS',
    'readonly TensorPlan[]',
    cp.program.outputs.map((o) => `{ name: ${str(o.name)}, buffer: ${str(cp.outputs.get(o.name) ?? o.name)}, dtype: ${str(o.node.dtype)}, shape: ${shapeFn(o.node.shape)} }`),
  );
  const kernelRow = (ck: CompiledKernel) => {
    const k = ck.kernel;
    const bindings = k.buffers.map((b, i) => `{ buffer: ${str(ck.bindings[i]!)}, type: ${str(b.access === 'read' ? 'read-only-storage' : 'storage')} }`);
    return `{ name: ${str(k.name)}, code: ${constName(k.name)}, workgroupSize: ${k.workgroupSize}, flexible: ${k.flexibleWorkgroup === true}, threads: ${dimFn(dimToTS(k.threads), [k.threads])}, bindings: [${bindings.join(', ')}], uniforms: [${k.uniforms.map(str).join(', ')}] }`;
  };
  const whenFn = (b: CompiledProgram) => {
    const tests = [
      ...Object.entries(b.specialized ?? {}).map(([d, v]) => `${dimToTS({ sym: d })} === ${v}`),
      ...Object.entries(b.assumed ?? {}).map(([d, m]) => `${dimToTS({ sym: d })} % ${m} === 0`),
    ];
    return tests.length ? `(d) => ${tests.join(' && ')}` : '() => true';
  };
  const buildRow = (b: CompiledProgram) =>
    [
      `{`,
      `    version: ${str(b.version)},`,
      `    when: ${whenFn(b)},`,
      `    buffers: [${b.buffers.map((x) => `{ name: ${str(x.name)}, bytes: ${productFn(x.shape, wgsl.bytes(x.dtype))} }`).join(', ')}],`,
      `    outputBuffers: [${b.program.outputs.map((o) => str(b.outputs.get(o.name) ?? o.name)).join(', ')}],`,
      `    kernels: [\n${b.kernels.map((ck) => `      ${kernelRow(ck)},`).join('\n')}\n    ],`,
      `  }`,
    ].join('\n');
  table('BUILDS', 'readonly BuildPlan[]', builds.map(buildRow));

  statements.push(RUNTIME.trim());

  const inputRecord = cp.program.inputs.map((p) => `${prop(p.name)}: inputs[${str(p.name)}]`).join(', ');
  const outputRecord = manifest.outputs.map((o) => `${prop(o.name)}: out[${str(o.name)}] as ${P}Outputs[${str(o.name)}]`).join(', ');
  statements.push({
    kind: SK.Function,
    name: `run${P}`,
    isExported: true,
    isAsync: true,
    docs: [
      `Runs ${cp.name} on \`device\`: dims are bound from the input shapes (pass \`dims\` for any that no input names).` +
        ' Throws an Error naming the input or dim on a bad shape, size or array type, and when WebGPU rejects the launch.',
    ],
    parameters: [
      { name: 'device', type: 'GPUDevice' },
      { name: 'inputs', type: `${P}Inputs` },
      { name: 'dims', type: `Partial<${P}Dims>`, initializer: '{}' },
    ],
    returnType: `Promise<${P}Outputs>`,
    statements: [`const out = await executeProgram(device, { ${inputRecord} }, dims);`, `return { ${outputRecord} };`],
  });

  sf.addStatements(statements.flatMap((st, i) => (i === 0 ? [st] : [(w: CodeBlockWriter) => w.blankLineIfLastNot(), st])));
  sf.formatText({ indentSize: 2, convertTabsToSpaces: true, ensureNewLineAtEndOfFile: true });
  const text = sf.getFullText();
  project.removeSourceFile(sf);
  return text;
}
