// Stand-in for PyTorch's c10/cuda/CUDAException.h.
#pragma once
#include <cuda_runtime.h>
#include <ATen/ATen.h>

#define C10_CUDA_KERNEL_LAUNCH_CHECK()                                                    \
  do {                                                                                    \
    const cudaError_t tsr_stub_err = cudaGetLastError();                                  \
    TORCH_CHECK(tsr_stub_err == cudaSuccess, "CUDA error: ", cudaGetErrorString(tsr_stub_err)); \
  } while (0)
