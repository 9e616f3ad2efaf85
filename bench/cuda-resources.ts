/**
 * What the device script's CUDA kernels ask of an SM, without a GPU: every kernel of the programs
 * bench/device/run.sh compiles (as `--target torch` compiles them: f16 and bf16 matmuls on tensor
 * cores; the f16 matmul with the 128x128 block and with the SIMT schedule; the chained decode step), and the f16 matmul under each tensor-core
 * shape the tuner tries, through ptxas for sm_80 and sm_90: registers, spills, shared memory,
 * barriers, and the theoretical occupancy those allow (src/backends/cuda/resources.ts).
 *
 *   node --import tsx bench/cuda-resources.ts [--out FILE]     (needs nvcc, no GPU)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { printCudaUnit, cudaBlockSize } from '../src/backends/cuda/print.js';
import { occupancy, ptxasResources, type KernelResources, type Occupancy } from '../src/backends/cuda/resources.js';
import { allBuilds, compile, type CompileOptions } from '../src/passes/pipeline.js';
import type { Program } from '../src/ir/graph.js';
import { MMA_CANDIDATES } from '../src/tune/candidates.js';
import { benchPrograms, matmulF16 } from './device/programs.js';
import { matmulF16Simt } from './device/programs-simt.js';
import { matmulF16Big } from './device/programs-mma128.js';
import { blockChain } from './device/programs-chain.js';

export const ARCHS = ['sm_80', 'sm_90'] as const;

export interface ResourceCase {
  /** What was compiled: the program and, where not the default, its options. */
  readonly name: string;
  readonly program: Program;
  readonly opts: CompileOptions;
}

/** The device script's programs as it compiles them, then the f16 matmul under every tensor-core candidate. */
export function resourceCases(): ResourceCase[] {
  const tc: CompileOptions = { tensorCores: true, bf16TensorCores: true };
  return [
    ...benchPrograms.map((d) => ({ name: d.name, program: d.program, opts: tc })),
    { name: `${matmulF16Simt.name} (mma=0)`, program: matmulF16Simt.program, opts: { ...tc, params: { mma: 0 } } },
    { name: `${matmulF16Big.name} (mma=1 wm=2 wn=4 fm=4 fn=2 bk=32 db=1)`, program: matmulF16Big.program, opts: { ...tc, params: { mma: 1, wm: 2, wn: 4, fm: 4, fn: 2, bk: 32, db: 1 } } },
    { name: `${blockChain.name} (chain T=1,D=128,H=344)`, program: blockChain.program, opts: { ...tc, chain: { dims: { T: 1, D: 128, H: 344 } } } },
    ...MMA_CANDIDATES.map((c) => ({
      name: `${matmulF16.name} ${Object.entries(c).filter(([k]) => k !== 'mma').map(([k, v]) => `${k}=${v}`).join(' ')}`,
      program: matmulF16.program,
      opts: { ...tc, params: c, versions: false },
    })),
  ];
}

export interface ResourceRow extends KernelResources {
  readonly case: string;
  readonly schedule: string;
  readonly blockThreads: number;
  readonly occupancy: Occupancy;
}

/** Every kernel of every build of each case, on each arch. */
export function measureResources(cases: readonly ResourceCase[], archs: readonly string[] = ARCHS): ResourceRow[] {
  const rows: ResourceRow[] = [];
  for (const c of cases) {
    const kernels = allBuilds(compile(c.program, c.opts)).flatMap((b) => b.kernels.map((k) => k.kernel));
    const unique = [...new Map(kernels.map((k) => [k.name, k])).values()];
    const byName = new Map(unique.map((k) => [k.name, k]));
    for (const r of ptxasResources(printCudaUnit(unique), archs)) {
      const k = byName.get(r.entry);
      if (!k) continue;
      const threads = cudaBlockSize(k);
      rows.push({ ...r, case: c.name, schedule: `${k.schedule.kind} ${Object.entries(k.schedule.params).map(([p, v]) => `${p}=${v}`).join(' ')}`, blockThreads: threads, occupancy: occupancy(r, threads) });
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const out = at >= 0 ? args[at + 1] : undefined;
  const t0 = performance.now();
  const rows = measureResources(resourceCases());
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  console.log(`${pad('kernel', 40)} ${pad('arch', 6)} ${pad('threads', 8)} ${pad('regs', 5)} ${pad('spill st/ld', 12)} ${pad('smem', 7)} occupancy (limited by)`);
  for (const r of rows) {
    console.log(`${pad(r.entry, 40)} ${pad(r.arch, 6)} ${pad(r.blockThreads, 8)} ${pad(r.registers, 5)} ${pad(`${r.spillStoreBytes}/${r.spillLoadBytes}`, 12)} ${pad(r.sharedBytes, 7)} ${(100 * r.occupancy.occupancy).toFixed(0)}% (${r.occupancy.blocksPerSm} blocks, ${r.occupancy.limitedBy})   ${r.case}: ${r.schedule}`);
  }
  const spills = rows.filter((r) => r.spillStoreBytes > 0 || r.spillLoadBytes > 0);
  console.log(`${rows.length} kernel x arch reports in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${spills.length} spill${spills.length === 1 ? '' : 's'}${spills.length ? `: ${spills.map((r) => `${r.entry} ${r.arch}`).join(', ')}` : ''}`);
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), command: `node --import tsx bench/cuda-resources.ts ${args.join(' ')}`.trim(), archs: ARCHS, rows }, null, 2)}\n`);
    console.log(`wrote ${out}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
