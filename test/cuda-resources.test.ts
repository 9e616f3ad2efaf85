/**
 * CUDA resource usage without a GPU (src/backends/cuda/resources.ts, bench/cuda-resources.ts): the
 * ptxas report parser, the occupancy arithmetic against hand-computed cases, and the f16 matmul's
 * tensor-core shapes through ptxas for sm_80 and sm_90: none spills, each fits an SM.
 */
import { describe, expect, it } from 'vitest';
import { occupancy, parsePtxasReport, type KernelResources } from '../src/backends/cuda/resources.js';
import { measureResources, resourceCases } from '../bench/cuda-resources.js';

const REPORT = `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'mm_out' for 'sm_90'
ptxas info    : Function properties for mm_out
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 95 registers, used 1 barriers, 13824 bytes smem, 400 bytes cmem[0]
ptxas info    : Compiling entry function 'ew' for 'sm_90'
ptxas info    : Function properties for ew
    24 bytes stack frame, 16 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 32 registers, 384 bytes cmem[0]
`;

const res = (registers: number, sharedBytes: number, arch = 'sm_90'): KernelResources => ({ entry: 'k', arch, registers, sharedBytes, stackFrameBytes: 0, spillStoreBytes: 0, spillLoadBytes: 0, barriers: 0 });

describe('CUDA resources', () => {
  it("parses ptxas' report per entry function", () => {
    expect(parsePtxasReport(REPORT)).toEqual([
      { entry: 'mm_out', arch: 'sm_90', registers: 95, stackFrameBytes: 0, spillStoreBytes: 0, spillLoadBytes: 0, sharedBytes: 13824, barriers: 1 },
      { entry: 'ew', arch: 'sm_90', registers: 32, stackFrameBytes: 24, spillStoreBytes: 16, spillLoadBytes: 12, sharedBytes: 0, barriers: 0 },
    ]);
  });

  it('computes the occupancy the registers, shared memory, threads and block count allow', () => {
    // 95 registers -> 96 per thread, 3072 per warp, 12288 per 4-warp block: 5 blocks of 65536
    expect(occupancy(res(95, 13824), 128)).toEqual({ blocksPerSm: 5, occupancy: 20 / 64, limitedBy: 'registers' });
    // 32 registers, 64 threads: 32 blocks at most, 64 warps
    expect(occupancy(res(32, 0), 64)).toEqual({ blocksPerSm: 32, occupancy: 1, limitedBy: 'blocks' });
    // 100000 bytes of shared memory: 100096 + 1024 reserved per block, 228 KiB on sm_90, 164 KiB on sm_80
    expect(occupancy(res(32, 100000), 256)).toEqual({ blocksPerSm: 2, occupancy: 16 / 64, limitedBy: 'shared memory' });
    expect(occupancy(res(32, 100000, 'sm_80'), 256)).toEqual({ blocksPerSm: 1, occupancy: 8 / 64, limitedBy: 'shared memory' });
    // 1024 threads: 2 blocks fill the SM's 2048 threads
    expect(occupancy(res(16, 0), 1024)).toEqual({ blocksPerSm: 2, occupancy: 1, limitedBy: 'threads' });
  });

  it("compiles the f16 matmul's tensor-core shapes through ptxas without spills, each fitting an SM", { timeout: 120_000 }, () => {
    const cases = resourceCases().filter((c) => c.name.startsWith('matmul_f16 '));
    expect(cases.length).toBe(9);
    const rows = measureResources(cases);
    expect(rows.length).toBe(18);
    for (const r of rows) {
      expect(r.spillStoreBytes + r.spillLoadBytes, `${r.case} ${r.arch}`).toBe(0);
      expect(r.sharedBytes).toBeLessThanOrEqual(48 * 1024);
      expect(r.occupancy.blocksPerSm, `${r.case} ${r.arch}`).toBeGreaterThanOrEqual(1);
      expect(r.schedule).toMatch(/^matmul_mma /);
    }
  });
});
