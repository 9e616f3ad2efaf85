"""Fake load_inline (see torch/__init__.py): records the build and checks every launcher call."""
import re

import torch

BUILDS = []


class _Extension:
    def __init__(self, name, prototypes):
        self._name = name
        self._prototypes = prototypes

    def __getattr__(self, fn):
        if fn.startswith('_') or fn not in self._prototypes:
            raise AttributeError(f'extension {self._name} has no function {fn}')
        kinds = self._prototypes[fn]

        def call(*args):
            if len(args) != len(kinds):
                raise TypeError(f'{fn}() takes {len(kinds)} arguments ({len(args)} given)')
            for i, (a, k) in enumerate(zip(args, kinds)):
                if k == 'tensor' and not isinstance(a, torch.Tensor):
                    raise TypeError(f'{fn}(): argument {i} must be a tensor, got {type(a).__name__}')
                if k == 'int' and (not isinstance(a, int) or isinstance(a, bool)):
                    raise TypeError(f'{fn}(): argument {i} must be an int, got {type(a).__name__}')
            torch.LAUNCHES.append((fn, args))

        return call


def _prototypes(cpp_sources):
    out = {}
    for m in re.finditer(r'void\s+(\w+)\s*\(([^)]*)\)\s*;', '\n'.join(cpp_sources)):
        kinds = []
        for p in [p.strip() for p in m.group(2).split(',') if p.strip()]:
            if p.startswith('const at::Tensor&'):
                kinds.append('tensor')
            elif p.startswith('int64_t'):
                kinds.append('int')
            else:
                raise ValueError(f'fake load_inline: unexpected parameter {p!r} of {m.group(1)}')
        out[m.group(1)] = kinds
    return out


def load_inline(name, cpp_sources, cuda_sources=None, functions=None, extra_cflags=None, extra_cuda_cflags=None, verbose=False, **kwargs):
    if isinstance(cpp_sources, str):
        cpp_sources = [cpp_sources]
    protos = _prototypes(cpp_sources)
    for f in functions or []:
        if f not in protos:
            raise ValueError(f'fake load_inline: {f} is not declared in cpp_sources')
    BUILDS.append({'name': name, 'functions': list(functions or []), 'cuda_sources': list(cuda_sources or []), 'extra_cuda_cflags': list(extra_cuda_cflags or [])})
    return _Extension(name, protos)
