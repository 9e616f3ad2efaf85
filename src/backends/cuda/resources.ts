/**
 * What a CUDA kernel asks of a streaming multiprocessor, known without a GPU: ptxas' resource report
 * per kernel and arch (registers, spills, stack, shared memory, barriers; `nvcc -Xptxas -v`) and the
 * theoretical occupancy those allow under the arch's per-SM limits. A spill, or an occupancy limited
 * by registers to a warp or two, shows before any device time is spent.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../../errors.js';
import { archNumber, NVCC_FLAGS, nvccPath } from './nvcc.js';

export interface KernelResources {
  readonly entry: string;
  readonly arch: string;
  readonly registers: number;
  readonly stackFrameBytes: number;
  readonly spillStoreBytes: number;
  readonly spillLoadBytes: number;
  /** Static shared memory per block. */
  readonly sharedBytes: number;
  readonly barriers: number;
}

/** Parses `nvcc -Xptxas -v` output: one entry per compiled kernel (entry function) and arch. */
export function parsePtxasReport(text: string): KernelResources[] {
  const out: KernelResources[] = [];
  let cur: { entry: string; arch: string; stack?: number[] } | undefined;
  for (const line of text.split('\n')) {
    const head = /Compiling entry function '([^']+)' for '([^']+)'/.exec(line);
    if (head) {
      cur = { entry: head[1]!, arch: head[2]! };
      continue;
    }
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame && cur) {
      cur.stack = [Number(frame[1]), Number(frame[2]), Number(frame[3])];
      continue;
    }
    const used = /Used (\d+) registers(.*)$/.exec(line);
    if (used && cur) {
      const rest = used[2]!;
      const num = (re: RegExp) => Number(re.exec(rest)?.[1] ?? 0);
      out.push({
        entry: cur.entry,
        arch: cur.arch,
        registers: Number(used[1]),
        stackFrameBytes: cur.stack?.[0] ?? 0,
        spillStoreBytes: cur.stack?.[1] ?? 0,
        spillLoadBytes: cur.stack?.[2] ?? 0,
        sharedBytes: num(/(\d+) bytes smem/),
        barriers: num(/used (\d+) barriers/),
      });
      cur = undefined;
    }
  }
  return out;
}

/** ptxas' report for every kernel of `source` on each arch (nvcc -cubin per arch; E_BACKEND if nvcc fails or is missing). */
export function ptxasResources(source: string, archs: readonly string[]): KernelResources[] {
  const nvcc = nvccPath();
  if (!nvcc) fail('E_BACKEND', 'ptxasResources: nvcc not found (set $TESSERA_NVCC or put nvcc on PATH)');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ptxas-'));
  try {
    writeFileSync(join(dir, 'unit.cu'), source);
    return archs.flatMap((arch) => {
      const r = spawnSync(nvcc, [...NVCC_FLAGS, '-cubin', `-arch=${arch}`, '-Xptxas', '-v', join(dir, 'unit.cu'), '-o', join(dir, `${arch}.cubin`)], { encoding: 'utf8' });
      if (r.status !== 0) fail('E_BACKEND', `ptxasResources: nvcc failed for ${arch}:\n${(r.stderr || r.error?.message || '').trim()}`);
      return parsePtxasReport(`${r.stdout}\n${r.stderr}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Per-SM limits of a compute capability (CUDA's occupancy calculator). */
interface SmLimits {
  readonly registers: number;
  readonly threads: number;
  readonly blocks: number;
  readonly sharedBytes: number;
  /** Shared memory the runtime reserves per block. */
  readonly reservedSharedBytes: number;
}

const SM_LIMITS: Readonly<Record<number, SmLimits>> = {
  70: { registers: 65536, threads: 2048, blocks: 32, sharedBytes: 98304, reservedSharedBytes: 0 },
  75: { registers: 65536, threads: 1024, blocks: 16, sharedBytes: 65536, reservedSharedBytes: 0 },
  80: { registers: 65536, threads: 2048, blocks: 32, sharedBytes: 167936, reservedSharedBytes: 1024 },
  86: { registers: 65536, threads: 1536, blocks: 16, sharedBytes: 102400, reservedSharedBytes: 1024 },
  89: { registers: 65536, threads: 1536, blocks: 24, sharedBytes: 102400, reservedSharedBytes: 1024 },
  90: { registers: 65536, threads: 2048, blocks: 32, sharedBytes: 233472, reservedSharedBytes: 1024 },
};

export interface Occupancy {
  readonly blocksPerSm: number;
  /** Resident warps over the SM's maximum, 0 to 1. */
  readonly occupancy: number;
  readonly limitedBy: 'registers' | 'shared memory' | 'threads' | 'blocks';
}

/** The theoretical occupancy of a kernel launched in blocks of `blockThreads` on its arch (registers allocated per warp in units of 256). */
export function occupancy(r: KernelResources, blockThreads: number): Occupancy {
  const n = archNumber(r.arch);
  const lim = SM_LIMITS[n] ?? SM_LIMITS[Object.keys(SM_LIMITS).map(Number).filter((k) => k <= n).pop() ?? 80]!;
  const warps = Math.ceil(blockThreads / 32);
  const regsPerWarp = Math.ceil((Math.max(r.registers, 1) * 32) / 256) * 256;
  const smem = Math.ceil(r.sharedBytes / 128) * 128 + lim.reservedSharedBytes;
  const by: [Occupancy['limitedBy'], number][] = [
    ['blocks', lim.blocks],
    ['threads', Math.floor(lim.threads / (warps * 32))],
    ['registers', Math.floor(lim.registers / (regsPerWarp * warps))],
    ['shared memory', smem > 0 ? Math.floor(lim.sharedBytes / smem) : Infinity],
  ];
  const [limitedBy, blocksPerSm] = by.reduce((a, b) => (b[1] < a[1] ? b : a));
  return { blocksPerSm, occupancy: (blocksPerSm * warps) / (lim.threads / 32), limitedBy };
}
