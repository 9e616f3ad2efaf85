/**
 * Staging gathered tables in workgroup memory: a small read-only buffer that a kernel reads at
 * data-dependent indices (a codebook, a decode table: `cb[idx[n, k]]`) is copied into workgroup
 * memory once per workgroup (all invocations share the copy, then a barrier), and the kernel's
 * gathers read the copy. This is how VPTQ's GEMV keeps its codebook on chip. Buffers whose size is
 * not known at compile time, or that do not fit the budget, stay in global memory.
 *
 * The copy and the barrier are placed before the kernel's thread guard, where control flow is
 * uniform, so it applies to any kernel shape.
 */
import { numel } from '../ir/dims.js';
import { type KExpr, type KShared, type KStmt, type Kernel, type Scalar } from '../ir/kernel.js';

/** Bytes of workgroup memory WebGPU guarantees (maxComputeWorkgroupStorageSize). */
export const DEFAULT_STAGE_BYTES = 16384;

function exprLoads(e: KExpr, out: (e: Extract<KExpr, { k: 'load' }>) => void): void {
  switch (e.k) {
    case 'load': out(e); exprLoads(e.index, out); return;
    case 'load4': exprLoads(e.index, out); return;
    case 'sload': exprLoads(e.index, out); return;
    case 'un': case 'cast': case 'subgroup': case 'splat': case 'comp': exprLoads(e.a, out); return;
    case 'bin': exprLoads(e.a, out); exprLoads(e.b, out); return;
    case 'select': exprLoads(e.c, out); exprLoads(e.a, out); exprLoads(e.b, out); return;
    case 'fma4': exprLoads(e.a, out); exprLoads(e.b, out); exprLoads(e.c, out); return;
    default: return;
  }
}

function stmtExprs(s: KStmt): KExpr[] {
  switch (s.k) {
    case 'let': return [s.init];
    case 'set': return [s.value];
    case 'store': case 'sstore': return [s.index, s.value];
    case 'for': return [s.from, s.to];
    case 'if': return [s.cond];
    case 'barrier': return [];
  }
}

function walk(ss: readonly KStmt[], f: (e: KExpr) => void): void {
  for (const s of ss) {
    stmtExprs(s).forEach(f);
    if (s.k === 'for') walk(s.body, f);
    if (s.k === 'if') { walk(s.then, f); walk(s.else, f); }
  }
}

/** Does `e` depend on a value read from memory (so an index made of it is a gather)? */
function readsMemory(e: KExpr, lets: ReadonlyMap<string, KExpr>, seen = new Set<string>()): boolean {
  switch (e.k) {
    case 'load': case 'sload': case 'load4': return true;
    case 'var': {
      const init = lets.get(e.name);
      if (!init || seen.has(e.name)) return false;
      seen.add(e.name);
      return readsMemory(init, lets, seen);
    }
    case 'un': case 'cast': case 'subgroup': case 'splat': case 'comp': return readsMemory(e.a, lets, seen);
    case 'bin': return readsMemory(e.a, lets, seen) || readsMemory(e.b, lets, seen);
    case 'select': return readsMemory(e.c, lets, seen) || readsMemory(e.a, lets, seen) || readsMemory(e.b, lets, seen);
    default: return false;
  }
}

function collectLets(ss: readonly KStmt[], into: Map<string, KExpr>): void {
  for (const s of ss) {
    if (s.k === 'let' && !s.mut) into.set(s.name, s.init);
    if (s.k === 'for') collectLets(s.body, into);
    if (s.k === 'if') { collectLets(s.then, into); collectLets(s.else, into); }
  }
}

function rewriteExpr(e: KExpr, arrs: ReadonlyMap<string, string>): KExpr {
  const r = (x: KExpr) => rewriteExpr(x, arrs);
  switch (e.k) {
    case 'load': {
      const arr = arrs.get(e.buf);
      return arr ? { k: 'sload', t: e.t, arr, index: r(e.index) } : { ...e, index: r(e.index) };
    }
    case 'load4': case 'sload': return { ...e, index: r(e.index) };
    case 'un': case 'cast': case 'subgroup': case 'splat': return { ...e, a: r(e.a) } as KExpr;
    case 'comp': return { ...e, a: r(e.a) };
    case 'bin': return { ...e, a: r(e.a), b: r(e.b) };
    case 'select': return { ...e, c: r(e.c), a: r(e.a), b: r(e.b) };
    case 'fma4': return { ...e, a: r(e.a), b: r(e.b), c: r(e.c) };
    default: return e;
  }
}

function rewrite(ss: readonly KStmt[], arrs: ReadonlyMap<string, string>): KStmt[] {
  const r = (e: KExpr) => rewriteExpr(e, arrs);
  return ss.map((s): KStmt => {
    switch (s.k) {
      case 'let': return { ...s, init: r(s.init) };
      case 'set': return { ...s, value: r(s.value) };
      case 'store': case 'sstore': return { ...s, index: r(s.index), value: r(s.value) };
      case 'for': return { ...s, from: r(s.from), to: r(s.to), body: rewrite(s.body, arrs) };
      case 'if': return { ...s, cond: r(s.cond), then: rewrite(s.then, arrs), else: rewrite(s.else, arrs) };
      case 'barrier': return s;
    }
  });
}

const scalarOfDtype = (d: string): Scalar => (d === 'i32' ? 'i32' : d === 'u32' ? 'u32' : d === 'bool' ? 'bool' : 'f32');

/**
 * `kernel` with its gathered tables staged in workgroup memory (smallest first while they fit in
 * `budgetBytes` beside the workgroup memory it already uses), or `kernel` unchanged.
 */
export function stageGatherTables(kernel: Kernel, budgetBytes = DEFAULT_STAGE_BYTES): Kernel {
  const lets = new Map<string, KExpr>();
  collectLets(kernel.body, lets);
  const gathered = new Set<string>();
  walk(kernel.body, (e) => exprLoads(e, (ld) => {
    if (readsMemory(ld.index, lets)) gathered.add(ld.buf);
  }));
  let used = kernel.shared.reduce((s, a) => s + 4 * a.size, 0);
  const staged: { buf: string; arr: string; size: number; t: Scalar }[] = [];
  const candidates = kernel.buffers
    .filter((b) => b.access === 'read' && gathered.has(b.name) && b.shape.every((d) => typeof d === 'number'))
    .map((b) => ({ b, size: numel(b.shape as number[]) }))
    .sort((x, y) => x.size - y.size);
  for (const { b, size } of candidates) {
    if (used + 4 * size > budgetBytes) continue;
    used += 4 * size;
    staged.push({ buf: b.name, arr: `${b.name}_wg`, size, t: scalarOfDtype(b.dtype) });
  }
  if (staged.length === 0) return kernel;
  const arrs = new Map(staged.map((s) => [s.buf, s.arr]));
  const body = [...kernel.body];
  const guard = body.pop()!;
  const copies: KStmt[] = staged.map((s, i) => {
    const v = `st${i}`;
    const iv: KExpr = { k: 'var', t: 'i32', name: v };
    return {
      k: 'for', v, from: { k: 'lid' }, to: { k: 'lit', t: 'i32', v: s.size }, step: kernel.workgroupSize,
      body: [{ k: 'sstore', arr: s.arr, index: iv, value: { k: 'load', t: s.t, buf: s.buf, index: iv } }],
    };
  });
  const shared: KShared[] = [...kernel.shared, ...staged.map((s) => ({ name: s.arr, t: s.t, size: s.size }))];
  return {
    ...kernel,
    shared,
    body: [...body, ...copies, { k: 'barrier' }, ...rewrite([guard], arrs)],
    schedule: { ...kernel.schedule, params: { ...kernel.schedule.params, staged: staged.length } },
  };
}
