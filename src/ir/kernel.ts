/**
 * Kernel IR: what every backend prints. A kernel is a 1-D grid of `threads` invocations in
 * workgroups of `workgroupSize`; the runtime folds the grid into x/y to respect per-dimension limits,
 * so kernels only see a linear thread id. Bodies are structured statements over scalar expressions.
 *
 * Types: compute happens in f32 (floats, whatever the storage), i32, u32 and bool. A load from an
 * f16 buffer yields f32 and a store to it rounds; a bool buffer is stored as u32 0/1. Nothing here is
 * WGSL- or CUDA-specific: backends legalize these into their own spellings.
 */
import type { DType } from './dtype.js';
import type { Dim, Shape } from './dims.js';

export type Scalar = 'f32' | 'i32' | 'u32' | 'bool';
/**
 * Value types: the scalars, plus `vec4f` (four f32 lanes) for the vector forms below, which only
 * the vectorized matmul schedule produces (locals, `load4`, `splat`, `comp`, `fma4`, `vec4`, `bin4`, `store4`).
 */
export type KType = Scalar | 'vec4f';

export type KUnary =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sin' | 'cos' | 'tanh' | 'erf'
  | 'floor' | 'ceil' | 'not' | 'isnan'
  // an f32 rounded to the nearest f16 or bf16 value (ties to even), kept as f32: a cast to a 16-bit
  // float inside a kernel, as storing and reloading it would give
  | 'f16round' | 'bf16round'
  // exp where a NaN argument may give any value (WGSL's exp without the NaN guard `exp` prints with)
  | 'expn';
export type KBinary =
  | 'add' | 'sub' | 'mul' | 'div' | 'mod' | 'pow' | 'max' | 'min'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'and' | 'or'
  | 'band' | 'bor' | 'bxor' | 'shl' | 'shr'
  // u32 x u32 -> i32: Σ of the products of the four signed int8 lanes (lane i = bits 8i..8i+7)
  | 'dot4i8';

export type KExpr =
  | { readonly k: 'lit'; readonly t: Scalar; readonly v: number } // v may be ±Infinity or NaN for f32
  | { readonly k: 'var'; readonly t: KType; readonly name: string }
  | { readonly k: 'uniform'; readonly name: string } // i32 value of a symbolic dim
  | { readonly k: 'tid' } // linear global invocation index, i32
  | { readonly k: 'lid' } // local invocation index within the workgroup, i32
  | { readonly k: 'wid' } // linear workgroup index, i32; uniform across a workgroup (guards around barriers use it)
  | { readonly k: 'load'; readonly t: Scalar; readonly buf: string; readonly index: KExpr }
  | { readonly k: 'sload'; readonly t: Scalar; readonly arr: string; readonly index: KExpr } // workgroup-shared
  | { readonly k: 'un'; readonly t: Scalar; readonly op: KUnary; readonly a: KExpr }
  | { readonly k: 'bin'; readonly t: Scalar; readonly op: KBinary; readonly a: KExpr; readonly b: KExpr }
  | { readonly k: 'select'; readonly t: Scalar; readonly c: KExpr; readonly a: KExpr; readonly b: KExpr } // c ? a : b
  | { readonly k: 'cast'; readonly t: Scalar; readonly a: KExpr }
  // a reduction across the invocations of the kernel's subgroup (see Kernel.subgroup); max/min propagate NaN
  | { readonly k: 'subgroup'; readonly t: Scalar; readonly op: 'add' | 'max' | 'min'; readonly a: KExpr }
  // a's value in invocation `lane` (i32, in [0, workgroupSize)) of the kernel's subgroup (see
  // Kernel.subgroup); every invocation of the workgroup must evaluate it (uniform control flow)
  | { readonly k: 'shuffle'; readonly t: Scalar; readonly a: KExpr; readonly lane: KExpr }
  // Vector forms. load4: the f32 elements index..index+3 of an f32 buffer; the schedule guarantees
  // index is a multiple of 4 and index + 3 is in bounds (backends may bind such a buffer as vec4).
  | { readonly k: 'load4'; readonly t: 'vec4f'; readonly buf: string; readonly index: KExpr }
  | { readonly k: 'splat'; readonly t: 'vec4f'; readonly a: KExpr } // f32 -> all four lanes
  | { readonly k: 'comp'; readonly t: 'f32'; readonly a: KExpr; readonly i: 0 | 1 | 2 | 3 } // one lane of a vec4f
  | { readonly k: 'fma4'; readonly t: 'vec4f'; readonly a: KExpr; readonly b: KExpr; readonly c: KExpr } // a * b + c per lane (may be fused)
  | { readonly k: 'vec4'; readonly t: 'vec4f'; readonly a: readonly [KExpr, KExpr, KExpr, KExpr] } // four f32 values as lanes
  | { readonly k: 'bin4'; readonly t: 'vec4f'; readonly op: 'add' | 'sub' | 'mul' | 'div'; readonly a: KExpr; readonly b: KExpr }; // lane-wise f32 arithmetic

export type KStmt =
  | { readonly k: 'let'; readonly name: string; readonly t: KType; readonly init: KExpr; readonly mut: boolean }
  | { readonly k: 'set'; readonly name: string; readonly value: KExpr }
  | { readonly k: 'store'; readonly buf: string; readonly index: KExpr; readonly value: KExpr }
  | { readonly k: 'sstore'; readonly arr: string; readonly index: KExpr; readonly value: KExpr }
  // store4: a vec4f value to the f32 elements index..index+3 of an f32 buffer (index a multiple of 4,
  // index + 3 in bounds, as for load4)
  | { readonly k: 'store4'; readonly buf: string; readonly index: KExpr; readonly value: KExpr }
  // v in [from, to) by step > 0. `lanes` (warp kernels only): the iterations are independent and a
  // warp's 32 lanes split them on CUDA (lane l runs iterations l, l + 32, ...); elsewhere a plain loop.
  // The body may not assign variables declared outside it.
  | { readonly k: 'for'; readonly v: string; readonly from: KExpr; readonly to: KExpr; readonly step: number; readonly body: readonly KStmt[]; readonly lanes?: true }
  | { readonly k: 'if'; readonly cond: KExpr; readonly then: readonly KStmt[]; readonly else: readonly KStmt[] }
  // every invocation of the workgroup waits here; `storage`: and what each wrote to storage buffers
  // before it is visible to the others after it (a chained kernel's phases, chain.ts)
  | { readonly k: 'barrier'; readonly storage?: true }
  // Tensor-core tiles (warp kernels only; see KFragment). mmaFill: an accumulator := 0. mmaLoad: an
  // a or b fragment := the 16 x 16 block of a half shared array at offset + r * ld + c (row-major;
  // offset a multiple of 16, ld a multiple of 8). mma: d += a x b (16 x 16 x 16, f32 accumulation).
  // mmaStore: the f32 shared array at offset + r * ld + c := an accumulator.
  | { readonly k: 'mmaFill'; readonly frag: string }
  | { readonly k: 'mmaLoad'; readonly frag: string; readonly arr: string; readonly offset: KExpr; readonly ld: number }
  | { readonly k: 'mma'; readonly d: string; readonly a: string; readonly b: string }
  | { readonly k: 'mmaStore'; readonly frag: string; readonly arr: string; readonly offset: KExpr; readonly ld: number }
  // scopy8 (warp kernels): the 8 elements src..src+7 of an f16 or bf16 buffer into a half shared
  // array of that type at index..index+7, or 8 zeros where `valid` is false (src and index multiples of 8). CUDA copies
  // 16 bytes at once (cp.async on sm_80+, completed at the next barrier); elsewhere see scopy8Stmts.
  | { readonly k: 'scopy8'; readonly arr: string; readonly index: KExpr; readonly buf: string; readonly src: KExpr; readonly valid: KExpr };

export interface KBuffer {
  readonly name: string;
  /** Storage dtype as the program sees it (f16 stays f16 here; a backend may legalize). */
  readonly dtype: DType;
  readonly access: 'read' | 'read_write';
  /** Logical shape, for the manifest and for size checks at dispatch. */
  readonly shape: Shape;
  /** A read_write buffer the kernel reads too: its result written in place over an input it reads last. */
  readonly inPlace?: true;
}

export interface KShared {
  readonly name: string;
  readonly t: Scalar;
  readonly size: number;
  /**
   * f32 values stored as 16-bit floats: f16 (`__half` on CUDA) or bf16 (`__nv_bfloat16`); elsewhere
   * f32 words rounded to that type on store.
   */
  readonly half?: 'f16' | 'bf16';
}

/**
 * A 16 x 16 tile a warp holds for tensor-core matrix multiply-accumulate: `a` (rows x k) and `b`
 * (k x columns) hold f16 values, `acc` f32. CUDA prints WMMA fragments; the other backends, which
 * run a warp kernel's invocation as one thread, hold 256 values and run the mma statements as loops.
 */
export interface KFragment {
  readonly name: string;
  readonly use: 'a' | 'b' | 'acc';
  /** The element type of an a or b tile (default f16; bf16 tensor cores need sm_80 on CUDA). */
  readonly half?: 'f16' | 'bf16';
}

export interface Kernel {
  readonly name: string;
  readonly buffers: readonly KBuffer[];
  /** Symbolic dims the body reads, each an i32 uniform. */
  readonly uniforms: readonly string[];
  readonly workgroupSize: number;
  /** Total invocations; the runtime launches ceil(threads / workgroupSize) workgroups. */
  readonly threads: Dim;
  readonly shared: readonly KShared[];
  readonly body: readonly KStmt[];
  /**
   * Set when the kernel uses subgroup operations and assumes each workgroup is one subgroup: a
   * runtime launches it only where every subgroup has at least `workgroupSize` invocations.
   */
  readonly subgroup?: boolean;
  /**
   * A warp kernel: each invocation is one warp. CUDA runs it as 32 threads per invocation (blocks of
   * 32 * workgroupSize threads): every lane runs the scalar statements alike, `lanes` loops split
   * their iterations across the lanes, and the mma statements are warp-wide tensor-core operations.
   * The other backends run each invocation as one thread. Stores outside `lanes` loops would be
   * made by every lane (with the same value); schedules keep them inside.
   */
  readonly warp?: true;
  /** The tensor-core tiles a warp kernel declares. */
  readonly fragments?: readonly KFragment[];
  /** Which schedule made it, with its parameters: for the manifest, dumps and the tuner. */
  readonly schedule: { readonly kind: string; readonly params: Readonly<Record<string, number>> };
  /**
   * Set when `workgroupSize` is the scheduler's default rather than a chosen parameter and the
   * kernel computes the same for any workgroup size (`workgroupIndependent`): a runtime may run a
   * narrow launch in smaller workgroups (`launchWorkgroupSize`).
   */
  readonly flexibleWorkgroup?: true;
}

/**
 * Below this many invocations a launch is narrow: a one-token matmul over a few hundred columns is
 * a single workgroup of 64, which a software driver runs on one thread (SwiftShader ran the decode
 * block's matmuls 1.5x faster in workgroups of 8) and a GPU on one multiprocessor.
 */
export const NARROW_LAUNCH = 256;
/** The workgroup size a narrow launch of a flexible kernel takes. */
export const NARROW_WORKGROUP = 8;

/**
 * True when nothing in `k` depends on its workgroup size: invocation i does the same work for any
 * size (it reads only `tid`), with no workgroup memory, barriers, subgroups or warps.
 */
export function workgroupIndependent(k: Kernel): boolean {
  if (k.shared.length > 0 || k.subgroup || k.warp || (k.fragments?.length ?? 0) > 0) return false;
  let independent = true;
  const stmts = (body: readonly KStmt[]): void => {
    for (const s of body) {
      if (s.k === 'barrier' || s.k === 'scopy8' || s.k === 'sstore' || s.k === 'mma' || s.k === 'mmaLoad' || s.k === 'mmaStore' || s.k === 'mmaFill') independent = false;
      kstmtBodies(s).forEach(stmts);
    }
  };
  stmts(k.body);
  forEachKExpr(k.body, (e) => {
    if (e.k === 'lid' || e.k === 'wid' || e.k === 'sload' || e.k === 'subgroup' || e.k === 'shuffle') independent = false;
  });
  return independent;
}

/** `k` launched in workgroups of `size`: only for a kernel that is `workgroupIndependent`. */
export function withWorkgroupSize(k: Kernel, size: number): Kernel {
  return { ...k, workgroupSize: size, schedule: { ...k.schedule, params: { ...k.schedule.params, workgroupSize: size } } };
}

/**
 * The workgroup size a launch of `threads` invocations of `k` takes: `NARROW_WORKGROUP` for a
 * narrow launch of a flexible kernel (more workgroups for the device's cores to share), else the
 * kernel's own.
 */
export function launchWorkgroupSize(k: Kernel, threads: number): number {
  return k.flexibleWorkgroup && threads < NARROW_LAUNCH && k.workgroupSize > NARROW_WORKGROUP ? NARROW_WORKGROUP : k.workgroupSize;
}

/** The direct subexpressions of `e`. */
export function kexprChildren(e: KExpr): KExpr[] {
  switch (e.k) {
    case 'load': case 'sload': case 'load4': return [e.index];
    case 'un': case 'cast': case 'subgroup': case 'splat': case 'comp': return [e.a];
    case 'bin': case 'bin4': return [e.a, e.b];
    case 'shuffle': return [e.a, e.lane];
    case 'select': return [e.c, e.a, e.b];
    case 'fma4': return [e.a, e.b, e.c];
    case 'vec4': return [...e.a];
    default: return [];
  }
}

/** The expressions a statement evaluates itself (not those of nested statements). */
export function kstmtExprs(s: KStmt): KExpr[] {
  switch (s.k) {
    case 'let': return [s.init];
    case 'set': return [s.value];
    case 'store': case 'sstore': case 'store4': return [s.index, s.value];
    case 'for': return [s.from, s.to];
    case 'if': return [s.cond];
    case 'mmaLoad': case 'mmaStore': return [s.offset];
    case 'scopy8': return [s.index, s.src, s.valid];
    case 'barrier': case 'mmaFill': case 'mma': return [];
  }
}

/** A scopy8 as plain statements: if (valid) eight loads stored to shared, else eight zeros. */
export function scopy8Stmts(s: Extract<KStmt, { k: 'scopy8' }>): KStmt[] {
  const at = (e: KExpr, i: number): KExpr => (i === 0 ? e : { k: 'bin', t: 'i32', op: 'add', a: e, b: { k: 'lit', t: 'i32', v: i } });
  const lanes = [0, 1, 2, 3, 4, 5, 6, 7];
  return [
    {
      k: 'if',
      cond: s.valid,
      then: lanes.map((i): KStmt => ({ k: 'sstore', arr: s.arr, index: at(s.index, i), value: { k: 'load', t: 'f32', buf: s.buf, index: at(s.src, i) } })),
      else: lanes.map((i): KStmt => ({ k: 'sstore', arr: s.arr, index: at(s.index, i), value: { k: 'lit', t: 'f32', v: 0 } })),
    },
  ];
}

/** The statements nested in `s` (loop and branch bodies). */
export function kstmtBodies(s: KStmt): (readonly KStmt[])[] {
  return s.k === 'for' ? [s.body] : s.k === 'if' ? [s.then, s.else] : [];
}

/** Calls `visit` on every expression and subexpression in `body`, outermost first. */
export function forEachKExpr(body: readonly KStmt[], visit: (e: KExpr) => void): void {
  for (const s of body) {
    for (const e of kstmtExprs(s)) visitKExpr(e, visit);
    for (const b of kstmtBodies(s)) forEachKExpr(b, visit);
  }
}

function visitKExpr(e: KExpr, visit: (e: KExpr) => void): void {
  visit(e);
  for (const c of kexprChildren(e)) visitKExpr(c, visit);
}

/** `e` rebuilt bottom-up, each node passed through `f` after its children. */
export function mapKExpr(e: KExpr, f: (e: KExpr) => KExpr): KExpr {
  switch (e.k) {
    case 'load': case 'sload': case 'load4': return f({ ...e, index: mapKExpr(e.index, f) } as KExpr);
    case 'un': case 'cast': case 'subgroup': case 'splat': case 'comp': return f({ ...e, a: mapKExpr(e.a, f) } as KExpr);
    case 'bin': return f({ ...e, a: mapKExpr(e.a, f), b: mapKExpr(e.b, f) });
    case 'shuffle': return f({ ...e, a: mapKExpr(e.a, f), lane: mapKExpr(e.lane, f) });
    case 'select': return f({ ...e, c: mapKExpr(e.c, f), a: mapKExpr(e.a, f), b: mapKExpr(e.b, f) });
    case 'fma4': return f({ ...e, a: mapKExpr(e.a, f), b: mapKExpr(e.b, f), c: mapKExpr(e.c, f) });
    case 'vec4': return f({ ...e, a: [mapKExpr(e.a[0], f), mapKExpr(e.a[1], f), mapKExpr(e.a[2], f), mapKExpr(e.a[3], f)] });
    case 'bin4': return f({ ...e, a: mapKExpr(e.a, f), b: mapKExpr(e.b, f) });
    default: return f(e);
  }
}

/** `body` with every expression rebuilt through `f` (see mapKExpr). */
export function mapKStmts(body: readonly KStmt[], f: (e: KExpr) => KExpr): KStmt[] {
  const m = (e: KExpr) => mapKExpr(e, f);
  return body.map((s): KStmt => {
    switch (s.k) {
      case 'let': return { ...s, init: m(s.init) };
      case 'set': return { ...s, value: m(s.value) };
      case 'store': case 'sstore': case 'store4': return { ...s, index: m(s.index), value: m(s.value) };
      case 'for': return { ...s, from: m(s.from), to: m(s.to), body: mapKStmts(s.body, f) };
      case 'if': return { ...s, cond: m(s.cond), then: mapKStmts(s.then, f), else: mapKStmts(s.else, f) };
      case 'mmaLoad': case 'mmaStore': return { ...s, offset: m(s.offset) };
      case 'scopy8': return { ...s, index: m(s.index), src: m(s.src), valid: m(s.valid) };
      case 'barrier': case 'mmaFill': case 'mma': return s;
    }
  });
}

/** Buffers a kernel reads with `load4` or writes with `store4` (a backend may bind these as arrays of vec4). */
export function vec4Buffers(body: readonly KStmt[]): Set<string> {
  const out = new Set<string>();
  forEachKExpr(body, (e) => {
    if (e.k === 'load4') out.add(e.buf);
  });
  const stores = (ss: readonly KStmt[]): void => {
    for (const s of ss) {
      if (s.k === 'store4') out.add(s.buf);
      kstmtBodies(s).forEach(stores);
    }
  };
  stores(body);
  return out;
}

export function scalarOf(d: DType): Scalar {
  switch (d) {
    case 'f32': case 'f16': case 'bf16': return 'f32';
    case 'i32': return 'i32';
    case 'u32': return 'u32';
    case 'bool': return 'bool';
  }
}
