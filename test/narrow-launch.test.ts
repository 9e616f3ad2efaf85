/**
 * Narrow launches: a kernel whose workgroup size is the scheduler's default and whose body does not
 * depend on it (`flexibleWorkgroup`) runs a launch of fewer than NARROW_LAUNCH invocations in
 * workgroups of NARROW_WORKGROUP on WebGPU, so a decode step's small matmuls spread over the
 * device's cores instead of filling one workgroup. Which kernels qualify, the launch rule, and the
 * narrow and wide launches against the reference.
 */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { launchWorkgroupSize, NARROW_LAUNCH, NARROW_WORKGROUP, withWorkgroupSize, workgroupIndependent, type Kernel } from '../src/ir/kernel.js';
import { evalDim } from '../src/ir/dims.js';
import { allBuilds, compile, selectVersion, type CompiledProgram } from '../src/passes/pipeline.js';
import { describeKernels } from '../src/cli/run-cmd.js';
import { prepare } from '../src/runtime/execute.js';
import { checkOnBackend } from './helpers/compare.js';
import { inputsFor } from './helpers/inputs.js';
import { getTestWebGPU } from './helpers/webgpu.js';
import { ffnBlock } from './helpers/programs.js';

const [M, N, K] = [D.dim('M'), D.dim('N'), D.dim('K')];
const mm = D.kernel('mm', { a: D.tensor('f32', [M, K]), b: D.tensor('f32', [K, N]) }, ({ a, b }) => D.matmul(a, b).relu());
const block = ffnBlock;
const rows = D.kernel('rows', { x: D.tensor('f32', [M, N]) }, ({ x }) => D.softmax(x));

const kernelsOf = (cp: CompiledProgram): Kernel[] => allBuilds(cp).flatMap((b) => b.kernels.map((k) => k.kernel));

describe('narrow launches', () => {
  it('marks kernels whose workgroup size is the default and that do not depend on it', () => {
    const defaults = [...kernelsOf(compile(block.program)), ...kernelsOf(compile(mm.program)), ...kernelsOf(compile(rows.program))];
    expect(defaults.length).toBeGreaterThan(6);
    for (const k of defaults) {
      expect(k.flexibleWorkgroup, k.name).toBe(true);
      expect(workgroupIndependent(k), k.name).toBe(true);
    }
    // a workgroup size that was chosen (by hand or by the tuner) is kept
    for (const k of kernelsOf(compile(mm.program, { params: { workgroupSize: 32 } }))) expect(k.flexibleWorkgroup, k.name).toBeUndefined();
    // kernels that share work inside a workgroup depend on its size: workgroup-memory tiles, cooperative rows
    for (const params of [{ tiled: 1 }, { coop: 1 }]) {
      for (const k of kernelsOf(compile(mm.program, { params }))) {
        expect(workgroupIndependent(k), `${k.name} ${JSON.stringify(params)}`).toBe(false);
        expect(k.flexibleWorkgroup).toBeUndefined();
      }
    }
    for (const k of compile(rows.program, { params: { coop: 1 } }).kernels) {
      expect(workgroupIndependent(k.kernel)).toBe(false);
      expect(k.kernel.flexibleWorkgroup).toBeUndefined();
    }
  });

  it('a launch under NARROW_LAUNCH invocations of a flexible kernel takes NARROW_WORKGROUP', () => {
    const k = compile(mm.program, { versions: false }).kernels[0]!.kernel;
    expect(k.workgroupSize).toBe(64);
    expect(launchWorkgroupSize(k, 1)).toBe(NARROW_WORKGROUP);
    expect(launchWorkgroupSize(k, NARROW_LAUNCH - 1)).toBe(NARROW_WORKGROUP);
    expect(launchWorkgroupSize(k, NARROW_LAUNCH)).toBe(64);
    const fixed = compile(mm.program, { versions: false, params: { workgroupSize: 64 } }).kernels[0]!.kernel;
    expect(launchWorkgroupSize(fixed, 10)).toBe(64);
    // already as narrow or narrower: unchanged
    const small = withWorkgroupSize(k, 4);
    expect(launchWorkgroupSize({ ...small, flexibleWorkgroup: true }, 10)).toBe(4);
    expect(small.body).toBe(k.body);
    expect(small.schedule.params['workgroupSize']).toBe(4);
  });
});

const rt = await getTestWebGPU();

describe.skipIf(!rt)('narrow launches on WebGPU', () => {
  it('a decode step runs its matmuls in workgroups of 8, a prefill chunk in the default 64, both as the reference', async () => {
    const R = rt!;
    for (const [t, d, h, narrow] of [[1, 128, 344, true], [128, 128, 256, false]] as const) {
      const dims = { T: t, D: d, H: h };
      const cp = compile(block.program);
      const ins = inputsFor(block, dims);
      const p = prepare(cp, R, ins);
      const ran = p.program;
      p.free();
      const matmuls = ran.kernels.filter((k) => k.kernel.schedule.kind === 'matmul');
      expect(matmuls.length).toBe(2);
      for (const { kernel } of matmuls) {
        const threads = evalDim(kernel.threads, dims);
        expect(threads < NARROW_LAUNCH, `${kernel.name}: ${threads} invocations`).toBe(narrow);
        const launched = R.launchedKernel(kernel, dims);
        expect(launched.workgroupSize).toBe(narrow ? NARROW_WORKGROUP : 64);
        // the same body, launched with a workgroup size (and a linear id) to match
        expect(launched.body).toBe(kernel.body);
        const wgsl = R.print(launched);
        expect(wgsl).toContain(`override wg_size: u32 = ${launched.workgroupSize}u;`);
        expect(wgsl).toContain('@workgroup_size(wg_size)');
        expect(wgsl).toContain('* wg_size + lidx');
        // one narrow kernel per kernel, reused across launches
        expect(R.launchedKernel(kernel, dims)).toBe(launched);
      }
      expect(await checkOnBackend(cp, R, ins, { rtol: 5e-4, atol: 5e-5 }), `T${t} D${d} H${h}`).toBeNull();
    }
  }, 120_000);

  it('tessera run says which kernels launch narrow', () => {
    const R = rt!;
    const cp = compile(block.program);
    // the decode step: both matmuls narrow; the prefill chunk: its norm's 128 rows narrow, the matmuls not
    for (const [dims, narrow] of [[{ T: 1, D: 128, H: 344 }, ['matmul', 'matmul']], [{ T: 128, D: 128, H: 256 }, ['row']]] as const) {
      const lines = describeKernels(selectVersion(cp, dims), (k) => R.launchedKernel(k, dims));
      const kinds = lines.filter((l) => l.endsWith(`, launched in workgroups of ${NARROW_WORKGROUP} (narrow launch)`)).map((l) => l.split(': ')[1]!.split(' ')[0]);
      expect(kinds, lines.join('\n')).toEqual(narrow);
    }
  });

  it('every elementwise, row and matmul kernel gives the same result narrow and wide', async () => {
    const R = rt!;
    // N is large enough that the wide launch has several workgroups and the narrow one many
    const cases: [D.KernelDef, Record<string, number>][] = [
      [mm, { M: 3, N: 40, K: 12 }],
      [mm, { M: 1, N: 37, K: 5 }],
      [rows, { M: 100, N: 13 }],
      [block, { T: 2, D: 24, H: 36 }],
    ];
    for (const [def, dims] of cases) {
      const cp = compile(def.program);
      const ins = inputsFor(def, dims);
      const p = prepare(cp, R, ins);
      const ran = p.program;
      p.free();
      // the narrow launches against the reference
      expect(ran.kernels.every((k) => R.launchedKernel(k.kernel, dims).workgroupSize === NARROW_WORKGROUP), def.name).toBe(true);
      expect(await checkOnBackend(cp, R, ins, { rtol: 5e-4, atol: 5e-5 }), `${def.name} narrow`).toBeNull();
      // the same kernels with their workgroup size chosen: never narrowed
      const wide = compile(def.program, { params: { workgroupSize: 64 } });
      expect(await checkOnBackend(wide, R, ins, { rtol: 5e-4, atol: 5e-5 }), `${def.name} wide`).toBeNull();
    }
  }, 120_000);
});
