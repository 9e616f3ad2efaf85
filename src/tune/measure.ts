/**
 * How tuning measures: when two schedules' outputs agree (a candidate's output against the default
 * schedule's, beyond reassociation: a sum in another order may round to a neighbouring value), and
 * how many launches a timing sample batches.
 */
import type { HostArray } from '../runtime/backend.js';

/** The length a timing sample should reach: below it, a sample repeats its launch (see batchFor). */
export const SAMPLE_MS = 1;
const MAX_BATCH = 256;

/** Launches per timing sample for a kernel whose single launch measured `ms`: enough for `sampleMs`, at most `max`. */
export function batchFor(ms: number, sampleMs = SAMPLE_MS, max = MAX_BATCH): number {
  return ms >= sampleMs || !(ms > 0) ? 1 : Math.min(max, Math.ceil(sampleMs / ms));
}

/** Where `a` differs from `b` by more than 1e-4 relative for f32, two ulps for f16 and bf16; undefined where they agree. */
export function differs(a: HostArray, b: HostArray, dtype: string): string | undefined {
  const [rtol, atol] = dtype === 'f16' ? [2e-3, 1e-4] : dtype === 'bf16' ? [1.6e-2, 1e-4] : [1e-4, 1e-5];
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return `element ${i}: ${x} vs ${y}`;
  }
  return undefined;
}
