#!/usr/bin/env bash
# `npm test`: type-check, then the whole vitest suite on lavapipe (shader-f16, subgroups), then the
# WebGPU smoke suite on SwiftShader (no shader-f16: the f16-as-f32 storage path), then the CUDA
# suites on the CPU emulator, then every kernel launched, printed as CUDA and compiled by nvcc.
#
# WebGPU tests fail instead of skipping (TESSERA_WEBGPU_REQUIRED=1) when CI=true or the driver's ICD
# file exists. The smoke pass runs test files whose path contains one of SMOKE_FILTERS with
# TESSERA_SMOKE=1 (tests may drop expensive cases); name a file test/webgpu-smoke-*.test.ts to add it.
set -euo pipefail
cd "$(dirname "$0")/.."

LVP_ICD="${TESSERA_LAVAPIPE_ICD:-/usr/share/vulkan/icd.d/lvp_icd.json}"
SWS_ICD="${TESSERA_SWIFTSHADER_ICD:-/usr/lib/chromium/vk_swiftshader_icd.json}"
SMOKE_FILTERS=(test/chain test/wgsl-runtime test/webgpu-smoke test/op-props test/fuzz test/errors test/tune test/quant- test/stage test/matmul-mma test/row-unroll test/bf16 test/narrow-launch test/matmul-sg)
IN_CI=0
if [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then IN_CI=1; fi
if [ "$IN_CI" = 1 ]; then export TESSERA_BROWSER_REQUIRED=1; fi

missing_icd() {
  local name="$1" icd="$2" how="$3"
  {
    echo
    echo "######################################################################"
    echo "## $name Vulkan driver not found: $icd"
    echo "## WebGPU tests need it. Install it with:"
    echo "##   $how"
    echo "## (.ci/run does this on Debian 12 / bookworm)"
    echo "######################################################################"
    echo
  } >&2
}

echo "+ tsc -p ."
npx tsc -p .

status=0
# Every kernel the suites launch on WebGPU is also recorded as CUDA here and compiled by nvcc at the end.
EMIT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-emitted.XXXXXX")"
trap 'rm -rf "$EMIT_DIR"' EXIT
export TESSERA_EMIT_DIR="$EMIT_DIR"

if [ -f "$LVP_ICD" ]; then
  echo "+ vitest run (VK_ICD_FILENAMES=$LVP_ICD, lavapipe)"
  VK_ICD_FILENAMES="$LVP_ICD" TESSERA_WEBGPU_REQUIRED=1 npx vitest run "$@" || status=$?
else
  missing_icd lavapipe "$LVP_ICD" \
    "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list && apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1"
  if [ "$IN_CI" = 1 ]; then exit 1; fi
  echo "+ vitest run (no lavapipe: WebGPU tests use whatever adapter exists, or skip)"
  TESSERA_WEBGPU_REQUIRED="${TESSERA_WEBGPU_REQUIRED:-0}" npx vitest run "$@" || status=$?
fi

if [ -f "$SWS_ICD" ]; then
  echo "+ vitest run ${SMOKE_FILTERS[*]} (VK_ICD_FILENAMES=$SWS_ICD, SwiftShader, TESSERA_SMOKE=1)"
  VK_ICD_FILENAMES="$SWS_ICD" TESSERA_WEBGPU_REQUIRED=1 TESSERA_SMOKE=1 \
    npx vitest run --passWithNoTests "${SMOKE_FILTERS[@]}" || status=$?
else
  missing_icd SwiftShader "$SWS_ICD" "apt-get install -y chromium-common libvulkan1"
  if [ "$IN_CI" = 1 ]; then exit 1; fi
fi

# The CUDA emulator (src/backends/cuda/emulator.ts) runs the CUDA kernels of the suites in EMU_FILTERS
# on the CPU (g++ and the CUDA toolkit's headers), against the reference, beside the JS backend.
EMU_FILTERS=(test/cuda-emulator test/ops test/op-props test/row-unroll test/matmul- test/quant- test/chain test/bf16 test/dot4i8 test/specialize test/versions test/memory-inplace test/model test/narrow-launch test/fuzz)
if command -v nvcc >/dev/null 2>&1 || [ "$IN_CI" = 1 ]; then
  echo "+ vitest run ${EMU_FILTERS[*]} (TESSERA_TEST_CUDA_EMU=1: the CUDA kernels on the CPU emulator; TESSERA_SMOKE=1)"
  TESSERA_TEST_CUDA_EMU=1 TESSERA_CUDA_EMU_REQUIRED=1 TESSERA_TEST_WEBGPU=0 TESSERA_SMOKE=1 TESSERA_EMIT_DIR= \
    npx vitest run "${EMU_FILTERS[@]}" || status=$?
else
  echo "## nvcc not found: the CUDA emulator pass did not run (it needs the CUDA toolkit's headers and g++)" >&2
fi

if command -v nvcc >/dev/null 2>&1; then
  echo "+ cuda-check: every kernel launched above, printed as CUDA, compiled by nvcc for sm_80 and sm_90"
  node --import tsx scripts/cuda-check.ts "$EMIT_DIR" || status=$?
else
  echo "## nvcc not found: the CUDA compile check did not run (install the CUDA toolkit to run it)" >&2
  if [ "$IN_CI" = 1 ]; then status=1; fi
fi

exit "$status"
