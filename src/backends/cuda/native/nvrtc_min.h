/*
 * The few NVRTC types the Tessera addon uses, for building on a machine without the CUDA toolkit's
 * <nvrtc.h>. binding.gyp defines TESSERA_HAVE_NVRTC_H when scripts/cuda-include.cjs finds an
 * <nvrtc.h> next to the <cuda.h> it uses; then addon.cc includes the real header, includes this file
 * inside a namespace and static_asserts that the types and constants here match the real ones and
 * that its own function pointer types are exactly the real functions' types (as with cuda_min.h).
 *
 * Only types and constants: no function is declared or linked (libnvrtc is dlopen'ed at run time).
 * Values are from the NVRTC API, which keeps them stable across releases.
 */
#ifndef TESSERA_NVRTC_MIN_H
#define TESSERA_NVRTC_MIN_H

typedef enum {
  NVRTC_SUCCESS = 0,
  NVRTC_ERROR_OUT_OF_MEMORY = 1,
  NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
  NVRTC_ERROR_INVALID_INPUT = 3,
  NVRTC_ERROR_INVALID_PROGRAM = 4,
  NVRTC_ERROR_INVALID_OPTION = 5,
  NVRTC_ERROR_COMPILATION = 6,
  NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7,
  NVRTC_ERROR_INTERNAL_ERROR = 11
} nvrtcResult;

typedef struct _nvrtcProgram *nvrtcProgram;

#endif /* TESSERA_NVRTC_MIN_H */
