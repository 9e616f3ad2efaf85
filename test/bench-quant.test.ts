/** The low-bit benchmarks run end to end at tiny sizes (so the report command cannot rot). */
import { describe, expect, it } from 'vitest';
import { qualityMarkdown, runQuality } from '../bench/quant-quality.js';
import { runQuantGemv } from '../bench/quant-gemv.js';
import { QUALITY_SCHEMES } from '../bench/quant-schemes.js';
import { getTestWebGPU, smokeRun } from './helpers/webgpu.js';

describe('quality table', () => {
  it('scores schemes on stories260K against float32, more bits scoring closer', async () => {
    const schemes = QUALITY_SCHEMES.filter((s) => ['int8 per-channel RTN', 'int4 g32 GPTQ', 'VPTQ v2 k16'].includes(s.label));
    expect(schemes).toHaveLength(3);
    const [m] = await runQuality({ models: ['stories260K'], quick: true, schemes, log: () => {} });
    const row = (label: string) => m!.rows.find((r) => r.scheme === label)!;
    expect(row('float32')).toMatchObject({ kl: 0, top1: 1 });
    expect(row('int8 per-channel RTN').kl).toBeLessThan(row('int4 g32 GPTQ').kl);
    expect(row('int4 g32 GPTQ').kl).toBeLessThan(row('VPTQ v2 k16').kl);
    expect(row('int8 per-channel RTN').bitsPerWeight).toBeCloseTo(8.2, 1);
    expect(row('VPTQ v2 k16').bitsPerWeight).toBeGreaterThan(2);
    expect(row('VPTQ v2 k16').bitsPerWeight).toBeLessThan(2.2);
    expect(qualityMarkdown([m!])).toContain('| VPTQ v2 k16 |');
  }, 120_000);
});

describe.skipIf(smokeRun())('GEMV benchmark', () => {
  it('checks every format against the reference and reports fused and pair kernels', async () => {
    if (!(await getTestWebGPU())) return; // no adapter and not required here (CI requires one)
    const { results } = await runQuantGemv({ N: 48, K: 72, M: 1, rounds: 1, repeats: 1, log: () => {} });
    expect(results.map((r) => r.name)).toEqual(['f32', 'int8', 'int4 g128', 'int4 g128 dequant+matmul', 'nf4', 'fp8 e4m3', 'mxfp4', 'ternary', 'vptq v4 k256', 'w8a8 (dot4i8)']);
    for (const r of results) {
      expect(r.maxRelErr, r.name).toBeLessThan(1e-3);
      expect(r.kernels, r.name).toBe(r.name.includes('dequant') ? 2 : r.name.startsWith('w8a8') ? 3 : 1);
      expect(r.ms).toBeGreaterThan(0);
    }
  }, 120_000);
});
