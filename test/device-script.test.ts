/**
 * bench/device/run.sh, the one command a session runs on the GPU machine, checked here without a GPU:
 * `--dry-run` packs Node and a trimmed node_modules (into a temporary folder, fast xz preset),
 * unpacks them into a copy of the working tree, starts vitest from it, generates the PyTorch modules
 * with the unpacked Node, compiles their CUDA for sm_90, runs them on a fake torch, py_compiles the
 * Python and prints the GPU plan. Also collect.sh, which files a run's results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-device-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('bench/device/run.sh', () => {
  it('--dry-run does every step that needs no GPU and prints the GPU plan', () => {
    const pack = join(tmp, 'pack');
    const t0 = performance.now();
    const r = spawnSync('bash', ['bench/device/run.sh', '--dry-run', '--pack-dir', pack, '--pack-level', '0'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const seconds = (performance.now() - t0) / 1000;
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status, out).toBe(0);
    console.log(`[device] dry run took ${seconds.toFixed(1)} s:\n${r.stdout.split('\n').filter((l) => /pack\.sh|dry run OK/.test(l)).join('\n')}`);
    // Packs: the node binary and only the packages the device run loads, under the tool's 64 MiB.
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
    for (const step of ['1. pack', '2. unpack', '3. vitest starts', '4. generate', '5. the modules', '6. python3 -m py_compile', '7. on the GPU this would run']) {
      expect(out, step).toContain(`] ${step}`);
    }
    expect(out).toMatch(/node v20\.\d+\.\d+ from node\.tar\.xz/);
    expect(out).toMatch(/Tests {2}1 passed \| \d+ skipped/);
    expect(out).toContain('nvcc -c -arch=sm_90: 5 launchers and their kernels from 5 modules compiled');
    for (const p of ['silu_chain', 'softmax', 'matmul', 'matmul_f16', 'rmsnorm_silu']) expect(out).toContain(`   ${p} on a fake torch: launch_${p}_`);
    expect(out).toContain('TESSERA_CUDA_REQUIRED=1 TESSERA_SMOKE=1 TESSERA_FUZZ_COUNT=40 node node_modules/vitest/vitest.mjs run test/cuda.test.ts test/op-props.test.ts test/fuzz.test.ts');
    expect(out).toContain('python3 examples/torch/run_example.py --module .device/gen/rmsnorm_silu/rmsnorm_silu_torch.py');
    expect(out).toContain('python3 bench/device/bench_torch.py --gen .device/gen --out $OUT/device-results.json');
    expect(out).toMatch(/dry run OK in \d+ s/);
  });

  it('rejects unknown arguments and prints its help', () => {
    const bad = spawnSync('bash', ['bench/device/run.sh', '--bogus'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("run.sh: unknown argument '--bogus'");
    const help = spawnSync('bash', ['bench/device/run.sh', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--dry-run');
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
