/**
 * Runs a compiled program on any backend: binds symbolic dims from the inputs' shapes, checks every
 * input against its declared dtype and shape, picks the build for those dims (multi-versioning),
 * allocates its planned buffers, launches its kernels in order and reads the outputs back.
 */
import { fail } from '../errors.js';
import { evalShape, numel, shapeToString } from '../ir/dims.js';
import { selectVersion, type CompiledProgram } from '../passes/pipeline.js';
import { hostMatches, hostTypeName, type BackendRuntime, type DeviceBuffer, type HostArray } from './backend.js';

export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: HostArray;
}

/** Binds every symbolic dim from the input shapes (plus `explicit`), checking consistency. */
export function bindDims(cp: CompiledProgram, inputs: Readonly<Record<string, HostTensor>>, explicit: Readonly<Record<string, number>> = {}): Record<string, number> {
  const dims: Record<string, number> = { ...explicit };
  for (const p of cp.program.inputs) {
    const t = inputs[p.name];
    if (!t) fail('E_BUFFER', `program '${cp.name}' input '${p.name}' is missing`);
    if (t.shape.length !== p.shape.length) fail('E_BUFFER', `input '${p.name}' has rank ${t.shape.length}, expected ${shapeToString(p.shape)}`);
    p.shape.forEach((d, i) => {
      if (typeof d === 'object' && 'sym' in d) {
        const prev = dims[d.sym];
        if (prev !== undefined && prev !== t.shape[i]) fail('E_BUFFER', `dim ${d.sym} is ${prev} but input '${p.name}' axis ${i} is ${t.shape[i]}`);
        dims[d.sym] = t.shape[i]!;
      }
    });
  }
  for (const p of cp.program.inputs) {
    const t = inputs[p.name]!;
    const want = evalShape(p.shape, dims);
    if (want.some((d, i) => d !== t.shape[i])) fail('E_BUFFER', `input '${p.name}' has shape [${t.shape.join(', ')}], expected ${shapeToString(p.shape)} = [${want.join(', ')}]`);
    if (t.data.length !== numel(want)) fail('E_BUFFER', `input '${p.name}' has ${t.data.length} values for shape [${want.join(', ')}] (${numel(want)})`);
    if (!hostMatches(p.dtype, t.data)) fail('E_BUFFER', `input '${p.name}' is ${p.dtype}: pass a ${hostTypeName(p.dtype)}, got ${t.data.constructor.name}`);
  }
  for (const [k, v] of Object.entries(dims)) if (!Number.isInteger(v) || v < 1) fail('E_BUFFER', `dim ${k} must be a positive integer, got ${v}`);
  for (const [k, v] of Object.entries(cp.specialized ?? {})) {
    if (dims[k] !== v) fail('E_BUFFER', `program '${cp.name}' was compiled for ${k} = ${v} (specialize) but is called with ${k} = ${dims[k]}; compile it without specialize, or for these dims`);
  }
  for (const [k, m] of Object.entries(cp.assumed ?? {})) {
    if (dims[k]! % m !== 0) fail('E_BUFFER', `program '${cp.name}' was compiled assuming ${k} is a multiple of ${m} (assume) but is called with ${k} = ${dims[k]}; compile it without assume, or pad ${k}`);
  }
  return dims;
}

/** Buffers allocated once for a program at fixed dims, reusable across runs (benchmarks). */
export interface Prepared {
  readonly dims: Readonly<Record<string, number>>;
  /** The build that runs at these dims (`selectVersion`): its kernels and buffers. */
  readonly program: CompiledProgram;
  readonly buffers: ReadonlyMap<string, DeviceBuffer>;
  launch(): void;
  upload(inputs: Readonly<Record<string, HostTensor>>): void;
  read(): Promise<Record<string, HostTensor>>;
  free(): void;
}

export function prepare(compiled: CompiledProgram, rt: BackendRuntime, inputs: Readonly<Record<string, HostTensor>>, explicitDims: Readonly<Record<string, number>> = {}): Prepared {
  const dims = bindDims(compiled, inputs, explicitDims);
  const cp = selectVersion(compiled, dims);
  const buffers = new Map<string, DeviceBuffer>();
  for (const b of cp.buffers) buffers.set(b.name, rt.alloc(b.dtype, numel(evalShape(b.shape, dims))));
  const inputBuffer = new Map(cp.program.inputs.map((p) => [p.name, cp.buffers.find((b) => b.role === 'input' && b.name === p.name.replace(/[^A-Za-z0-9_]/g, '_'))!.name]));
  const self: Prepared = {
    dims,
    program: cp,
    buffers,
    upload(ins) {
      for (const [name, bname] of inputBuffer) rt.upload(buffers.get(bname)!, ins[name]!.data);
    },
    launch() {
      for (const k of cp.kernels) rt.run(k.kernel, k.bindings.map((n) => buffers.get(n)!), dims);
    },
    async read() {
      const out: Record<string, HostTensor> = {};
      for (const o of cp.program.outputs) {
        const bname = cp.outputs.get(o.name)!;
        out[o.name] = { shape: evalShape(o.node.shape, dims), data: await rt.download(buffers.get(bname)!) };
      }
      return out;
    },
    free() {
      for (const b of buffers.values()) rt.free(b);
    },
  };
  self.upload(inputs);
  return self;
}

/** One-shot: allocate, upload, run, read back, free. */
export async function execute(cp: CompiledProgram, rt: BackendRuntime, inputs: Readonly<Record<string, HostTensor>>, dims: Readonly<Record<string, number>> = {}): Promise<Record<string, HostTensor>> {
  const p = prepare(cp, rt, inputs, dims);
  try {
    p.launch();
    return await p.read();
  } finally {
    p.free();
  }
}

