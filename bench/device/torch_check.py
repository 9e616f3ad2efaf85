#!/usr/bin/env python3
"""Checks a generated `<program>_torch.py` on a machine without PyTorch or a GPU.

    python3 bench/device/torch_check.py extract MODULE.py OUTDIR
        Reads the module's embedded strings without importing it (ast) and writes OUTDIR/<program>.cu
        (CUDA_KERNELS alone), OUTDIR/<program>.torch.cu (what load_inline compiles: its three
        include lines, the kernels, the launchers) and OUTDIR/<program>.decl.cpp (the pybind side's
        declarations after torch/extension.h). Prints a JSON summary.
    python3 bench/device/torch_check.py fake MODULE.py [DIM=VALUE ...]
        Imports the module with the fake torch of bench/device/torch-stub/python, calls the program
        on fake CUDA tensors of the declared dtypes and shapes (dims default to 3, 5, 7, ...), and
        prints JSON: the launcher calls in order with their argument kinds, and the outputs' shapes
        and dtypes. Fails if a launcher is called against its declaration or out of the order of the
        kernels of the build the module selects at those dims (select_build).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the module's or the stub's folder
HERE = os.path.dirname(os.path.abspath(__file__))
STRINGS = ('PROGRAM', 'EXTENSION_NAME', 'CUDA_KERNELS', 'CUDA_LAUNCHERS', 'CPP_DECLARATIONS', 'LAUNCHERS', 'DIM_NAMES', 'NVCC_FLAGS')
# What torch.utils.cpp_extension.load_inline puts before the sources it is given.
CUDA_PREFIX = '#include <torch/types.h>\n#include <cuda.h>\n#include <cuda_runtime.h>\n'
CPP_PREFIX = '#include <torch/extension.h>\n'


def constants(path: str) -> dict:
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and node.targets[0].id in STRINGS:
            out[node.targets[0].id] = ast.literal_eval(node.value)
    missing = [s for s in STRINGS if s not in out]
    if missing:
        raise SystemExit(f'{path}: missing {", ".join(missing)}')
    return out


def extract(path: str, outdir: str) -> None:
    c = constants(path)
    os.makedirs(outdir, exist_ok=True)
    p = c['PROGRAM']
    files = {
        f'{p}.cu': c['CUDA_KERNELS'],
        f'{p}.torch.cu': CUDA_PREFIX + c['CUDA_KERNELS'] + '\n' + c['CUDA_LAUNCHERS'],
        f'{p}.decl.cpp': CPP_PREFIX + c['CPP_DECLARATIONS'],
    }
    for name, text in files.items():
        with open(os.path.join(outdir, name), 'w', encoding='utf-8') as f:
            f.write(text)
    print(json.dumps({'program': p, 'extension': c['EXTENSION_NAME'], 'launchers': list(c['LAUNCHERS']), 'dims': list(c['DIM_NAMES']),
                      'nvccFlags': list(c['NVCC_FLAGS']), 'files': sorted(files)}))


def fake(path: str, given: list[str]) -> None:
    sys.path.insert(0, os.path.join(HERE, 'torch-stub', 'python'))
    import torch  # the fake one

    if not hasattr(torch, 'LAUNCHES'):
        raise SystemExit('torch_check.py fake: a real torch was imported; run it where PyTorch is absent')
    spec = importlib.util.spec_from_file_location('module_under_test', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = {}
    for i, name in enumerate(mod.DIM_NAMES):
        d[name] = 3 + 2 * i
    for item in given:
        k, _, v = item.partition('=')
        d[k] = int(v)
    dtypes = {'f32': torch.float32, 'f16': torch.float16, 'bf16': torch.bfloat16, 'i32': torch.int32, 'u32': torch.uint32, 'bool': torch.bool}
    inputs = {spec['name']: torch.zeros(*spec['size'](d), dtype=dtypes[spec['dtype']], device='cuda') for spec in mod.INPUTS}
    unbound = {name: d[name] for name, source, _ in mod.DIMS if source is None}
    fn = getattr(mod, mod.__all__[0])
    outs = fn(**{p: inputs[spec['name']] for p, spec in zip(fn.__code__.co_varnames, mod.INPUTS)}, dims=unbound or None)
    calls = [(name, ['tensor' if isinstance(a, torch.Tensor) else type(a).__name__ for a in args]) for name, args in torch.LAUNCHES]
    # the build the module dispatches to at these dims (the general one: KERNELS)
    chosen = mod.select_build(d) if hasattr(mod, 'select_build') else {'version': 'general', 'kernels': mod.KERNELS}
    order = [k['launcher'] for k in chosen['kernels']]
    if [c[0] for c in calls] != order:
        raise SystemExit(f"launch order {[c[0] for c in calls]} differs from build {chosen['version']}'s kernels {order}")
    for (name, args), k in zip(torch.LAUNCHES, chosen['kernels']):
        dims_passed = list(args[len(k['buffers']):])
        if dims_passed != [d[n] for n in mod.DIM_NAMES]:
            raise SystemExit(f'{name}: dims passed {dims_passed}, expected {[d[n] for n in mod.DIM_NAMES]}')
    build = sys.modules['torch.utils.cpp_extension'].BUILDS
    print(json.dumps({
        'program': mod.PROGRAM, 'dims': d, 'version': chosen['version'], 'builds': [b['name'] for b in build],
        'launches': [{'launcher': n, 'args': kinds} for n, kinds in calls],
        'outputs': {k: {'shape': list(v.shape), 'dtype': repr(v.dtype)} for k, v in outs.items()},
    }))


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == 'extract':
        extract(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == 'fake':
        fake(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main()
