# The CUDA driver addon (src/backends/cuda/native/addon.cc). `npm ci` / `npm install` build it with
# node-gyp through scripts/build-addon.cjs (package.json "install"), which tolerates a missing C++
# toolchain outside CI. It never links libcuda (dlopen at run time), and uses the toolkit's <cuda.h> only when
# scripts/cuda-include.cjs finds one, else a vendored header, so it builds on machines without CUDA.
{
  "targets": [
    {
      "target_name": "tessera_cuda",
      "sources": ["src/backends/cuda/native/addon.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "src/backends/cuda/native",
        "<!@(node scripts/cuda-include.cjs --include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "<!@(node scripts/cuda-include.cjs --defines)"
      ],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "libraries": ["-ldl"]
    }
  ]
}
