/**
 * Run by test/cuda-nvrtc.test.ts in a child process (a loaded libnvrtc stays loaded, so each
 * situation gets its own process):
 *
 *   stub    LD_LIBRARY_PATH holds the fake libnvrtc.so (libnvrtc_stub.c) and the fake libcuda.so.1:
 *           the probe finds it, compileCuda with 'nvrtc' returns the stub's bytes and caches them,
 *           failures are E_BACKEND with the log and an nvcc command, 'auto' picks NVRTC (also in the
 *           CudaRuntime, end to end through the fake driver), TESSERA_NVRTC=none sends 'auto' to nvcc.
 *   absent  LD_LIBRARY_PATH holds no libnvrtc: the probe says why not and 'auto' uses nvcc. (Where a
 *           real libnvrtc is loadable anyway, it is compiled with for real instead.)
 *
 * Exits non-zero with the failed assertion; prints a JSON summary on success.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TesseraError } from '../../src/errors.js';
import type { Kernel } from '../../src/ir/kernel.js';
import { loadCudaAddon } from '../../src/backends/cuda/native.js';
import { chooseCudaCompiler, compileCuda, cudaNvrtcStatus, nvrtcLibraryPath } from '../../src/backends/cuda/nvcc.js';
import { NvrtcError, nvrtcCompile, nvrtcProbe } from '../../src/backends/cuda/nvrtc.js';
import { createCudaRuntime, cudaUnavailableReason, type CudaBuffer } from '../../src/backends/cuda/runtime.js';

const mode = process.argv[2];
const SOURCE = 'extern "C" __global__ void __launch_bounds__(64) nvrtc_probe_kernel(float* x, int n) { if (threadIdx.x < n) x[threadIdx.x] = 1.0f; }\n';
const FAILING = 'extern "C" __global__ void nvrtc_bad(float* x) { x[0] = TESSERA_NVRTC_STUB_FAIL; }\n';
const tmp: string[] = [];
const tempDir = (p: string): string => {
  const d = mkdtempSync(join(tmpdir(), p));
  tmp.push(d);
  return d;
};

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return assert.fail('expected an error');
}

function expectCode(code: string, f: () => unknown, text?: RegExp): TesseraError {
  const e = caught(f);
  assert.ok(e instanceof TesseraError, `expected a TesseraError ${code}, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (text) assert.match(e.message, text);
  return e;
}

function stub(): Record<string, unknown> {
  const nvrtcLog = process.env['TESSERA_NVRTC_STUB_LOG']!;
  const compiles = (): string[] => (existsSync(nvrtcLog) ? readFileSync(nvrtcLog, 'utf8').split('\n').filter((l) => l !== '') : []);
  const addon = loadCudaAddon();
  assert.ok(addon, 'addon loads');
  const libDir = process.env['LD_LIBRARY_PATH']!;

  // The probe: the stub, found through LD_LIBRARY_PATH, and nvcc.ts's path detection finds it too.
  const raw = addon.nvrtcProbe();
  assert.equal(raw.available, true, raw.reason);
  assert.equal(raw.version, '12.8');
  assert.deepEqual([raw.major, raw.minor], [12, 8]);
  assert.equal(raw.path, join(libDir, 'libnvrtc.so'));
  assert.match(addon.nvrtcBuiltWith, /nvrtc(_min)?\.h/);
  assert.equal(nvrtcLibraryPath(), join(libDir, 'libnvrtc.so'));
  assert.deepEqual(cudaNvrtcStatus(), { available: true, version: '12.8', path: join(libDir, 'libnvrtc.so') });
  assert.deepEqual(nvrtcProbe('/elsewhere/libnvrtc.so.12'), cudaNvrtcStatus(), 'once loaded, the library stays');

  // The addon directly: a cubin for sm_XX, PTX for compute_XX, argument checks.
  const direct = addon.nvrtcCompile(SOURCE, 'direct.cu', ['-arch=sm_86', '-std=c++17']);
  assert.ok(direct.cubin && !direct.ptx);
  assert.equal(direct.log, 'stub: compiled direct.cu with -arch=sm_86 -std=c++17');
  assert.ok(direct.cubin.includes(Buffer.from('TESSERA-NVRTC-STUB-CUBIN sm_86\0nvrtc_probe_kernel\0')));
  const viaSplit = addon.nvrtcCompile(SOURCE, 'direct.cu', ['--gpu-architecture', 'sm_90']);
  assert.ok(viaSplit.cubin?.includes(Buffer.from('sm_90')));
  const ptxOnly = addon.nvrtcCompile(SOURCE, 'direct.cu', ['-arch=compute_80']);
  assert.ok(ptxOnly.ptx && !ptxOnly.cubin);
  assert.equal(ptxOnly.ptx.toString('latin1'), '// TESSERA-NVRTC-STUB-PTX compute_80\n');
  assert.throws(() => addon.nvrtcCompile(SOURCE, 'x.cu', 'nope' as unknown as string[]), TypeError);
  assert.throws(() => addon.nvrtcCompile(SOURCE, 'x.cu', [1 as unknown as string]), /option 0 is not a string/);
  const rawFail = caught(() => addon.nvrtcCompile(FAILING, 'bad.cu', ['-arch=sm_90'])) as Error & { nvrtcResult: number; nvrtcError: string; log: string };
  assert.match(rawFail.message, /^nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION\nbad\.cu\(1\): error: the stub rejects this source/);
  assert.equal(rawFail.nvrtcResult, 6);
  assert.equal(rawFail.nvrtcError, 'NVRTC_ERROR_COMPILATION');
  assert.match(rawFail.log, /1 error detected in the compilation of "bad\.cu"/);

  // compileCuda with 'nvrtc': the stub's bytes, one compile per arch, then the cache.
  const cacheDir = tempDir('tessera-nvrtc-cache-');
  writeFileSync(nvrtcLog, '');
  const first = compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_80', 'sm_90'], output: 'cubin', cacheDir });
  assert.equal(first.compiler, 'nvrtc');
  assert.equal(first.compilerVersion, '12.8');
  assert.equal(first.cached, false);
  assert.deepEqual(first.parts.map((p) => p.arch), ['sm_80', 'sm_90']);
  first.parts.forEach((p) => {
    assert.equal(p.bytes.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.ok(p.bytes.includes(Buffer.from(`TESSERA-NVRTC-STUB-CUBIN ${p.arch}\0nvrtc_probe_kernel\0`)), p.arch);
    assert.deepEqual(p.nvrtcOptions!.slice(0, 5), [`-arch=${p.arch}`, '-std=c++17', '-ftz=false', '-prec-div=true', '-prec-sqrt=true']);
    assert.ok(p.nvrtcOptions!.every((o) => !/fast.math/.test(o)));
    assert.equal(p.log, `stub: compiled kernel.cu with ${p.nvrtcOptions!.join(' ')}`);
    assert.match(p.command, new RegExp(`nvcc -cubin .*-gencode arch=${p.arch.replace('sm', 'compute')},code=${p.arch} -o \\S+ '<source>\\.cu'$`));
  });
  assert.deepEqual(compiles().map((l) => l.split(' ')[2]), ['-arch=sm_80', '-arch=sm_90']);
  const second = compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_80', 'sm_90'], output: 'cubin', cacheDir });
  assert.equal(second.cached, true);
  second.parts.forEach((p, i) => assert.ok(p.bytes.equals(first.parts[i]!.bytes)));
  assert.equal(compiles().length, 2, 'cached: NVRTC not called again');
  assert.deepEqual(readdirSync(cacheDir).filter((f) => !f.endsWith('.cubin')), [], 'no temporary files');
  assert.equal(readdirSync(cacheDir).length, 2);
  // 'auto' picks NVRTC (and shares its cache entries); extra flags are another entry.
  const auto = compileCuda(SOURCE, { compiler: 'auto', archs: ['sm_80', 'sm_90'], output: 'cubin', cacheDir });
  assert.equal(auto.compiler, 'nvrtc');
  assert.equal(auto.cached, true);
  const lineinfo = compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir, extraFlags: ['-lineinfo'] });
  assert.equal(lineinfo.cached, false);
  assert.equal(lineinfo.parts[0]!.nvrtcOptions!.at(-1), '-lineinfo');
  // nvcc on the same source is a different entry with real machine code.
  const viaNvcc = compileCuda(SOURCE, { compiler: 'nvcc', archs: ['sm_90'], output: 'cubin', cacheDir });
  assert.equal(viaNvcc.compiler, 'nvcc');
  assert.equal(viaNvcc.cached, false);
  assert.ok(!viaNvcc.bytes.includes(Buffer.from('TESSERA-NVRTC-STUB')));
  assert.ok(viaNvcc.bytes.includes(Buffer.from('nvrtc_probe_kernel')));
  assert.equal(readdirSync(cacheDir).length, 4);

  // PTX: the lowest arch, as a virtual arch. A fatbin: never NVRTC.
  const ptx = compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90', 'sm_80'], output: 'ptx', cacheDir });
  assert.equal(ptx.bytes.toString('latin1'), '// TESSERA-NVRTC-STUB-PTX compute_80\n');
  assert.equal(ptx.parts[0]!.nvrtcOptions![0], '-arch=compute_80');
  expectCode('E_ARG', () => compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90'], output: 'fatbin', cacheDir }), /NVRTC cannot produce a fatbin/);
  expectCode('E_ARG', () => compileCuda(SOURCE, { compiler: 'clang' as 'nvcc', archs: ['sm_90'], output: 'cubin', cacheDir }), /auto, nvcc or nvrtc/);
  const fat = compileCuda(SOURCE, { compiler: 'auto', archs: ['sm_90'], output: 'fatbin', cacheDir });
  assert.equal(fat.compiler, 'nvcc');
  assert.equal(fat.bytes.readUInt32LE(0), 0xba55ed50);

  // A failing compile: E_BACKEND with NVRTC's error, the log, the options and an nvcc command that
  // reproduces it on the kept source; nothing cached.
  const before = readdirSync(cacheDir).length;
  const e = expectCode('E_BACKEND', () => compileCuda(FAILING, { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir }));
  assert.ok(e instanceof NvrtcError);
  assert.match(e.message, /CUDA compile failed for sm_90: NVRTC 12\.8 \(\S+libnvrtc\.so\): nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION\n/);
  assert.match(e.message, /kernel\.cu\(1\): error: the stub rejects this source \(TESSERA_NVRTC_STUB_FAIL\)/);
  assert.match(e.message, /\nNVRTC options: -arch=sm_90 -std=c\+\+17 -ftz=false -prec-div=true -prec-sqrt=true/);
  assert.equal(e.nvrtcError, 'NVRTC_ERROR_COMPILATION');
  assert.match(e.log, /TESSERA_NVRTC_STUB_FAIL/);
  assert.deepEqual(e.options.slice(0, 2), ['-arch=sm_90', '-std=c++17']);
  const kept = /source kept at (\S+)/.exec(e.message)?.[1];
  assert.ok(kept);
  assert.equal(readFileSync(kept, 'utf8'), FAILING);
  const command = /NVRTC has no command line; reproduce with the equivalent nvcc command:\n {2}(.+)$/.exec(e.message)?.[1];
  assert.ok(command, e.message);
  assert.match(command, /nvcc -cubin -std=c\+\+17 -ftz=false -prec-div=true -prec-sqrt=true -gencode arch=compute_90,code=sm_90 -o \S+ \S+kernel\.cu$/);
  const again = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
  assert.notEqual(again.status, 0, 'the nvcc command fails too');
  assert.match(again.stderr + again.stdout, /TESSERA_NVRTC_STUB_FAIL/);
  rmSync(dirname(kept), { recursive: true, force: true });
  assert.equal(readdirSync(cacheDir).length, before);
  const badOpt = expectCode('E_BACKEND', () => compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir, extraFlags: ['--bogus'] }));
  assert.match(badOpt.message, /NVRTC_ERROR_INVALID_OPTION\nnvrtc: error: unrecognized option --bogus/);
  rmSync(dirname(/source kept at (\S+)/.exec(badOpt.message)![1]!), { recursive: true, force: true });
  const wrapped = caught(() => nvrtcCompile(FAILING, 'w.cu', ['-arch=sm_80']));
  assert.ok(wrapped instanceof NvrtcError && wrapped.code === 'E_BACKEND' && /w\.cu\(1\)/.test(wrapped.message));

  // The CUDA runtime compiles with 'auto', so through NVRTC here, and runs through the fake driver.
  const rt = createCudaRuntime({ nvcc: { cacheDir } });
  assert.ok(rt, cudaUnavailableReason());
  assert.match(rt.info.description, /Tessera Stub GPU \(sm_90, .*NVRTC 12\.8\)/);
  const k: Kernel = {
    name: 'nvrtc_fill',
    buffers: [{ name: 'out', dtype: 'f32', access: 'read_write', shape: [{ sym: 'n' }] }],
    uniforms: ['n'],
    workgroupSize: 128,
    threads: { sym: 'n' },
    shared: [],
    body: [{ k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: { k: 'tid' }, b: { k: 'uniform', name: 'n' } }, then: [{ k: 'store', buf: 'out', index: { k: 'tid' }, value: { k: 'lit', t: 'f32', v: 1 } }], else: [] }],
    schedule: { kind: 'test', params: {} },
  };
  const out = rt.alloc('f32', 300) as CudaBuffer;
  writeFileSync(nvrtcLog, '');
  writeFileSync(process.env['TESSERA_STUB_LOG']!, '');
  process.env['TESSERA_STUB_SIG'] = 'pi';
  rt.run(k, [out], { n: 300 });
  assert.deepEqual(compiles().map((l) => l.split(' ').slice(0, 3).join(' ')), ['compile kernel.cu -arch=sm_90']);
  const launches = readFileSync(process.env['TESSERA_STUB_LOG']!, 'utf8').trim().split('\n');
  assert.deepEqual(launches, [`launch nvrtc_fill grid 3 1 1 block 128 1 1 shared 0 stream (nil) extra (nil) params 0x${out.ptr.toString(16)} 300`]);
  // Forced to nvcc, the runtime says so (and its kernels would be nvcc's).
  const rtNvcc = createCudaRuntime({ nvcc: { cacheDir, compiler: 'nvcc' } });
  assert.match(rtNvcc!.info.description, /, nvcc \d+\.\d+/);
  rtNvcc!.destroy();
  rt.destroy();

  // TESSERA_NVRTC=none: NVRTC off, 'auto' is nvcc, 'nvrtc' is E_BACKEND.
  process.env['TESSERA_NVRTC'] = 'none';
  assert.deepEqual(cudaNvrtcStatus(), { available: false, reason: 'NVRTC is turned off (TESSERA_NVRTC=none)' });
  const off = compileCuda(SOURCE, { compiler: 'auto', archs: ['sm_90'], output: 'cubin', cacheDir });
  assert.equal(off.compiler, 'nvcc');
  assert.equal(off.cached, true, 'the nvcc entry from above');
  expectCode('E_BACKEND', () => compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir }), /NVRTC is not available: NVRTC is turned off/);
  delete process.env['TESSERA_NVRTC'];

  return { nvrtc: raw };
}

function absent(): Record<string, unknown> {
  const addon = loadCudaAddon();
  assert.ok(addon, 'addon loads');
  const raw = addon.nvrtcProbe();
  const cacheDir = tempDir('tessera-nvrtc-cache-');
  if (raw.available) {
    // A real libnvrtc on this machine: compile with it for real.
    const real = compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir });
    assert.equal(real.bytes.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.ok(real.bytes.includes(Buffer.from('nvrtc_probe_kernel')));
    const ptx = compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_80'], output: 'ptx', cacheDir });
    assert.match(ptx.bytes.toString('utf8'), /\.visible \.entry nvrtc_probe_kernel/);
    expectCode('E_BACKEND', () => compileCuda('__global__ void k() { undeclared_thing; }', { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir }), /undeclared_thing/);
    assert.equal(compileCuda(SOURCE, { compiler: 'auto', archs: ['sm_90'], output: 'cubin', cacheDir }).compiler, 'nvrtc');
    return { realNvrtc: raw };
  }
  assert.equal(nvrtcLibraryPath(), undefined);
  assert.match(raw.reason!, /^libnvrtc not loadable: /);
  for (const n of ['libnvrtc.so', 'libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so.11']) assert.ok(raw.reason!.includes(n), `${n} in: ${raw.reason}`);
  const named = addon.nvrtcProbe('/nonexistent/libnvrtc.so.12');
  assert.equal(named.available, false);
  assert.match(named.reason!, /\/nonexistent\/libnvrtc\.so\.12/);
  assert.throws(() => addon.nvrtcCompile(SOURCE, 'x.cu', []), /^Error: NVRTC not available: libnvrtc not loadable/);
  const st = cudaNvrtcStatus();
  assert.equal(st.available, false);
  assert.match(st.reason!, /libnvrtc not loadable/);
  const choice = chooseCudaCompiler('auto', 'cubin');
  assert.ok(choice.ok && choice.compiler === 'nvcc');
  const auto = compileCuda(SOURCE, { compiler: 'auto', archs: ['sm_90'], output: 'cubin', cacheDir });
  assert.equal(auto.compiler, 'nvcc');
  assert.match(auto.compilerVersion, /^\d+\.\d+/);
  assert.equal(auto.bytes.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.ok(auto.bytes.includes(Buffer.from('nvrtc_probe_kernel')));
  expectCode('E_BACKEND', () => compileCuda(SOURCE, { compiler: 'nvrtc', archs: ['sm_90'], output: 'cubin', cacheDir }), /NVRTC is not available: libnvrtc not loadable/);
  expectCode('E_BACKEND', () => nvrtcCompile(SOURCE, 'x.cu', ['-arch=sm_90']), /NVRTC is not available/);
  return { reason: raw.reason };
}

try {
  const summary = mode === 'stub' ? stub() : mode === 'absent' ? absent() : assert.fail(`unknown mode ${mode}`);
  console.log(JSON.stringify({ ok: true, mode, ...summary }));
} catch (e) {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
} finally {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
}
