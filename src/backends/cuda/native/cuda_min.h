/*
 * The few CUDA driver API types the Tessera addon uses, for building on a machine without the CUDA
 * toolkit's <cuda.h>. binding.gyp defines TESSERA_HAVE_CUDA_H when scripts/cuda-include.cjs finds a
 * <cuda.h> (CUDA >= 11); then addon.cc includes the real header instead, includes this file inside a
 * namespace and static_asserts that every type here matches the real one in size, and that its own
 * function pointer types are exactly the real functions' types. So the vendored copy is checked on
 * every build that has the toolkit.
 *
 * Only types and constants: no function is declared or linked (libcuda.so.1 is dlopen'ed at run time).
 * Values are from the CUDA driver API, which keeps them stable across releases.
 */
#ifndef TESSERA_CUDA_MIN_H
#define TESSERA_CUDA_MIN_H

typedef enum cudaError_enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_UNKNOWN = 999
} CUresult;

typedef enum CUdevice_attribute_enum {
  CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
  CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
  CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
  CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
  CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97
} CUdevice_attribute;

typedef unsigned long long CUdeviceptr; /* 64-bit targets only (binding.gyp builds nothing else) */
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *CUstream;

#endif /* TESSERA_CUDA_MIN_H */
