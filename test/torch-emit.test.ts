/**
 * `tessera compile --target torch`: the generated PyTorch modules, checked where there is neither
 * PyTorch nor a GPU. The module must be valid Python; the CUDA it embeds must be the `.cu` file and
 * compile with nvcc under the flags PyTorch builds extensions with; kernels plus launchers must compile
 * against bench/device/torch-stub's stand-ins for the ATen/c10 headers, as load_inline builds them;
 * the launchers must take their arguments in the manifest's order and compute the thread count, the
 * grid and the buffer sizes exactly as the manifest says (a host program built from the launchers'
 * own expressions); and the Python side, run on a fake torch, must infer the dims, check the inputs
 * and call the launchers in order. The same modules run for real on the GPU machine
 * (bench/device/run.sh).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type CliIO } from '../src/cli/main.js';
import type { Manifest } from '../src/cli/manifest.js';
import { loadPrograms } from '../src/cli/load.js';
import { compileCuda, nvccAvailable, nvccPath } from '../src/backends/cuda/nvcc.js';
import { printCudaUnit } from '../src/backends/cuda/print.js';
import { cudaGrid } from '../src/backends/cuda/runtime.js';
import { dimProduct, evalDim } from '../src/ir/dims.js';
import { allBuilds, compile, type CompiledProgram } from '../src/passes/pipeline.js';

const ROOT = resolve(import.meta.dirname, '..');
const STUB = join(ROOT, 'bench/device/torch-stub');
const CHECK = join(ROOT, 'bench/device/torch_check.py');
const SOURCES = ['test/fixtures/cli-sample.ts', 'test/fixtures/cli-edge.ts', 'bench/device/programs.ts', 'examples/torch/rmsnorm_silu.ts'];
/** The macros torch.utils.cpp_extension passes nvcc for every extension. */
const TORCH_NVCC_DEFINES = ['-D__CUDA_NO_HALF_OPERATORS__', '-D__CUDA_NO_HALF_CONVERSIONS__', '-D__CUDA_NO_BFLOAT16_CONVERSIONS__', '-D__CUDA_NO_HALF2_OPERATORS__', '--expt-relaxed-constexpr'];
const run = promisify(execFile);

const tmp = mkdtempSync(join(tmpdir(), 'tessera-torch-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const gen = join(tmp, 'gen');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s) };
  return { code: await main(argv, io), out, err };
}

interface Module {
  readonly program: string;
  readonly path: string;
  readonly manifest: Manifest;
  readonly cp: CompiledProgram;
}

/** The module's embedded strings, read by bench/device/torch_check.py without importing it. */
interface Extracted {
  readonly program: string;
  readonly launchers: string[];
  readonly dims: string[];
  readonly dir: string;
}

const modules: Module[] = [];
const extracted = new Map<string, Extracted>();

function python(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  // Bytecode goes to the temporary folder, never next to the stub package in the repository.
  const r = spawnSync('python3', args, { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPYCACHEPREFIX: join(tmp, 'pycache'), ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  for (const src of SOURCES) {
    const r = await cli('compile', join(ROOT, src), '--target', 'torch', '--out', gen);
    expect(r.code, r.err).toBe(0);
    for (const { program } of await loadPrograms(join(ROOT, src))) {
      const manifest = JSON.parse(readFileSync(join(gen, program.name, 'manifest.json'), 'utf8')) as Manifest;
      modules.push({ program: program.name, path: join(gen, program.name, `${program.name}_torch.py`), manifest, cp: compile(program, { tensorCores: true, bf16TensorCores: true }) }); // the default archs are sm_80+
    }
  }
  for (const m of modules) {
    const dir = join(tmp, 'extract', m.program);
    const r = python([CHECK, 'extract', m.path, dir]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { program: string; launchers: string[]; dims: string[] };
    extracted.set(m.program, { ...j, dir });
  }
});

describe('tessera compile --target torch', () => {
  it('writes one module per program, deterministically', async () => {
    expect(modules.map((m) => m.program).sort()).toEqual(['block', 'block_f16', 'fixed_shape', 'matmul', 'matmul_bf16', 'matmul_f16', 'mixed', 'pass_through', 'rmsnorm_silu', 'row_softmax', 'silu_affine', 'silu_chain', 'softmax']);
    const again = join(tmp, 'again');
    expect((await cli('compile', join(ROOT, SOURCES[0]!), '--emit', 'torch', '--out', again)).code).toBe(0);
    for (const p of ['mixed', 'row_softmax', 'silu_affine']) {
      expect(readFileSync(join(again, p, `${p}_torch.py`), 'utf8')).toBe(readFileSync(join(gen, p, `${p}_torch.py`), 'utf8'));
      expect(readdirSync(join(again, p)).sort()).toEqual(['manifest.json', `${p}_torch.py`]);
    }
    const m = modules.find((x) => x.program === 'silu_affine')!.manifest;
    expect(m.targets).toEqual(['torch']);
    expect(m.cuda).toMatchObject({ source: null, torch: 'silu_affine_torch.py' });
    expect(m.kernels[0]!.cuda!.entry).toBe('silu_affine_elementwise_out');
  });

  it('is valid Python (python3 -m py_compile)', () => {
    const r = python(['-m', 'py_compile', ...modules.map((m) => m.path)]);
    expect(r.status, r.stderr).toBe(0);
  });

  // Every module's sources in one translation unit (the prelude and the launcher helpers are
  // guarded for that): one nvcc run per check instead of one per module.
  it('embeds the .cu exactly, and nvcc compiles the kernels for sm_80 and sm_90 under PyTorch extension flags', () => {
    expect(nvccAvailable(), 'nvcc is needed (set $TESSERA_NVCC or put it on PATH)').toBe(true);
    const units = modules.map((m) => {
      const kernels = readFileSync(join(extracted.get(m.program)!.dir, `${m.program}.cu`), 'utf8');
      // every build's kernels (the versions' under their own names)
      expect(kernels, m.program).toBe(`${printCudaUnit(allBuilds(m.cp).flatMap((b) => b.kernels.map((k) => k.kernel)))}\n`);
      return kernels;
    });
    const r = compileCuda(units.join('\n'), { archs: ['sm_80', 'sm_90'], output: 'cubin', extraFlags: TORCH_NVCC_DEFINES });
    for (const m of modules) for (const k of [...m.manifest.kernels, ...(m.manifest.versions ?? []).flatMap((v) => v.kernels)]) expect(r.parts.every((p) => p.bytes.includes(Buffer.from(`${k.cuda!.entry}\0`))), k.name).toBe(true);
    expect(modules.some((m) => (m.manifest.versions ?? []).length > 0), 'a program with versions among the modules').toBe(true);
  });

  it('compiles kernels + launchers as load_inline would (nvcc -c, sm_90, against the ATen/c10 stand-ins), and the declarations', async () => {
    const include = join(STUB, 'include');
    const all = modules.map((m) => readFileSync(join(extracted.get(m.program)!.dir, `${m.program}.torch.cu`), 'utf8')).join('\n');
    const decls = modules.map((m) => readFileSync(join(extracted.get(m.program)!.dir, `${m.program}.decl.cpp`), 'utf8')).join('\n');
    writeFileSync(join(tmp, 'all.torch.cu'), all);
    writeFileSync(join(tmp, 'all.decl.cpp'), decls);
    const flags = ['-c', '-std=c++17', '-arch=sm_90', ...TORCH_NVCC_DEFINES, '-O3', '-ftz=false', '-prec-div=true', '-prec-sqrt=true', `-I${include}`];
    const fail = (e: Error & { stderr?: string }) => ({ stderr: `FAILED ${e.stderr ?? e.message}` });
    const [cu, cpp] = await Promise.all([
      run(nvccPath()!, [...flags, '-o', join(tmp, 'all.torch.o'), join(tmp, 'all.torch.cu')]).catch(fail),
      run('c++', ['-std=c++17', '-fsyntax-only', '-Wall', `-I${include}`, join(tmp, 'all.decl.cpp')]).catch(fail),
    ]);
    expect(cu.stderr).toBe('');
    expect(cpp.stderr).toBe('');
  });

  it('launchers take the buffers in the kernel parameter order of the manifest, then every dim, and pass them through in that order', () => {
    for (const m of modules) {
      const ex = extracted.get(m.program)!;
      const launchers = readFileSync(join(ex.dir, `${m.program}.torch.cu`), 'utf8');
      const decls = readFileSync(join(ex.dir, `${m.program}.decl.cpp`), 'utf8');
      const dims = m.manifest.dims.map((d) => d.name);
      expect(ex.dims, m.program).toEqual(dims);
      // one launcher per kernel of every build: the general build's, then each version's
      const kernels = [...m.manifest.kernels, ...(m.manifest.versions ?? []).flatMap((v) => v.kernels)];
      expect(ex.launchers).toEqual(kernels.map((k) => `launch_${k.cuda!.entry}`));
      for (const k of kernels) {
        const c = k.cuda!;
        const name = `launch_${c.entry}`;
        const buffers = c.params.flatMap((p) => ('buffer' in p ? [p.buffer] : []));
        const expected = [...buffers.map((b) => `const at::Tensor& t_${b}`), ...dims.map((d) => `int64_t d_${d}`)].join(', ');
        expect(decls, name).toContain(`void ${name}(${expected});`);
        expect(launchers, name).toContain(`void ${name}(${expected}) {`);
        // The launch passes each parameter as the manifest lists it: pointers of the kernel's types, then the uniform dims.
        const body = launchers.slice(launchers.indexOf(`void ${name}(`));
        const call = new RegExp(`${c.entry}<<<grid, dim3\\(${c.block[0]}, 1, 1\\), ${c.dynamicSharedBytes}, at::cuda::getCurrentCUDAStream\\(\\)\\.stream\\(\\)>>>\\(([^;]*)\\);`).exec(body);
        expect(call, name).not.toBeNull();
        const args = call![1]!.split(/,\s*\n\s*/).map((a) => a.trim());
        expect(args).toEqual(
          c.params.map((p) => ('buffer' in p ? `static_cast<${p.type}>(t_${p.buffer}.data_ptr())` : `tsr_i32(d_${p.dim}, tsr_name, "${p.dim}")`)),
        );
        // Each buffer is checked for the torch dtype of its Tessera dtype.
        for (const b of k.bindings) {
          const aten = { f32: 'at::kFloat', f16: 'at::kHalf', bf16: 'at::kBFloat16', i32: 'at::kInt', u32: 'at::kInt', bool: 'at::kBool' }[b.dtype];
          expect(body).toMatch(new RegExp(`tsr_check\\(t_${b.buffer}, t_${buffers[0]}, ${aten}, `));
        }
      }
    }
  });

  it('launchers compute threads, the grid and buffer sizes as the manifest and the CUDA runtime do (a host program from their own code)', async () => {
    const harness: string[] = [];
    const expected: string[] = [];
    const MAX_X = 2147483647;
    const MAX_Y = 65535;
    let helpers = '';
    const dimSets = (names: readonly string[]): Record<string, number>[] => [
      Object.fromEntries(names.map((n) => [n, 1])),
      Object.fromEntries(names.map((n, i) => [n, [37, 1000, 5, 129][i % 4]!])),
      Object.fromEntries(names.map((n, i) => [n, [4096, 333, 64, 7][i % 4]!])),
    ];
    for (const m of modules) {
      const src = readFileSync(join(extracted.get(m.program)!.dir, `${m.program}.torch.cu`), 'utf8');
      const ns = src.slice(src.indexOf('namespace {'), src.indexOf('}  // namespace') + '}  // namespace'.length);
      // tsr_check needs at::Tensor; the arithmetic helpers are what is checked here.
      const check = ns.indexOf('[[maybe_unused]] void tsr_check(');
      helpers = ns.slice(0, check) + ns.slice(ns.indexOf('\n}\n', check) + 3);
      const names = m.manifest.dims.map((d) => d.name);
      // every build's kernels, their buffer sizes from their own build's plan
      for (const [k, buffers] of allBuilds(m.cp).flatMap((b) => b.kernels.map((k) => [k, b.buffers] as const))) {
        const body = src.slice(src.indexOf(`void launch_${k.kernel.name}(`));
        const threads = /const int64_t threads = (.*);/.exec(body)![1]!;
        for (const dims of dimSets(names)) {
          const lets = names.map((n) => `const int64_t d_${n} = ${dims[n]};`).join(' ');
          harness.push(`  { ${lets} const int64_t t = ${threads}; const dim3 g = tsr_grid(t, ${k.kernel.workgroupSize}, "k");`);
          harness.push(`    std::printf("${k.kernel.name} threads %lld grid %u %u\\n", (long long)t, g.x, g.y);`);
          const t = evalDim(k.kernel.threads, dims);
          const g = cudaGrid(t, k.kernel.workgroupSize, MAX_X, MAX_Y)!;
          expected.push(`${k.kernel.name} threads ${t} grid ${g[0]} ${g[1]}`);
          k.bindings.forEach((b, i) => {
            const elements = new RegExp(`tsr_check\\(t_${b}, t_\\w+, at::k\\w+, (.*), tsr_name, "${b}"\\);`).exec(body)![1]!;
            harness.push(`    std::printf("${k.kernel.name} ${b} %lld\\n", (long long)(${elements}));`);
            const buf = buffers.find((x) => x.name === b)!;
            expected.push(`${k.kernel.name} ${b} ${evalDim(dimProduct(buf.shape), dims)}`);
            expect(k.kernel.buffers[i]!.name).toBe(b);
          });
          harness.push('  }');
        }
      }
    }
    // The fold into y and the 2^31 limit, as cudaGrid.
    for (const [t, wg] of [[2 ** 31, 1], [1000, 128], [1, 256], [2 ** 31 - 1, 1], [2 ** 31, 1024]] as const) {
      harness.push(`  { const dim3 g = tsr_grid(${t}LL, ${wg}, "k"); std::printf("fold %u %u\\n", g.x, g.y); }`);
      const g = cudaGrid(t, wg, MAX_X, MAX_Y)!;
      expected.push(`fold ${g[0]} ${g[1]}`);
    }
    harness.push('  try { tsr_grid(4294967296LL, 1, "k"); std::printf("no throw\\n"); } catch (const std::exception&) { std::printf("too many threads: refused\\n"); }');
    expected.push('too many threads: refused');
    const file = join(tmp, 'harness.cu');
    writeFileSync(
      file,
      [
        '#include <cstdint>',
        '#include <cstdio>',
        '#include <stdexcept>',
        '#include <cuda_runtime.h>',
        '#define TORCH_CHECK(cond, ...) do { if (!(cond)) throw std::runtime_error("TORCH_CHECK failed"); } while (0)',
        helpers,
        'int main() {',
        ...harness,
        '  return 0;',
        '}',
        '',
      ].join('\n'),
    );
    await run(nvccPath()!, ['-std=c++17', '-o', join(tmp, 'harness'), file]);
    const out = await run(join(tmp, 'harness'), []);
    expect(out.stdout.trim().split('\n')).toEqual(expected);
  });

  it('the Python side infers the dims, allocates the outputs and launches every kernel in order (on a fake torch)', () => {
    for (const m of modules) {
      const r = python([CHECK, 'fake', m.path]);
      expect(r.status, `${m.program}: ${r.stderr}${r.stdout}`).toBe(0);
      const j = JSON.parse(r.stdout) as { dims: Record<string, number>; version: string; builds: string[]; launches: { launcher: string; args: string[] }[]; outputs: Record<string, { shape: number[]; dtype: string }> };
      expect(j.builds, m.program).toHaveLength(1);
      expect(j.version, m.program).toBe('general');
      expect(j.launches.map((l) => l.launcher)).toEqual(m.manifest.kernels.map((k) => `launch_${k.cuda!.entry}`));
      m.manifest.kernels.forEach((k, i) => {
        expect(j.launches[i]!.args).toEqual([...k.bindings.map(() => 'tensor'), ...m.manifest.dims.map(() => 'int')]);
      });
      const torchDtype = { f32: 'torch.float32', f16: 'torch.float16', bf16: 'torch.bfloat16', i32: 'torch.int32', u32: 'torch.int32', bool: 'torch.bool' };
      for (const o of m.manifest.outputs) {
        const node = m.cp.program.outputs.find((x) => x.name === o.name)!.node;
        expect(j.outputs[o.name], `${m.program}.${o.name}`).toEqual({ shape: node.shape.map((d) => evalDim(d, j.dims)), dtype: torchDtype[o.dtype] });
      }
    }
  });

  it('the Python side launches the build the dims select: each version at dims that meet its conditions (on a fake torch)', () => {
    const versioned = modules.filter((m) => (m.manifest.versions ?? []).length > 0);
    expect(versioned.length, 'programs with versions among the modules').toBeGreaterThan(0);
    for (const m of versioned) {
      for (const v of m.manifest.versions!) {
        // the version's dims: its equal values, multiples of its multipleOf (5 times), the rest 3, 5, ...
        const given = m.manifest.dims.map((d, i) => `${d.name}=${v.when.equals?.[d.name] ?? (v.when.multipleOf?.[d.name] ? 5 * v.when.multipleOf[d.name]! : 3 + 2 * i)}`);
        const r = python([CHECK, 'fake', m.path, ...given]);
        expect(r.status, `${m.program} ${v.version}: ${r.stderr}${r.stdout}`).toBe(0);
        const j = JSON.parse(r.stdout) as { version: string; launches: { launcher: string; args: string[] }[] };
        expect(j.version, `${m.program} at ${given.join(' ')}`).toBe(v.version);
        expect(j.launches.map((l) => l.launcher)).toEqual(v.kernels.map((k) => `launch_${k.cuda!.entry}`));
      }
    }
  });

  it('the Python side rejects wrong inputs with clear messages, and views u32 inputs as int32', () => {
    const mod = (p: string) => join(gen, p);
    const script = `
import sys, torch
sys.path[:0] = [${JSON.stringify(mod('silu_affine'))}, ${JSON.stringify(mod('pass_through'))}]
import silu_affine_torch as s, pass_through_torch as p
def cuda(*shape, dtype=torch.float32):
    return torch.zeros(*shape, dtype=dtype, device='cuda')
def fails(f):
    try:
        f()
    except (TypeError, ValueError) as e:
        print(type(e).__name__ + ': ' + str(e))
    else:
        print('no error')
x, a, b = cuda(5, 37), cuda(37), cuda(37)
fails(lambda: s.silu_affine(x, cuda(38), b))
fails(lambda: s.silu_affine(cuda(5, 37, dtype=torch.float16), a, b))
fails(lambda: s.silu_affine(torch.zeros(5, 37), a, b))
fails(lambda: s.silu_affine(cuda(37, 5).t(), a, b))
fails(lambda: s.silu_affine(x, a, cuda(37, 1)))
fails(lambda: s.silu_affine(x, a, b, dims={'Q': 3}))
fails(lambda: s.silu_affine(x, a, b, dims={'N': 36}))
fails(lambda: s.silu_affine(x, a, 3.0))
print(sorted(s.silu_affine(x=x, a=a, b=b)))
torch.LAUNCHES.clear()
out = p.pass_through(cuda(9, dtype=torch.uint32))
print(torch.LAUNCHES[0][1][0].dtype, out['same'].dtype, list(out['doubled'].shape))
`;
    const r = python(['-c', script], { PYTHONPATH: join(STUB, 'python') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      "ValueError: silu_affine: input 'a' has shape [38], expected [N] = [37]",
      "TypeError: silu_affine: input 'x' must be torch.float32 (f32), got torch.float16",
      "ValueError: silu_affine: input 'x' must be a CUDA tensor, got one on cpu",
      "ValueError: silu_affine: input 'x' must be contiguous (call .contiguous() on it)",
      "ValueError: silu_affine: input 'b' has 2 dims, expected [N]",
      "ValueError: silu_affine: unknown dim 'Q' in dims (the program's dims are M, N)",
      "ValueError: silu_affine: dims['N'] = 36 but x.shape[1] = 37",
      "TypeError: silu_affine: input 'b' must be a torch.Tensor, got float",
      "['out']",
      'torch.int32 torch.int32 [9]',
    ]);
  });

  it('documents itself: inputs, outputs, dims and the dtype mapping in the module docstring', () => {
    const text = readFileSync(join(gen, 'mixed', 'mixed_torch.py'), 'utf8');
    expect(text).toContain('    outs = mixed(h, keep)   # dict: output name -> torch.Tensor');
    expect(text).toContain('    h: torch.float16 [M, N]\n    keep: torch.bool [M, N]');
    expect(text).toContain("    'idx': torch.int32 [M]\n    'total': torch.float16 [M]\n    'pos': torch.bool [M, N]");
    expect(text).toContain('Dims: M = h.shape[0], N = h.shape[1]');
    expect(text).toContain('u32 -> torch.int32 holding the same 32 bits');
    expect(text).toMatch(/load_inline\(\n\s+name=EXTENSION_NAME,/);
  });
});
