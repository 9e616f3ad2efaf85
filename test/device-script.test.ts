/**
 * bench/device/run.sh, the one command to run on a GPU machine, checked here without a GPU:
 * `--dry-run` packs Node and a trimmed node_modules (into a temporary folder, fast xz preset),
 * unpacks them into a copy of the working tree, starts vitest from it, generates the PyTorch modules
 * with the unpacked Node, compiles their CUDA for sm_90, runs them on a fake torch, py_compiles the
 * Python, builds every low-bit GEMV program of bench/device/quant-gemv-cuda.ts and compiles its
 * kernels with nvcc (`--check-only`), and prints the GPU plan. Also collect.sh, which files a run's
 * results, and quant-gemv-cuda.ts's measurement harness without a GPU: on the JS runtime (every
 * implementation and schedule checked against the float64 reference) and on the fake libcuda of
 * test/cuda-stub (the CUDA path: parallel precompile, event timing, JSON; kernels do not run there).
 */
import { spawnSync } from 'node:child_process';
import { cudaEmulatorUnavailableReason } from '../src/backends/cuda/emulator.js';
import { nvccAvailable } from '../src/backends/cuda/nvcc.js';
import { cudaUnavailableReason } from '../src/backends/cuda/runtime.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-device-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('bench/device/run.sh', () => {
  it('--dry-run does every step that needs no GPU and prints the GPU plan', { timeout: 300_000 }, () => {
    const pack = join(tmp, 'pack');
    const t0 = performance.now();
    const r = spawnSync('bash', ['bench/device/run.sh', '--dry-run', '--pack-dir', pack, '--pack-level', '0'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 290_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const seconds = (performance.now() - t0) / 1000;
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status, out).toBe(0);
    console.log(`[device] dry run took ${seconds.toFixed(1)} s:\n${r.stdout.split('\n').filter((l) => /pack\.sh|dry run OK/.test(l)).join('\n')}`);
    // Packs: the node binary and only the packages the device run loads, under the 64 MiB a call may send.
    expect(existsSync(join(pack, 'node.tar.xz'))).toBe(true);
    expect(existsSync(join(pack, 'node_modules.tar.xz'))).toBe(true);
    const carried = /: ([\d.]+) MiB of the 64 MiB a device call carries/.exec(out);
    expect(carried, out).not.toBeNull();
    expect(Number(carried![1])).toBeLessThan(64);
    const listing = spawnSync('tar', ['-tJf', join(pack, 'node_modules.tar.xz')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).stdout;
    expect(listing).toMatch(/^node_modules\/vitest\/package\.json$/m);
    expect(listing).toMatch(/^node_modules\/tsx\/package\.json$/m);
    expect(listing).not.toMatch(/^node_modules\/(webgpu|typescript|ts-morph|node-gyp)\//m);
    // The steps, in order.
    for (const step of ['1. pack', '2. unpack', '3. vitest starts', '4. generate', '5. the modules', '6. python3 -m py_compile', '7. low-bit GEMV, host only', '8. on the GPU this would run']) {
      expect(out, step).toContain(`] ${step}`);
    }
    expect(out).toMatch(/node v20\.\d+\.\d+ from node\.tar\.xz/);
    expect(out).toMatch(/Tests {2}1 passed \| \d+ skipped/);
    // eight one-kernel modules (the f16 matmul under the default and the 128x128 tensor-core blocks
    // among them) and the transformer block in f32 and f16 (three kernels each), and the kernels of the
    // one-token and aligned versions of the matmul and block programs; the block again with --chain
    // (three kernels, its one-token build chained into one, and six in its aligned builds)
    expect(out).toContain('nvcc -c -arch=sm_90: 45 launchers and their kernels from 11 modules compiled');
    expect(out).toContain('   block_chain: 3 kernels (row, matmul, matmul) and versions T=1 (1 kernel), T%16 D%4 H%4 (3 kernels), T%16 (3 kernels)');
    for (const p of ['silu_chain', 'softmax', 'matmul', 'matmul_f16', 'matmul_bf16', 'matmul_f16_simt', 'matmul_f16_128', 'rmsnorm_silu']) expect(out).toContain(`   ${p} on a fake torch: launch_${p}_`);
    expect(out).toContain('   block on a fake torch: launch_block_row_t0, launch_block_matmul_t1, launch_block_matmul_out -> out torch.float32');
    expect(out).toContain('   block_f16 on a fake torch: launch_block_f16_row_t0, launch_block_f16_matmul_mma_t1, launch_block_f16_matmul_mma_out -> out torch.float16');
    expect(out).toContain('TESSERA_CUDA_REQUIRED=1 TESSERA_SMOKE=1 TESSERA_FUZZ_COUNT=40 node node_modules/vitest/vitest.mjs run test/cuda.test.ts test/op-props.test.ts test/fuzz.test.ts');
    expect(out).toContain('python3 examples/torch/run_example.py --module .device/gen/rmsnorm_silu/rmsnorm_silu_torch.py');
    expect(out).toContain('python3 bench/device/bench_torch.py --gen .device/gen --out $OUT/device-results.json');
    // The low-bit GEMV step: every program built (f32, f16, 7+ formats fused, VPTQ v6, the int4 pair; M=1 and 16;
    // 6 schedules each) and its kernels compiled by nvcc for sm_90 from the unpacked tree.
    const programs = /(\d+) GEMV programs x 6 schedules: (\d+) compiled programs, 0 failed to build\n/.exec(out);
    expect(programs, out).not.toBeNull();
    expect(Number(programs![1])).toBeGreaterThanOrEqual(2 * 11);
    expect(Number(programs![2])).toBe(6 * Number(programs![1]));
    expect(out).toMatch(/compileCuda sm_90: \d+ kernels in \d+ units \(.*nvcc 13[.\d]*\) in [\d.]+ s with \d+ jobs; 0 failed/);
    expect(out).toMatch(/check-only OK: \d+ GEMV programs, \d+ distinct kernels compiled for sm_90/);
    expect(out).toContain('node --import tsx bench/device/quant-gemv-cuda.ts --out $OUT/quant-gemv.json   (timeout 300s)');
    expect(out).toContain('9. cp $OUT/device-results.json bench/results/device/<date>-<gpu>.json');
    expect(out).toMatch(/dry run OK in \d+ s/);
  });

  it('rejects unknown arguments and prints its help', () => {
    const bad = spawnSync('bash', ['bench/device/run.sh', '--bogus'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("run.sh: unknown argument '--bogus'");
    const help = spawnSync('bash', ['bench/device/run.sh', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--dry-run');
    expect(help.stdout).toContain('--quant-only');
  });
});

describe('bench/device/quant-gemv-cuda.ts', () => {
  const script = 'bench/device/quant-gemv-cuda.ts';
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 170_000, env: { ...process.env, NO_COLOR: '1', ...env } });

  interface Variant { id: string; ok: boolean; ms?: number; maxRelErr?: number | null; error?: string; timing?: { source: string; inner: number; busyLaunches?: number } }
  interface Result { name: string; M: number; N: number; kind: string; bitsPerWeight: number; copies: number; variants: Variant[]; best?: { id: string; ms: number; gbPerS: number; fractionOfBandwidth?: number }; speedupVsF16?: number }
  interface Report { mode: string; device: string; bandwidth: { gbPerS: number; rtTime: { source: string } }; launchFloor: { us: number }; targets: { target: string; pass: boolean }[]; results: Result[]; failed: string[] }

  it('runs every implementation and schedule on the JS runtime, each checked against the float64 reference', { timeout: 180_000 }, () => {
    const out = join(tmp, 'quant-js.json');
    const r = run(['--backend', 'js', '--sizes', '32', '--m', '1,3', '--rounds', '1', '--inner', '2', '--copy-mib', '1', '--flush-mib', '0', '--out', out]);
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8')) as Report;
    expect(j.mode).toBe('js');
    expect(j.failed).toEqual([]);
    const names = [...new Set(j.results.map((x) => x.name))];
    for (const n of ['f32', 'f16', 'int8', 'int4 g128', 'int4 g128 dequant+matmul', 'nf4', 'fp8 e4m3', 'mxfp4', 'ternary', 'vptq v6 k4096']) expect(names).toContain(n);
    expect(j.results.length).toBe(2 * names.length);
    for (const x of j.results) {
      expect(x.variants.map((v) => v.id)).toEqual(['default', 'splitk-tree-128', 'splitk-warp', 'splitk-warp-tn4', 'splitk-tree-tn4-256', 'splitk-tree-uk32-128']);
      for (const v of x.variants) expect(v.ok, `${x.name} M=${x.M} ${v.id}: ${v.error}`).toBe(true);
      expect(x.best!.ms).toBeGreaterThan(0);
      expect(x.speedupVsF16).toBeGreaterThan(0);
    }
    expect(j.bandwidth.gbPerS).toBeGreaterThan(0);
    expect(j.targets.map((t) => t.target)).toEqual(['int4 GEMV >= 80% of measured bandwidth (M=1)', 'VPTQ 2-bit GEMV faster than f16 GEMV (M=1)']);
    expect(r.stdout).toMatch(/target (MET|NOT MET): int4 GEMV/);
  });

  it.skipIf(cudaUnavailableReason() === undefined)('says clearly when there is no CUDA device', () => {
    const r = run(['--sizes', '32'], { LD_LIBRARY_PATH: join(tmp, 'none') });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/quant-gemv-cuda: no CUDA device: .*\n\(--check-only builds and compiles every kernel without a GPU/);
    const bad = run(['--sizes', 'x']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--sizes: 'x' is not an integer");
  });

  it.skipIf(!nvccAvailable() || !existsSync(join(ROOT, 'build/Release/tessera_cuda.node')))('drives the CUDA path on the fake libcuda: precompile, events, JSON (outputs stay NaN there)', { timeout: 180_000 }, () => {
    const dir = join(tmp, 'stub');
    mkdirSync(dir, { recursive: true });
    const cc = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-o', join(dir, 'libcuda.so.1'), join(ROOT, 'test/cuda-stub/libcuda_stub.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const out = join(tmp, 'quant-stub.json');
    const r = run(['--sizes', '64', '--m', '1,2', '--formats', 'f16,int4,vptq v6', '--variants', 'default,splitk-warp', '--rounds', '2', '--inner', '4', '--copy-mib', '4', '--flush-mib', '1', '--jobs', '2', '--out', out], { LD_LIBRARY_PATH: dir });
    const text = `${r.stdout}${r.stderr}`;
    // The fake driver runs no kernel, so every output stays NaN and no implementation has a correct variant.
    expect(r.status, text).toBe(1);
    expect(text).toContain('cuda: Tessera Stub GPU (sm_90');
    expect(text).toMatch(/compileCuda sm_90: \d+ kernels \(\d+ compiled, \d+ cached, nvcc [\d.]+\) in [\d.]+ s with 2 jobs; 0 failed/);
    const j = JSON.parse(readFileSync(out, 'utf8')) as Report;
    expect(j.mode).toBe('cuda');
    expect(j.bandwidth.rtTime.source).toBe('device');
    expect(j.launchFloor.us).toBeGreaterThan(0);
    expect(j.results.map((x) => `${x.name} M=${x.M}`)).toEqual(['f16 M=1', 'f16 M=2', 'int4 g128 M=1', 'int4 g128 M=2', 'int4 g128 dequant+matmul M=1', 'int4 g128 dequant+matmul M=2', 'vptq v6 k4096 M=1', 'vptq v6 k4096 M=2']);
    expect(j.failed.length).toBe(8);
    for (const x of j.results) {
      expect(x.copies).toBeGreaterThan(1);
      for (const v of x.variants) {
        expect(v.ok).toBe(false);
        expect(v.error).toMatch(/output differs from the float64 reference \(max rel err NaN\)/);
        expect(v.timing!.source).toBe('cuda-events');
        expect(v.timing!.busyLaunches).toBeGreaterThan(0);
        expect(v.ms).toBeGreaterThan(0);
      }
    }
  });

  it.skipIf(cudaEmulatorUnavailableReason() !== undefined)('runs the CUDA path on the CPU emulator: the CUDA kernels, checked against the float64 reference, timed by events', { timeout: 180_000 }, () => {
    const out = join(tmp, 'quant-emu.json');
    const r = run(['--backend', 'cuda-emu', '--sizes', '32', '--m', '1,2', '--formats', 'f16,int4,vptq v6', '--variants', 'default,splitk-warp', '--rounds', '1', '--inner', '2', '--copy-mib', '1', '--flush-mib', '0', '--out', out]);
    const text = `${r.stdout}${r.stderr}`;
    expect(r.status, text).toBe(0);
    expect(text).toContain('cuda-emu: Tessera CUDA emulator (CPU): sm_90 kernels compiled by g++');
    const j = JSON.parse(readFileSync(out, 'utf8')) as Report;
    expect(j.mode).toBe('cuda-emu');
    expect(j.failed).toEqual([]);
    expect(j.results.map((x) => `${x.name} M=${x.M}`)).toEqual(['f16 M=1', 'f16 M=2', 'int4 g128 M=1', 'int4 g128 M=2', 'int4 g128 dequant+matmul M=1', 'int4 g128 dequant+matmul M=2', 'vptq v6 k4096 M=1', 'vptq v6 k4096 M=2']);
    for (const x of j.results) {
      for (const v of x.variants) {
        expect(v.ok, `${x.name} M=${x.M} ${v.id}: ${v.error}`).toBe(true);
        expect(v.timing!.source).toBe('cuda-events');
      }
    }
  });
});

describe('bench/device/collect.sh', () => {
  it("files a run's results under bench/results/device with the name the run chose", () => {
    const from = join(tmp, 'files_at');
    mkdirSync(from, { recursive: true });
    const name = `bench/results/device/1999-01-01-test-gpu-${process.pid}.json`;
    writeFileSync(join(from, 'device-results.json'), '{"date": "1999-01-01T00:00:00Z", "gpu": "Test GPU"}\n');
    writeFileSync(join(from, 'results-name.txt'), `${name}\n`);
    const hadDir = existsSync(join(ROOT, 'bench/results/device'));
    try {
      const r = spawnSync('bash', ['bench/device/collect.sh', from], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(ROOT, name), 'utf8')).toContain('Test GPU');
    } finally {
      rmSync(join(ROOT, name), { force: true });
      if (!hadDir) rmSync(join(ROOT, 'bench/results/device'), { recursive: true, force: true });
    }
  });
});
