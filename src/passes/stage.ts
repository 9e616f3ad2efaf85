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
import { forEachKExpr, kexprChildren, kstmtBodies, mapKStmts, type KExpr, type KShared, type KStmt, type Kernel, type Scalar } from '../ir/kernel.js';

/** Bytes of workgroup memory WebGPU guarantees (maxComputeWorkgroupStorageSize). */
export const DEFAULT_STAGE_BYTES = 16384;

/** Does `e` depend on a value read from memory (so an index made of it is a gather)? */
function readsMemory(e: KExpr, lets: ReadonlyMap<string, KExpr>, seen = new Set<string>()): boolean {
  if (e.k === 'load' || e.k === 'sload' || e.k === 'load4') return true;
  if (e.k === 'var') {
    const init = lets.get(e.name);
    if (!init || seen.has(e.name)) return false;
    seen.add(e.name);
    return readsMemory(init, lets, seen);
  }
  return kexprChildren(e).some((c) => readsMemory(c, lets, seen));
}

function collectLets(ss: readonly KStmt[], into: Map<string, KExpr>): void {
  for (const s of ss) {
    if (s.k === 'let' && !s.mut) into.set(s.name, s.init);
    kstmtBodies(s).forEach((b) => collectLets(b, into));
  }
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
  forEachKExpr(kernel.body, (e) => {
    if (e.k === 'load' && readsMemory(e.index, lets)) gathered.add(e.buf);
  });
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
    body: [...body, ...copies, { k: 'barrier' }, ...mapKStmts([guard], (e) => {
      const arr = e.k === 'load' ? arrs.get(e.buf) : undefined;
      return arr && e.k === 'load' ? { k: 'sload', t: e.t, arr, index: e.index } : e;
    })],
    schedule: { ...kernel.schedule, params: { ...kernel.schedule.params, staged: staged.length } },
  };
}
