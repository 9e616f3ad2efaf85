/**
 * When two schedules' outputs agree: a candidate's output against the default schedule's, beyond
 * reassociation (a sum in another order may round to a neighbouring value).
 */
import type { HostArray } from '../runtime/backend.js';

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
