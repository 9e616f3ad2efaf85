/**
 * Throughput of library ops on one runtime: each case is checked against its reference once at the
 * op's sample dims, then its buffers are prepared once at the bench dims and reused, and it is timed
 * with runtime.time() (device timestamps where the backend has them). Cases are timed in
 * interleaved rounds, so drift on a noisy machine hits all of them alike; each reports the median.
 */
import { compile, selectVersion, type CompiledProgram } from '../src/passes/pipeline.js';
import { evalShape, numel } from '../src/ir/dims.js';
import type { BackendRuntime } from '../src/runtime/backend.js';
import { prepare, type Prepared } from '../src/runtime/execute.js';
import { DTYPE_BYTES, describeMismatch, makeInputs, opByName, runOp, type Dims, type OpSpec } from '../ops/index.js';
import { median } from './stats.js';

export interface BenchCase {
  /** What the row is called in the table. */
  readonly label: string;
  readonly op: string;
  readonly dims: Dims;
}

export interface CaseResult {
  readonly label: string;
  readonly op: string;
  readonly dims: Dims;
  readonly kernels: number;
  /** 'ok', or the first mismatch against the reference at the op's sample dims. */
  readonly check: string;
  readonly checkDims: Dims;
  readonly flops: number;
  /** Ideal bytes (inputs read once, outputs written once). */
  readonly idealBytes: number;
  /** Bytes of every buffer each kernel binds, once per kernel: what fusion leaves in memory. */
  readonly boundBytes: number;
  readonly source: 'device' | 'wall';
  readonly rounds: number;
  readonly repeats: number;
  readonly medianMs: number;
  readonly roundMs: readonly number[];
  readonly gflops: number;
  readonly gbps: number;
}

/** The standard cases: a stream ceiling, the fused elementwise chain, the row ops, the matmuls. */
export function standardCases(quick: boolean): BenchCase[] {
  const rows = quick ? { M: 64, N: 256 } : { M: 4096, N: 1024 };
  const sizes = quick ? [32, 64, 128] : [256, 512, 1024];
  return [
    { label: `relu (stream) ${rows.M}x${rows.N}`, op: 'relu', dims: rows },
    { label: `silu(x*a+b) ${rows.M}x${rows.N}`, op: 'silu_chain', dims: rows },
    { label: `softmax ${rows.M}x${rows.N}`, op: 'softmax', dims: rows },
    { label: `rmsnorm ${rows.M}x${rows.N}`, op: 'rmsnorm', dims: rows },
    ...sizes.map((s) => ({ label: `matmul ${s}`, op: 'matmul', dims: { M: s, N: s, K: s } })),
  ];
}

function boundBytes(cp: CompiledProgram, dims: Dims): number {
  let total = 0;
  for (const k of selectVersion(cp, dims).kernels) for (const b of k.kernel.buffers) total += DTYPE_BYTES[b.dtype] * numel(evalShape(b.shape, dims));
  return total;
}

interface Live {
  readonly c: BenchCase;
  readonly op: OpSpec;
  readonly cp: CompiledProgram;
  readonly prepared: Prepared;
  readonly check: string;
  readonly repeats: number;
  readonly rounds: number[];
  source: 'device' | 'wall';
}

export interface ThroughputOptions {
  readonly rounds: number;
  /** Each time() call runs about this long (repeats are chosen from a first measurement). */
  readonly targetMsPerRound: number;
  readonly log?: (line: string) => void;
}

export async function measureThroughput(rt: BackendRuntime, cases: readonly BenchCase[], opts: ThroughputOptions): Promise<CaseResult[]> {
  const live: Live[] = [];
  try {
    for (const c of cases) {
      const op = opByName(c.op);
      if (!op) throw new Error(`bench case '${c.label}': no op '${c.op}' in the library`);
      const cp = compile(op.def.program);
      const run = await runOp(op, rt, op.sampleDims, { compiled: cp });
      const check = describeMismatch(op, op.sampleDims, run) ?? 'ok';
      if (check !== 'ok') opts.log?.(`CHECK FAILED ${check}`);
      const prepared = prepare(cp, rt, makeInputs(op, c.dims));
      // One launch outside any measurement: first-touch page faults, pipeline creation, JIT.
      await rt.time(() => prepared.launch(), 1);
      const calib = await rt.time(() => prepared.launch(), 3);
      const repeats = Math.max(3, Math.min(100, Math.ceil(opts.targetMsPerRound / Math.max(calib.medianMs, 1e-3))));
      live.push({ c, op, cp, prepared, check, repeats, rounds: [], source: calib.source });
    }
    for (let r = 0; r < opts.rounds; r++) {
      for (const l of live) {
        const t = await rt.time(() => l.prepared.launch(), l.repeats);
        l.rounds.push(t.medianMs);
        l.source = t.source;
      }
    }
    return live.map((l) => {
      const ms = median(l.rounds);
      const flops = l.op.flops(l.c.dims);
      const bytes = l.op.bytes(l.c.dims);
      return {
        label: l.c.label,
        op: l.op.name,
        dims: l.c.dims,
        kernels: selectVersion(l.cp, l.c.dims).kernels.length,
        check: l.check,
        checkDims: l.op.sampleDims,
        flops,
        idealBytes: bytes,
        boundBytes: boundBytes(l.cp, l.c.dims),
        source: l.source,
        rounds: l.rounds.length,
        repeats: l.repeats,
        medianMs: ms,
        roundMs: l.rounds,
        gflops: flops / (ms * 1e6),
        gbps: bytes / (ms * 1e6),
      };
    });
  } finally {
    for (const l of live) l.prepared.free();
  }
}
