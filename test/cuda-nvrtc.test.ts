/**
 * NVRTC through the addon (dlopen'ed libnvrtc), without NVRTC: a fake libnvrtc.so
 * (test/cuda-stub/libnvrtc_stub.c) built with cc, and test/cuda-stub/nvrtc-check.ts run in child
 * processes (a loaded library cannot be unloaded), one with the stub on LD_LIBRARY_PATH (next to the
 * fake libcuda.so.1, so the CUDA runtime's 'auto' compiles through it end to end) and one without any
 * libnvrtc (the probe says why; 'auto' uses nvcc). Where a real libnvrtc is loadable, the second
 * compiles with it for real. nvcc is required, as for test/cuda.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const tmpDirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function cc(out: string, src: string): void {
  const r = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-Wall', '-o', out, join(ROOT, src)], { encoding: 'utf8' });
  expect(r.status, `building ${src}: ${r.stderr}`).toBe(0);
}

function check(mode: 'stub' | 'absent', env: Record<string, string>): { ok: boolean; mode: string; [k: string]: unknown } {
  const base = { ...process.env };
  delete base['TESSERA_NVRTC'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/cuda-stub/nvrtc-check.ts'), mode], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...base, ...env },
    timeout: 300_000,
  });
  expect(r.status, `nvrtc check (${mode}) failed:\n${r.stderr}\n${r.stdout}`).toBe(0);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; mode: string };
  console.log(`[tessera] NVRTC check (${mode}): ${JSON.stringify(summary)}`);
  return summary;
}

describe('NVRTC', () => {
  it('with a fake libnvrtc.so: probe, compile, cache, errors, auto and the CUDA runtime', () => {
    const dir = tempDir('tessera-nvrtc-stub-');
    cc(join(dir, 'libnvrtc.so'), 'test/cuda-stub/libnvrtc_stub.c');
    cc(join(dir, 'libcuda.so.1'), 'test/cuda-stub/libcuda_stub.c');
    const s = check('stub', { LD_LIBRARY_PATH: dir, TESSERA_NVRTC_STUB_LOG: join(dir, 'nvrtc.log'), TESSERA_STUB_LOG: join(dir, 'launches.log') });
    expect(s.ok).toBe(true);
  });

  it('without libnvrtc: probe reports unavailable with a reason and auto uses nvcc', () => {
    const s = check('absent', { LD_LIBRARY_PATH: tempDir('tessera-nvrtc-none-') });
    expect(s.ok).toBe(true);
  });
});
