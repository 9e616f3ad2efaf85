/**
 * The lowering sequence, top to bottom: simplify -> fuse -> plan buffers -> schedule. Each stage is
 * named so the CLI can dump the IR after it (`--dump-after fuse`), as Triton's stage registry does.
 */
import { fail, TesseraError } from '../errors.js';
import { shapeSymbols, shapeToString } from '../ir/dims.js';
import { isFloat } from '../ir/dtype.js';
import type { Node, Program } from '../ir/graph.js';
import { workgroupIndependent, type Kernel } from '../ir/kernel.js';
import { printKernel } from '../ir/kernel-print.js';
import { chainKernels, type ChainOptions } from './chain.js';
import { fuse, type FusedGroup } from './fuse.js';
import { planBuffers, type BufferPlan, type PlannedBuffer } from './memory.js';
import { DEFAULT_PARAMS, matmulDims, scheduleGroup, type ScheduleParams } from './schedule.js';
import { MMA_DEFAULTS, mmaApplies, tensorCoresTake } from './schedule-mma.js';
import { stageGatherTables } from './stage.js';
import { rulesFor, simplify } from './simplify.js';
import { internedExprs, resetExprs } from './lexpr.js';

export interface CompiledKernel {
  readonly kernel: Kernel;
  /** Plan buffer names, one per kernel.buffers entry. */
  readonly bindings: readonly string[];
  /** The graph node the kernel writes and the group it came from, for reports. */
  readonly group: FusedGroup;
  /** A chained kernel's groups, in the order it runs them (chain.ts); absent: just `group`. */
  readonly groups?: readonly FusedGroup[];
}

/** The groups a compiled kernel runs: its own, or every group of a chain. */
export const kernelGroups = (ck: CompiledKernel): readonly FusedGroup[] => ck.groups ?? [ck.group];

export interface CompiledProgram {
  readonly name: string;
  readonly program: Program;
  readonly source: Program; // before simplification
  readonly buffers: readonly PlannedBuffer[];
  readonly kernels: readonly CompiledKernel[];
  readonly outputs: ReadonlyMap<string, string>;
  /** Dims the kernels were compiled for as constants (`CompileOptions.specialize`); dispatch checks them. */
  readonly specialized?: Readonly<Record<string, number>>;
  /** What dims the kernels assume to be multiples of (`CompileOptions.assume`); dispatch checks them. */
  readonly assumed?: Readonly<Record<string, number>>;
  /** This build among a program's versions: 'general', or its conditions ('T=1', 'T%16'). */
  readonly version: string;
  /**
   * Builds of the same program for dims that allow faster kernels (see `compile`), each with its
   * `specialized` or `assumed` conditions: dispatch (`selectVersion`) runs the first whose conditions
   * the dims meet, else this build, which runs at any dims.
   */
  readonly versions?: readonly CompiledProgram[];
}

export interface CompileOptions {
  readonly params?: Partial<ScheduleParams>;
  /**
   * Dims known at compile time: the kernels use them as constants (index arithmetic folds, clamps
   * that cannot bind disappear), and the program only runs at exactly these values.
   */
  readonly specialize?: Readonly<Record<string, number>>;
  /**
   * Dims assumed to be multiples of the given numbers (`{ T: 16 }`): tests on them fold (whole matmul
   * tiles, vec4 paths without a scalar fallback), and the program only runs at such dims.
   */
  readonly assume?: Readonly<Record<string, number>>;
  /**
   * Multi-versioning (on unless `false`, `specialize` or `assume` is given): a program with matmuls
   * over a symbolic row dim (tokens) gets extra builds for one row (`T=1`, a decode step: fusion and
   * schedules see one row), for aligned dims (`T%16` and every other dim a multiple of 4: whole
   * tiles, vec4 paths with no scalar fallback) and for aligned rows (`T%16`: whole tiles), kept
   * where their kernels differ from the general build's and from the next version's.
   */
  readonly versions?: boolean;
  /** Per-group schedule parameters (an autotuner's choices), over `params`; `version` names the build. */
  readonly groupParams?: (group: FusedGroup, index: number, version: string) => Partial<ScheduleParams> | undefined;
  /**
   * The target has tensor cores (CUDA, sm_70+): f16 x f16 matmuls default to the mma schedule
   * (ScheduleParams.mma). Off by default, since the CPU and WebGPU backends run that schedule as a
   * slow emulation; `tessera compile` turns it on when every target is CUDA or PyTorch.
   */
  readonly tensorCores?: boolean;
  /** With `tensorCores`: bf16 x bf16 matmuls default to the mma schedule too (CUDA sm_80+). */
  readonly bf16TensorCores?: boolean;
  /** Storage buffers one kernel may bind; wider groups are split (default 8, WebGPU's minimum). */
  readonly maxStorageBuffers?: number;
  /** Called with a text dump after each stage whose name it asks for. */
  readonly dumpAfter?: readonly string[];
  readonly onDump?: (stage: string, text: string) => void;
  /**
   * Launch chaining (chain.ts): in the build dispatch picks at `dims` (every build without dims),
   * runs of consecutive kernels that each launch fewer than `below` invocations there (with the
   * build's own specialized dims over them) run as one kernel of one workgroup. Off by default: it
   * pays where a launch costs more than a small kernel's work (the device profile measures that).
   * Applied after scheduling: `--dump-after schedule` shows the kernels before it.
   */
  readonly chain?: ChainOptions;
  /** Printers for the graph text form (injected to keep passes free of the parser). */
  readonly printProgram?: (p: Program) => string;
}

export const STAGES = ['simplify', 'fuse', 'memory', 'schedule', 'chain'] as const;
export type Stage = (typeof STAGES)[number];

function printGroups(groups: readonly FusedGroup[]): string {
  return groups
    .map((g, i) => `group ${i} ${g.kind}${g.kind === 'row' ? `(${g.rowAxes})` : ''}: writes %${g.root.id} (${g.root.op})${(g.extra ?? []).map((x) => `, %${x.id} (${x.op})`).join('')}, inlines [${g.inlined.map((n) => `%${n.id} ${n.op}`).join(', ')}], reads [${g.reads.map((n) => `%${n.id}`).join(', ')}]`)
    .join('\n');
}

/** The specialization's (assumption's, chain's) dims, checked: each names a dim of the program and is a positive integer. */
function checkDims(p: Program, dims: Readonly<Record<string, number>>, what: 'specialize' | 'assume' | 'chain'): Readonly<Record<string, number>> {
  const known = new Set<string>();
  for (const i of p.inputs) shapeSymbols(i.shape, known);
  for (const [k, v] of Object.entries(dims)) {
    if (!known.has(k)) fail('E_ARG', `${what}: program '${p.name}' has no dim '${k}' (dims: ${[...known].join(', ') || 'none'})`);
    if (!Number.isInteger(v) || v < 1) fail('E_ARG', `${what}: dim ${k} must be a positive integer, got ${v}`);
  }
  return { ...dims };
}

/** A build's name from its conditions. */
function versionName(specialized?: Readonly<Record<string, number>>, assumed?: Readonly<Record<string, number>>): string {
  const parts = [...Object.entries(specialized ?? {}).map(([k, v]) => `${k}=${v}`), ...Object.entries(assumed ?? {}).map(([k, v]) => `${k}%${v}`)];
  return parts.length ? parts.join(' ') : 'general';
}

/** Whether dims meet a build's conditions. */
export function meetsVersion(cp: CompiledProgram, dims: Readonly<Record<string, number>>): boolean {
  return Object.entries(cp.specialized ?? {}).every(([k, v]) => dims[k] === v) && Object.entries(cp.assumed ?? {}).every(([k, m]) => dims[k] !== undefined && dims[k]! % m === 0);
}

/** The build of `cp` that dispatch runs at `dims`: the first version whose conditions they meet, else `cp`. */
export function selectVersion(cp: CompiledProgram, dims: Readonly<Record<string, number>>): CompiledProgram {
  return cp.versions?.find((v) => meetsVersion(v, dims)) ?? cp;
}

/** Every build of a compiled program: the general one first, then its versions. */
export function allBuilds(cp: CompiledProgram): readonly CompiledProgram[] {
  return [cp, ...(cp.versions ?? [])];
}

/** Rows a version aligns a token dim to: the tallest default register tile (16 rows) divides it. */
export const ALIGN_ROWS = 16;

/**
 * What the version for aligned dims assumes of every other symbolic dim: a multiple of 4 (vec4
 * paths with no scalar fallback; a dim like 344 or 172, common in small models, qualifies).
 */
export const ALIGN_COLS = 4;

/**
 * The program's token dims: symbolic dims that are the row count (M) of some matmul and never its K
 * or N (a decode step runs them at 1).
 */
function tokenDims(groups: readonly FusedGroup[]): string[] {
  const rows = new Set<string>();
  const inner = new Set<string>();
  for (const g of groups) {
    if (g.kind !== 'matmul') continue;
    const { M, N, K } = matmulDims(g.contraction ?? g.root);
    if (typeof M === 'object' && 'sym' in M) rows.add(M.sym);
    for (const d of [N, K]) shapeSymbols([d], inner);
  }
  return [...rows].filter((d) => !inner.has(d)).sort();
}

/**
 * Defaults that depend on the group: a matmul whose B is decoded from packed words takes 8 output
 * columns per invocation (8 words in flight; measured 1.2-1.3x over 4 on both software drivers).
 */
function groupDefaults(group: FusedGroup, mma: boolean): Partial<ScheduleParams> {
  // rows: vec4 loads and stores where the row length is a multiple of 4, 8 lanes (softmax 4096x1024
  // 1.5x the scalar 8 lanes on lavapipe, 1.2x on SwiftShader; layernorm 1.5x and 1.15x the scalar 4)
  if (group.kind === 'row') return { vec: 4, ur: 8 };
  if (group.kind !== 'matmul') return {};
  // f16 x f16 on tensor cores: MMA_DEFAULTS' block of four warps
  if (mma && mmaApplies(group)) return { mma: 1, ...MMA_DEFAULTS };
  if (group.inlined.some((n) => n.op === 'compute')) return { tn: 8 };
  // float operands: the vec4 register-blocked schedule (it falls back to the scalar path where its
  // dims are not multiples of 4, or B is not f32). B a plain [K, N] buffer: 8x8 per invocation
  // (about 2x the scalar 4x4 on both software drivers for f32; for f16, 4-5x the one row by four
  // columns it had before: 1024³ on lavapipe 110 vs 550 ms, on SwiftShader 0.60 vs 2.83 s);
  // otherwise (B read as [N, K]: weights stored [out, in], mostly multiplied by one token's
  // activations) vec4 along K, one row by 4 columns (as fast as the hand-written GEMV on lavapipe;
  // taller tiles recompute rows when M is 1 at run time).
  const mm = group.contraction ?? group.root;
  const B = mm.args[1]!;
  return group.reads.includes(B) && isFloat(B.dtype) ? { tm: 8, tn: 8, vec: 4 } : { tm: 1, tn: 4, vec: 4 };
}

/**
 * Lowering expressions are interned process-wide (equal ones are one object, which is what makes
 * CSE and hoisting cheap) and programs compiled later reuse them. Past this many, compile() forgets
 * them before its next program: what a long-lived process keeps stays bounded (about 0.5 KB each).
 */
let loweringCacheLimit = 250_000;
let compiling = 0;

/** Sets how many interned lowering expressions a process keeps between compiles (see compile()). */
export function setLoweringCacheLimit(n: number): void {
  if (!(Number.isInteger(n) && n >= 0)) fail('E_ARG', `setLoweringCacheLimit: expected a non-negative integer, got ${String(n)}`);
  loweringCacheLimit = n;
}

/**
 * Compiles a program: the general build (any dims), and with `versions` (the default) faster builds
 * for a decode step and for aligned dims, chosen at dispatch by `selectVersion`.
 */
export function compile(source: Program, opts: CompileOptions = {}): CompiledProgram {
  // only between programs: no lowering is under way
  if (compiling === 0 && internedExprs() > loweringCacheLimit) resetExprs();
  compiling++;
  try {
    return compileVersions(source, opts);
  } finally {
    compiling--;
  }
}

/**
 * `cp` with launch chaining applied (CompileOptions.chain) where it is asked for, to the build
 * dispatch picks at the chain's dims: a build that runs at other dims (the general one, when a
 * version takes these) keeps its launches. Without dims, to every build (only launches whose sizes
 * are constants there chain).
 */
function withChains(source: Program, general: CompiledProgram, versions: readonly CompiledProgram[], opts: CompileOptions): { general: CompiledProgram; versions: CompiledProgram[] } {
  const chain = opts.chain;
  if (!chain) return { general, versions: [...versions] };
  const dims = chain.dims && checkDims(source, chain.dims, 'chain');
  if (chain.below !== undefined && !(Number.isInteger(chain.below) && chain.below >= 2)) fail('E_ARG', `chain: below must be an integer >= 2 (invocations per launch), got ${chain.below}`);
  const picked = dims ? (versions.find((v) => meetsVersion(v, dims)) ?? general) : undefined;
  const chained = (cp: CompiledProgram): CompiledProgram =>
    picked && cp !== picked ? cp : { ...cp, kernels: chainKernels(cp.kernels, chain, cp.specialized ?? {}, `${cp.name}_`, opts.maxStorageBuffers ?? 8) };
  return { general: chained(general), versions: versions.map(chained) };
}

function compileVersions(source: Program, opts: CompileOptions): CompiledProgram {
  const front = frontEnd(source, opts);
  const built = compileBuildsOf(source, opts, front);
  const { general, versions } = withChains(source, built.general, built.versions.map((v) => v.cp), opts);
  const tagged = versions.map((v, i) => tagKernels(v, built.versions[i]!.tag));
  // the chained kernels of every build (the stages before print the general build alone)
  dumper(opts)('chain', () => {
    if (!opts.chain) return '// launch chaining off (CompileOptions.chain, --chain)';
    const chains = [general, ...tagged].flatMap((b) => b.kernels.filter((k) => k.groups).map((k) => `// build ${b.version}\n${printKernel(k.kernel)}`));
    return chains.length ? chains.join('\n\n') : '// no kernels chained: no run of two or more launches small enough at these dims';
  });
  return tagged.length ? { ...general, versions: tagged } : general;
}

/** The general build and the versions kept (see `compile`), before chaining and tagging. */
function compileBuildsOf(source: Program, opts: CompileOptions, front: FrontEnd): { general: CompiledProgram; versions: { cp: CompiledProgram; tag: string }[] } {
  const general = compileBuild(source, opts, front);
  if (opts.versions === false || general.specialized || general.assumed) return { general, versions: [] };
  const rows = tokenDims(general.kernels.flatMap(kernelGroups));
  if (rows.length === 0) return { general, versions: [] };
  const text = (cp: CompiledProgram) => cp.kernels.map((k) => printKernel(k.kernel)).join('\n');
  const base = text(general);
  // the other symbolic dims (columns, K, heads...): the version for aligned dims assumes them
  // multiples of ALIGN_COLS too (vec4 paths without their scalar fallback)
  const all = new Set<string>();
  for (const i of source.inputs) shapeSymbols(i.shape, all);
  const cols = [...all].filter((d) => !rows.includes(d)).sort();
  const alignRows = Object.fromEntries(rows.map((d) => [d, ALIGN_ROWS]));
  const candidates: [CompileOptions, string][] = [
    [{ specialize: Object.fromEntries(rows.map((d) => [d, 1])) }, rows.map((d) => `${d}1`).join('_')],
    ...(cols.length ? [[{ assume: { ...alignRows, ...Object.fromEntries(cols.map((d) => [d, ALIGN_COLS])) } }, 'aligned_all'] as [CompileOptions, string]] : []),
    [{ assume: alignRows }, 'aligned'],
  ];
  // no dump from the versions: the stages dumped are the general build's
  const built = candidates.flatMap(([c, tag]) => {
    try {
      const o = { ...opts, dumpAfter: [], ...c };
      // an assumption changes only the schedules: the general build's groups and buffers serve it
      return [{ cp: compileBuild(source, o, c.specialize ? frontEnd(source, o) : front), tag }];
    } catch (e) {
      // a program that cannot be built for these dims (a shape needing more rows) has no such version
      if (e instanceof TesseraError && e.code !== 'E_INTERNAL') return [];
      throw e;
    }
  });
  // a version is kept where its kernels differ from the general build's and from those of every
  // later (broader) version's
  const texts = built.map((v) => text(v.cp));
  return { general, versions: built.filter((_, i) => texts[i] !== base && !texts.slice(i + 1).includes(texts[i]!)) };
}

/**
 * A version's kernels renamed after its conditions (`mm_matmul_out__M1`, `..__aligned_all`,
 * `..__aligned`), so every kernel of a program has its own name across builds (one CUDA unit, one
 * folder of files).
 */
function tagKernels(cp: CompiledProgram, tag: string): CompiledProgram {
  return { ...cp, kernels: cp.kernels.map((k) => ({ ...k, kernel: { ...k.kernel, name: `${k.kernel.name}__${tag.replace(/[^A-Za-z0-9_]/g, '_')}` } })) };
}

/** Simplify, fuse and plan buffers: what a build's schedules start from. */
interface FrontEnd {
  readonly program: Program;
  readonly groups: readonly FusedGroup[];
  readonly plan: BufferPlan;
}

function dumper(opts: CompileOptions): (stage: Stage, text: () => string) => void {
  return (stage, text) => {
    if (opts.dumpAfter?.includes(stage)) opts.onDump?.(stage, text());
  };
}

function frontEnd(source: Program, opts: CompileOptions): FrontEnd {
  for (const s of opts.dumpAfter ?? []) if (!(STAGES as readonly string[]).includes(s)) fail('E_ARG', `unknown stage '${s}'; stages are ${STAGES.join(', ')}`);
  const dump = dumper(opts);

  // Fusion's cost model reads the dims the program is specialized to; the groups work at any dims.
  const hint = opts.specialize && Object.keys(opts.specialize).length > 0 ? opts.specialize : undefined;
  const program = simplify(source, rulesFor(hint));
  dump('simplify', () => (opts.printProgram ? opts.printProgram(program) : program.outputs.map((o) => `${o.name} = %${o.node.id}`).join('\n')));

  const { groups } = fuse(program, { maxBuffers: opts.maxStorageBuffers ?? 8, ...(hint ? { dims: hint } : {}) });
  dump('fuse', () => printGroups(groups));

  const plan: BufferPlan = planBuffers(program, groups);
  dump('memory', () => plan.buffers.map((b) => `${b.role} ${b.name}: ${b.dtype}${shapeToString(b.shape)}`).join('\n'));
  return { program, groups, plan };
}

/** Schedules every group of `front` under the build's specialization, assumption and parameters. */
function compileBuild(source: Program, opts: CompileOptions, { program, groups, plan }: FrontEnd): CompiledProgram {
  const specialized = opts.specialize && Object.keys(opts.specialize).length > 0 ? checkDims(source, opts.specialize, 'specialize') : undefined;
  const assumed = opts.assume && Object.keys(opts.assume).length > 0 ? checkDims(source, opts.assume, 'assume') : undefined;
  const version = versionName(specialized, assumed);
  const generic = {
    readOf: (n: Node) => plan.of.get(n) ?? fail('E_INTERNAL', `no buffer for %${n.id}`),
    writeOf: (n: Node) => plan.writes.get(n) ?? fail('E_INTERNAL', `no output buffer for %${n.id}`),
    ...(assumed ? { assume: assumed } : {}),
  };
  const constant = specialized ? { ...generic, dims: specialized } : generic;
  const used = new Map<string, number>();
  const kernels = groups.map((group, i) => {
    const chosen = { ...opts.params, ...opts.groupParams?.(group, i, version) };
    const mma = chosen.mma !== undefined ? chosen.mma !== 0 : tensorCoresTake(group, opts);
    const gp: ScheduleParams = { ...DEFAULT_PARAMS, ...groupDefaults(group, mma), ...chosen };
    // the default vec4 path needs tn % 4 == 0: a tile chosen without saying `vec` stays scalar
    if (chosen.vec === undefined && gp.tn % 4 !== 0) gp.vec = 0;
    const kept = specialized !== undefined && gp.constDims === 0;
    const made = scheduleGroup(group, kept ? generic : constant, gp);
    const scheduled = kept ? { ...made, schedule: { ...made.schedule, params: { ...made.schedule.params, constDims: 0 } } } : made;
    // a warp kernel's lanes would copy a table 32 times over: it keeps its tables in global memory
    const staged = group.kind === 'matmul' && gp.stage !== 0 && !scheduled.warp ? stageGatherTables(scheduled) : scheduled;
    // a default workgroup size on a kernel that does not depend on it: narrow launches may shrink it
    const k = chosen.workgroupSize === undefined && workgroupIndependent(staged) ? { ...staged, flexibleWorkgroup: true as const } : staged;
    const count = used.get(k.name) ?? 0;
    used.set(k.name, count + 1);
    const kernel = count ? { ...k, name: `${k.name}_${count}` } : k;
    return { kernel: { ...kernel, name: `${source.name}_${kernel.name}` }, bindings: kernel.buffers.map((b) => b.name), group };
  });
  dumper(opts)('schedule', () => kernels.map((k) => printKernel(k.kernel)).join('\n\n'));

  return { name: source.name, program, source, buffers: plan.buffers, kernels, outputs: plan.outputs, version, ...(specialized ? { specialized } : {}), ...(assumed ? { assumed } : {}) };
}
