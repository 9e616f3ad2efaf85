/**
 * What a long-lived compiler process keeps: graph nodes are interned weakly (a dropped program's
 * nodes are collected), lowering expressions are forgotten between compiles past a limit, and
 * neither changes what a program compiles to.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compile, allBuilds, setLoweringCacheLimit } from '../src/passes/pipeline.js';
import { internedExprs, resetExprs } from '../src/passes/lexpr.js';
import { printWGSL } from '../src/backends/wgsl/print.js';
import { printCudaKernel } from '../src/backends/cuda/print.js';
import { generateProgram } from '../src/fuzz/gen.js';
import { library } from '../ops/index.js';
import type { Program } from '../src/ir/graph.js';

const text = (p: Program): string => {
  try {
    return allBuilds(compile(p)).flatMap((b) => b.kernels.map((k) => printWGSL(k.kernel, { f16: true }) + printCudaKernel(k.kernel))).join('\n');
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
};
const programs = (): Program[] => [...library.map((op) => op.build().program), ...Array.from({ length: 40 }, (_, i) => generateProgram(7000 + i).def.program)];

describe('interning in a long-lived process', () => {
  it('compiles every program to the same text after the lowering expressions are forgotten', () => {
    const before = programs().map(text);
    resetExprs();
    expect(internedExprs()).toBe(0);
    expect(programs().map(text)).toEqual(before);
  });

  it('forgets them between compiles once past the limit, and only then', () => {
    const ps = programs();
    // what each program's compile interns when it starts from nothing
    const alone = ps.map((p) => {
      resetExprs();
      return [text(p), internedExprs()] as const;
    });
    try {
      setLoweringCacheLimit(0); // every compile starts from nothing
      for (const [i, p] of ps.entries()) {
        expect(text(p)).toBe(alone[i]![0]);
        expect(internedExprs()).toBe(alone[i]![1]);
      }
      // under the limit nothing is forgotten: a second program adds to the first's
      setLoweringCacheLimit(1e9);
      resetExprs();
      text(ps[0]!);
      text(ps[ps.length - 1]!);
      expect(internedExprs()).toBeGreaterThan(Math.max(alone[0]![1], alone[ps.length - 1]![1]));
    } finally {
      setLoweringCacheLimit(250_000);
    }
    expect(() => setLoweringCacheLimit(-1)).toThrow(/setLoweringCacheLimit: expected a non-negative integer, got -1/);
  });

  it("collects a dropped program's graph nodes (a child process with --expose-gc)", () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const script = `
      const { generateProgram } = await import('./src/fuzz/gen.ts');
      const { compile } = await import('./src/passes/pipeline.ts');
      const { internedNodes } = await import('./src/ir/graph.ts');
      const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 5)); } };
      let built = 0;
      for (let s = 0; s < 200; s++) { try { compile(generateProgram(s).def.program); built++; } catch {} if (s % 50 === 49) await settle(); }
      await settle();
      console.log(JSON.stringify({ built, held: internedNodes() }));
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    const { built, held } = JSON.parse(out.trim().split('\n').pop()!) as { built: number; held: number };
    expect(built).toBeGreaterThan(150);
    // thousands of nodes were built; only a handful (the last program's, still on the stack) may stay
    expect(held).toBeLessThan(100);
  }, 120_000);
});
