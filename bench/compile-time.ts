/**
 * Compile time of every library op through the whole pipeline: build the DSL program, compile()
 * it, print every kernel as WGSL. Median of N runs after a warmup, per op and overall.
 *
 * Graph nodes and lowered expressions are hash-consed in process-wide tables, so runs after the
 * first find their nodes already interned: the medians are the warm, steady-state cost (what a
 * process compiling many kernels pays), and `firstMs` is each op's first compile in the process
 * (its DSL nodes were interned when the library was loaded, its lowered expressions were not).
 *
 * Alone (no device needed; WGSL printed for an adapter with shader-f16):
 *   node --import tsx bench/compile-time.ts [runs]
 */
import { allBuilds, compile } from '../src/passes/pipeline.js';
import { printWGSL, type WGSLCaps } from '../src/backends/wgsl/print.js';
import type { OpSpec } from '../ops/index.js';
import { pathToFileURL } from 'node:url';
import { library } from '../ops/index.js';
import { compileTable } from './report.js';
import { median } from './stats.js';

export interface CompileTiming {
  readonly op: string;
  readonly kernels: number;
  /** WGSL characters printed, summed over kernels. */
  readonly wgslChars: number;
  readonly firstMs: number;
  /** The whole op: every kernel of every build. */
  readonly medianMs: number;
  /** medianMs over the op's kernel count (the target is per kernel). */
  readonly perKernelMs: number;
  readonly dslMs: number;
  readonly compileMs: number;
  readonly printMs: number;
}

export interface CompileReport {
  readonly target: 'wgsl';
  readonly runs: number;
  readonly warmup: number;
  readonly perOp: readonly CompileTiming[];
  /** Median over the per-op medians. */
  readonly medianMs: number;
  readonly maxMs: number;
  /** Median and maximum over the ops' per-kernel times. */
  readonly medianPerKernelMs: number;
  readonly maxPerKernelMs: number;
  readonly targetMs: number;
  readonly meetsTarget: boolean;
}

export function measureCompileTime(ops: readonly OpSpec[], caps: WGSLCaps, runs = 20, warmup = 3): CompileReport {
  const perOp = ops.map((op): CompileTiming => {
    const dsl: number[] = [];
    const comp: number[] = [];
    const print: number[] = [];
    const total: number[] = [];
    let kernels = 0;
    let chars = 0;
    for (let i = 0; i < warmup + runs; i++) {
      const t0 = performance.now();
      const def = op.build();
      const t1 = performance.now();
      const cp = compile(def.program);
      const t2 = performance.now();
      // every build (multi-versioning) is compiled and printed
      const all = allBuilds(cp).flatMap((b) => b.kernels);
      chars = all.reduce((n, k) => n + printWGSL(k.kernel, caps).length, 0);
      const t3 = performance.now();
      kernels = all.length;
      if (i === 0 || i >= warmup) {
        dsl.push(t1 - t0);
        comp.push(t2 - t1);
        print.push(t3 - t2);
        total.push(t3 - t0);
      }
    }
    const first = total.shift()!;
    [dsl, comp, print].forEach((xs) => xs.shift());
    const medianMs = median(total);
    return { op: op.name, kernels, wgslChars: chars, firstMs: first, medianMs, perKernelMs: medianMs / kernels, dslMs: median(dsl), compileMs: median(comp), printMs: median(print) };
  });
  const medians = perOp.map((p) => p.medianMs);
  const medianMs = median(medians);
  const perKernel = perOp.map((p) => p.perKernelMs);
  const targetMs = 10;
  return { target: 'wgsl', runs, warmup, perOp, medianMs, maxMs: Math.max(...medians), medianPerKernelMs: median(perKernel), maxPerKernelMs: Math.max(...perKernel), targetMs, meetsTarget: median(perKernel) < targetMs };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = Number(process.argv[2] ?? 20);
  console.log(compileTable(measureCompileTime(library, { f16: true }, runs)));
}
