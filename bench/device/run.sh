#!/usr/bin/env bash
# bench/device/run.sh [--dry-run] [options]: Tessera on a CUDA GPU, in one command (bench/device/README.md).
#
# On the GPU machine (no Node there): unpacks the carried Node and node_modules (.device/, made by
# bench/device/pack.sh), generates the PyTorch modules (`tessera compile --target torch`), compiles
# their extensions in the background while the CUDA test suites run (test/cuda.test.ts with
# TESSERA_CUDA_REQUIRED=1, the op property suite and random programs with the CUDA backend added),
# then runs examples/torch/run_example.py and bench/device/bench_torch.py (Tessera vs PyTorch in one
# process, CUDA events), then bench/device/quant-gemv-cuda.ts (low-bit GEMV on the CUDA runtime: copy
# bandwidth, dense f32/f16, every format fused, VPTQ 2-bit, the int4 dequantize+matmul pair). Results:
# $OUT/device-results.json (and a copy in bench/results/device/<date>-<gpu>.json of the tree it ran
# in), logs in $OUT.
#
# --dry-run, on a machine without a GPU: packs (or reuses) .device, unpacks it into a copy of the
# working tree, starts vitest from that copy, generates every module and compiles its CUDA with nvcc
# for sm_90 (alone, and with the launchers against bench/device/torch-stub's headers), runs the
# generated Python on a fake torch, py_compiles the Python, builds every low-bit GEMV program of
# quant-gemv-cuda.ts and compiles its kernels with nvcc for sm_90 (--check-only), prints what the GPU
# run would run, exits 0.
#
# Options:
#   --dry-run            as above
#   --pack-dir DIR       where the packs are (default .device)
#   --pack-level N       xz preset when packing in a dry run (default 6)
#   --skip-tests         GPU run: no vitest suites
#   --skip-bench         GPU run: no example and no PyTorch benchmark
#   --skip-quant         GPU run: no low-bit GEMV step (quant-gemv-cuda.ts)
#   --quant-only         GPU run: only the low-bit GEMV step (no modules, tests, example or PyTorch benchmark)
#   --quant-args "ARGS"  extra arguments for quant-gemv-cuda.ts (e.g. "--big" for 8192x8192 too)
#   --quant-timeout S    GPU run: stop the low-bit GEMV step after S seconds (default 300)
#   --quick              GPU run: smaller benchmark sizes
#   --fuzz-count N       random programs on CUDA (default 40)
#   --vitest-timeout S   GPU run: stop the vitest suites after S seconds (default 300)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

DRY=0
PACK_DIR="$ROOT/.device"
PACK_LEVEL=6
SKIP_TESTS=0
SKIP_BENCH=0
SKIP_QUANT=0
SKIP_GEN=0
QUANT_ARGS=""
QUANT_TIMEOUT=300
QUICK=()
FUZZ=40
VITEST_TIMEOUT=300
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --pack-dir) PACK_DIR="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --pack-level) PACK_LEVEL="$2"; shift 2 ;;
    --skip-tests) SKIP_TESTS=1; shift ;;
    --skip-bench) SKIP_BENCH=1; shift ;;
    --skip-quant) SKIP_QUANT=1; shift ;;
    --quant-only) SKIP_TESTS=1; SKIP_BENCH=1; SKIP_GEN=1; shift ;;
    --quant-args) QUANT_ARGS="$2"; shift 2 ;;
    --quant-timeout) QUANT_TIMEOUT="$2"; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    --fuzz-count) FUZZ="$2"; shift 2 ;;
    --vitest-timeout) VITEST_TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[device +${SECONDS}s] $*"; }
# unpack FILE.tar.xz DIR: with xz, or with Python's lzma where the machine has no xz.
unpack() {
  mkdir -p "$2"
  if command -v xz >/dev/null 2>&1; then
    tar -xJf "$1" -C "$2"
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$1" "$2"
  fi
}
FAILED=()
step_failed() { FAILED+=("$1"); log "FAILED: $1"; }

# The steps that need the GPU, as the real run executes them (printed by the dry run).
BENCH_PROGRAMS=bench/device/programs.ts
# the f16 matmul under the SIMT schedule (compiled with --params mma=0), beside the tensor-core one
SIMT_PROGRAM=bench/device/programs-simt.ts
# the f16 matmul under the tuner's 128x128 tensor-core block, beside the default 64x64 one
BIG_PROGRAM=bench/device/programs-mma128.ts
BIG_PARAMS=mma=1,wm=2,wn=4,fm=4,fn=2,bk=32,db=1
# the f32 block again, compiled with launch chaining for a small decode step (one kernel of one workgroup)
CHAIN_PROGRAM=bench/device/programs-chain.ts
CHAIN_DIMS=T=1,D=128,H=344
EXAMPLE_PROGRAM=examples/torch/rmsnorm_silu.ts
gen_flags() {
  if [ "$1" = "$SIMT_PROGRAM" ]; then echo "--params mma=0"; fi
  if [ "$1" = "$BIG_PROGRAM" ]; then echo "--params $BIG_PARAMS"; fi
  if [ "$1" = "$CHAIN_PROGRAM" ]; then echo "--chain $CHAIN_DIMS"; fi
}
VITEST_FILES=(test/cuda.test.ts test/op-props.test.ts test/fuzz.test.ts)
gpu_plan() {
  cat <<EOF
  1. tar -xJf .device/node.tar.xz -C /tmp/tessera-node; tar -xJf .device/node_modules.tar.xz  (PATH=/tmp/tessera-node/bin:\$PATH)
  2. node bin/tessera.mjs compile $BENCH_PROGRAMS --target torch --out .device/gen   (and $EXAMPLE_PROGRAM; $SIMT_PROGRAM with --params mma=0; $BIG_PROGRAM with --params $BIG_PARAMS; $CHAIN_PROGRAM with --chain $CHAIN_DIMS)
  3. in the background: python3 bench/device/bench_torch.py --build <each module>   (load_inline, TORCH_EXTENSIONS_DIR=/tmp/tessera-torch-ext)
  4. TESSERA_CUDA_REQUIRED=1 TESSERA_SMOKE=1 TESSERA_FUZZ_COUNT=$FUZZ node node_modules/vitest/vitest.mjs run ${VITEST_FILES[*]}
  5. node bin/tessera.mjs devices; node bin/tessera.mjs run test/fixtures/cli-sample.ts --backend cuda
  6. python3 examples/torch/run_example.py --module .device/gen/rmsnorm_silu/rmsnorm_silu_torch.py --json \$OUT/example.json
  7. python3 bench/device/bench_torch.py --gen .device/gen --out \$OUT/device-results.json ${QUICK[*]}
     (silu_chain vs eager torch, softmax vs torch.softmax, matmul f32, f16 (tensor cores and SIMT) and bf16 vs torch.matmul,
      the transformer block f32 and f16 at T 2048 and T 1 vs eager torch, and at T 1 D 128 H 344 in two kernels and chained)
  8. node --import tsx $QUANT_SCRIPT --out \$OUT/quant-gemv.json${QUANT_ARGS:+ $QUANT_ARGS}   (timeout ${QUANT_TIMEOUT}s)
     (copy bandwidth, launch floor; GEMV f32, f16, int8, int4, nf4, fp8, mxfp4, ternary, VPTQ 2-bit fused, int4 dequant+matmul;
      M=1 and 16, each under the script's VARIANTS schedules; merged into device-results.json as quant_gemv)
  9. cp \$OUT/device-results.json bench/results/device/<date>-<gpu>.json
EOF
}

# The low-bit GEMV step (bench/device/README.md).
QUANT_SCRIPT=bench/device/quant-gemv-cuda.ts
# Python files that must at least compile.
PY_FILES=(examples/torch/run_example.py bench/device/bench_torch.py bench/device/torch_check.py)

# =================================================================================================
if [ "$DRY" = 1 ]; then
  log "dry run in $ROOT (no GPU needed)"
  command -v nvcc >/dev/null || { echo "run.sh --dry-run: nvcc is needed" >&2; exit 1; }
  command -v python3 >/dev/null || { echo "run.sh --dry-run: python3 is needed" >&2; exit 1; }
  SIM="$(mktemp -d "${TMPDIR:-/tmp}/tessera-device-dry.XXXXXX")"
  trap 'rm -rf "$SIM"' EXIT
  # No __pycache__ folders in the working tree.
  export PYTHONDONTWRITEBYTECODE=1 PYTHONPYCACHEPREFIX="$SIM/pycache"

  log "1. pack: bash bench/device/pack.sh --dir $PACK_DIR --level $PACK_LEVEL"
  bash bench/device/pack.sh --dir "$PACK_DIR" --level "$PACK_LEVEL" || { echo "run.sh: packing failed" >&2; exit 1; }

  log "2. unpack into a copy of the working tree, as the GPU machine receives it (tracked + untracked files, build/)"
  mkdir -p "$SIM/repo" "$SIM/node"
  git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$SIM/repo" -xf -
  [ -d build ] && cp -r build "$SIM/repo/build"
  unpack "$PACK_DIR/node.tar.xz" "$SIM/node"
  unpack "$PACK_DIR/node_modules.tar.xz" "$SIM/repo"
  export PATH="$SIM/node/bin:$PATH"
  log "   node $("$SIM/node/bin/node" --version) from node.tar.xz; node_modules $(du -sm "$SIM/repo/node_modules" | cut -f1) MiB unpacked"
  for p in vitest tsx chevrotain fast-check; do
    [ -f "$SIM/repo/node_modules/$p/package.json" ] || { echo "run.sh: node_modules.tar.xz lacks $p" >&2; exit 1; }
  done
  [ ! -e "$SIM/repo/node_modules/webgpu" ] || { echo "run.sh: node_modules.tar.xz should not carry webgpu" >&2; exit 1; }

  log "3. vitest starts from the unpacked tree (one test of test/cuda.test.ts: the addon and the suite load)"
  (cd "$SIM/repo" && NO_COLOR=1 TESSERA_CACHE_DIR="$SIM/cache" timeout 120 node node_modules/vitest/vitest.mjs run test/cuda.test.ts -t 'rejects bad options' > "$SIM/vitest.log" 2>&1) \
    || { cat "$SIM/vitest.log"; echo "run.sh: vitest did not run from the unpacked tree" >&2; exit 1; }
  grep -E 'Tests +[0-9]' "$SIM/vitest.log" | sed 's/^/   /'

  log "4. generate the modules with the unpacked node: --target cuda,torch --archs sm_90 (nvcc builds the .fatbin and .ptx)"
  GEN="$SIM/gen"
  for prog in "$BENCH_PROGRAMS" "$SIMT_PROGRAM" "$BIG_PROGRAM" "$CHAIN_PROGRAM" "$EXAMPLE_PROGRAM"; do
    # shellcheck disable=SC2046
    (cd "$SIM/repo" && TESSERA_CACHE_DIR="$ROOT/.tessera-cache" node bin/tessera.mjs compile "$prog" --target cuda,torch --archs sm_90 $(gen_flags "$prog") --out "$GEN") > "$SIM/gen.log" 2>&1 \
      || { cat "$SIM/gen.log"; echo "run.sh: tessera compile $prog failed" >&2; exit 1; }
    grep -v '^  wrote' "$SIM/gen.log" | sed 's/^/   /'
  done
  MODULES=("$GEN"/*/*_torch.py)
  [ "${#MODULES[@]}" -ge 6 ] || { echo "run.sh: expected 6 modules, got ${#MODULES[@]}" >&2; exit 1; }
  for m in "${MODULES[@]}"; do
    p="$(basename "$m" _torch.py)"
    [ -s "$GEN/$p/$p.fatbin" ] || { echo "run.sh: no $p.fatbin" >&2; exit 1; }
  done

  log "5. the modules' CUDA for sm_90 with nvcc: kernels + launchers (against the torch stub headers, one unit), then each on a fake torch"
  STUB="$ROOT/bench/device/torch-stub/include"
  TORCH_NVCC=(-std=c++17 -arch=sm_90 -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr -O3 -ftz=false -prec-div=true -prec-sqrt=true)
  CHK="$SIM/check"
  mkdir -p "$CHK"
  : > "$CHK/all.torch.cu"
  : > "$CHK/all.decl.cpp"
  for m in "${MODULES[@]}"; do
    p="$(basename "$m" _torch.py)"
    python3 bench/device/torch_check.py extract "$m" "$CHK/$p" > "$CHK/$p.json" || { echo "run.sh: extracting $m failed" >&2; exit 1; }
    cmp -s "$CHK/$p/$p.cu" "$GEN/$p/$p.cu" || { echo "run.sh: $p: CUDA_KERNELS differs from $p.cu" >&2; exit 1; }
    cat "$CHK/$p/$p.torch.cu" >> "$CHK/all.torch.cu"
    cat "$CHK/$p/$p.decl.cpp" >> "$CHK/all.decl.cpp"
  done
  nvcc -c "${TORCH_NVCC[@]}" -I"$STUB" -o "$CHK/all.torch.o" "$CHK/all.torch.cu" \
    || { echo "run.sh: the kernels + launchers did not compile (nvcc, sm_90, stub headers)" >&2; exit 1; }
  ${CXX:-c++} -std=c++17 -fsyntax-only -Wall -I"$STUB" "$CHK/all.decl.cpp" || { echo "run.sh: the launcher declarations did not compile" >&2; exit 1; }
  echo "   nvcc -c -arch=sm_90: $(grep -c '^void launch_' "$CHK/all.decl.cpp") launchers and their kernels from ${#MODULES[@]} modules compiled"
  for m in "${MODULES[@]}"; do
    p="$(basename "$m" _torch.py)"
    python3 bench/device/torch_check.py fake "$m" > "$CHK/$p.fake.json" 2>&1 || { cat "$CHK/$p.fake.json"; echo "run.sh: $p failed on the fake torch" >&2; exit 1; }
    echo "   $p on a fake torch: $(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(", ".join(l["launcher"] for l in j["launches"]), "->", ", ".join(k + " " + v["dtype"] + str(v["shape"]) for k, v in j["outputs"].items()))' "$CHK/$p.fake.json")"
  done

  log "6. python3 -m py_compile: ${PY_FILES[*]} and the ${#MODULES[@]} modules"
  python3 -m py_compile "${PY_FILES[@]}" "${MODULES[@]}" || { echo "run.sh: py_compile failed" >&2; exit 1; }
  bash -n bench/device/run.sh bench/device/pack.sh

  JOBS="$(nproc 2>/dev/null || echo 2)"
  [ "$JOBS" -gt 8 ] && JOBS=8
  log "7. low-bit GEMV, host only: $QUANT_SCRIPT --check-only (every program built, its kernels compiled by nvcc for sm_90 in $JOBS units)"
  (cd "$SIM/repo" && TESSERA_CACHE_DIR="$ROOT/.tessera-cache" timeout 300 node --import tsx "$QUANT_SCRIPT" --check-only --arch sm_90 --units "$JOBS" --jobs "$JOBS" $QUANT_ARGS --out "$SIM/quant-check.json") > "$SIM/quant.log" 2>&1 \
    || { cat "$SIM/quant.log"; echo "run.sh: $QUANT_SCRIPT --check-only failed" >&2; exit 1; }
  grep -E '^\[quant-gemv .*(GEMV programs|compileCuda|check-only)' "$SIM/quant.log" | sed 's/^\[quant-gemv +[0-9.]*s\] /   /'

  log "8. on the GPU this would run (bench/device/README.md: running it on the GPU machine):"
  gpu_plan
  log "dry run OK in ${SECONDS} s"
  exit 0
fi

# =================================================================================================
# The real run, on the GPU machine.
OUT="${OUT:-$ROOT/.device/out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
TEE_PID=$!
# Let tee write the last lines before the command returns.
trap 'exec >&- 2>&-; wait "$TEE_PID" 2>/dev/null' EXIT
export PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-/tmp/tessera-torch-ext}"
GEN="$ROOT/.device/gen"
log "GPU run in $ROOT, results in $OUT"
nvidia-smi -L 2>&1 | sed 's/^/  /' || true
nvcc --version 2>&1 | tail -n 2 | sed 's/^/  /' || true
python3 -c 'import torch; print("  torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)' 2>&1 || true

log "1. Node from $PACK_DIR"
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  mkdir -p /tmp/tessera-node
  unpack "$PACK_DIR/node.tar.xz" /tmp/tessera-node || { echo "run.sh: cannot unpack $PACK_DIR/node.tar.xz (carry .device)" >&2; exit 1; }
  export PATH="/tmp/tessera-node/bin:$PATH"
fi
if [ ! -f node_modules/vitest/package.json ]; then
  unpack "$PACK_DIR/node_modules.tar.xz" "$ROOT" || { echo "run.sh: cannot unpack $PACK_DIR/node_modules.tar.xz" >&2; exit 1; }
fi
log "   node $(node --version); addon $( [ -f build/Release/tessera_cuda.node ] && echo present || echo 'MISSING (carry build)')"

MODULES=()
if [ "$SKIP_GEN" = 0 ]; then
  log "2. generate the PyTorch modules"
  rm -rf "$GEN"
  for prog in "$BENCH_PROGRAMS" "$SIMT_PROGRAM" "$BIG_PROGRAM" "$CHAIN_PROGRAM" "$EXAMPLE_PROGRAM"; do
    # shellcheck disable=SC2046
    if node bin/tessera.mjs compile "$prog" --target torch $(gen_flags "$prog") --out "$GEN" > /tmp/tessera-gen.log 2>&1; then
      grep -v '^  wrote' /tmp/tessera-gen.log
    else
      cat /tmp/tessera-gen.log
      step_failed "tessera compile $prog"
    fi
  done
  MODULES=("$GEN"/*/*_torch.py)
fi

BUILD_PIDS=()
if [ "$SKIP_BENCH" = 0 ]; then
  log "3. compiling ${#MODULES[@]} extensions in the background (load_inline)"
  BUILD_LOGS=/tmp/tessera-build-logs
  rm -rf "$BUILD_LOGS" && mkdir -p "$BUILD_LOGS"
  for m in "${MODULES[@]}"; do
    MAX_JOBS=4 python3 bench/device/bench_torch.py --build "$m" > "$BUILD_LOGS/$(basename "$m" .py).log" 2>&1 &
    BUILD_PIDS+=($!)
  done
fi

TESTS_JSON="$OUT/tests.json"
vitest_rc=skipped
cli_rc=skipped
if [ "$SKIP_TESTS" = 0 ]; then
  log "4. vitest on CUDA: ${VITEST_FILES[*]} (TESSERA_FUZZ_COUNT=$FUZZ)"
  NO_COLOR=1 TESSERA_CUDA_REQUIRED=1 TESSERA_SMOKE=1 TESSERA_FUZZ_COUNT="$FUZZ" timeout "$VITEST_TIMEOUT" \
    node node_modules/vitest/vitest.mjs run "${VITEST_FILES[@]}" --maxWorkers=3 > "$OUT/vitest.log" 2>&1
  vitest_rc=$?
  grep -E 'CUDA|\[fuzz\]|✓|✗|×|FAIL|Test Files|Tests +[0-9]' "$OUT/vitest.log" | tail -n 40
  [ "$vitest_rc" = 0 ] || step_failed "vitest (exit $vitest_rc; see vitest.log)"

  log "5. the CLI on CUDA"
  node bin/tessera.mjs devices
  node bin/tessera.mjs run test/fixtures/cli-sample.ts --backend cuda
  cli_rc=$?
  [ "$cli_rc" = 0 ] || step_failed "tessera run --backend cuda (exit $cli_rc)"
fi
python3 - "$TESTS_JSON" "$vitest_rc" "$cli_rc" "$OUT/vitest.log" <<'EOF'
import json, re, sys
path, vitest_rc, cli_rc, vlog = sys.argv[1:5]
summary = []
try:
    text = open(vlog, encoding='utf-8', errors='replace').read()
    summary = [re.sub(r'\x1b\[[0-9;]*m', '', l).strip() for l in text.splitlines() if re.search(r'Test Files|Tests +\d|\[fuzz\]|CUDA softmax', l)]
except OSError:
    pass
code = lambda v: int(v) if v.lstrip('-').isdigit() else v
json.dump({'vitest_exit': code(vitest_rc), 'cli_run_cuda_exit': code(cli_rc), 'vitest_summary': summary}, open(path, 'w'), indent=2)
EOF

if [ "$SKIP_BENCH" = 0 ]; then
  log "   waiting for the extension builds"
  for i in "${!BUILD_PIDS[@]}"; do
    if ! wait "${BUILD_PIDS[$i]}"; then
      step_failed "building $(basename "${MODULES[$i]}")"
      tail -n 30 "$BUILD_LOGS/$(basename "${MODULES[$i]}" .py).log"
    fi
  done
  cat "$BUILD_LOGS"/*.log > "$OUT/build.log" 2>/dev/null
  grep -h '^built' "$OUT/build.log" | sed 's/^/   /'

  log "6. examples/torch/run_example.py"
  python3 examples/torch/run_example.py --module "$GEN/rmsnorm_silu/rmsnorm_silu_torch.py" --json "$OUT/example.json" || step_failed "run_example.py"

  log "7. bench_torch.py: Tessera vs PyTorch"
  python3 bench/device/bench_torch.py --gen "$GEN" --out "$OUT/device-results.json" "${QUICK[@]}" \
    --merge "example=$OUT/example.json" --merge "tests=$TESTS_JSON" || step_failed "bench_torch.py"
fi

if [ "$SKIP_QUANT" = 0 ]; then
  # $QUANT_ARGS is split into words on purpose (e.g. "--big --rounds 7").
  log "8. low-bit GEMV on CUDA: $QUANT_SCRIPT${QUANT_ARGS:+ $QUANT_ARGS} (timeout ${QUANT_TIMEOUT}s)"
  rm -f "$OUT/quant-gemv.json"
  # shellcheck disable=SC2086
  timeout "$QUANT_TIMEOUT" node --import tsx "$QUANT_SCRIPT" --out "$OUT/quant-gemv.json" $QUANT_ARGS 2>&1 | tee "$OUT/quant-gemv.log"
  quant_rc=${PIPESTATUS[0]}
  [ "$quant_rc" = 0 ] || step_failed "$QUANT_SCRIPT (exit $quant_rc; see quant-gemv.log)"
  if [ -s "$OUT/quant-gemv.json" ]; then
    # merged into device-results.json (made here when the PyTorch benchmark did not run)
    python3 - "$OUT/device-results.json" "$OUT/quant-gemv.json" "$TESTS_JSON" <<'EOF' || step_failed "merging quant-gemv.json"
import datetime, json, os, subprocess, sys
path, quant, tests = sys.argv[1:4]
try:
    res = json.load(open(path))
except (OSError, ValueError):
    try:
        gpu = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'], capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        gpu = 'gpu'
    res = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(), 'gpu': gpu}
    if os.path.exists(tests):
        res['tests'] = json.load(open(tests))
res['quant_gemv'] = json.load(open(quant))
json.dump(res, open(path, 'w'), indent=2)
EOF
  fi
fi

if [ -s "$OUT/device-results.json" ]; then
  gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-')"
  dest="bench/results/device/$(date -u +%Y-%m-%d)-${gpu:-gpu}.json"
  mkdir -p bench/results/device && cp "$OUT/device-results.json" "$dest"
  echo "$dest" > "$OUT/results-name.txt"
  log "   results: \$OUT/device-results.json (copy it to $dest: bench/device/collect.sh does)"
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
  log "done with failures: ${FAILED[*]}"
  exit 1
fi
log "done: everything passed in ${SECONDS} s"
