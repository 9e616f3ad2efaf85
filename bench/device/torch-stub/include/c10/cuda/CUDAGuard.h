// Stand-in for PyTorch's c10/cuda/CUDAGuard.h: declarations only.
#pragma once
#include <ATen/ATen.h>

namespace c10 {
namespace cuda {
struct CUDAGuard {
  explicit CUDAGuard() = delete;
  explicit CUDAGuard(DeviceIndex device_index);
  explicit CUDAGuard(Device device);
  CUDAGuard(const CUDAGuard&) = delete;
  CUDAGuard& operator=(const CUDAGuard&) = delete;
  ~CUDAGuard();
};
}  // namespace cuda
}  // namespace c10
