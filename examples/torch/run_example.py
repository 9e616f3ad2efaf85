#!/usr/bin/env python3
"""Tessera kernels inside PyTorch: silu(rmsnorm(x, g) * a + b) from examples/torch/rmsnorm_silu.ts.

    python3 examples/torch/run_example.py                  # generates the module with node, then runs
    python3 examples/torch/run_example.py --module gen/rmsnorm_silu/rmsnorm_silu_torch.py

Needs a CUDA GPU, PyTorch with CUDA and nvcc (the module compiles itself with load_inline on first
use). It makes random inputs with torch, calls the Tessera kernel, compares it with the same math
in plain PyTorch (torch.allclose), and times both on the same stream with CUDA events. Exit code 1
when the results differ.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = 'rmsnorm_silu'
EPS = 1e-5  # as examples/torch/rmsnorm_silu.ts


def generate(out_dir: str) -> str:
    """Runs `tessera compile --target torch` on the example program; returns the module's path."""
    node = shutil.which('node')
    if node is None:
        sys.exit('run_example.py: node is not on PATH; pass --module with a module generated elsewhere')
    src = os.path.join(ROOT, 'examples', 'torch', 'rmsnorm_silu.ts')
    subprocess.run([node, os.path.join(ROOT, 'bin', 'tessera.mjs'), 'compile', src, '--target', 'torch', '--out', out_dir], check=True, cwd=ROOT)
    return os.path.join(out_dir, PROGRAM, f'{PROGRAM}_torch.py')


def load_module(path: str):
    spec = importlib.util.spec_from_file_location(f'{PROGRAM}_torch', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def time_ms(torch, fn, target_ms: float = 20.0, reps: int = 7) -> float:
    """Median over `reps` of the mean time per call of a run of calls, measured with CUDA events."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    iters = max(1, min(1000, int(target_ms / max(start.elapsed_time(end), 1e-3))))
    times = []
    for _ in range(reps):
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / iters)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--module', help=f'a generated {PROGRAM}_torch.py (default: generate one with node)')
    ap.add_argument('--rows', type=int, default=8192, help='M (default 8192)')
    ap.add_argument('--cols', type=int, default=4096, help='N (default 4096)')
    ap.add_argument('--json', help='also write the summary as JSON here')
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        print('run_example.py: no CUDA device visible to PyTorch', file=sys.stderr)
        return 1
    tmp = None
    path = args.module
    if path is None:
        tmp = tempfile.mkdtemp(prefix='tessera-torch-example-')
        path = generate(tmp)
    mod = load_module(path)
    mod.build()

    def reference(x, g, a, b):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * g
        return F.silu(y * a + b)

    torch.manual_seed(0)
    dev = torch.device('cuda')
    summary = {'program': PROGRAM, 'module': os.path.relpath(path, ROOT) if tmp is None else f'{PROGRAM}_torch.py (generated)', 'checks': []}
    ok = True
    # A shape that fills no tile evenly, then the timed one.
    for m, n in [(37, 1000), (args.rows, args.cols)]:
        x = torch.randn(m, n, device=dev)
        g = 1 + 0.1 * torch.randn(n, device=dev)
        a = torch.randn(n, device=dev)
        b = torch.randn(n, device=dev)
        got = mod.rmsnorm_silu(x, g, a, b)['out']
        want = reference(x, g, a, b)
        exact = reference(x.double(), g.double(), a.double(), b.double())
        close = torch.allclose(got, want, rtol=1e-4, atol=1e-5)
        err = (got.double() - exact).abs().max().item()
        torch_err = (want.double() - exact).abs().max().item()
        summary['checks'].append({'M': m, 'N': n, 'allclose': close, 'max_abs_err': err, 'torch_max_abs_err': torch_err})
        print(f'{PROGRAM} [{m}, {n}]: torch.allclose(tessera, torch) = {close}; max |err| vs float64: tessera {err:.3g}, torch {torch_err:.3g}')
        ok = ok and close

    # Timing: Tessera's one fused kernel into preallocated buffers vs eager PyTorch (several kernels).
    inputs = {'x': x, 'g': g, 'a': a, 'b': b}
    d = mod.bind_dims(inputs)
    bufs = mod.allocate(inputs, d)
    t_tessera = time_ms(torch, lambda: mod.launch(bufs, d))
    t_torch = time_ms(torch, lambda: reference(x, g, a, b))
    gbytes = (2 * args.rows * args.cols + 3 * args.cols) * 4 / 1e9
    summary.update({
        'M': args.rows, 'N': args.cols, 'tessera_ms': t_tessera, 'torch_eager_ms': t_torch,
        'speedup_vs_eager': t_torch / t_tessera, 'tessera_GBps': gbytes / (t_tessera / 1e3), 'ok': ok,
        'device': torch.cuda.get_device_name(), 'torch': torch.__version__,
    })
    print(f'{PROGRAM} [{args.rows}, {args.cols}] f32: tessera {t_tessera:.4f} ms ({summary["tessera_GBps"]:.0f} GB/s), '
          f'eager torch {t_torch:.4f} ms: {t_torch / t_tessera:.2f}x (median of 7, CUDA events, same stream)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=2)
    print(json.dumps(summary))
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        print('run_example.py: Tessera and PyTorch results differ', file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
