/**
 * The `tessera` command, run in-process with captured output (and once through bin/tessera.mjs):
 * compile writes deterministic kernels, manifests and wrappers that type-check and run; run checks
 * against the reference; bad input gives the right exit code and error code.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Project, ts } from 'ts-morph';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS, main, type CliIO } from '../src/cli/main.js';
import type { Manifest } from '../src/cli/manifest.js';
import { runAndCheck } from '../src/cli/run-cmd.js';
import { demoPrograms } from '../src/cli/demo-programs.js';
import { JSRuntime } from '../src/backends/js/runtime.js';
import { evalDim } from '../src/ir/dims.js';
import { parseDim } from '../src/ir/text/index.js';
import { compile } from '../src/passes/pipeline.js';
import { printCudaUnit } from '../src/backends/cuda/print.js';
import { evalProgram, refFromHost, refMismatch } from '../src/ref/index.js';
import type { BackendRuntime, DeviceBuffer, HostArray } from '../src/runtime/backend.js';
import { fixedShape } from './fixtures/cli-edge.js';
import { linearBias } from './fixtures/cli-matmul.js';
import { linearF16 } from './fixtures/cli-matmul-f16.js';
import { buildManifest } from '../src/cli/manifest.js';
import { generateWrapper } from '../src/cli/wrapper.js';
import { loadWGSLPrinter } from '../src/cli/backends.js';
import { mixed, rowSoftmax, siluAffine } from './fixtures/cli-sample.js';
import { getTestWebGPU, webgpuRequired } from './helpers/webgpu.js';

const ROOT = resolve(import.meta.dirname, '..');
const SAMPLE = join(ROOT, 'test/fixtures/cli-sample.ts');
const EDGE = join(ROOT, 'test/fixtures/cli-edge.ts');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s) };
  const code = await main(argv, io);
  return { code, out, err };
}

/** Every file under `dir`, relative path -> bytes. */
function tree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else files.set(`${rel}${e.name}`, readFileSync(join(d, e.name)));
    }
  };
  walk(dir, '');
  return files;
}

const manifestOf = (dir: string, program: string) => JSON.parse(readFileSync(join(dir, program, 'manifest.json'), 'utf8')) as Manifest;

describe('tessera compile', () => {
  const out = join(tmp, 'a');

  it('writes kernels, a manifest and a wrapper per program', async () => {
    const r = await cli('compile', SAMPLE, '--target', 'wgsl,js', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/silu_affine: 1 kernel \(elementwise\) compiled in/);
    for (const p of ['silu_affine', 'row_softmax', 'mixed']) {
      const m = manifestOf(out, p);
      for (const k of m.kernels) {
        expect(existsSync(join(out, p, `${k.name}.wgsl`))).toBe(true);
        expect(existsSync(join(out, p, `${k.name}.js`))).toBe(true);
        expect(k.files).toEqual({ wgsl: `${k.name}.wgsl`, js: `${k.name}.js` });
      }
      expect(existsSync(join(out, p, `${p}.ts`))).toBe(true);
    }
    expect(readFileSync(join(out, 'silu_affine', 'silu_affine_elementwise_out.wgsl'), 'utf8')).toMatch(/override wg_size: u32 = 64u;\n@compute @workgroup_size\(wg_size\)\nfn main\(/);
  });

  it('describes how to bind and launch each kernel in the manifest', () => {
    const m = manifestOf(out, 'silu_affine');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(m).toMatchObject({ program: 'silu_affine', tessera: pkg.version, kernelCount: 1, targets: ['wgsl', 'js'] });
    expect(m.inputs).toEqual([
      { name: 'x', dtype: 'f32', shape: ['M', 'N'], buffer: 'x' },
      { name: 'a', dtype: 'f32', shape: ['N'], buffer: 'a' },
      { name: 'b', dtype: 'f32', shape: ['N'], buffer: 'b' },
    ]);
    expect(m.outputs).toEqual([{ name: 'out', dtype: 'f32', shape: ['M', 'N'], buffer: 'out' }]);
    expect(m.dims).toEqual([{ name: 'M', from: 'x.shape[0]' }, { name: 'N', from: 'x.shape[1]' }]);
    expect(m.buffers.map((b) => [b.name, b.role, b.elements, b.bytes])).toEqual([
      ['x', 'input', 'M*N', '4*M*N'],
      ['a', 'input', 'N', '4*N'],
      ['b', 'input', 'N', '4*N'],
      ['out', 'output', 'M*N', '4*M*N'],
    ]);
    const k = m.kernels[0]!;
    expect(k).toMatchObject({ entryPoint: 'main', workgroupSize: 64, flexibleWorkgroup: true, schedule: { kind: 'elementwise', params: { perThread: 4, workgroupSize: 64 } } });
    expect(m.conventions['flexibleWorkgroup']).toMatch(/pipeline constant wg_size/);
    expect(k.bindings.map((b) => [b.binding, b.buffer, b.storage, b.access, b.type])).toEqual([
      [0, 'x', 'f32', 'read', 'read-only-storage'],
      [1, 'a', 'f32', 'read', 'read-only-storage'],
      [2, 'b', 'f32', 'read', 'read-only-storage'],
      [3, 'out', 'f32', 'read_write', 'storage'],
    ]);
    expect(k.uniforms).toEqual({ binding: 4, struct: 'Dims', size: 16, fields: [{ name: 'M', type: 'i32', offset: 0 }, { name: 'N', type: 'i32', offset: 4 }] });
    // mul, add, silu per element; x, a, b read once, out written once
    expect(k).toMatchObject({ flops: '3*M*N', bytesRead: '4*M*N + 8*N', bytesWritten: '4*M*N' });
    // Dim strings are text-form dims that evaluate like the kernel's own
    const cp = compile(siluAffine.program);
    const env = { M: 7, N: 13 };
    expect(evalDim(parseDim(k.threads), env)).toBe(evalDim(cp.kernels[0]!.kernel.threads, env));
    expect(evalDim(parseDim(k.workgroups), env)).toBe(Math.ceil(evalDim(cp.kernels[0]!.kernel.threads, env) / 64));
  });

  it('gives device storage types for f16 and bool, and binds the uniforms after the buffers', () => {
    const m = manifestOf(out, 'mixed');
    expect(m.kernelCount).toBe(m.kernels.length);
    expect(m.buffers.find((b) => b.name === 'h')).toMatchObject({ dtype: 'f16', storage: 'f32', bytes: '4*M*N' });
    expect(m.buffers.find((b) => b.name === 'keep')).toMatchObject({ dtype: 'bool', storage: 'u32' });
    expect(m.outputs.map((o) => [o.name, o.dtype, o.shape])).toEqual([
      ['idx', 'i32', ['M']],
      ['total', 'f16', ['M']],
      ['pos', 'bool', ['M', 'N']],
    ]);
    for (const k of m.kernels) expect(k.uniforms?.binding).toBe(k.bindings.length);
  });

  it('is deterministic: a second compile, in-process or through bin/tessera.mjs, writes the same bytes', async () => {
    const again = join(tmp, 'b');
    expect((await cli('compile', SAMPLE, '--target', 'js,wgsl', '--out', again)).code).toBe(0);
    const child = join(tmp, 'c');
    await promisify(execFile)(process.execPath, [join(ROOT, 'bin/tessera.mjs'), 'compile', SAMPLE, '--out', child], { cwd: ROOT });
    const first = tree(out);
    expect(first.size).toBe(16);
    for (const other of [tree(again), tree(child)]) {
      expect([...other.keys()]).toEqual([...first.keys()]);
      for (const [name, bytes] of first) expect(other.get(name)!.equals(bytes), name).toBe(true);
    }
  });

  it('writes a wrapper that type-checks under strict settings and rejects a wrongly typed input', async () => {
    // Also a program without symbolic dims (no uniforms) and one whose output is an input.
    const edge = join(tmp, 'edge');
    expect((await cli('compile', EDGE, '--target', 'wgsl', '--out', edge)).code).toBe(0);
    const project = new Project({
      compilerOptions: {
        strict: true,
        noUncheckedIndexedAccess: true,
        noUnusedLocals: true,
        noUnusedParameters: true,
        exactOptionalPropertyTypes: true,
        noImplicitReturns: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ES2022,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
        typeRoots: [join(ROOT, 'node_modules')],
        types: ['@webgpu/types'],
        noEmit: true,
        // lib.dom and @webgpu/types both declare the WebGPU globals, slightly differently; check the wrapper, not them.
        skipLibCheck: true,
      },
    });
    for (const p of ['silu_affine', 'row_softmax', 'mixed']) project.addSourceFileAtPath(join(out, p, `${p}.ts`));
    for (const p of ['fixed_shape', 'pass_through']) project.addSourceFileAtPath(join(edge, p, `${p}.ts`));
    // and a program with versions (a BUILDS table of three)
    const vers = join(tmp, 'strict-versions');
    expect((await cli('compile', join(ROOT, 'test/fixtures/cli-matmul.ts'), '--target', 'wgsl', '--out', vers)).code).toBe(0);
    project.addSourceFileAtPath(join(vers, 'linear_bias', 'linear_bias.ts'));
    const clean = project.getPreEmitDiagnostics();
    expect(project.formatDiagnosticsWithColorAndContext(clean)).toBe('');
    // The wrapper's types are real: an Int32Array for an f32 input and a wrong rank are errors.
    project.createSourceFile(
      join(out, 'use.ts'),
      [
        "import { runSiluAffine, manifest } from './silu_affine/silu_affine';",
        'export async function use(device: GPUDevice): Promise<number> {',
        '  const r = await runSiluAffine(device, { x: { data: new Int32Array(4), shape: [2, 2] }, a: { data: new Float32Array(2), shape: [2, 1] }, b: { data: new Float32Array(2), shape: [2] } });',
        '  const k: 1 = manifest.kernelCount;',
        '  return r.out.data[0]! + r.out.shape[1] + k;',
        '}',
      ].join('\n'),
    );
    const messages = project.formatDiagnosticsWithColorAndContext(project.getPreEmitDiagnostics());
    expect(messages).toMatch(/Type 'Int32Array<ArrayBuffer>' is not assignable to type 'Float32Array/);
    expect(messages).toMatch(/Type '\[number, number\]' is not assignable to type 'readonly \[number\]'/);
    expect(messages.match(/error/g)).toHaveLength(2);
  });

  it('compiles a .tsr text-form file', async () => {
    const dir = join(tmp, 'tsr');
    const r = await cli('compile', join(ROOT, 'examples/softmax.tsr'), '--out', dir);
    expect(r.code).toBe(0);
    const m = manifestOf(dir, 'softmax');
    expect(m).toMatchObject({ program: 'softmax', kernelCount: 1, outputs: [{ name: 'y', shape: ['M', 'N'] }] });
    expect(m.kernels[0]!.schedule.kind).toBe('row');
    expect(m.kernels[0]!.flops).toBe('5*M*N');
  });

  it('omits costs it cannot count exactly (an index-expression kernel)', async () => {
    const dir = join(tmp, 'mm');
    expect((await cli('compile', join(ROOT, 'examples/matmul.tsr'), '--target', 'js', '--out', dir)).code).toBe(0);
    const m = manifestOf(dir, 'matmul');
    const [mm, comp] = m.kernels;
    expect(mm).toMatchObject({ flops: '8*B*D*D*T', bytesRead: '4*B*D*T + 16*D*D', bytesWritten: '16*B*D*T' });
    expect(comp!.flops).toBeUndefined();
    expect(comp!.bytesRead).toBeUndefined();
    expect(existsSync(join(dir, 'matmul', 'matmul.ts'))).toBe(false); // the wrapper runs WGSL: --target wgsl only
  });

  it('takes schedule parameters', async () => {
    const dir = join(tmp, 'params');
    expect((await cli('compile', SAMPLE, '--target', 'js', '--out', dir, '--params', 'workgroupSize=128,perThread=2')).code).toBe(0);
    expect(manifestOf(dir, 'silu_affine').kernels[0]).toMatchObject({ workgroupSize: 128, threads: 'cdiv(M*N, 2)', schedule: { params: { perThread: 2, workgroupSize: 128 } } });
    expect((await cli('compile', SAMPLE, '--out', dir, '--params', 'tile=3')).code).toBe(2);
  });

  it('chains small launches at the dims --chain gives, in compile and in run', async () => {
    const dir = join(tmp, 'chain');
    const block = join(ROOT, 'test/fixtures/cli-block.ts');
    expect((await cli('compile', block, '--target', 'wgsl', '--out', dir, '--chain', 'T=1,D=32,H=88')).code).toBe(0);
    const m = manifestOf(dir, 'ffn');
    const decode = m.versions!.find((v) => v.when.equals?.['T'] === 1)!;
    expect(decode.kernels.map((k) => [k.name, k.schedule.kind, k.workgroupSize, k.threads])).toEqual([['ffn_chain0__T1', 'chain', 32, '32']]);
    expect(readFileSync(join(dir, 'ffn', 'ffn_chain0__T1.wgsl'), 'utf8')).toContain('storageBarrier();');
    // without --chain: two kernels
    expect((await cli('compile', block, '--target', 'wgsl', '--out', join(tmp, 'nochain'))).code).toBe(0);
    expect(manifestOf(join(tmp, 'nochain'), 'ffn').versions!.find((v) => v.when.equals?.['T'] === 1)!.kernels.length).toBe(2);
    const r = await cli('run', block, '--backend', 'js', '--dims', 'T=1,D=32,H=88', '--chain', 'T=1,D=32,H=88', '--repeat', '1');
    expect(r.out).toContain('ffn: 1 kernel on js, dims D=32 H=88 T=1, build T=1');
    expect(r.out).toContain('kernel ffn_chain0__T1: chain (kernels=2 workgroupSize=32)');
    expect(r.out).toContain('MATCH');
    expect((await cli('compile', block, '--out', dir, '--chain', 'T=0')).code).toBe(2);
    // in a file of several programs, each takes the chain dims it has
    const two = await cli('run', join(ROOT, 'test/fixtures/cli-two.ts'), '--backend', 'js', '--dims', 'T=1,D=32,H=88', '--chain', 'T=1,D=32,H=88', '--repeat', '1');
    expect(two.err).toBe('');
    expect(two.out).toContain('kernel ffn_chain0__T1: chain (kernels=2 workgroupSize=32)');
    expect(two.out.match(/^ {2}MATCH$/gm)?.length).toBe(2);
    expect((await cli('compile', join(ROOT, 'test/fixtures/cli-two.ts'), '--target', 'js', '--out', join(tmp, 'two'), '--chain', 'T=1,D=32,H=88')).code).toBe(0);
    // a dim the program does not have is a typo, not ignored
    const typo = await cli('compile', block, '--out', dir, '--chain', 't=1');
    expect(typo.code).toBe(2);
    expect(typo.err).toContain('error: --chain: dim t not in program ffn; its dims are D, H, T');
  });

  it('prints the IR after the requested stages', async () => {
    const r = await cli('compile', SAMPLE, '--out', join(tmp, 'dump'), '--dump-after', 'simplify', '--dump-after', 'schedule');
    expect(r.code).toBe(0);
    expect(r.out).toContain('// ---- silu_affine after simplify ----\nprogram silu_affine(x: f32[M, N], a: f32[N], b: f32[N]) -> (out) {');
    expect(r.out).toContain('// ---- silu_affine after schedule ----\nkernel silu_affine_elementwise_out [elementwise');
    expect(r.out).not.toContain('after fuse');
  });
});

describe('tessera compile --target cuda', () => {
  const out = join(tmp, 'cuda');

  it('writes the .cu, the fatbin (each arch plus PTX) and the PTX, and launch facts in the manifest', async () => {
    const r = await cli('compile', SAMPLE, '--target', 'cuda', '--archs', 'sm_90,sm_80', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const cu = readFileSync(join(out, 'mixed', 'mixed.cu'), 'utf8');
    const m = manifestOf(out, 'mixed');
    expect(cu).toBe(`${printCudaUnit(compile(mixed.program).kernels.map((k) => k.kernel))}\n`);
    expect(readFileSync(join(out, 'mixed', 'mixed.fatbin')).readUInt32LE(0)).toBe(0xba55ed50);
    const ptx = readFileSync(join(out, 'mixed', 'mixed.ptx'), 'utf8');
    expect(ptx).toMatch(/\.target sm_80/);
    expect(m.targets).toEqual(['cuda']);
    expect(m.cuda).toEqual({ source: 'mixed.cu', fatbin: 'mixed.fatbin', ptx: 'mixed.ptx', archs: ['sm_80', 'sm_90'], nvccFlags: ['-std=c++17', '-ftz=false', '-prec-div=true', '-prec-sqrt=true'] });
    expect(m.conventions['cuda']).toMatch(/<<<grid, block, 0, stream>>>/);
    expect(m.buffers.find((b) => b.name === 'h')!.cuda).toEqual({ type: '__half', bytes: '2*M*N' });
    expect(m.buffers.find((b) => b.name === 'keep')!.cuda).toEqual({ type: 'unsigned char', bytes: 'M*N' });
    for (const k of m.kernels) {
      const c = k.cuda!;
      expect(k.files).toEqual({});
      expect(ptx).toContain(`.visible .entry ${c.entry}(`);
      expect(c.block).toEqual([k.workgroupSize, 1, 1]);
      expect(c.blocks).toBe(k.workgroups);
      expect(c.dynamicSharedBytes).toBe(0);
      // The parameter list is the kernel's CUDA signature, in order.
      const sig = new RegExp(`__global__ void __launch_bounds__\\(${k.workgroupSize}\\) ${c.entry}\\(([^)]*)\\)`).exec(cu)![1]!;
      expect(sig.split(', ').map((p) => p.replace(' __restrict__', ''))).toEqual(c.params.map((p) => `${p.type.endsWith('*') ? `${p.type.slice(0, -1)}*` : p.type} ${p.name}`));
      expect(c.params.filter((p) => 'buffer' in p).map((p) => (p as { buffer: string }).buffer)).toEqual(k.bindings.map((b) => b.buffer));
      expect(c.params.filter((p) => 'dim' in p).map((p) => (p as { dim: string }).dim)).toEqual(k.uniforms?.fields.map((f) => f.name) ?? []);
    }
    expect(m.kernels[0]!.cuda!.params.slice(0, 3)).toEqual([
      { name: 'b_keep', type: 'const unsigned char*', buffer: 'keep' },
      { name: 'b_h', type: 'const __half*', buffer: 'h' },
      { name: 'b_idx', type: 'int*', buffer: 'idx' },
    ]);
    // The grid formula evaluates like the runtime's cudaGrid.
    expect(m.kernels[0]!.cuda!.grid).toBe('blocks <= 2147483647 ? (blocks, 1, 1) : (cdiv(blocks, y), y, 1) with y = cdiv(blocks, 2147483647)');
  });

  it('is deterministic, and --emit is --target', async () => {
    const again = join(tmp, 'cuda2');
    expect((await cli('compile', SAMPLE, '--emit', 'cuda', '--archs', 'sm_80', '--archs', 'sm_90', '--out', again)).code).toBe(0);
    const first = tree(out);
    const second = tree(again);
    expect([...second.keys()]).toEqual([...first.keys()]);
    expect(first.size).toBe(12);
    for (const [name, bytes] of first) expect(second.get(name)!.equals(bytes), name).toBe(true);
  });

  it('writes the wrappers of two schedules of one program in one process (each a file of its own to ts-morph)', async () => {
    const wgsl = await loadWGSLPrinter();
    const texts: string[] = [];
    for (const opts of [{ tensorCores: true }, { params: { mma: 1, wm: 1, wn: 1, fm: 1, fn: 1, bk: 16 } }, {}]) {
      const cp = compile(linearF16.program, opts);
      texts.push(await generateWrapper(cp, buildManifest(cp, ['wgsl'], wgsl), wgsl));
    }
    expect(new Set(texts).size).toBe(3);
    for (const t of texts) expect(t).toMatch(/export async function runLinearF16\(/);
  });

  it('compiles f16 matmuls for tensor cores when every target is CUDA, and not otherwise', async () => {
    const file = join(ROOT, 'test/fixtures/cli-matmul-f16.ts');
    const kind = async (dir: string, ...flags: string[]) => {
      const r = await cli('compile', file, '--out', join(tmp, dir), ...flags);
      expect(r.code, r.err).toBe(0);
      return manifestOf(join(tmp, dir), 'linear_f16').kernels[0]!;
    };
    const mma = await kind('f16-cuda', '--target', 'cuda');
    expect(mma.schedule).toMatchObject({ kind: 'matmul_mma', params: { mma: 1, workgroupSize: 4 } });
    // four warps per block: 128 CUDA threads, and the fatbin built (nvcc accepted the WMMA code)
    expect(mma.cuda!.block).toEqual([128, 1, 1]);
    expect(readFileSync(join(tmp, 'f16-cuda', 'linear_f16', 'linear_f16.cu'), 'utf8')).toContain('nvcuda::wmma::mma_sync');
    expect(readFileSync(join(tmp, 'f16-cuda', 'linear_f16', 'linear_f16.fatbin')).readUInt32LE(0)).toBe(0xba55ed50);
    expect((await kind('f16-mixed', '--target', 'wgsl,cuda')).schedule.kind).toBe('matmul');
    expect((await kind('f16-off', '--target', 'cuda', '--params', 'mma=0')).schedule.kind).toBe('matmul');
    expect((await kind('f16-on', '--target', 'wgsl', '--params', 'mma=1,wm=1,wn=1,fm=1,fn=1,bk=16')).schedule.kind).toBe('matmul_mma');
  });

  it('without nvcc writes the .cu and says that no binary was produced', async () => {
    const fake = join(tmp, 'no-nvcc');
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, 'nvcc'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const dir = join(tmp, 'cuda-no-nvcc');
    const r = await promisify(execFile)(process.execPath, [join(ROOT, 'bin/tessera.mjs'), 'compile', EDGE, '--target', 'cuda', '--out', dir], {
      cwd: ROOT,
      env: { ...process.env, TESSERA_NVCC: join(fake, 'nvcc') },
    });
    expect(r.stderr).toContain('warning: fixed_shape: nvcc not found, so no CUDA binary was produced: wrote fixed_shape.cu only, without fixed_shape.fatbin and fixed_shape.ptx');
    expect([...tree(dir).keys()]).toEqual(['fixed_shape/fixed_shape.cu', 'fixed_shape/manifest.json', 'pass_through/manifest.json', 'pass_through/pass_through.cu']);
    expect(manifestOf(dir, 'fixed_shape').cuda).toEqual({ source: 'fixed_shape.cu', archs: ['sm_80', 'sm_90'], nvccFlags: ['-std=c++17', '-ftz=false', '-prec-div=true', '-prec-sqrt=true'] });
  });

  it('leaves the default targets and their manifests without CUDA facts', () => {
    const m = manifestOf(join(tmp, 'a'), 'silu_affine');
    expect(m.cuda).toBeUndefined();
    expect(m.kernels[0]!.cuda).toBeUndefined();
    expect(m.conventions['cuda']).toBeUndefined();
  });
});

describe('the generated wrapper on WebGPU', async () => {
  const rt = await getTestWebGPU();
  it.skipIf(!rt && !webgpuRequired())('runs a vectorized (vec4) matmul at sizes that are not multiples of 4', async () => {
    const dir = join(tmp, 'gpu-vec');
    const file = join(ROOT, 'test/fixtures/cli-matmul.ts');
    expect((await cli('compile', file, '--target', 'wgsl', '--out', dir, '--params', 'vec=4,tm=2,tn=8')).code).toBe(0);
    expect(readFileSync(join(dir, 'linear_bias', 'manifest.json'), 'utf8')).toMatch(/vec=|"vec": 4/);
    type Runner = (device: GPUDevice, inputs: unknown) => Promise<Record<string, { data: HostArray }>>;
    const run = ((await import(pathToFileURL(join(dir, 'linear_bias', 'linear_bias.ts')).href)) as Record<string, Runner>)['runLinearBias']!;
    // its builds: one token, aligned dims (M % 16, the others % 4), aligned rows (M % 16) and general, chosen by the dims
    const text = readFileSync(join(dir, 'linear_bias', 'linear_bias.ts'), 'utf8');
    expect(text).toContain("version: 'M=1',\n    when: (d) => d.M === 1,");
    expect(text).toContain("version: 'M%16 K%4 N%4',\n    when: (d) => d.M % 16 === 0 && d.K % 4 === 0 && d.N % 4 === 0,");
    expect(text).toContain("version: 'M%16',\n    when: (d) => d.M % 16 === 0,");
    expect(text).toContain("version: 'general',\n    when: () => true,");
    // its kernels are flexible: launches under NARROW_LAUNCH invocations set wg_size to 8, wider ones keep 64
    expect(text).toContain('workgroupSize: 64, flexible: true,');
    expect(text).toContain('constants: { wg_size: size }');
    for (const [m, n, k] of [[5, 7, 9], [4, 8, 12], [1, 8, 12], [16, 8, 12], [16, 7, 9], [1, 7, 9], [64, 64, 8], [63, 64, 8]] as const) {
      const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
      const w = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.3));
      const b = Float32Array.from({ length: n }, (_, i) => i / 3);
      const out = await run(rt!.device, { x: { data: x, shape: [m, k] }, w: { data: w, shape: [k, n] }, b: { data: b, shape: [n] } });
      const ref = evalProgram(linearBias.program, { x: refFromHost('f32', [m, k], x), w: refFromHost('f32', [k, n], w), b: refFromHost('f32', [n], b) });
      expect(refMismatch(out['out']!.data, ref['out']!, 1e-4, 1e-4), `${m}x${n}x${k}`).toBeNull();
    }
  });

  it.skipIf(!rt && !webgpuRequired())('runs each program with plain WebGPU calls and matches the reference', async () => {
    const dir = join(tmp, 'gpu');
    expect((await cli('compile', SAMPLE, '--target', 'wgsl', '--out', dir)).code).toBe(0);
    const device = rt!.device;
    const [M, N] = [5, 37];
    const x = Float32Array.from({ length: M * N }, (_, i) => Math.sin(i * 1.7) * 2);
    const a = Float32Array.from({ length: N }, (_, i) => Math.cos(i) + 0.5);
    const b = Float32Array.from({ length: N }, (_, i) => i / N - 0.5);
    const keep = Uint8Array.from({ length: M * N }, (_, i) => (i % 3 === 0 ? 0 : 1));
    type Out = Record<string, { data: HostArray; shape: readonly number[] }>;
    type Runner = (device: GPUDevice, inputs: unknown) => Promise<Out>;
    const load = async (p: string, fn: string) => (await import(pathToFileURL(join(dir, p, `${p}.ts`)).href) as Record<string, Runner>)[fn]!;

    const silu = await (await load('silu_affine', 'runSiluAffine'))(device, { x: { data: x, shape: [M, N] }, a: { data: a, shape: [N] }, b: { data: b, shape: [N] } });
    const siluRef = evalProgram(siluAffine.program, { x: refFromHost('f32', [M, N], x), a: refFromHost('f32', [N], a), b: refFromHost('f32', [N], b) });
    expect(silu['out']!.shape).toEqual([M, N]);
    expect(refMismatch(silu['out']!.data, siluRef['out']!, 1e-4, 1e-4)).toBeNull();

    const sm = await (await load('row_softmax', 'runRowSoftmax'))(device, { x: { data: x, shape: [M, N] } });
    expect(refMismatch(sm['out']!.data, evalProgram(rowSoftmax.program, { x: refFromHost('f32', [M, N], x) })['out']!, 1e-4, 1e-4)).toBeNull();

    const mx = await (await load('mixed', 'runMixed'))(device, { h: { data: x, shape: [M, N] }, keep: { data: keep, shape: [M, N] } });
    const mxRef = evalProgram(mixed.program, { h: refFromHost('f16', [M, N], x), keep: refFromHost('bool', [M, N], keep) });
    expect(mx['idx']!.data).toBeInstanceOf(Int32Array);
    expect(mx['pos']!.data).toBeInstanceOf(Uint8Array);
    for (const o of ['idx', 'total', 'pos']) expect(refMismatch(mx[o]!.data, mxRef[o]!, 1e-2, 1e-2), o).toBeNull();

    const edge = join(tmp, 'gpu-edge');
    expect((await cli('compile', EDGE, '--target', 'wgsl', '--out', edge)).code).toBe(0);
    const n = Int32Array.from({ length: 32 }, (_, i) => (i % 5) - 2);
    const fixed = (await import(pathToFileURL(join(edge, 'fixed_shape', 'fixed_shape.ts')).href)) as Record<string, Runner>;
    const fo = await fixed['runFixedShape']!(device, { x: { data: x.slice(0, 32), shape: [4, 8] }, n: { data: n, shape: [4, 8] } });
    const foRef = evalProgram(fixedShape.program, { x: refFromHost('f32', [4, 8], x.slice(0, 32)), n: refFromHost('i32', [4, 8], n) });
    expect(refMismatch(fo['out']!.data, foRef['out']!, 1e-4, 1e-4)).toBeNull();
    const pass = (await import(pathToFileURL(join(edge, 'pass_through', 'pass_through.ts')).href)) as Record<string, Runner>;
    const u = Uint32Array.from({ length: 9 }, (_, i) => i * 7);
    const po = await pass['runPassThrough']!(device, { x: { data: u, shape: [9] } });
    expect([...po['same']!.data]).toEqual([...u]);
    expect([...po['doubled']!.data]).toEqual([...u].map((v) => v * 2));

    await expect((await load('silu_affine', 'runSiluAffine'))(device, { x: { data: x, shape: [M, N] }, a: { data: a, shape: [N + 1] }, b: { data: b, shape: [N] } })).rejects.toThrow(
      "silu_affine: dim N is 37 but input 'a' axis 0 is 38",
    );
  });
});

describe('tessera run', () => {
  it('names the build dispatch picks for a program with versions (one token, aligned dims, general)', async () => {
    const file = join(ROOT, 'test/fixtures/cli-matmul.ts');
    for (const [dims, build] of [['M=1,N=8,K=8', 'M=1'], ['M=16,N=8,K=8', 'M%16 K%4 N%4'], ['M=16,N=6,K=8', 'M%16'], ['M=5,N=8,K=8', 'general']] as const) {
      const r = await cli('run', file, '--backend', 'js', '--dims', dims, '--repeat', '1');
      expect(r.code, r.out + r.err).toBe(0);
      const [m, n] = dims.split(',').map((d) => d.slice(2));
      expect(r.out).toContain(`linear_bias: 1 kernel on js, dims K=8 M=${m} N=${n}, build ${build}, seed 1`);
      expect(r.out).toMatch(/^ {2}MATCH$/m);
    }
  });

  it('runs every program on the JS backend and reports MATCH', async () => {
    const r = await cli('run', SAMPLE, '--backend', 'js', '--dims', 'M=7,N=33', '--repeat', '3');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('backend: js (requested with --backend js)');
    expect(r.out).toContain('silu_affine: 1 kernel on js, dims M=7 N=33, seed 1');
    expect(r.out).toContain('  kernel silu_affine_elementwise_out: elementwise (perThread=4 workgroupSize=64)');
    expect(r.out).toMatch(/out f32\[7, 33\]: max abs err \S+, max rel err \S+ \(rtol 1e-4, atol 1e-4\) MATCH/);
    expect(r.out).toMatch(/idx i32\[7\]: max abs err 0, max rel err 0 \(exact\) MATCH/);
    expect(r.out).toMatch(/compile [\d.]+ ms, run median [\d.]+ ms over 3 \(wall time\)/);
    expect(r.out.match(/^ {2}MATCH$/gm)).toHaveLength(3);
  });

  it('runs a .tsr file and dumps the IR after a stage', async () => {
    const r = await cli('run', join(ROOT, 'examples/bias_gelu.tsr'), '--backend', 'js', '--dump-after', 'fuse');
    expect(r.code).toBe(0);
    expect(r.out).toContain('// ---- bias_gelu after fuse ----\ngroup 0 elementwise');
    expect(r.out).toMatch(/y f16\[16, 16\]: .* \(rtol 0\.01, atol 0\.01\) MATCH/);
  });

  it('reports a mismatch when a backend computes the wrong values', async () => {
    // A JS runtime that corrupts every downloaded value stands in for a miscompiling backend.
    const js = new JSRuntime();
    const broken: BackendRuntime = Object.assign(Object.create(js) as JSRuntime, {
      async download(buf: DeviceBuffer): Promise<HostArray> {
        const data = await js.download(buf);
        return data instanceof Float32Array ? data.map((v) => v + 0.5) : data;
      },
    });
    const report = await runAndCheck(compile(siluAffine.program), broken, { M: 4, N: 8 }, 1, 1);
    expect(report.ok).toBe(false);
    expect(report.checks[0]!.mismatch).toMatch(/^at \[0, 0\]: got/);
    expect(report.checks[0]!.maxAbs).toBeCloseTo(0.5, 5);
  });
});

describe('tessera devices, demo and help', () => {
  it('lists the JS backend, the WebGPU adapter or why there is none, and CUDA', async () => {
    const r = await cli('devices');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^js {6}available: JavaScript on the CPU.*\n {8}profile: (not calibrated \(tessera tune --backend js calibrates it\)|f32 matmuls .+)$/m);
    expect(r.out).toMatch(/^webgpu {2}(available: .+\n {8}features: .+\n {8}limits: maxComputeInvocationsPerWorkgroup \d+.*\n {8}profile: (not calibrated \(tessera tune calibrates it\)|f32 matmuls .+)|not available: .+)$/m);
    // Without a GPU: the addon's reason; with one, every device. Either way the nvcc that compiles for it.
    expect(r.out).toMatch(/^cuda {4}(not available: .+|available: \d+ devices?, driver [\d.]+.*\n {8}device 0: .+)\n {8}(nvcc \d+\.\d+\S* at \S+|nvcc not found .+)$/m);
    expect(r.out).toMatch(/^cuda-emu available: CUDA kernels compiled by g\+\+ [\d.]+ as host code, one block at a time \(checks results, not speed\)$/m);
  });

  it('runs the CUDA kernels on the CPU emulator with --backend cuda-emu, and will not tune there', async () => {
    const r = await cli('run', SAMPLE, '--backend', 'cuda-emu', '--dims', 'M=5,N=33', '--repeat', '1');
    expect(r.err).toBe('');
    expect(r.out).toContain('backend: cuda (requested with --backend cuda-emu: the CUDA kernels run on the CPU emulator)\n  Tessera CUDA emulator (CPU): sm_90 kernels compiled by g++');
    expect(r.out.match(/^ {2}MATCH$/gm)?.length).toBe(3);
    expect(r.out).not.toContain("MISMATCH");
    expect(r.out).toContain('(wall time)');
    const t = await cli('tune', SAMPLE, '--backend', 'cuda-emu');
    expect(t.code).toBe(2);
    expect(t.err).toContain('the CUDA emulator checks kernels, it does not time them like a GPU');
  });

  it('lists CUDA devices from the driver probe (through a fake libcuda), and run --backend cuda uses that device', async () => {
    const dir = join(tmp, 'stub');
    mkdirSync(dir, { recursive: true });
    await promisify(execFile)('cc', ['-shared', '-fPIC', '-O1', '-o', join(dir, 'libcuda.so.1'), join(ROOT, 'test/cuda-stub/libcuda_stub.c')]);
    const env = { ...process.env, LD_LIBRARY_PATH: dir, TESSERA_STUB_LOG: join(dir, 'launches.log') };
    const devices = await promisify(execFile)(process.execPath, [join(ROOT, 'bin/tessera.mjs'), 'devices'], { cwd: ROOT, env });
    expect(devices.stdout).toMatch(/^cuda {4}available: 1 device, driver \d+\.\d+\n {8}device 0: Tessera Stub GPU \(sm_\d+, \d+ SMs, [\d.]+ GiB, \d+ threads per block, \d+ KiB shared per block\)$/m);
    // The stub launches nothing, so the values do not match; what matters is that CUDA ran the program.
    const run = await promisify(execFile)(process.execPath, [join(ROOT, 'bin/tessera.mjs'), 'run', EDGE, '--backend', 'cuda', '--repeat', '1'], { cwd: ROOT, env }).catch((e: { stdout: string; code: number }) => e);
    expect(run.stdout).toContain('backend: cuda (requested with --backend cuda)\n  Tessera Stub GPU');
    expect(run.stdout).toContain('fixed_shape: 1 kernel on cuda');
    expect(readFileSync(join(dir, 'launches.log'), 'utf8')).toMatch(/fixed_shape_elementwise_out/);
  });

  it('demo compiles the op library and matches the reference on every program', async () => {
    const dir = join(tmp, 'demo');
    const r = await cli('demo', '--backend', 'js', '--out', dir, '--repeat', '1');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const n = Number(/tessera demo: (\d+) programs from/.exec(r.out)?.[1]);
    expect(n).toBeGreaterThanOrEqual(4);
    expect(r.out).toContain(`${n} of ${n} programs match the reference on js`);
    expect(readdirSync(dir)).toHaveLength(n);
  });

  it("demo's built-in set (used without ops/index.ts) compiles to one kernel per program and matches", async () => {
    const rt = new JSRuntime();
    for (const def of demoPrograms()) {
      const cp = compile(def.program);
      expect(cp.kernels, def.name).toHaveLength(1);
      expect((await runAndCheck(cp, rt, { M: 5, N: 19, K: 7 }, 3, 1)).ok, def.name).toBe(true);
    }
  });

  it('prints help for the tool and for each command', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const c of ['compile', 'run', 'devices', 'demo']) {
      expect(top.out).toContain(`  ${c}`);
      const h = await cli(c, '--help');
      expect(h.code).toBe(0);
      expect(h.out).toContain(`Usage:\n  tessera ${c}`);
      expect(h.out).toContain('--verbose');
    }
    expect((await cli()).code).toBe(2);
  });
});

describe('bad input', () => {
  it('an unknown command or option is a usage error (exit 2)', async () => {
    const a = await cli('frobnicate');
    expect(a.code).toBe(2);
    expect(a.err).toContain(`error: unknown command 'frobnicate'; commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
    expect(COMMANDS.map((c) => c.name)).toEqual(expect.arrayContaining(['compile', 'run', 'devices', 'demo']));
    const b = await cli('compile', SAMPLE, '--bogus');
    expect(b.code).toBe(2);
    expect(b.err).toContain("error: unknown option '--bogus'\n  see 'tessera compile --help'");
    expect((await cli('run', SAMPLE, '--dims', 'M=x')).code).toBe(2);
    // dims no program in the file has (a typo would otherwise run at the default and say nothing)
    const typo = await cli('run', SAMPLE, '--backend', 'js', '--dims', 'M=4,n=8,Q=2');
    expect(typo.code).toBe(2);
    expect(typo.err).toContain('error: --dims: dims n, Q not in any of the 3 programs; their dims are M, N');
    expect((await cli('run', SAMPLE, '--backend', 'tpu')).code).toBe(2);
    expect((await cli('compile', SAMPLE, '--dump-after', 'nope')).err).toContain('stages are simplify, fuse, memory, schedule, chain');
    expect((await cli('compile', SAMPLE, '--target', 'spirv')).code).toBe(2);
    expect((await cli('compile')).err).toContain('missing <file>');
  });

  it('a file that does not exist is a clear error', async () => {
    const r = await cli('compile', join(tmp, 'nope.ts'), '--out', join(tmp, 'x'));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error[E_ARG]: cannot load '${join(tmp, 'nope.ts')}': no such file\n`);
  });

  it('a shape error in a DSL program names its code and call site, without a stack', async () => {
    const r = await cli('run', join(ROOT, 'test/fixtures/cli-bad-shape.ts'), '--backend', 'js');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[E_SHAPE\]: shapes \[M, N\] and \[K\] do not broadcast: axis 1 is N vs K\n {2}--> \S*test\/fixtures\/cli-bad-shape\.ts:4:\d+\n$/);
    const verbose = await cli('run', join(ROOT, 'test/fixtures/cli-bad-shape.ts'), '--verbose');
    expect(verbose.err).toMatch(/\n {4}at /);
  });

  it('a shape error in a .tsr file names its line and column', async () => {
    const r = await cli('compile', join(ROOT, 'test/fixtures/cli-bad.tsr'), '--out', join(tmp, 'x'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[E_SHAPE\]: add operands have different shapes: \[M, N\] and \[N\]\n {2}--> \S*cli-bad\.tsr:5:8\n$/);
  });

  it('a module without programs is an error with a code; bad archs and --backend cuda without a device are clear errors', async () => {
    const r = await cli('compile', join(ROOT, 'test/helpers/webgpu.ts'), '--out', join(tmp, 'x'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('error[E_ARG]:');
    expect(r.err).toContain('exports no programs');
    const a = await cli('compile', SAMPLE, '--target', 'cuda', '--archs', '90', '--out', join(tmp, 'x'));
    expect(a.code).toBe(2);
    expect(a.err).toContain("--archs expects GPU architectures like sm_80,sm_90, got '90'");
    expect((await cli('compile', SAMPLE, '--target', 'js', '--archs', 'sm_90', '--out', join(tmp, 'x'))).err).toContain('--archs applies to --target cuda');
    if (!existsSync('/proc/driver/nvidia/version')) {
      const c = await cli('run', SAMPLE, '--backend', 'cuda');
      expect(c.code).toBe(1);
      expect(c.err).toMatch(/^error\[E_BACKEND\]: --backend cuda: no CUDA device: .+\n$/);
    }
  });
});
