/**
 * Browser entry for test/browser.test.ts: bundled by esbuild and loaded into headless Chromium, it runs
 * Tessera on the page's own WebGPU (navigator.gpu; Dawn for Node is never loaded) and compares every
 * output with the float64 reference interpreter, in the page.
 *
 * It reports `window.__tesseraResult = { adapter, features, results: [{ name, ok, detail, ms }] }`,
 * or `window.__tesseraError` when something outside a single program failed.
 */
import * as D from '../../src/dsl/index.js';
import type { KernelDef } from '../../src/dsl/kernel.js';
import { compile } from '../../src/passes/pipeline.js';
import { createWebGPURuntime, webgpuUnavailableReason } from '../../src/backends/wgsl/runtime.js';
import { execute, type HostTensor } from '../../src/runtime/execute.js';
import { evalProgram, refFromHost, type RefTensor } from '../../src/ref/index.js';
import type { HostArray } from '../../src/runtime/backend.js';
import { generateProgram, randomInputs } from '../../src/fuzz/gen.js';

export interface BrowserResult {
  /** What the adapter says it is (vendor / architecture / device / description). */
  adapter: string;
  /** navigator.gpu existed in the page. */
  navigatorGpu: boolean;
  /** The runtime's device is the page's own GPUDevice (navigator.gpu's), not Dawn for Node's. */
  pageDevice: boolean;
  features: string[];
  results: { name: string; ok: boolean; detail: string; ms: number }[];
  totalMs: number;
}

const TOL = { rtol: 2e-3, atol: 2e-3 };
const FUZZ_SEEDS = Array.from({ length: 20 }, (_, i) => 5000 + i);

/** Deterministic values in [-2, 2) (a small LCG: the page has no seeded generator of its own). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 4 - 2;
  });
}

function mismatch(actual: ArrayLike<number>, expected: RefTensor): string | null {
  if (actual.length !== expected.data.length) return `length ${actual.length}, expected ${expected.data.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected.data[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= TOL.atol + TOL.rtol * Math.abs(e);
    if (!ok) return `element ${i} of [${expected.shape.join(', ')}]: got ${a}, expected ${e}`;
  }
  return null;
}

interface Case {
  name: string;
  def: KernelDef;
  inputs: Record<string, HostTensor>;
  dims: Record<string, number>;
}

function handwritten(): Case[] {
  const M = D.dim('M');
  const N = D.dim('N');
  const K = D.dim('K');
  const softmax = D.kernel('softmax', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));
  const rmsnorm = D.kernel('rmsnorm', { x: D.tensor('f32', [M, N]), g: D.tensor('f32', [N]) }, ({ x, g }) => D.rmsnorm(x, g));
  const matmul = D.kernel('matmul', { a: D.tensor('f32', [M, K]), w: D.tensor('f32', [K, N]), b: D.tensor('f32', [N]) }, ({ a, w, b }) =>
    D.matmul(a, w).add(b),
  );
  return [
    { name: 'softmax', def: softmax, inputs: { x: { shape: [7, 129], data: values(7 * 129, 1) } }, dims: {} },
    {
      name: 'rmsnorm',
      def: rmsnorm,
      inputs: { x: { shape: [5, 96], data: values(5 * 96, 2) }, g: { shape: [96], data: values(96, 3) } },
      dims: {},
    },
    {
      name: 'matmul',
      def: matmul,
      inputs: {
        a: { shape: [33, 70], data: values(33 * 70, 4) },
        w: { shape: [70, 45], data: values(70 * 45, 5) },
        b: { shape: [45], data: values(45, 6) },
      },
      dims: {},
    },
  ];
}

function generated(): Case[] {
  return FUZZ_SEEDS.map((seed) => {
    const g = generateProgram(seed);
    return { name: `fuzz${seed}`, def: g.def, inputs: randomInputs(g.def, g.dims, seed), dims: { ...g.dims } };
  });
}

async function run(): Promise<BrowserResult> {
  const t0 = performance.now();
  const navigatorGpu = typeof navigator !== 'undefined' && 'gpu' in navigator && navigator.gpu !== undefined;
  const rt = await createWebGPURuntime();
  if (!rt) throw new Error(`no WebGPU runtime in the browser: ${webgpuUnavailableReason()}`);
  const results: BrowserResult['results'] = [];
  let cases: Case[];
  try {
    cases = [...handwritten(), ...generated()];
  } catch (e) {
    rt.destroy();
    throw e;
  }
  for (const c of cases) {
    const t = performance.now();
    try {
      const cp = compile(c.def.program);
      const refIn: Record<string, RefTensor> = {};
      for (const inp of cp.source.inputs) {
        const h = c.inputs[inp.name]!;
        refIn[inp.name] = refFromHost(inp.dtype, [...h.shape], h.data as HostArray);
      }
      const ref = evalProgram(cp.source, refIn, c.dims);
      const got = await execute(cp, rt, c.inputs, c.dims);
      let detail = `${cp.kernels.length} kernel(s)`;
      let ok = true;
      for (const o of cp.program.outputs) {
        const m = mismatch(got[o.name]!.data, ref[o.name]!);
        if (m) {
          ok = false;
          detail = `output '${o.name}': ${m}`;
          break;
        }
      }
      results.push({ name: c.name, ok, detail, ms: Math.round(performance.now() - t) });
    } catch (e) {
      results.push({ name: c.name, ok: false, detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e), ms: Math.round(performance.now() - t) });
    }
  }
  const summary: BrowserResult = {
    adapter: rt.info.description,
    navigatorGpu,
    pageDevice: typeof GPUDevice !== 'undefined' && rt.device instanceof GPUDevice,
    features: [...rt.info.features],
    results,
    totalMs: Math.round(performance.now() - t0),
  };
  rt.destroy();
  return summary;
}

const w = window as unknown as { __tesseraResult?: BrowserResult; __tesseraError?: string };
run().then(
  (r) => {
    w.__tesseraResult = r;
  },
  (e: unknown) => {
    w.__tesseraError = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
  },
);
