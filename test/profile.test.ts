/**
 * Device profiles: the probe's calibration and cache, which matmuls take the profile's schedule,
 * tuned entries over the profile, and programs compiled with it against the reference.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { printKernel } from '../src/ir/kernel-print.js';
import type { Kernel } from '../src/ir/kernel.js';
import { allBuilds, compile, selectVersion } from '../src/passes/pipeline.js';
import { calibrateDevice, compileTuned, describeProfile, COMPILER_VERSION, deviceKey, probeFamilies, PROFILE_MIN_ROWS, profileParams, readProfile, writeProfile, type DeviceProfile } from '../src/tune/index.js';
import { tuneKey, writeRecord } from '../src/tune/cache.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';
import { inputsFor } from './helpers/inputs.js';
import { ffnBlock } from './helpers/programs.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const mm = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]), c: D.tensor('f32', [N]) }, ({ a, b, c }) => D.matmul(a, b).add(c).relu());
const block = ffnBlock;
const half = D.kernel('mmh', { a: D.tensor('f16', [M, K]), b: D.tensor('f16', [K, N]) }, ({ a, b }) => D.matmul(a, b));

const DEVICE = 'js:profiled test device';
const SG: DeviceProfile = { device: DEVICE, compiler: COMPILER_VERSION, matmul: { sg: 1, vec: 4, tm: 32, tn: 8, workgroupSize: 8 }, n: 256, probe: { default: 2, 'subgroup-shared 32x8': 1 }, chain: false, chainProbe: { separate: 1, chained: 1 }, timing: 'wall' };

let dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'tessera-profile-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe('device profiles', () => {
  it('calibrates by timing the probe under each family, caches the profile, and re-times only when forced', async () => {
    const rt = new JSRuntime();
    const dir = tempDir();
    const families = probeFamilies(rt);
    expect(Object.keys(families)).toEqual(['default', 'scalar 4x4', 'vec4 16x8', 'subgroup-shared 32x8']); // the JS runtime has subgroups
    const p = await calibrateDevice(rt, { cacheDir: dir, probeN: 32 });
    expect(p.device).toBe(deviceKey(rt));
    expect(p.n).toBe(32);
    expect(describeProfile(p)).toMatch(/^f32 matmuls .*\(probe 32³, wall time: default [0-9.]+ ms, scalar 4x4 [0-9.]+ ms, vec4 16x8 [0-9.]+ ms, subgroup-shared 32x8 [0-9.]+ ms\); small launches (chained|separate) \(decode step T1 D128 H344: separate [0-9.]+ ms, chained [0-9.]+ ms\)$/);
    // the chain probe timed the decode step both ways; chaining is kept only where it won by the margin
    expect(Object.keys(p.chainProbe).sort()).toEqual(['chained', 'separate']);
    expect(p.chain).toBe(p.chainProbe['chained']! * 1.2 <= p.chainProbe['separate']!);
    expect(Object.keys(p.probe).sort()).toEqual(Object.keys(families).sort());
    expect(Object.values(p.probe).every((ms) => ms > 0)).toBe(true);
    expect(Object.values(families)).toContainEqual(p.matmul);
    // the chosen family beat the default by the margin, or it is the default
    const name = Object.entries(families).find(([, c]) => JSON.stringify(c) === JSON.stringify(p.matmul))![0];
    if (name !== 'default') expect(p.probe[name]! * 1.2).toBeLessThanOrEqual(p.probe['default']!);
    expect(readProfile(deviceKey(rt), COMPILER_VERSION, dir)).toEqual(p);
    // cached: the same profile back without timing (a planted one proves it was not re-measured)
    writeProfile({ ...p, probe: { default: 123 } }, dir);
    expect((await calibrateDevice(rt, { cacheDir: dir, probeN: 32 })).probe).toEqual({ default: 123 });
    expect((await calibrateDevice(rt, { cacheDir: dir, probeN: 32, force: true })).probe['default']).not.toBe(123);
    // another compiler version misses; an unreadable file is a miss, never an error
    expect(readProfile(deviceKey(rt), 'another-version', dir)).toBeUndefined();
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), '{ not json');
    expect(readProfile(deviceKey(rt), COMPILER_VERSION, dir)).toBeUndefined();
  });

  it('leaves out a family the device cannot run, and fails only when the default cannot run', async () => {
    const dir = tempDir();
    // a device that lists subgroups but fails every kernel that shuffles (or, below, every kernel)
    class NoShuffles extends JSRuntime {
      constructor(private readonly refuse: (k: Kernel) => boolean) {
        super();
      }
      override run(kernel: Kernel, bindings: Parameters<JSRuntime['run']>[1], dims: Parameters<JSRuntime['run']>[2]): void {
        if (this.refuse(kernel)) throw new Error('this device cannot run it');
        super.run(kernel, bindings, dims);
      }
    }
    const p = await calibrateDevice(new NoShuffles((k) => k.schedule.params['sg'] === 1), { cacheDir: dir, probeN: 32 });
    expect(Object.keys(p.probe).sort()).toEqual(['default', 'scalar 4x4', 'vec4 16x8']);
    expect(p.matmul['sg']).toBeUndefined();
    // a device that cannot run a chained kernel keeps its launches separate
    const q = await calibrateDevice(new NoShuffles((k) => k.schedule.kind === 'chain'), { cacheDir: tempDir(), probeN: 32 });
    expect([q.chain, Object.keys(q.chainProbe)]).toEqual([false, ['separate']]);
    await expect(calibrateDevice(new NoShuffles(() => true), { cacheDir: tempDir(), probeN: 32 })).rejects.toThrow(/cannot run it/);
  });

  it('gives its schedule to f32 matmuls with enough rows, the tile no taller than the rows', () => {
    const group = (cp: ReturnType<typeof compile>) => cp.kernels.find((k) => k.group.kind === 'matmul')!.group;
    const g = group(compile(mm.program, { versions: false }));
    expect(profileParams(SG, g)).toEqual(SG.matmul); // rows unknown
    expect(profileParams(SG, g, { M: 512 })).toEqual(SG.matmul);
    expect(profileParams(SG, g, { M: 20 })).toMatchObject({ sg: 1, tm: 16 });
    expect(profileParams(SG, g, { M: PROFILE_MIN_ROWS - 1 })).toBeUndefined();
    expect(profileParams(undefined, g)).toBeUndefined();
    expect(profileParams({ ...SG, matmul: {} }, g)).toBeUndefined();
    // the one-token build's matmul (one row), f16, other kinds and decoded weights keep the default
    const oneRow = allBuilds(compile(mm.program)).find((b) => b.version === 'M=1')!;
    expect(profileParams(SG, group(oneRow), oneRow.specialized)).toBeUndefined();
    expect(profileParams(SG, group(compile(half.program, { versions: false })))).toBeUndefined();
    const soft = compile(D.kernel('s', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x)).program).kernels[0]!.group;
    expect(profileParams(SG, soft)).toBeUndefined();
    const q = D.kernel('q', { x: D.tensor('f32', [M, K]), w: D.tensor('i32', [K, N]) }, ({ x, w }) => D.matmul(x, D.compute([K, N], (k, n) => w.at(k, n).cast('f32').mul(0.5))));
    expect(profileParams(SG, group(compile(q.program, { versions: false })))).toBeUndefined();
  });

  it('compileTuned gives untuned matmuls the cached profile, tuned entries win, and profile: false ignores it', () => {
    const dir = tempDir();
    const plain = compile(block.program);
    expect(compileTuned(block.program, DEVICE, { cacheDir: dir })).toEqual(plain); // no profile: the default
    writeProfile(SG, dir);
    const profiled = compileTuned(block.program, DEVICE, { cacheDir: dir, dims: { T: 64, D: 32, H: 48 } });
    for (const b of allBuilds(profiled)) {
      const params = b.kernels.filter((k) => k.group.kind === 'matmul').map((k) => k.kernel.schedule.params);
      if (b.version === 'T=1') expect(params.every((p) => !p['sg']), b.version).toBe(true);
      else expect(params.every((p) => p['sg'] === 1 && p['tm'] === 32), b.version).toBe(true);
    }
    // a kernel tuned on this device keeps its own winner
    const first = plain.kernels.find((k) => k.group.kind === 'matmul')!;
    const key = tuneKey(printKernel(first.kernel), DEVICE, COMPILER_VERSION);
    writeRecord({ key, kernel: first.kernel.name, device: DEVICE, compiler: COMPILER_VERSION, entries: [{ dims: { T: 64, D: 32, H: 48 }, params: { tiled: 0, vec: 4, tm: 4, tn: 4 }, medianMs: 1, defaultMs: 2, timing: 'wall' }] }, dir);
    const both = compileTuned(block.program, DEVICE, { cacheDir: dir, dims: { T: 64, D: 32, H: 48 } });
    const mms = both.kernels.filter((k) => k.group.kind === 'matmul').map((k) => k.kernel.schedule.params);
    expect(mms[0]).toMatchObject({ tm: 4, tn: 4 });
    expect(mms[0]!['sg']).toBeFalsy();
    expect(mms[1]).toMatchObject({ sg: 1 });
    // tuned: false takes the profile alone
    expect(compileTuned(block.program, DEVICE, { cacheDir: dir, dims: { T: 64, D: 32, H: 48 }, tuned: false })).toEqual(profiled);
    expect(compileTuned(block.program, DEVICE, { cacheDir: dir, profile: false }).kernels.filter((k) => k.group.kind === 'matmul').slice(1).every((k) => !k.kernel.schedule.params['sg'])).toBe(true);
    expect(existsSync(dir)).toBe(true);
  });

  it('compileTuned chains small launches at the dims given where the profile says so, unless told otherwise', () => {
    const dir = tempDir();
    const decode = { T: 1, D: 32, H: 48 };
    const kinds = (cp: ReturnType<typeof compile>) => selectVersion(cp, decode).kernels.map((k) => k.kernel.schedule.kind);
    writeProfile(SG, dir);
    expect(kinds(compileTuned(block.program, DEVICE, { cacheDir: dir, dims: decode }))).toEqual(['matmul', 'matmul']);
    writeProfile({ ...SG, chain: true }, dir);
    const chained = compileTuned(block.program, DEVICE, { cacheDir: dir, dims: decode });
    expect(kinds(chained)).toEqual(['chain']);
    expect(chained).toEqual(compile(block.program, { chain: { dims: decode }, groupParams: (g, _i, v) => profileParams({ ...SG, chain: true }, g, v === 'T=1' ? { ...decode, T: 1 } : decode) }));
    // without dims only builds whose launch sizes are constants chain; `chain` given decides
    expect(kinds(compileTuned(block.program, DEVICE, { cacheDir: dir }))).toEqual(['matmul', 'matmul']);
    expect(kinds(compileTuned(block.program, DEVICE, { cacheDir: dir, specialize: decode }))).toEqual(['chain']);
    expect(kinds(compileTuned(block.program, DEVICE, { cacheDir: dir, dims: decode, chain: { dims: decode, below: 2 } }))).toEqual(['matmul', 'matmul']);
    // tuned records are found through the unchained kernels
    const one = selectVersion(compile(block.program), decode).kernels[1]!;
    writeRecord({ key: tuneKey(printKernel(one.kernel), DEVICE, COMPILER_VERSION), kernel: one.kernel.name, device: DEVICE, compiler: COMPILER_VERSION, entries: [{ dims: decode, params: { tiled: 0, vec: 0, tm: 1, tn: 2 }, medianMs: 1, defaultMs: 2, timing: 'wall' }] }, dir);
    const tuned = selectVersion(compileTuned(block.program, DEVICE, { cacheDir: dir, dims: decode }), decode).kernels;
    expect(tuned.map((k) => k.kernel.schedule.kind)).toEqual(['chain']);
    const want = selectVersion(compile(block.program, { chain: { dims: decode }, groupParams: (_g, i, v) => (v === 'T=1' && i === 1 ? { tiled: 0, vec: 0, tm: 1, tn: 2 } : undefined) }), decode);
    expect(printKernel(tuned[0]!.kernel)).toBe(printKernel(want.kernels[0]!.kernel));
    expect(printKernel(tuned[0]!.kernel)).not.toBe(printKernel(selectVersion(chained, decode).kernels[0]!.kernel));
  });

  it('a program compiled with a profile matches the reference on every backend, at every build', async () => {
    const dir = tempDir();
    writeProfile({ ...SG, matmul: { sg: 1, vec: 4, tm: 16, tn: 4, workgroupSize: 4 }, chain: true }, dir);
    const cp = compileTuned(block.program, DEVICE, { cacheDir: dir });
    expect(cp.kernels.some((k) => k.kernel.schedule.params['sg'] === 1)).toBe(true);
    // and chained for a decode step of D 8, H 12 (run at other dims too: the chain's loops stride)
    const decode = compileTuned(block.program, DEVICE, { cacheDir: dir, dims: { T: 1, D: 8, H: 12 } });
    expect(selectVersion(decode, { T: 1, D: 8, H: 12 }).kernels.map((k) => k.kernel.schedule.kind)).toEqual(['chain']);
    for (const { name, rt } of backends) {
      for (const [t, d, h] of [[1, 8, 12], [17, 8, 12], [32, 12, 8], [20, 6, 10], [1, 40, 300]] as const) {
        for (const c of [cp, decode]) expect(await checkOnBackend(c, rt, inputsFor(block, { T: t, D: d, H: h }), { rtol: 2e-4, atol: 2e-5 }), `${name} T=${t} D=${d} H=${h}`).toBeNull();
      }
    }
  });
});
