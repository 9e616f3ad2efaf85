#!/usr/bin/env python3
"""Tessera CUDA kernels vs PyTorch, in one Python process on one stream (bench/device/run.sh runs it).

    python3 bench/device/bench_torch.py --gen GEN --out results.json [--quick]
    python3 bench/device/bench_torch.py --build GEN/p/p_torch.py ...   # compile the extensions only

GEN holds the modules `tessera compile bench/device/programs.ts --target torch --out GEN` writes.
Each case checks Tessera's output against a float64 (or float32, for f16) reference next to
PyTorch's own, then times Tessera's launches into preallocated buffers and the PyTorch expression
with CUDA events: a few warm-ups, then 7 runs of as many calls as fill about 20 ms, the median of the
per-call means. ratio = tessera_ms / torch_ms (below 1: Tessera is faster).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_module(path: str):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# CUDA-event timing exactly as the PyTorch example does it (one definition, so the two agree).
time_ms = load_module(os.path.join(ROOT, 'examples', 'torch', 'run_example.py')).time_ms


def cases(torch, quick: bool):
    """(name, module (default: the name), dims, make inputs, torch expression, reference, tolerance, work)."""
    F = torch.nn.functional
    big = 4 if quick else 1

    def ew_inputs(m, n, dev):
        return {'x': torch.randn(m, n, device=dev), 'a': torch.randn(n, device=dev), 'b': torch.randn(n, device=dev)}

    def mm_inputs(dtype):
        def make(m, n, k, dev):
            return {'a': (torch.rand(m, k, device=dev) * 2 - 1).to(dtype), 'b': (torch.rand(k, n, device=dev) * 2 - 1).to(dtype)}
        return make

    def mm_case(name, what, dtype, tol):
        return {
            'name': name, 'what': what,
            'check_dims': (67, 45, 131), 'dims': (4096 // big, 4096 // big, 4096 // big),
            'inputs': mm_inputs(dtype),
            'torch': lambda i: torch.matmul(i['a'], i['b']),
            'tol': tol,
            'bytes': None, 'flops': lambda m, n, k: 2 * m * n * k,
        }

    def block_inputs(dtype):
        def make(t, d, h, dev):
            return {
                'x': torch.randn(t, d, device=dev).to(dtype),
                'g': (torch.rand(d, device=dev) + 0.5).to(dtype),
                'w1': (torch.randn(d, h, device=dev) / d ** 0.5).to(dtype),
                'w2': (torch.randn(h, d, device=dev) / h ** 0.5).to(dtype),
            }
        return make

    def block_torch(i):
        # the same ops in eager PyTorch: pow, mean, add, rsqrt, mul, mul, matmul, silu, matmul, add
        x = i['x']
        n = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * i['g']
        return x + F.silu(n @ i['w1']) @ i['w2']

    def block_case(name, module, what, dtype, t, tol):
        # Llama-7B's FFN width (D 4096, H 11008); a prefill chunk of 2048 tokens or one decode token
        return {
            'name': name, 'module': module, 'what': what,
            'check_dims': (37, 96, 200), 'dims': (max(1, t // big), 4096 // big, 11008 // big),
            'inputs': block_inputs(dtype),
            'torch': block_torch,
            'tol': tol,
            # one decode token is bound by reading the weights: GB/s there, TFLOP/s for the chunk
            'bytes': (lambda t, d, h: (2 if dtype == torch.float16 else 4) * (2 * d * h + 2 * t * d + d)) if t == 1 else None,
            'flops': lambda t, d, h: 4 * t * d * h,
        }

    def small_decode_case(name, module, what):
        # bytes1M's FFN width at one token: launches cost about what the arithmetic does
        return {
            'name': name, 'module': module, 'what': what,
            'check_dims': (1, 96, 200), 'dims': (1, 128, 344),
            'inputs': block_inputs(torch.float32),
            'torch': block_torch,
            'tol': (2e-4, 2e-4),
            'bytes': lambda t, d, h: 4 * (2 * d * h + 2 * t * d + d),
            'flops': lambda t, d, h: 4 * t * d * h,
        }

    return [
        {
            'name': 'silu_chain', 'what': 'silu(x * a + b), f32, one fused kernel vs eager torch',
            'check_dims': (37, 1000), 'dims': (16384 // big, 4096),
            'inputs': lambda m, n, dev: ew_inputs(m, n, dev),
            'torch': lambda i: F.silu(i['x'] * i['a'] + i['b']),
            'tol': (1e-5, 1e-6),
            'bytes': lambda m, n: 4 * (2 * m * n + 2 * n), 'flops': None,
        },
        {
            'name': 'softmax', 'what': 'softmax over the last axis, f32, vs torch.softmax',
            'check_dims': (37, 1000), 'dims': (16384 // big, 4096),
            'inputs': lambda m, n, dev: {'x': torch.randn(m, n, device=dev) * 4},
            'torch': lambda i: torch.softmax(i['x'], -1),
            'tol': (1e-4, 1e-6),
            'bytes': lambda m, n: 4 * 2 * m * n, 'flops': None,
        },
        mm_case('matmul', 'a @ b, f32 (no TF32), vs torch.matmul', torch.float32, (1e-4, 1e-3)),
        mm_case('matmul_f16', 'a @ b, f16 in and out (f32 accumulation), tensor cores (WMMA), vs torch.matmul', torch.float16, (1e-2, 1e-2)),
        mm_case('matmul_bf16', 'a @ b, bf16 in and out (f32 accumulation), tensor cores (WMMA, sm_80+), vs torch.matmul', torch.bfloat16, (3e-2, 3e-2)),
        mm_case('matmul_f16_128', 'a @ b, f16, tensor cores with the 128x128 block (eight warps, double-buffered; --params mma=1,wm=2,wn=4,fm=4,fn=2,bk=32,db=1), vs torch.matmul', torch.float16, (1e-2, 1e-2)),
        mm_case('matmul_f16_simt', 'a @ b, f16, the SIMT schedule (--params mma=0), vs torch.matmul', torch.float16, (1e-2, 1e-2)),
        block_case('block', 'block', 'x + silu(rmsnorm(x, g) @ w1) @ w2, f32, T 2048: three fused kernels vs eager torch', torch.float32, 2048, (2e-4, 2e-4)),
        block_case('block_decode', 'block', 'the same block at T 1 (one decode token), f32, vs eager torch', torch.float32, 1, (2e-4, 2e-4)),
        block_case('block_f16', 'block_f16', 'the block in f16 (matmuls on tensor cores), T 2048, vs eager torch', torch.float16, 2048, (3e-2, 3e-2)),
        block_case('block_f16_decode', 'block_f16', 'the f16 block at T 1, vs eager torch', torch.float16, 1, (3e-2, 3e-2)),
        small_decode_case('block_small_decode', 'block', 'the f32 block at T 1 D 128 H 344 (a small model), two kernels, vs eager torch'),
        small_decode_case('block_small_decode_chained', 'block_chain', 'the same step chained (--chain T=1,D=128,H=344): one kernel of one workgroup, vs eager torch'),
    ]


def run_case(torch, mod, case, dev):
    result = {'name': case['name'], 'what': case['what']}
    checks = []
    ok = True
    for dims in (case['check_dims'], case['dims']):
        inputs = case['inputs'](*dims, dev)
        got = next(iter(getattr(mod, mod.__all__[0])(**inputs).values()))
        want = case['torch'](inputs)
        # Exact-ish reference: float64 for f32 programs, float32 math for f16 ones.
        hi = {k: v.double() if v.dtype == torch.float32 else v.float() for k, v in inputs.items()}
        exact = case['torch'](hi).double()
        rtol, atol = case['tol']
        err = (got.double() - exact).abs().max().item()
        torch_err = (want.double() - exact).abs().max().item()
        close = bool(torch.allclose(got.double(), exact, rtol=rtol, atol=atol))
        checks.append({'dims': list(dims), 'allclose_vs_reference': close, 'rtol': rtol, 'atol': atol, 'tessera_max_abs_err': err, 'torch_max_abs_err': torch_err})
        ok = ok and close
    result['checks'] = checks
    result['ok'] = ok
    d = mod.bind_dims(inputs)
    bufs = mod.allocate(inputs, d)
    result['dims'] = d
    # the build the module dispatches to at these dims (one token, aligned or general) and its kernels
    build = mod.select_build(d)
    result['build'] = build['version']
    result['kernels'] = [k['name'] for k in build['kernels']]
    result['tessera_ms'] = time_ms(torch, lambda: mod.launch(bufs, d))
    result['torch_ms'] = time_ms(torch, lambda: case['torch'](inputs))
    result['ratio'] = result['tessera_ms'] / result['torch_ms']
    dims = case['dims']
    if case['bytes']:
        b = case['bytes'](*dims)
        result['bytes'] = b
        result['tessera_GBps'] = b / result['tessera_ms'] / 1e6
        result['torch_GBps'] = b / result['torch_ms'] / 1e6
    if case['flops']:
        f = case['flops'](*dims)
        result['flops'] = f
        result['tessera_TFLOPs'] = f / result['tessera_ms'] / 1e9
        result['torch_TFLOPs'] = f / result['torch_ms'] / 1e9
    return result


def git_commit() -> str | None:
    try:
        return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except Exception:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--gen', help='folder of generated modules (GEN/<program>/<program>_torch.py)')
    ap.add_argument('--out', help='write the results JSON here')
    ap.add_argument('--quick', action='store_true', help='smaller sizes (a quarter per side)')
    ap.add_argument('--merge', action='append', default=[], metavar='KEY=FILE', help='add a JSON file under KEY (the example, test status)')
    ap.add_argument('--build', nargs='+', metavar='MODULE', help='only compile these modules\' extensions')
    args = ap.parse_args()

    import torch

    if args.build:
        for path in args.build:
            t0 = time.time()
            load_module(path).build(verbose=False)
            print(f'built {os.path.basename(path)} in {time.time() - t0:.1f} s', flush=True)
        return 0
    if not args.gen:
        ap.error('--gen is required')
    if not torch.cuda.is_available():
        print('bench_torch.py: no CUDA device visible to PyTorch', file=sys.stderr)
        return 1
    dev = torch.device('cuda')
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(dev)
    report = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'gpu': torch.cuda.get_device_name(dev),
        'sms': props.multi_processor_count,
        'memory_GiB': round(props.total_memory / 2**30, 1),
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'python': platform.python_version(),
        'float32_matmul_precision': torch.get_float32_matmul_precision(),
        'commit': git_commit(),
        'timing': 'CUDA events on the current stream; per case the median over 7 runs of the mean per call; ratio = tessera_ms / torch_ms',
        'results': [],
    }
    failed = 0
    for case in cases(torch, args.quick):
        module = case.get('module', case['name'])
        path = os.path.join(args.gen, module, f"{module}_torch.py")
        try:
            r = run_case(torch, load_module(path), case, dev)
        except Exception as e:  # one broken case must not lose the others
            r = {'name': case['name'], 'ok': False, 'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()}
        report['results'].append(r)
        if not r.get('ok'):
            failed += 1
        if 'error' in r:
            print(f"{case['name']}: ERROR {r['error']}", flush=True)
        else:
            rate = f"{r['tessera_GBps']:.0f} vs {r['torch_GBps']:.0f} GB/s" if 'tessera_GBps' in r else f"{r['tessera_TFLOPs']:.2f} vs {r['torch_TFLOPs']:.2f} TFLOP/s"
            print(f"{case['name']} {r['dims']}: tessera {r['tessera_ms']:.4f} ms, torch {r['torch_ms']:.4f} ms, ratio {r['ratio']:.2f} ({rate}); "
                  f"{'MATCH' if r['ok'] else 'MISMATCH'} (max |err| tessera {r['checks'][-1]['tessera_max_abs_err']:.3g}, torch {r['checks'][-1]['torch_max_abs_err']:.3g})", flush=True)
    for item in args.merge:
        key, _, file = item.partition('=')
        try:
            with open(file) as f:
                report[key] = json.load(f)
        except Exception as e:
            report[key] = {'error': f'could not read {file}: {e}'}
    report['ok'] = failed == 0
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
