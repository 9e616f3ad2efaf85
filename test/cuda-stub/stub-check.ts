/**
 * Run by test/cuda.test.ts in a child process whose LD_LIBRARY_PATH holds the fake libcuda.so.1
 * (libcuda_stub.c) and whose TESSERA_STUB_LOG names a log file: drives the addon and CudaRuntime
 * through every driver call they make, and checks what reached the driver (launch dims, parameters,
 * bytes). Kernels are compiled by the real nvcc (for sm_90, the stub's arch) but not executed.
 * Exits non-zero with the failed assertion; prints a JSON summary on success.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as D from '../../src/dsl/index.js';
import { TesseraError } from '../../src/errors.js';
import type { Kernel } from '../../src/ir/kernel.js';
import { compile } from '../../src/passes/pipeline.js';
import { loadCudaAddon } from '../../src/backends/cuda/native.js';
import { createCudaRuntime, CudaBuffer, cudaUnavailableReason } from '../../src/backends/cuda/runtime.js';
import { execute } from '../../src/runtime/execute.js';
import { evalDim, numel } from '../../src/ir/dims.js';

const log = process.env['TESSERA_STUB_LOG']!;
const readLog = (): string[] => readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
const clearLog = (): void => writeFileSync(log, '');

function expectCode(code: string, f: () => unknown, text?: RegExp): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof TesseraError, `expected a TesseraError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (text) assert.match(e.message, text);
    return;
  }
  assert.fail(`expected ${code}`);
}

async function main(): Promise<void> {
  const addon = loadCudaAddon();
  assert.ok(addon, 'addon loads');
  const probe = addon.probe();
  assert.equal(probe.available, true, probe.reason);
  assert.equal(probe.devices[0]!.name, 'Tessera Stub GPU');
  assert.deepEqual(probe.devices[0]!.computeCapability, [9, 0]);

  const rt = createCudaRuntime();
  assert.ok(rt, cudaUnavailableReason());
  assert.equal(rt.arch, 'sm_90');
  assert.equal(rt.info.kind, 'cuda');
  assert.match(rt.info.description, /Tessera Stub GPU \(sm_90, 132 SMs, 1\.0 GiB, CUDA driver 12\.4/);

  // Buffers: zero-filled, round trips with f16 rounding and bool normalization.
  const f = rt.alloc('f32', 5);
  assert.deepEqual(Array.from(await rt.download(f)), [0, 0, 0, 0, 0]);
  rt.upload(f, Float32Array.from([1, -2.5, 3e-5, NaN, Infinity]));
  assert.deepEqual(Array.from(await rt.download(f)), [1, -2.5, Math.fround(3e-5), NaN, Infinity]);
  const h = rt.alloc('f16', 4);
  assert.equal((h as CudaBuffer).bytes, 8);
  rt.upload(h, Float32Array.from([1 / 3, 65504, 1e6, -0]));
  const hd = Array.from(await rt.download(h));
  assert.deepEqual(hd.slice(1), [65504, Infinity, -0]);
  assert.equal(hd[0], 0.333251953125);
  // bf16: two bytes, round to nearest even on upload (1 + 2^-8 is a tie, to 1), f32's range
  const bh = rt.alloc('bf16', 5);
  assert.equal((bh as CudaBuffer).bytes, 10);
  rt.upload(bh, Float32Array.from([1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1e38, NaN]));
  const bd = Array.from(await rt.download(bh));
  assert.deepEqual(bd, [0.333984375, 1, 1.015625, 9.969209968386869e37, NaN]);
  assert.deepEqual(rt.info.features.filter((x) => x.startsWith('tensor-cores')), ['tensor-cores', 'tensor-cores-bf16']);
  const b = rt.alloc('bool', 5);
  assert.equal((b as CudaBuffer).bytes, 5);
  rt.upload(b, Uint8Array.from([0, 1, 7, 0, 255]));
  assert.deepEqual(Array.from(await rt.download(b)), [0, 1, 1, 0, 1]);
  const i = rt.alloc('i32', 3);
  rt.upload(i, Int32Array.from([-1, 2147483647, -2147483648]));
  assert.deepEqual(Array.from(await rt.download(i)), [-1, 2147483647, -2147483648]);
  const u = rt.alloc('u32', 2);
  rt.upload(u, new Uint32Array(new SharedArrayBuffer(8)).fill(4294967295));
  assert.deepEqual(Array.from(await rt.download(u)), [4294967295, 4294967295]);
  const empty = rt.alloc('f32', 0);
  rt.upload(empty, new Float32Array(0));
  assert.equal((await rt.download(empty)).length, 0);
  expectCode('E_BUFFER', () => rt.upload(f, new Float32Array(4)), /5/);
  expectCode('E_BUFFER', () => rt.upload(i, new Float32Array(3)), /Int32Array/);
  for (const x of [f, h, b, i, u, empty]) rt.free(x);
  expectCode('E_BUFFER', () => rt.free(f), /freed/);

  // Driver failures become E_BACKEND with the driver's error name.
  rt.releasePool();
  process.env['TESSERA_STUB_FAIL'] = 'cuMemAlloc_v2:2';
  expectCode('E_BACKEND', () => rt.alloc('f32', 4), /CUDA_ERROR_OUT_OF_MEMORY \(out of memory\)/);
  delete process.env['TESSERA_STUB_FAIL'];

  // The allocation pool: freed memory is reused by the next allocation of its size, zeroed.
  {
    const p1 = rt.alloc('f32', 64);
    rt.upload(p1, Float32Array.from({ length: 64 }, (_, q) => q + 1));
    const ptr = p1.ptr;
    rt.free(p1);
    assert.equal(rt.pooled, 256);
    const p2 = rt.alloc('f32', 64);
    assert.equal(p2.ptr, ptr);
    assert.equal(rt.pooled, 0);
    assert.deepEqual(Array.from(await rt.download(p2)), new Array<number>(64).fill(0));
    const p3 = rt.alloc('i32', 64); // same size, another dtype: new memory (the pool is empty)
    assert.notEqual(p3.ptr, ptr);
    rt.free(p2);
    rt.free(p3);
    assert.equal(rt.pooled, 512);
    // out of memory with a pool: the pool goes back to the driver and the allocation is tried again
    process.env['TESSERA_STUB_FAIL'] = 'cuMemAlloc_v2:2:1';
    const p4 = rt.alloc('f32', 1000);
    assert.equal(rt.pooled, 0);
    delete process.env['TESSERA_STUB_FAIL'];
    rt.free(p4);
  }

  // A compiled program: each launch gets ceil(threads / wg) blocks and the buffers then the dims.
  const [M, N] = [D.dim('M'), D.dim('N')];
  const def = D.kernel('stubsoftmax', { x: D.tensor('f32', [M, N]), w: D.tensor('f32', [N]) }, ({ x, w }) => D.softmax(x.mul(w)).add(1));
  const cp = compile(def.program);
  const dims = { M: 3, N: 70 };
  clearLog();
  const sigs = cp.kernels.map((k) => 'p'.repeat(k.kernel.buffers.length) + 'i'.repeat(k.kernel.uniforms.length));
  assert.ok(sigs.every((s) => s === sigs[0]), 'one signature for the log');
  process.env['TESSERA_STUB_SIG'] = sigs[0]!;
  await execute(cp, rt, { x: { shape: [3, 70], data: new Float32Array(210) }, w: { shape: [70], data: new Float32Array(70) } }, dims);
  const lines = readLog();
  assert.equal(lines.length, cp.kernels.length);
  cp.kernels.forEach(({ kernel }, n) => {
    const threads = evalDim(kernel.threads, dims);
    const blocks = Math.ceil(threads / kernel.workgroupSize);
    const m = /^launch (\S+) grid (\d+) (\d+) (\d+) block (\d+) (\d+) (\d+) shared (\d+) stream \(nil\) extra \(nil\) params(.*)$/.exec(lines[n]!);
    assert.ok(m, lines[n]);
    assert.equal(m[1], kernel.name);
    assert.deepEqual(m.slice(2, 9).map(Number), [blocks, 1, 1, kernel.workgroupSize, 1, 1, 0]);
    const params = m[9]!.trim().split(' ');
    assert.equal(params.length, kernel.buffers.length + kernel.uniforms.length);
    params.slice(0, kernel.buffers.length).forEach((p) => assert.match(p, /^0x[0-9a-f]+$/));
    assert.deepEqual(params.slice(kernel.buffers.length).map(Number), kernel.uniforms.map((s) => dims[s as 'M' | 'N']));
  });

  // A tensor-core kernel: its invocations are warps, so a block is 32 threads per invocation.
  {
    const [K] = [D.dim('K')];
    const mm = D.kernel('stubmma', { a: D.tensor('f16', [M, K]), b: D.tensor('f16', [K, N]) }, ({ a, b }) => D.matmul(a, b));
    const cm = compile(mm.program, { tensorCores: true });
    const kernel = cm.kernels[0]!.kernel;
    assert.equal(kernel.warp, true);
    const d = { M: 70, N: 130, K: 40 };
    clearLog();
    const sig = process.env['TESSERA_STUB_SIG'];
    process.env['TESSERA_STUB_SIG'] = 'pppiii';
    await execute(cm, rt, { a: { shape: [70, 40], data: new Float32Array(2800) }, b: { shape: [40, 130], data: new Float32Array(5200) } }, d);
    const [line] = readLog();
    const m = /^launch (\S+) grid (\d+) (\d+) (\d+) block (\d+) (\d+) (\d+) shared (\d+)/.exec(line ?? '');
    assert.ok(m, line);
    assert.deepEqual(m.slice(2, 9).map(Number), [Math.ceil(evalDim(kernel.threads, d) / kernel.workgroupSize), 1, 1, 32 * kernel.workgroupSize, 1, 1, 0]);
    process.env['TESSERA_STUB_SIG'] = sig!;
  }

  // Hand-built kernels: the exact pointers, a grid folded into y, host checks before any launch.
  const k: Kernel = {
    name: 'stub_fill',
    buffers: [{ name: 'out', dtype: 'f32', access: 'read_write', shape: [{ sym: 'n' }] }],
    uniforms: ['n'],
    workgroupSize: 128,
    threads: { sym: 'n' },
    shared: [],
    body: [{ k: 'if', cond: { k: 'bin', t: 'bool', op: 'lt', a: { k: 'tid' }, b: { k: 'uniform', name: 'n' } }, then: [{ k: 'store', buf: 'out', index: { k: 'tid' }, value: { k: 'lit', t: 'f32', v: 1 } }], else: [] }],
    schedule: { kind: 'test', params: {} },
  };
  const out = rt.alloc('f32', 1000) as CudaBuffer;
  process.env['TESSERA_STUB_SIG'] = 'pi';
  clearLog();
  rt.run(k, [out], { n: 1000 });
  rt.run(k, [out], { n: 1000 });
  await rt.sync();
  assert.deepEqual(readLog(), Array(2).fill(`launch stub_fill grid 8 1 1 block 128 1 1 shared 0 stream (nil) extra (nil) params 0x${out.ptr.toString(16)} 1000`));
  clearLog();
  expectCode('E_BUFFER', () => rt.run(k, [out], { n: 999 }), /1000/);
  expectCode('E_BUFFER', () => rt.run(k, [], { n: 1000 }));
  expectCode('E_UNBOUND_DIM', () => rt.run(k, [out], {}));
  expectCode('E_DEVICE_LIMIT', () => rt.run({ ...k, name: 'stub_fill_wide', workgroupSize: 2048 }, [out], { n: 1000 }), /2048/);
  expectCode('E_DEVICE_LIMIT', () => rt.run({ ...k, name: 'stub_fill_shared', shared: [{ name: 's', t: 'f32', size: 20000 }] }, [out], { n: 1000 }), /80000 bytes/);
  assert.deepEqual(readLog(), [], 'no launch after a failed check');

  const big: Kernel = { ...k, name: 'stub_big', buffers: [], uniforms: [], workgroupSize: 1, threads: 2 ** 31, body: [] };
  process.env['TESSERA_STUB_SIG'] = '';
  rt.run(big, [], {});
  assert.deepEqual(readLog(), ['launch stub_big grid 1073741824 2 1 block 1 1 1 shared 0 stream (nil) extra (nil) params']);
  expectCode('E_DEVICE_LIMIT', () => rt.run({ ...big, threads: 2 ** 31 + 1 }, [], {}), /2\^31/);
  clearLog();
  rt.run({ ...k, name: 'stub_zero' }, [rt.alloc('f32', 0)], { n: 0 });
  assert.deepEqual(readLog(), [], 'zero threads: no launch');

  // A kernel fault reported by the driver.
  process.env['TESSERA_STUB_FAIL'] = 'cuLaunchKernel:700';
  expectCode('E_BACKEND', () => rt.run(k, [out], { n: 1000 }), /launch of kernel 'stub_fill'.*CUDA_ERROR_ILLEGAL_ADDRESS \(an illegal memory access was encountered\)/);
  process.env['TESSERA_STUB_FAIL'] = 'cuCtxSynchronize:700';
  await assert.rejects(rt.sync(), (e: unknown) => e instanceof TesseraError && e.code === 'E_BACKEND' && /CUDA_ERROR_ILLEGAL_ADDRESS/.test(e.message));
  delete process.env['TESSERA_STUB_FAIL'];

  // Timing with events.
  const t = await rt.time(() => rt.run(k, [out], { n: 1000 }), 5);
  assert.equal(t.source, 'device');
  assert.ok(t.medianMs >= 0 && Number.isFinite(t.medianMs));

  // A second runtime on the same device shares the primary context; both stay usable.
  const rt2 = createCudaRuntime();
  assert.ok(rt2);
  const o2 = rt2.alloc('i32', 2);
  rt2.upload(o2, Int32Array.from([7, 8]));
  rt.upload(out, new Float32Array(1000).fill(2));
  assert.deepEqual(Array.from(await rt2.download(o2)), [7, 8]);
  assert.equal((await rt.download(out))[999], 2);
  rt2.destroy();
  expectCode('E_BUFFER', () => rt.run(k, [o2], { n: 2 }));

  rt.destroy();
  expectCode('E_BACKEND', () => rt.alloc('f32', 1), /destroyed/);
  rt.destroy();

  console.log(JSON.stringify({ ok: true, kernels: cp.kernels.length, launches: lines, buffers: numel([3, 70]) }));
}

main().catch((e) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
