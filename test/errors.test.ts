/**
 * Bad input of every kind gives a TesseraError with a stable code and a location, and the process
 * (and the device) keep working afterwards.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { compile } from '../src/passes/pipeline.js';
import { execute } from '../src/runtime/execute.js';
import { parseProgram } from '../src/ir/text/index.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { caught, caughtAsync } from './helpers/errors.js';

const [M, N] = [D.dim('M'), D.dim('N')];
const THIS_FILE = /errors\.test\.ts$/;



describe('errors at the DSL call site', () => {
  it('a shape mismatch names the line that made it', () => {
    const e = caught(() => D.kernel('k', { a: D.tensor('f32', [M, 3]), b: D.tensor('f32', [M, 4]) }, ({ a, b }) => a.add(b)));
    expect(e.code).toBe('E_SHAPE');
    expect(e.location?.file).toMatch(THIS_FILE);
    const src = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
    expect(e.location?.line).toBe(src.findIndex((l) => l.includes("[M, 4]) }, ({ a, b }) => a.add(b))")) + 1);
    expect(e.message).toMatch(/do not broadcast/);
  });

  it('a dtype mismatch, a float op on ints, a bad axis and a bad matmul', () => {
    expect(caught(() => D.kernel('k', { a: D.tensor('f32', [M]), b: D.tensor('i32', [M]) }, ({ a, b }) => a.add(b))).code).toBe('E_DTYPE');
    expect(caught(() => D.kernel('k', { a: D.tensor('i32', [M]) }, ({ a }) => a.exp())).code).toBe('E_DTYPE');
    expect(caught(() => D.kernel('k', { a: D.tensor('f32', [M]) }, ({ a }) => a.sum(3))).code).toBe('E_AXIS');
    const e = caught(() => D.kernel('k', { a: D.tensor('f32', [M, N]), b: D.tensor('f32', [M, N]) }, ({ a, b }) => D.matmul(a, b)));
    expect(e.code).toBe('E_SHAPE');
    expect(e.location?.file).toMatch(THIS_FILE);
  });

  it('bad reshape, slice, pad and gather arguments', () => {
    expect(caught(() => D.kernel('k', { a: D.tensor('f32', [6]) }, ({ a }) => a.reshape(4, 2))).code).toBe('E_SHAPE');
    // an array where the method takes the dims as arguments: a clear error, not a TypeError inside dim arithmetic
    const arr = caught(() => D.kernel('k', { a: D.tensor('f32', [6]) }, ({ a }) => (a.reshape as (...s: unknown[]) => D.Tensor)([1, 6])));
    expect(arr.code).toBe('E_ARG');
    expect(arr.message).toMatch(/reshape: each entry of the shape is a dim or -1, got an array \(x\.reshape takes the dims as separate arguments/);
    expect(arr.location?.file).toMatch(THIS_FILE);
    expect(caught(() => D.tensor('f32', [[1, 6]] as unknown as number[])).code).toBe('E_SHAPE');
    expect(caught(() => D.tensor('f32', [{ size: 6 }] as unknown as number[])).message).toMatch(/a shape's entries are dims/);
    expect(caught(() => D.kernel('k', { a: D.tensor('f32', [6]) }, ({ a }) => D.slice(a, [{ step: 0 }]))).code).toBe('E_ARG');
    expect(caught(() => D.kernel('k', { a: D.tensor('f32', [6]) }, ({ a }) => D.pad(a, [[-1, 0]]))).code).toBe('E_ARG');
    expect(caught(() => D.kernel('k', { a: D.tensor('f32', [6]), i: D.tensor('f32', [2]) }, ({ a, i }) => D.gather(a, i))).code).toBe('E_DTYPE');
  });
});

describe('errors at dispatch', () => {
  const def = D.kernel('k', { x: D.tensor('f32', [M, N]), g: D.tensor('f32', [N]) }, ({ x, g }) => D.rmsnorm(x, g));
  const cp = compile(def.program);

  it('wrong buffer size, wrong dtype, missing input and inconsistent dims on every backend', async () => {
    for (const { name, rt } of await testBackends()) {
      const x = { shape: [2, 3], data: new Float32Array(6) };
      expect((await caughtAsync(() => execute(cp, rt, { x, g: { shape: [3], data: new Float32Array(4) } }))).code, name).toBe('E_BUFFER');
      expect((await caughtAsync(() => execute(cp, rt, { x, g: { shape: [4], data: new Float32Array(4) } }))).code, name).toBe('E_BUFFER');
      expect((await caughtAsync(() => execute(cp, rt, { x, g: { shape: [3], data: new Int32Array(3) } }))).code, name).toBe('E_BUFFER');
      expect((await caughtAsync(() => execute(cp, rt, { x }))).code, name).toBe('E_BUFFER');
      // the device still works
      expect(await checkOnBackend(cp, rt, { x: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, g: { shape: [3], data: Float32Array.from([1, 1, 2]) } }, { rtol: 1e-5, atol: 1e-6 }), name).toBeNull();
    }
  });

  it('a dim that no input binds is E_UNBOUND_DIM', async () => {
    const K = D.dim('K');
    const d2 = D.kernel('k', { x: D.tensor('f32', [M]) }, ({ x }) => D.add(D.reshape(x, [M, 1]), D.full([M, K], 1)));
    for (const { name, rt } of await testBackends()) {
      expect((await caughtAsync(() => execute(compile(d2.program), rt, { x: { shape: [2], data: new Float32Array(2) } }))).code, name).toBe('E_UNBOUND_DIM');
      const out = await execute(compile(d2.program), rt, { x: { shape: [2], data: Float32Array.from([1, 2]) } }, { K: 3 });
      expect([...out['out']!.data], name).toEqual([2, 2, 2, 3, 3, 3]);
    }
  });
});

describe('device limits', () => {
  it('a group reading more buffers than a kernel may bind is split, and still matches', async () => {
    const params = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x${i}`, D.tensor('f32', [N])]));
    const def = D.kernel('wide', params, (t) => Object.values(t).reduce((acc, x) => acc.add(x.mul(2))));
    const cp = compile(def.program, { maxStorageBuffers: 8 });
    expect(cp.kernels.length).toBeGreaterThan(1);
    for (const k of cp.kernels) expect(k.kernel.buffers.length).toBeLessThanOrEqual(8);
    const inputs = Object.fromEntries(Object.keys(params).map((k, i) => [k, { shape: [5], data: Float32Array.from({ length: 5 }, (_, j) => i * j) }]));
    for (const { name, rt } of await testBackends()) expect(await checkOnBackend(cp, rt, inputs, { rtol: 1e-6, atol: 1e-6 }), name).toBeNull();
  });

  it('one op that reads more tensors than a kernel may bind is E_DEVICE_LIMIT at its call site', () => {
    const params = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`x${i}`, D.tensor('f32', [N])]));
    const def = D.kernel('wide', params, (t) => D.concat(Object.values(t)));
    const e = caught(() => compile(def.program, { maxStorageBuffers: 8 }));
    expect(e.code).toBe('E_DEVICE_LIMIT');
    expect(e.location?.file).toMatch(THIS_FILE);
  });
});

describe('errors in the text form and unknown ops', () => {
  it('malformed text and unknown ops report line:column', () => {
    const bad = 'program p(x: f32[N]) -> (y) {\n  %0 = input x : f32[N]\n  %1 = frobnicate(%0) : f32[N]\n  y = %1\n}\n';
    const e = caught(() => parseProgram(bad, 'bad.tsr'));
    expect(e.code).toBe('E_UNKNOWN_OP');
    expect(e.location).toMatchObject({ file: 'bad.tsr', line: 3 });
    const e2 = caught(() => parseProgram('program p(x: f32[N]) -> (y) {\n  %0 = input x : f32[N\n}', 'bad.tsr'));
    expect(e2.code).toBe('E_PARSE');
    expect(e2.location?.line).toBe(3); // the unclosed shape is found at the next token
  });
});
