/**
 * Launch chaining: a run of consecutive small kernels becomes one kernel of one workgroup. A decode
 * step's kernels launch a few dozen invocations each; on a driver where a launch costs more than
 * the work (lavapipe: tens of µs a dispatch, against a one-token GEMV's few µs of arithmetic; a
 * GPU: a few µs against less) the launches are the time, and fusion cannot merge them: each matmul
 * needs all of its input before it starts. One workgroup can wait for itself, though. The chained
 * kernel runs each kernel's body in a loop over that kernel's invocations (invocation `lid`,
 * `lid + wg`, ...) and separates the kernels by a storage barrier, so a kernel reads what the one
 * before it wrote, as separate launches would. Correct at any dims (the loops stride); fast where
 * every kernel fits the workgroup or nearly: chaining is asked for with the dims the program runs
 * at, and applies only to kernels launching fewer than `below` invocations there (pipeline.ts
 * applies it to the build dispatch picks at those dims). Whether it pays is the device's business:
 * the device profile (src/tune/profile.ts) measures it.
 */
import { fail } from '../errors.js';
import { knownDim, type Dim, type DimBindings } from '../ir/dims.js';
import { forEachKExpr, kstmtBodies, mapKStmts, workgroupIndependent, type KBuffer, type KExpr, type KStmt, type Kernel } from '../ir/kernel.js';
import type { FusedGroup } from './fuse.js';

export interface ChainOptions {
  /** The dims the program runs at (merged under a build's own specialization); kernels whose launch size they do not fix are not chained. */
  readonly dims?: DimBindings;
  /** Chain kernels launching fewer invocations than this (default CHAIN_BELOW). */
  readonly below?: number;
}

/** Kernels launching fewer invocations than this chain by default: a workgroup's worth (WebGPU's guaranteed 256). */
export const CHAIN_BELOW = 256;
/** The smallest workgroup a chained kernel takes (a warp, a SIMD group's multiple). */
const CHAIN_MIN_WORKGROUP = 32;

/** The slice of a compiled kernel chaining reads and writes (pipeline.ts's CompiledKernel). */
export interface ChainLink {
  readonly kernel: Kernel;
  readonly bindings: readonly string[];
  readonly group: FusedGroup;
  /** Every group a chained kernel runs, in order (absent: just `group`). */
  readonly groups?: readonly FusedGroup[];
}

const lit = (v: number): KExpr => ({ k: 'lit', t: 'i32', v });
const bin = (op: 'add' | 'sub' | 'mul' | 'div', a: KExpr, b: KExpr): KExpr => ({ k: 'bin', t: 'i32', op, a, b });

/** A dim as an i32 expression: constants from `consts`, other symbols as uniforms (collected in `uniforms`). */
function dimExpr(d: Dim, consts: DimBindings, uniforms: Set<string>): KExpr {
  if (typeof d === 'number') return lit(d);
  if ('sym' in d) {
    const v = consts[d.sym];
    if (v !== undefined) return lit(v);
    uniforms.add(d.sym);
    return { k: 'uniform', name: d.sym };
  }
  const a = dimExpr(d.a, consts, uniforms);
  const b = dimExpr(d.b, consts, uniforms);
  switch (d.op) {
    case '+': return bin('add', a, b);
    case '-': return bin('sub', a, b);
    case '*': return bin('mul', a, b);
    case '/': return bin('div', a, b);
    case 'cdiv': return bin('div', bin('sub', bin('add', a, b), lit(1)), b);
  }
}

/** Every name a body declares (lets and loop counters). */
function declared(body: readonly KStmt[], out: Set<string>): Set<string> {
  for (const s of body) {
    if (s.k === 'let') out.add(s.name);
    if (s.k === 'for') out.add(s.v);
    kstmtBodies(s).forEach((b) => declared(b, out));
  }
  return out;
}

/**
 * One kernel running `links` in order in one workgroup. `consts` are the build's specialized dims
 * (the loop bounds print them as constants, as the kernels do).
 */
function chainOf(links: readonly ChainLink[], name: string, consts: DimBindings, threads: readonly number[], below: number): ChainLink {
  const wg = Math.min(below, Math.max(CHAIN_MIN_WORKGROUP, 2 ** Math.ceil(Math.log2(Math.max(...threads)))));
  const uniforms = new Set<string>();
  const buffers = new Map<string, KBuffer>();
  const written = new Set<string>();
  const read = new Set<string>();
  const body: KStmt[] = [];
  const names = new Set<string>();
  for (const l of links) declared(l.kernel.body, names);
  let n = 0;
  const fresh = (): string => {
    while (names.has(`chain${n}`)) n++;
    return `chain${n++}`;
  };
  links.forEach((l, i) => {
    const k = l.kernel;
    k.uniforms.forEach((u) => uniforms.add(u));
    k.buffers.forEach((b, j) => {
      const bound = l.bindings[j]!;
      if (bound !== b.name) fail('E_INTERNAL', `chain: kernel '${k.name}' binds '${bound}' as '${b.name}'`);
      const was = buffers.get(b.name);
      if (b.access === 'read_write') written.add(b.name);
      buffers.set(b.name, was && was.access === 'read_write' ? was : b);
    });
    forEachKExpr(k.body, (e) => {
      if (e.k === 'load' || e.k === 'load4') read.add(e.buf);
    });
    const t = fresh();
    const tv: KExpr = { k: 'var', t: 'i32', name: t };
    const phase = mapKStmts(k.body, (e) => (e.k === 'tid' ? tv : e));
    if (i > 0) body.push({ k: 'barrier', storage: true });
    body.push({ k: 'for', v: t, from: { k: 'lid' }, to: dimExpr(k.threads, consts, uniforms), step: wg, body: phase });
  });
  // a buffer one kernel writes and another reads is both; the manifest counts it read and written
  const bufs = [...buffers.values()].map((b): KBuffer => (b.access === 'read_write' || written.has(b.name) ? { ...b, access: 'read_write', ...(read.has(b.name) ? { inPlace: true as const } : {}) } : b));
  const kernel: Kernel = {
    name,
    buffers: bufs,
    uniforms: [...uniforms].sort(),
    workgroupSize: wg,
    threads: wg,
    shared: [],
    body,
    schedule: { kind: 'chain', params: { kernels: links.length, workgroupSize: wg } },
  };
  return { kernel, bindings: bufs.map((b) => b.name), group: links[0]!.group, groups: links.flatMap((l) => l.groups ?? [l.group]) };
}

/**
 * `links` with every run of two or more consecutive chainable kernels, each launching fewer than
 * `below` invocations at `dims` (under `consts`, the build's specialized dims), joined into one
 * kernel named `${prefix}chain<i>`; a run stops where its buffers would pass `maxBuffers`.
 */
export function chainKernels<L extends ChainLink>(links: readonly L[], opts: ChainOptions, consts: DimBindings, prefix: string, maxBuffers: number): (L | ChainLink)[] {
  const below = opts.below ?? CHAIN_BELOW;
  const env = { ...opts.dims, ...consts };
  const small = (l: L): number | undefined => {
    // only a kernel that reads no invocation index but `tid` runs the same in a loop of one workgroup
    if (!workgroupIndependent(l.kernel)) return undefined;
    const t = knownDim(l.kernel.threads, env);
    return t !== undefined && t < below ? t : undefined;
  };
  const out: (L | ChainLink)[] = [];
  let run: { link: L; threads: number }[] = [];
  let runBuffers = new Set<string>();
  let chains = 0;
  const flush = (): void => {
    if (run.length >= 2) out.push(chainOf(run.map((r) => r.link), `${prefix}chain${chains++}`, consts, run.map((r) => r.threads), below));
    else out.push(...run.map((r) => r.link));
    run = [];
    runBuffers = new Set();
  };
  for (const l of links) {
    const t = small(l);
    if (t === undefined) {
      flush();
      out.push(l);
      continue;
    }
    const joined = new Set([...runBuffers, ...l.bindings]);
    if (joined.size > maxBuffers) flush();
    run.push({ link: l, threads: t });
    l.bindings.forEach((b) => runBuffers.add(b));
  }
  flush();
  return out;
}
