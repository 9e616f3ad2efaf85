/** The readable side of a benchmark run: fixed-width tables for the terminal. */
import type { CompileReport } from './compile-time.js';
import type { CaseResult } from './throughput.js';

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const f = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const mb = (b: number) => `${f(b / 1e6, 1)}`;

export function compileTable(r: CompileReport): string {
  const rows = r.perOp.map((p) => [p.op, String(p.kernels), f(p.firstMs), f(p.medianMs), f(p.perKernelMs), f(p.dslMs), f(p.compileMs), f(p.printMs), String(p.wgslChars)]);
  const head = ['op', 'kernels', 'first ms', 'median ms', 'ms/kernel', 'dsl', 'compile', 'print', 'wgsl chars'];
  return (
    `${table(head, rows)}\nper op: median ${f(r.medianMs)} ms (max ${f(r.maxMs)} ms); per kernel: median ${f(r.medianPerKernelMs)} ms (max ${f(r.maxPerKernelMs)} ms), ` +
    `over ${r.runs} runs after ${r.warmup} warmup: ${r.meetsTarget ? 'under' : 'OVER'} the ${r.targetMs} ms target per kernel`
  );
}

export function throughputTable(rs: readonly CaseResult[]): string {
  const rows = rs.map((c) => [c.label, String(c.kernels), c.check === 'ok' ? 'ok' : 'FAIL', f(c.medianMs, 3), f(c.gflops), f(c.gbps), mb(c.idealBytes), mb(c.boundBytes), `${c.source} ${c.rounds}x${c.repeats}`]);
  return table(['case', 'kernels', 'check', 'median ms', 'GFLOP/s', 'GB/s', 'ideal MB', 'bound MB', 'timing'], rows);
}
