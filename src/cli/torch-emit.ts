/**
 * `tessera compile --target torch`: a self-contained Python module per program that runs the
 * program's CUDA kernels on PyTorch tensors.
 *
 * The module embeds three strings and the manifest facts it needs:
 * - CUDA_KERNELS: the program's CUDA translation unit exactly as `--target cuda` writes it (pure CUDA,
 *   no PyTorch headers, so it is compiled by nvcc in tests wherever nvcc exists);
 * - CUDA_LAUNCHERS: one small C++ launcher per kernel taking at::Tensor buffers (in the kernel's
 *   parameter order) and every program dim as int64_t. It checks each buffer (CUDA, same device,
 *   dtype, contiguous, large enough) with TORCH_CHECK, computes the thread count and the grid exactly
 *   as the manifest says (kernels[].cuda), and launches on at::cuda::getCurrentCUDAStream();
 * - CPP_DECLARATIONS: the launchers' prototypes, which load_inline binds with pybind11.
 * The extension is compiled on first use by torch.utils.cpp_extension.load_inline (kernels first,
 * then the launchers, in one .cu file). The Python side infers the dims from the inputs' shapes,
 * checks the inputs with clear messages, allocates outputs and temporaries with torch.zeros, and
 * calls the launchers in the kernels' order.
 */
import { createHash } from 'node:crypto';
import { dimProduct, dimSymbols, dimToString, type Dim, type Shape } from '../ir/dims.js';
import type { DType } from '../ir/dtype.js';
import type { Kernel } from '../ir/kernel.js';
import { allBuilds, type CompiledProgram } from '../passes/pipeline.js';
import { cudaBlockSize, cudaStorageType } from '../backends/cuda/print.js';
import { CUDA_MAX_GRID_X, CUDA_MAX_GRID_Y, type Manifest } from './manifest.js';

/** PyTorch dtypes by Tessera dtype (u32 lives in int32 tensors: same bits). */
export const TORCH_DTYPE: Readonly<Record<DType, string>> = { f32: 'torch.float32', f16: 'torch.float16', bf16: 'torch.bfloat16', i32: 'torch.int32', u32: 'torch.int32', bool: 'torch.bool' };
const ATEN_DTYPE: Readonly<Record<DType, string>> = { f32: 'at::kFloat', f16: 'at::kHalf', bf16: 'at::kBFloat16', i32: 'at::kInt', u32: 'at::kInt', bool: 'at::kBool' };

/** nvcc flags the module passes to load_inline (PyTorch adds its own -std and arch flags). */
export const TORCH_NVCC_FLAGS: readonly string[] = ['-O3', '-ftz=false', '-prec-div=true', '-prec-sqrt=true'];

export interface TorchLauncher {
  /** The C++ (and Python attribute) name: `launch_<kernel>`. */
  readonly name: string;
  readonly kernel: string;
  /** Buffer names in the kernel's parameter order (the launcher's tensor arguments). */
  readonly buffers: readonly string[];
  /** Then one int64_t per program dim, in this order. */
  readonly dims: readonly string[];
}

export interface TorchModule {
  /** The whole `<program>_torch.py`. */
  readonly python: string;
  /** Embedded strings, for tests and tools. */
  readonly kernels: string;
  readonly launchers: string;
  readonly declarations: string;
  readonly launcherTable: readonly TorchLauncher[];
  /** load_inline's module name: `tessera_<program>_<hash of the sources>`. */
  readonly extensionName: string;
  /** The Python function the module exports (the program name as an identifier). */
  readonly functionName: string;
}

const PY_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case type'.split(' '),
);
const PY_RESERVED = new Set(['torch', 'build', 'bind_dims', 'allocate', 'launch', 'outputs', 'dims']);

/** A Python identifier for `name` (invalid characters become `_`, keywords get a trailing `_`). */
export function pyIdent(name: string, reserved: ReadonlySet<string> = new Set()): string {
  let s = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (s === '' || /^[0-9]/.test(s)) s = `_${s}`;
  while (PY_KEYWORDS.has(s) || reserved.has(s)) s = `${s}_`;
  return s;
}

/** A Python string literal: a raw triple-quoted block when the text allows it, else an escaped one. */
export function pyString(s: string): string {
  if (!s.includes("'''") && !s.endsWith('\\') && !s.includes('\r') && !/[\u0000-\u0008\u000b-\u001f]/.test(s)) return `r'''${s}'''`;
  return JSON.stringify(s);
}

const pyQuote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** A dim as a Python int expression over `d` (the bound dims): `/` floors, cdiv rounds up. */
export function dimToPy(d: Dim): string {
  if (typeof d === 'number') return String(d);
  if ('sym' in d) return `d[${pyQuote(d.sym)}]`;
  const a = dimToPy(d.a);
  const b = dimToPy(d.b);
  switch (d.op) {
    case '/': return `(${a} // ${b})`;
    case 'cdiv': return `_cdiv(${a}, ${b})`;
    default: return `(${a} ${d.op} ${b})`;
  }
}

/** A dim as a C++ int64_t expression over the launcher's `d_<dim>` arguments. */
export function dimToCpp(d: Dim): string {
  if (typeof d === 'number') return `int64_t(${d})`;
  if ('sym' in d) return `d_${d.sym}`;
  const a = dimToCpp(d.a);
  const b = dimToCpp(d.b);
  switch (d.op) {
    case '/': return `tsr_floordiv64(${a}, ${b})`;
    case 'cdiv': return `tsr_cdiv64(${a}, ${b})`;
    default: return `(${a} ${d.op} ${b})`;
  }
}

/** `lambda d: expr` (or `lambda _d: expr` when no dim is read, so linters stay quiet). */
function pyLambda(body: string, dims: readonly Dim[]): string {
  const uses = dims.some((x) => dimSymbols(x).size > 0);
  return uses ? `lambda d: ${body}` : `lambda _d: ${body}`;
}

const pyTuple = (items: readonly string[]) => (items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`);
const shapeText = (s: Shape) => `[${s.map(dimToString).join(', ')}]`;

/** The shared helpers every launcher file starts with (after the kernels). */
const LAUNCHER_PRELUDE = `// ---- PyTorch launchers (tessera --target torch) ----
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAException.h>
#include <cstdint>

// Guarded, so the sources of several Tessera modules can share one translation unit.
#ifndef TESSERA_TORCH_HELPERS
#define TESSERA_TORCH_HELPERS
namespace {

[[maybe_unused]] inline int64_t tsr_floordiv64(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

[[maybe_unused]] inline int64_t tsr_cdiv64(int64_t a, int64_t b) { return -tsr_floordiv64(-a, b); }

// One buffer argument: a dense CUDA tensor of the kernel's element type on the first buffer's device,
// holding at least the elements the kernel indexes (with an int index).
[[maybe_unused]] void tsr_check(const at::Tensor& t, const at::Tensor& first, at::ScalarType dtype, int64_t elements, const char* kernel, const char* buffer) {
  TORCH_CHECK(t.defined(), "tessera kernel ", kernel, ": buffer '", buffer, "' is an undefined tensor");
  TORCH_CHECK(t.is_cuda(), "tessera kernel ", kernel, ": buffer '", buffer, "' must be a CUDA tensor, got one on ", t.device());
  TORCH_CHECK(t.device() == first.device(), "tessera kernel ", kernel, ": buffer '", buffer, "' is on ", t.device(), ", the other buffers on ", first.device());
  TORCH_CHECK(t.scalar_type() == dtype, "tessera kernel ", kernel, ": buffer '", buffer, "' must be ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "tessera kernel ", kernel, ": buffer '", buffer, "' must be contiguous (call .contiguous())");
  TORCH_CHECK(t.numel() >= elements, "tessera kernel ", kernel, ": buffer '", buffer, "' has ", t.numel(), " elements, the kernel needs ", elements);
  TORCH_CHECK(elements <= int64_t(2147483647), "tessera kernel ", kernel, ": buffer '", buffer, "' needs ", elements, " elements, more than an int index reaches");
}

// A dim passed to the kernel as int.
[[maybe_unused]] int tsr_i32(int64_t v, const char* kernel, const char* dim) {
  TORCH_CHECK(v >= int64_t(-2147483647) - 1 && v <= int64_t(2147483647), "tessera kernel ", kernel, ": dim ", dim, " = ", v, " does not fit in an int");
  return static_cast<int>(v);
}

// blocks = cdiv(threads, block); (blocks, 1, 1), folded into y past the grid's x limit.
[[maybe_unused]] dim3 tsr_grid(int64_t threads, int64_t block, const char* kernel) {
  const int64_t blocks = (threads + block - 1) / block;
  int64_t x = blocks;
  int64_t y = 1;
  if (blocks > int64_t(${CUDA_MAX_GRID_X})) {
    y = (blocks + int64_t(${CUDA_MAX_GRID_X}) - 1) / int64_t(${CUDA_MAX_GRID_X});
    x = (blocks + y - 1) / y;
  }
  TORCH_CHECK(y <= int64_t(${CUDA_MAX_GRID_Y}) && x * y * block <= (int64_t(1) << 31), "tessera kernel ", kernel, ": ", threads, " threads exceed the 2^31 an int thread id addresses");
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y), 1u);
}

}  // namespace
#endif  // TESSERA_TORCH_HELPERS
`;

interface KernelFacts {
  readonly kernel: Kernel;
  readonly bindings: readonly string[];
}

function launcherSource(k: KernelFacts, dimNames: readonly string[], elements: ReadonlyMap<string, Dim>): { decl: string; body: string; table: TorchLauncher } {
  const kernel = k.kernel;
  const name = `launch_${kernel.name}`;
  const tensorArgs = k.bindings.map((b) => `const at::Tensor& t_${b}`);
  const dimArgs = dimNames.map((d) => `int64_t d_${d}`);
  const signature = `void ${name}(${[...tensorArgs, ...dimArgs].join(', ')})`;
  const first = `t_${k.bindings[0]!}`;
  const lines: string[] = [];
  lines.push(`// ${kernel.name}: ${k.bindings.length} buffer${k.bindings.length === 1 ? '' : 's'}, then the program's dims (${dimNames.join(', ') || 'none'}).`);
  lines.push(`${signature} {`);
  lines.push(`  const char* tsr_name = ${JSON.stringify(kernel.name)};`);
  kernel.buffers.forEach((b, i) => {
    const buf = k.bindings[i]!;
    lines.push(`  tsr_check(t_${buf}, ${first}, ${ATEN_DTYPE[b.dtype]}, ${dimToCpp(elements.get(buf)!)}, tsr_name, ${JSON.stringify(buf)});`);
  });
  lines.push(`  const int64_t threads = ${dimToCpp(kernel.threads)};`);
  lines.push('  if (threads <= 0) return;');
  lines.push(`  const dim3 grid = tsr_grid(threads, ${kernel.workgroupSize}, tsr_name);`);
  lines.push(`  const c10::cuda::CUDAGuard guard(${first}.device());`);
  const args = [
    ...kernel.buffers.map((b, i) => `static_cast<${b.access === 'read' ? 'const ' : ''}${cudaStorageType(b.dtype)}*>(t_${k.bindings[i]!}.data_ptr())`),
    ...kernel.uniforms.map((u) => `tsr_i32(d_${u}, tsr_name, ${JSON.stringify(u)})`),
  ];
  lines.push(`  ${kernel.name}<<<grid, dim3(${cudaBlockSize(kernel)}, 1, 1), 0, at::cuda::getCurrentCUDAStream().stream()>>>(`);
  lines.push(`      ${args.join(',\n      ')});`);
  lines.push('  C10_CUDA_KERNEL_LAUNCH_CHECK();');
  lines.push('}');
  return { decl: `${signature};`, body: lines.join('\n'), table: { name, kernel: kernel.name, buffers: [...k.bindings], dims: [...dimNames] } };
}

/** The Python module for `cp` (see the file comment). `cudaUnit` is the `.cu` text of the program. */
export function generateTorchModule(cp: CompiledProgram, manifest: Manifest, cudaUnit: string): TorchModule {
  const dimNames = manifest.dims.map((d) => d.name);
  // every build's kernels get a launcher (the general build's first); BUILDS lists the versions
  // first and the general build last, as dispatch tries them
  const builds = [...(cp.versions ?? []), cp];
  const entriesOf = (b: CompiledProgram) => (b === cp ? manifest : manifest.versions!.find((v) => v.version === b.version)!);
  const parts = allBuilds(cp).flatMap((b) => {
    const elements = new Map(b.buffers.map((x) => [x.name, dimProduct(x.shape)] as const));
    return b.kernels.map((ck) => launcherSource({ kernel: ck.kernel, bindings: ck.bindings }, dimNames, elements));
  });
  const launcherOf = new Map(parts.map((p) => [p.table.kernel, p.table.name]));
  const launchers = `${LAUNCHER_PRELUDE}\n${parts.map((p) => p.body).join('\n\n')}\n`;
  const declarations = `${parts.map((p) => p.decl).join('\n')}\n`;
  const kernels = cudaUnit;
  const hash = createHash('sha256').update(kernels).update('\0').update(launchers).update('\0').update(declarations).update('\0').update(TORCH_NVCC_FLAGS.join(' ')).digest('hex').slice(0, 12);
  const extensionName = `tessera_${cp.name.replace(/[^A-Za-z0-9_]/g, '_')}_${hash}`;

  // Python names: the function is the program's name, its parameters the inputs' names.
  const functionName = pyIdent(cp.name, PY_RESERVED);
  const taken = new Set<string>([...PY_RESERVED, functionName]);
  const params = cp.program.inputs.map((p) => {
    let n = pyIdent(p.name, taken);
    while (taken.has(n)) n = `${n}_`;
    taken.add(n);
    return n;
  });
  const inputBuffer = (name: string) => manifest.inputs.find((i) => i.name === name)!.buffer;

  // Each dim from the first input axis that is exactly that symbol, as the manifest says.
  const dimSources = dimNames.map((name) => {
    for (const p of cp.program.inputs) {
      const axis = p.shape.findIndex((d) => typeof d === 'object' && 'sym' in d && d.sym === name);
      if (axis >= 0) return `(${pyQuote(name)}, ${pyQuote(p.name)}, ${axis})`;
    }
    return `(${pyQuote(name)}, None, None)`;
  });

  const inputRows = cp.program.inputs.map(
    (p) => `    {'name': ${pyQuote(p.name)}, 'buffer': ${pyQuote(inputBuffer(p.name))}, 'dtype': ${pyQuote(p.dtype)}, 'shape': ${pyQuote(shapeText(p.shape))}, 'rank': ${p.shape.length}, 'size': ${pyLambda(pyTuple(p.shape.map(dimToPy)), p.shape)}},`,
  );
  const buildRows = builds.map((b) => {
    const entries = entriesOf(b);
    const outputRows = entries.outputs.map((o) => {
      const node = cp.program.outputs.find((x) => x.name === o.name)!.node;
      return `            {'name': ${pyQuote(o.name)}, 'buffer': ${pyQuote(o.buffer)}, 'dtype': ${pyQuote(o.dtype)}, 'shape': ${pyQuote(shapeText(node.shape))}, 'size': ${pyLambda(pyTuple(node.shape.map(dimToPy)), node.shape)}},`;
    });
    const bufferRows = b.buffers.map((x) => {
      const n = dimProduct(x.shape);
      return `            {'name': ${pyQuote(x.name)}, 'dtype': ${pyQuote(x.dtype)}, 'role': ${pyQuote(x.role)}, 'elements': ${pyLambda(dimToPy(n), [n])}},`;
    });
    const kernelRows = b.kernels.map((ck, i) => {
      const k = ck.kernel;
      const entry = entries.kernels[i]!;
      return [
        `            {'name': ${pyQuote(k.name)}, 'launcher': ${pyQuote(launcherOf.get(k.name)!)}, 'buffers': ${pyTuple(ck.bindings.map(pyQuote))},`,
        `             'block': ${cudaBlockSize(k)}, 'threads': ${pyLambda(dimToPy(k.threads), [k.threads])}, 'blocks': ${pyQuote(entry.cuda?.blocks ?? entry.workgroups)}},`,
      ].join('\n');
    });
    const tests = [
      ...Object.entries(b.specialized ?? {}).map(([d, v]) => `d[${pyQuote(d)}] == ${v}`),
      ...Object.entries(b.assumed ?? {}).map(([d, m]) => `d[${pyQuote(d)}] % ${m} == 0`),
    ];
    return [
      `    {`,
      `        'version': ${pyQuote(b.version)},`,
      `        'when': lambda d: ${tests.length ? tests.join(' and ') : 'True'},`,
      `        'outputs': (\n${outputRows.join('\n')}\n        ),`,
      `        'buffers': (\n${bufferRows.join('\n')}\n        ),`,
      `        'kernels': (\n${kernelRows.join('\n')}\n        ),`,
      `    },`,
    ].join('\n');
  });

  const doc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"');
  const inputDoc = cp.program.inputs.map((p, i) => `    ${params[i]}${params[i] !== p.name ? ` (input '${p.name}')` : ''}: ${TORCH_DTYPE[p.dtype]} ${shapeText(p.shape)}`);
  const outputDoc = manifest.outputs.map((o) => `    '${o.name}': ${TORCH_DTYPE[o.dtype]} [${o.shape.join(', ')}]`);
  const dimDoc = manifest.dims.map((d) => `${d.name} = ${d.from ?? `dims['${d.name}'] (pass it)`}`);
  const sig = [...params, ...(params.length > 0 ? ['*'] : []), 'dims=None'].join(', ');
  const call = params.length > 0 ? `{${cp.program.inputs.map((p, i) => `${pyQuote(p.name)}: ${params[i]}`).join(', ')}}` : '{}';
  const argsDoc = params.length > 0 ? `${functionName}(${params.join(', ')})` : `${functionName}()`;

  const python = `# Generated by \`tessera compile --target torch\` (tessera ${manifest.tessera}) from program '${cp.name}'. Do not edit:
# regenerate it. Needs PyTorch with CUDA and the CUDA toolkit (nvcc) PyTorch builds extensions with.
"""${doc(cp.name)} on CUDA through PyTorch: Tessera's kernels, compiled with torch.utils.cpp_extension.load_inline.

    from ${doc(cp.name)}_torch import ${functionName}
    outs = ${argsDoc}   # dict: output name -> torch.Tensor

Inputs (contiguous CUDA tensors on one device; positional in this order, or by keyword):
${doc(inputDoc.join('\n') || '    (none)')}
Outputs:
${doc(outputDoc.join('\n'))}
Dims: ${doc(dimDoc.join(', ') || 'none')}

Dtypes: f32 -> torch.float32, f16 -> torch.float16, bf16 -> torch.bfloat16, i32 -> torch.int32, bool -> torch.bool (one byte
0/1, as the kernels store it), u32 -> torch.int32 holding the same 32 bits (a u32 input may also be a
torch.uint32 tensor, viewed as int32; view a u32 output with .view(torch.uint32) where PyTorch has it).

The kernels (${cp.kernels.map((k) => k.kernel.name).join(', ')}) run in order on the current CUDA
stream of the inputs' device, so they order with the surrounding PyTorch work.${cp.versions ? `
At some dims another build runs instead (BUILDS, select_build): ${cp.versions.map((v) => `${v.version}: ${v.kernels.map((k) => k.kernel.name).join(', ')}`).join('; ')}.` : ''} Outputs and
temporaries come from torch.zeros (PyTorch's caching allocator). The extension is compiled on first
use and cached by PyTorch under $TORCH_EXTENSIONS_DIR; build() compiles it ahead.

For repeated launches at fixed shapes into the same buffers (benchmarks, CUDA graphs):
    d = bind_dims(inputs)          # inputs: dict by input name
    bufs = allocate(inputs, d)     # inputs, outputs and temporaries by buffer name
    launch(bufs, d)                # enqueue every kernel
    outs = outputs(bufs, d)        # views of the output buffers
"""
from __future__ import annotations

import torch

PROGRAM = ${pyQuote(cp.name)}
TESSERA_VERSION = ${pyQuote(manifest.tessera)}
EXTENSION_NAME = ${pyQuote(extensionName)}
NVCC_FLAGS = ${pyTuple(TORCH_NVCC_FLAGS.map(pyQuote))}

# The program's CUDA translation unit, exactly as \`tessera compile --target cuda\` writes ${cp.name}.cu.
CUDA_KERNELS = ${pyString(kernels)}

# One launcher per kernel: tensors in the kernel's parameter order, then every dim in DIM_NAMES order.
CUDA_LAUNCHERS = ${pyString(launchers)}

CPP_DECLARATIONS = ${pyString(declarations)}

LAUNCHERS = ${pyTuple(parts.map((p) => pyQuote(p.table.name)))}
DIM_NAMES = ${pyTuple(dimNames.map(pyQuote))}
# (dim, input it is read from, axis); None: not in any input's shape, pass it in dims=.
DIMS = ${pyTuple(dimSources)}
INPUTS = (
${inputRows.join('\n')}
)
# The program's builds: versions for some dims first (one token, aligned dims), the general build
# last (any dims). Dispatch runs the first whose 'when' the dims meet (select_build).
BUILDS = (
${buildRows.join('\n')}
)
# The general build's tables.
OUTPUTS = BUILDS[-1]['outputs']
BUFFERS = BUILDS[-1]['buffers']
KERNELS = BUILDS[-1]['kernels']

TORCH_DTYPES = {'f32': torch.float32, 'f16': torch.float16, 'bf16': torch.bfloat16, 'i32': torch.int32, 'u32': torch.int32, 'bool': torch.bool}
_UINT32 = getattr(torch, 'uint32', None)
_EXT = None


def _cdiv(a, b):
    return -((-a) // b)


def _fail(kind, message):
    raise kind(f'{PROGRAM}: {message}')


def build(verbose=False):
    """Compiles (first call) and returns the extension with one function per kernel launcher."""
    global _EXT
    if _EXT is None:
        from torch.utils.cpp_extension import load_inline

        _EXT = load_inline(
            name=EXTENSION_NAME,
            cpp_sources=[CPP_DECLARATIONS],
            cuda_sources=[CUDA_KERNELS + '\\n' + CUDA_LAUNCHERS],
            functions=list(LAUNCHERS),
            extra_cflags=['-O3'],
            extra_cuda_cflags=list(NVCC_FLAGS),
            verbose=verbose,
        )
    return _EXT


def _dtype_ok(dtype, t):
    if dtype == 'u32':
        return t.dtype == torch.int32 or (_UINT32 is not None and t.dtype == _UINT32)
    return t.dtype == TORCH_DTYPES[dtype]


def bind_dims(inputs, dims=None):
    """Checks the inputs (dict by input name) and returns every dim's value, from their shapes and \`dims\`."""
    given = dict(dims or {})
    for name in given:
        if name not in DIM_NAMES:
            _fail(ValueError, f"unknown dim '{name}' in dims (the program's dims are {', '.join(DIM_NAMES) or 'none'})")
    device = None
    for spec in INPUTS:
        name = spec['name']
        t = inputs.get(name)
        if t is None:
            _fail(TypeError, f"input '{name}' is missing")
        if not isinstance(t, torch.Tensor):
            _fail(TypeError, f"input '{name}' must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_cuda:
            _fail(ValueError, f"input '{name}' must be a CUDA tensor, got one on {t.device}")
        if device is None:
            device = t.device
        elif t.device != device:
            _fail(ValueError, f"input '{name}' is on {t.device}, the first input on {device}")
        if not _dtype_ok(spec['dtype'], t):
            _fail(TypeError, f"input '{name}' must be {TORCH_DTYPES[spec['dtype']]} ({spec['dtype']}), got {t.dtype}")
        if t.dim() != spec['rank']:
            _fail(ValueError, f"input '{name}' has {t.dim()} dims, expected {spec['shape']}")
        if not t.is_contiguous():
            _fail(ValueError, f"input '{name}' must be contiguous (call .contiguous() on it)")
    d = {}
    for name, source, axis in DIMS:
        if source is None:
            if name not in given:
                _fail(ValueError, f"dim {name} is not in any input's shape: pass dims={{'{name}': ...}}")
            d[name] = int(given[name])
        else:
            d[name] = int(inputs[source].shape[axis])
            if name in given and int(given[name]) != d[name]:
                _fail(ValueError, f"dims['{name}'] = {given[name]} but {source}.shape[{axis}] = {d[name]}")
    for name, v in d.items():
        if v < 1:
            _fail(ValueError, f'dim {name} must be >= 1, got {v}')
    for spec in INPUTS:
        t = inputs[spec['name']]
        want = tuple(spec['size'](d))
        if tuple(t.shape) != want:
            got = ', '.join(str(x) for x in t.shape)
            _fail(ValueError, f"input '{spec['name']}' has shape [{got}], expected {spec['shape']} = [{', '.join(str(x) for x in want)}]")
    return d


def select_build(d):
    """The build that runs at dims \`d\`: the first whose conditions they meet (the general one is last)."""
    for b in BUILDS:
        if b['when'](d):
            return b
    return BUILDS[-1]


def allocate(inputs, d, device=None):
    """Buffers by name (of the build for \`d\`): the inputs' tensors (u32 viewed as int32), new zeroed outputs and temporaries."""
    if device is None:
        device = next(iter(inputs.values())).device if inputs else torch.device('cuda', torch.cuda.current_device())
    bufs = {}
    for spec in INPUTS:
        t = inputs[spec['name']]
        if spec['dtype'] == 'u32' and t.dtype != torch.int32:
            t = t.view(torch.int32)
        bufs[spec['buffer']] = t
    for b in select_build(d)['buffers']:
        if b['role'] != 'input':
            bufs[b['name']] = torch.zeros(max(1, b['elements'](d)), dtype=TORCH_DTYPES[b['dtype']], device=device)
    return bufs


def launch(bufs, d):
    """Enqueues every kernel of the build for \`d\`, in order, on the current stream."""
    ext = build()
    dims = [d[name] for name in DIM_NAMES]
    for k in select_build(d)['kernels']:
        getattr(ext, k['launcher'])(*[bufs[b] for b in k['buffers']], *dims)


def outputs(bufs, d):
    """The outputs by name: views of their buffers with the outputs' shapes."""
    out = {}
    for spec in select_build(d)['outputs']:
        size = tuple(spec['size'](d))
        n = 1
        for x in size:
            n *= x
        out[spec['name']] = bufs[spec['buffer']][:n].view(size)
    return out


def ${functionName}(${sig}):
    """Runs ${doc(cp.name)} on the inputs' CUDA device; returns {output name: tensor}. See the module docstring."""
    inputs = ${call}
    d = bind_dims(inputs, dims)
    bufs = allocate(inputs, d)
    launch(bufs, d)
    return outputs(bufs, d)


__all__ = [${pyQuote(functionName)}, 'build', 'bind_dims', 'select_build', 'allocate', 'launch', 'outputs']
`;
  return { python, kernels, launchers, declarations, launcherTable: parts.map((p) => p.table), extensionName, functionName };
}
