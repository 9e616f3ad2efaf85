// Stand-in for PyTorch's ATen/cuda/CUDAContext.h: declarations only.
#pragma once
#include <cuda_runtime.h>
#include <ATen/ATen.h>

namespace c10 {
namespace cuda {
class CUDAStream {
 public:
  cudaStream_t stream() const;
  operator cudaStream_t() const;
  Device device() const;
};
CUDAStream getCurrentCUDAStream(DeviceIndex device_index = -1);
}  // namespace cuda
}  // namespace c10

namespace at {
namespace cuda {
using c10::cuda::CUDAStream;
using c10::cuda::getCurrentCUDAStream;
}  // namespace cuda
}  // namespace at
