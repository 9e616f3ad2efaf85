// Tessera's CUDA driver addon: a thin, synchronous Node-API wrapper over the CUDA driver API.
//
// libcuda.so.1 is dlopen'ed on first use and never linked, so the addon loads on any machine; without
// a driver probe() reports {available: false, reason} and every other function throws that reason.
// Every CUresult other than CUDA_SUCCESS becomes a JS Error whose message names the call and carries
// cuGetErrorName / cuGetErrorString (properties cudaResult: number, cudaError: string).
//
// Handles (contexts, device pointers, modules, functions, events) cross into JS as BigInt values
// (the pointer bits). The TypeScript side (src/backends/cuda/native.ts, runtime.ts) owns them and
// is the only caller; nothing here can tell a stale or wrong-kind handle from a good one.
//
// Work goes to the context's legacy default stream (stream 0): synchronous cuMemcpy calls are ordered
// after every launch before them, so a download sees every earlier launch's results.
//
// NVRTC (nvrtcProbe / nvrtcCompile) works the same way: libnvrtc is dlopen'ed on first use, never
// linked, and every nvrtcResult error becomes a JS Error with nvrtcGetErrorString's text and the log.
//
// Built with NAPI_DISABLE_CPP_EXCEPTIONS: errors are thrown as pending JS exceptions and the
// function returns at once.

#include <napi.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#ifdef TESSERA_HAVE_CUDA_H
#include <cuda.h>
// Check the vendored fallback header against the real one on every build that has the toolkit.
namespace vendored {
#include "cuda_min.h"
}
static_assert(sizeof(vendored::CUresult) == sizeof(::CUresult), "CUresult size");
static_assert(sizeof(vendored::CUdevice_attribute) == sizeof(::CUdevice_attribute), "CUdevice_attribute size");
static_assert(sizeof(vendored::CUdeviceptr) == sizeof(::CUdeviceptr), "CUdeviceptr size");
static_assert(sizeof(vendored::CUdevice) == sizeof(::CUdevice), "CUdevice size");
static_assert(sizeof(vendored::CUcontext) == sizeof(::CUcontext), "CUcontext size");
#define TESSERA_SAME_VALUE(x) static_assert((int)vendored::x == (int)::x, #x)
TESSERA_SAME_VALUE(CUDA_SUCCESS);
TESSERA_SAME_VALUE(CUDA_ERROR_INVALID_VALUE);
TESSERA_SAME_VALUE(CUDA_ERROR_NOT_INITIALIZED);
TESSERA_SAME_VALUE(CUDA_ERROR_NO_DEVICE);
TESSERA_SAME_VALUE(CUDA_ERROR_UNKNOWN);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_WARP_SIZE);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
TESSERA_SAME_VALUE(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
#undef TESSERA_SAME_VALUE
#else
#include "cuda_min.h"
#endif

#ifdef TESSERA_HAVE_NVRTC_H
#include <nvrtc.h>
// Check the vendored NVRTC header against the real one on every build that has it.
namespace vendored_nvrtc {
#include "nvrtc_min.h"
}
static_assert(sizeof(vendored_nvrtc::nvrtcResult) == sizeof(::nvrtcResult), "nvrtcResult size");
static_assert(sizeof(vendored_nvrtc::nvrtcProgram) == sizeof(::nvrtcProgram), "nvrtcProgram size");
#define TESSERA_SAME_VALUE(x) static_assert((int)vendored_nvrtc::x == (int)::x, #x)
TESSERA_SAME_VALUE(NVRTC_SUCCESS);
TESSERA_SAME_VALUE(NVRTC_ERROR_OUT_OF_MEMORY);
TESSERA_SAME_VALUE(NVRTC_ERROR_PROGRAM_CREATION_FAILURE);
TESSERA_SAME_VALUE(NVRTC_ERROR_INVALID_INPUT);
TESSERA_SAME_VALUE(NVRTC_ERROR_INVALID_PROGRAM);
TESSERA_SAME_VALUE(NVRTC_ERROR_INVALID_OPTION);
TESSERA_SAME_VALUE(NVRTC_ERROR_COMPILATION);
TESSERA_SAME_VALUE(NVRTC_ERROR_BUILTIN_OPERATION_FAILURE);
TESSERA_SAME_VALUE(NVRTC_ERROR_INTERNAL_ERROR);
#undef TESSERA_SAME_VALUE
#else
#include "nvrtc_min.h"
#endif

static_assert(sizeof(void*) == 8, "64-bit targets only");

// ------------------------------------------------------------------------------------------------
// Driver entry points, resolved with dlsym by their exported (versioned) names.

typedef CUresult (*Fn_cuInit)(unsigned int);
typedef CUresult (*Fn_cuDriverGetVersion)(int*);
typedef CUresult (*Fn_cuDeviceGetCount)(int*);
typedef CUresult (*Fn_cuDeviceGet)(CUdevice*, int);
typedef CUresult (*Fn_cuDeviceGetName)(char*, int, CUdevice);
typedef CUresult (*Fn_cuDeviceGetAttribute)(int*, CUdevice_attribute, CUdevice);
typedef CUresult (*Fn_cuDeviceTotalMem)(size_t*, CUdevice);
typedef CUresult (*Fn_cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
typedef CUresult (*Fn_cuDevicePrimaryCtxRelease)(CUdevice);
typedef CUresult (*Fn_cuCtxSetCurrent)(CUcontext);
typedef CUresult (*Fn_cuCtxSynchronize)(void);
typedef CUresult (*Fn_cuMemAlloc)(CUdeviceptr*, size_t);
typedef CUresult (*Fn_cuMemFree)(CUdeviceptr);
typedef CUresult (*Fn_cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
typedef CUresult (*Fn_cuMemcpyHtoD)(CUdeviceptr, const void*, size_t);
typedef CUresult (*Fn_cuMemcpyDtoH)(void*, CUdeviceptr, size_t);
typedef CUresult (*Fn_cuModuleLoadData)(CUmodule*, const void*);
typedef CUresult (*Fn_cuModuleUnload)(CUmodule);
typedef CUresult (*Fn_cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
typedef CUresult (*Fn_cuLaunchKernel)(CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
                                      unsigned int, unsigned int, CUstream, void**, void**);
typedef CUresult (*Fn_cuEventCreate)(CUevent*, unsigned int);
typedef CUresult (*Fn_cuEventRecord)(CUevent, CUstream);
typedef CUresult (*Fn_cuEventSynchronize)(CUevent);
typedef CUresult (*Fn_cuEventElapsedTime)(float*, CUevent, CUevent);
typedef CUresult (*Fn_cuEventDestroy)(CUevent);
typedef CUresult (*Fn_cuGetErrorName)(CUresult, const char**);
typedef CUresult (*Fn_cuGetErrorString)(CUresult, const char**);

#ifdef TESSERA_HAVE_CUDA_H
// The unversioned names are cuda.h's macros for the current versions (cuMemAlloc -> cuMemAlloc_v2 ...).
#define TESSERA_SAME_TYPE(fn, decl) static_assert(std::is_same<Fn_##fn, decltype(&::decl)>::value, #decl " signature")
TESSERA_SAME_TYPE(cuInit, cuInit);
TESSERA_SAME_TYPE(cuDriverGetVersion, cuDriverGetVersion);
TESSERA_SAME_TYPE(cuDeviceGetCount, cuDeviceGetCount);
TESSERA_SAME_TYPE(cuDeviceGet, cuDeviceGet);
TESSERA_SAME_TYPE(cuDeviceGetName, cuDeviceGetName);
TESSERA_SAME_TYPE(cuDeviceGetAttribute, cuDeviceGetAttribute);
TESSERA_SAME_TYPE(cuDeviceTotalMem, cuDeviceTotalMem);
TESSERA_SAME_TYPE(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain);
TESSERA_SAME_TYPE(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease);
TESSERA_SAME_TYPE(cuCtxSetCurrent, cuCtxSetCurrent);
TESSERA_SAME_TYPE(cuCtxSynchronize, cuCtxSynchronize);
TESSERA_SAME_TYPE(cuMemAlloc, cuMemAlloc);
TESSERA_SAME_TYPE(cuMemFree, cuMemFree);
TESSERA_SAME_TYPE(cuMemsetD8, cuMemsetD8);
TESSERA_SAME_TYPE(cuMemcpyHtoD, cuMemcpyHtoD);
TESSERA_SAME_TYPE(cuMemcpyDtoH, cuMemcpyDtoH);
TESSERA_SAME_TYPE(cuModuleLoadData, cuModuleLoadData);
TESSERA_SAME_TYPE(cuModuleUnload, cuModuleUnload);
TESSERA_SAME_TYPE(cuModuleGetFunction, cuModuleGetFunction);
TESSERA_SAME_TYPE(cuLaunchKernel, cuLaunchKernel);
TESSERA_SAME_TYPE(cuEventCreate, cuEventCreate);
TESSERA_SAME_TYPE(cuEventRecord, cuEventRecord);
TESSERA_SAME_TYPE(cuEventSynchronize, cuEventSynchronize);
TESSERA_SAME_TYPE(cuEventElapsedTime, cuEventElapsedTime);
TESSERA_SAME_TYPE(cuEventDestroy, cuEventDestroy);
TESSERA_SAME_TYPE(cuGetErrorName, cuGetErrorName);
TESSERA_SAME_TYPE(cuGetErrorString, cuGetErrorString);
#undef TESSERA_SAME_TYPE
#endif

// NVRTC entry points (libnvrtc is dlopen'ed on first use of nvrtcProbe / nvrtcCompile).

typedef const char* (*Fn_nvrtcGetErrorString)(nvrtcResult);
typedef nvrtcResult (*Fn_nvrtcVersion)(int*, int*);
typedef nvrtcResult (*Fn_nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*,
                                             const char* const*);
typedef nvrtcResult (*Fn_nvrtcDestroyProgram)(nvrtcProgram*);
typedef nvrtcResult (*Fn_nvrtcCompileProgram)(nvrtcProgram, int, const char* const*);
typedef nvrtcResult (*Fn_nvrtcGetProgramLogSize)(nvrtcProgram, size_t*);
typedef nvrtcResult (*Fn_nvrtcGetProgramLog)(nvrtcProgram, char*);
typedef nvrtcResult (*Fn_nvrtcGetCUBINSize)(nvrtcProgram, size_t*);
typedef nvrtcResult (*Fn_nvrtcGetCUBIN)(nvrtcProgram, char*);
typedef nvrtcResult (*Fn_nvrtcGetPTXSize)(nvrtcProgram, size_t*);
typedef nvrtcResult (*Fn_nvrtcGetPTX)(nvrtcProgram, char*);

#ifdef TESSERA_HAVE_NVRTC_H
#define TESSERA_SAME_TYPE(fn) static_assert(std::is_same<Fn_##fn, decltype(&::fn)>::value, #fn " signature")
TESSERA_SAME_TYPE(nvrtcGetErrorString);
TESSERA_SAME_TYPE(nvrtcVersion);
TESSERA_SAME_TYPE(nvrtcCreateProgram);
TESSERA_SAME_TYPE(nvrtcDestroyProgram);
TESSERA_SAME_TYPE(nvrtcCompileProgram);
TESSERA_SAME_TYPE(nvrtcGetProgramLogSize);
TESSERA_SAME_TYPE(nvrtcGetProgramLog);
TESSERA_SAME_TYPE(nvrtcGetCUBINSize);
TESSERA_SAME_TYPE(nvrtcGetCUBIN);
TESSERA_SAME_TYPE(nvrtcGetPTXSize);
TESSERA_SAME_TYPE(nvrtcGetPTX);
#undef TESSERA_SAME_TYPE
#endif

namespace {

struct Driver {
  bool tried = false;   // dlopen attempted
  bool ready = false;   // library, symbols and cuInit all fine
  std::string reason;   // why not ready
  int driverVersion = 0;
  void* lib = nullptr;

  Fn_cuInit cuInit = nullptr;
  Fn_cuDriverGetVersion cuDriverGetVersion = nullptr;
  Fn_cuDeviceGetCount cuDeviceGetCount = nullptr;
  Fn_cuDeviceGet cuDeviceGet = nullptr;
  Fn_cuDeviceGetName cuDeviceGetName = nullptr;
  Fn_cuDeviceGetAttribute cuDeviceGetAttribute = nullptr;
  Fn_cuDeviceTotalMem cuDeviceTotalMem = nullptr;
  Fn_cuDevicePrimaryCtxRetain cuDevicePrimaryCtxRetain = nullptr;
  Fn_cuDevicePrimaryCtxRelease cuDevicePrimaryCtxRelease = nullptr;
  Fn_cuCtxSetCurrent cuCtxSetCurrent = nullptr;
  Fn_cuCtxSynchronize cuCtxSynchronize = nullptr;
  Fn_cuMemAlloc cuMemAlloc = nullptr;
  Fn_cuMemFree cuMemFree = nullptr;
  Fn_cuMemsetD8 cuMemsetD8 = nullptr;
  Fn_cuMemcpyHtoD cuMemcpyHtoD = nullptr;
  Fn_cuMemcpyDtoH cuMemcpyDtoH = nullptr;
  Fn_cuModuleLoadData cuModuleLoadData = nullptr;
  Fn_cuModuleUnload cuModuleUnload = nullptr;
  Fn_cuModuleGetFunction cuModuleGetFunction = nullptr;
  Fn_cuLaunchKernel cuLaunchKernel = nullptr;
  Fn_cuEventCreate cuEventCreate = nullptr;
  Fn_cuEventRecord cuEventRecord = nullptr;
  Fn_cuEventSynchronize cuEventSynchronize = nullptr;
  Fn_cuEventElapsedTime cuEventElapsedTime = nullptr;
  Fn_cuEventDestroy cuEventDestroy = nullptr;
  Fn_cuGetErrorName cuGetErrorName = nullptr;
  Fn_cuGetErrorString cuGetErrorString = nullptr;
};

Driver g;

// Resolve the first of `names` that the library exports; false (and g.reason) when none is.
template <typename F>
bool resolve(F& out, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    void* p = dlsym(g.lib, n);
    if (p != nullptr) {
      out = reinterpret_cast<F>(p);
      return true;
    }
  }
  g.reason = std::string("libcuda.so.1 does not export ") + *names.begin() + " (driver too old?)";
  return false;
}

std::string errorName(CUresult r) {
  const char* s = nullptr;
  if (g.cuGetErrorName == nullptr || g.cuGetErrorName(r, &s) != CUDA_SUCCESS || s == nullptr) {
    return "CUDA error " + std::to_string(static_cast<int>(r));
  }
  return s;
}

std::string errorText(CUresult r) {
  std::string out = errorName(r);
  const char* s = nullptr;
  if (g.cuGetErrorString != nullptr && g.cuGetErrorString(r, &s) == CUDA_SUCCESS && s != nullptr) {
    out += std::string(" (") + s + ")";
  }
  return out;
}

// dlopen, dlsym and cuInit, once per process.
void load() {
  if (g.tried) return;
  g.tried = true;
  dlerror();
  g.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (g.lib == nullptr) {
    const char* e = dlerror();
    g.reason = std::string("libcuda.so.1 not found: ") + (e != nullptr ? e : "dlopen failed");
    return;
  }
  bool ok = resolve(g.cuGetErrorName, {"cuGetErrorName"}) && resolve(g.cuGetErrorString, {"cuGetErrorString"}) &&
            resolve(g.cuInit, {"cuInit"}) && resolve(g.cuDriverGetVersion, {"cuDriverGetVersion"}) &&
            resolve(g.cuDeviceGetCount, {"cuDeviceGetCount"}) && resolve(g.cuDeviceGet, {"cuDeviceGet"}) &&
            resolve(g.cuDeviceGetName, {"cuDeviceGetName"}) &&
            resolve(g.cuDeviceGetAttribute, {"cuDeviceGetAttribute"}) &&
            resolve(g.cuDeviceTotalMem, {"cuDeviceTotalMem_v2"}) &&
            resolve(g.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"}) &&
            resolve(g.cuDevicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2"}) &&
            resolve(g.cuCtxSetCurrent, {"cuCtxSetCurrent"}) && resolve(g.cuCtxSynchronize, {"cuCtxSynchronize"}) &&
            resolve(g.cuMemAlloc, {"cuMemAlloc_v2"}) && resolve(g.cuMemFree, {"cuMemFree_v2"}) &&
            resolve(g.cuMemsetD8, {"cuMemsetD8_v2"}) && resolve(g.cuMemcpyHtoD, {"cuMemcpyHtoD_v2"}) &&
            resolve(g.cuMemcpyDtoH, {"cuMemcpyDtoH_v2"}) && resolve(g.cuModuleLoadData, {"cuModuleLoadData"}) &&
            resolve(g.cuModuleUnload, {"cuModuleUnload"}) &&
            resolve(g.cuModuleGetFunction, {"cuModuleGetFunction"}) &&
            resolve(g.cuLaunchKernel, {"cuLaunchKernel"}) && resolve(g.cuEventCreate, {"cuEventCreate"}) &&
            resolve(g.cuEventRecord, {"cuEventRecord"}) && resolve(g.cuEventSynchronize, {"cuEventSynchronize"}) &&
            resolve(g.cuEventElapsedTime, {"cuEventElapsedTime_v2", "cuEventElapsedTime"}) &&
            resolve(g.cuEventDestroy, {"cuEventDestroy_v2"});
  if (!ok) return;
  int v = 0;
  if (g.cuDriverGetVersion(&v) == CUDA_SUCCESS) g.driverVersion = v;
  CUresult r = g.cuInit(0);
  if (r != CUDA_SUCCESS) {
    g.reason = "cuInit failed: " + errorText(r);
    return;
  }
  g.ready = true;
}

// ------------------------------------------------------------------------------------------------
// Argument and error helpers. Each returns false after throwing a pending JS exception.

bool throwError(Napi::Env env, const std::string& msg) {
  Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

bool throwType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

bool check(Napi::Env env, CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return true;
  Napi::Error e = Napi::Error::New(env, std::string(what) + " failed: " + errorText(r));
  e.Value().Set("cudaResult", Napi::Number::New(env, static_cast<double>(static_cast<int>(r))));
  e.Value().Set("cudaError", Napi::String::New(env, errorName(r)));
  e.ThrowAsJavaScriptException();
  return false;
}

bool requireDriver(Napi::Env env) {
  load();
  if (g.ready) return true;
  return throwError(env, "CUDA driver not available: " + g.reason);
}

bool argCount(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() >= n) return true;
  return throwType(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments, got " +
                                   std::to_string(info.Length()));
}

// A handle or device pointer: a BigInt in [0, 2^64), or a non-negative safe-integer Number.
bool getU64(Napi::Env env, const Napi::Value& v, const char* what, uint64_t* out) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) return throwType(env, std::string(what) + ": BigInt out of the unsigned 64-bit range");
    *out = x;
    return true;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) {
      return throwType(env, std::string(what) + ": expected a non-negative integer");
    }
    *out = static_cast<uint64_t>(d);
    return true;
  }
  return throwType(env, std::string(what) + ": expected a BigInt handle");
}

bool getHandle(Napi::Env env, const Napi::Value& v, const char* what, uint64_t* out, bool allowNull = false) {
  if (!getU64(env, v, what, out)) return false;
  if (*out == 0 && !allowNull) return throwType(env, std::string(what) + ": null handle");
  return true;
}

bool getDouble(Napi::Env env, const Napi::Value& v, const char* what, double lo, double hi, double* out) {
  if (!v.IsNumber()) return throwType(env, std::string(what) + ": expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d) {
    return throwType(env, std::string(what) + ": expected an integer in [" + std::to_string(static_cast<long long>(lo)) +
                              ", " + std::to_string(static_cast<long long>(hi)) + "], got " + std::to_string(d));
  }
  *out = d;
  return true;
}

bool getI32(Napi::Env env, const Napi::Value& v, const char* what, int32_t* out) {
  double d;
  if (!getDouble(env, v, what, -2147483648.0, 2147483647.0, &d)) return false;
  *out = static_cast<int32_t>(d);
  return true;
}

bool getU32(Napi::Env env, const Napi::Value& v, const char* what, uint32_t* out) {
  double d;
  if (!getDouble(env, v, what, 0.0, 4294967295.0, &d)) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

bool getSize(Napi::Env env, const Napi::Value& v, const char* what, size_t* out) {
  double d;
  if (!getDouble(env, v, what, 0.0, 9007199254740991.0, &d)) return false;
  *out = static_cast<size_t>(d);
  return true;
}

// The bytes of a TypedArray (a Node Buffer is one), DataView or ArrayBuffer, through the raw Node-API
// calls, which also give the data pointer of views on a SharedArrayBuffer.
bool getBytes(Napi::Env env, const Napi::Value& v, const char* what, uint8_t** data, size_t* len) {
  napi_env e = env;
  napi_value val = v;
  bool is = false;
  void* p = nullptr;
  if (napi_is_typedarray(e, val, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0;
    size_t offset = 0;
    napi_value ab;
    if (napi_get_typedarray_info(e, val, &type, &length, &p, &ab, &offset) != napi_ok) {
      return throwType(env, std::string(what) + ": cannot read the TypedArray");
    }
    size_t elem = 0;
    switch (type) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: elem = 1; break;
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: return throwType(env, std::string(what) + ": unsupported TypedArray type");
    }
    *data = static_cast<uint8_t*>(p);
    *len = length * elem;
  } else if (napi_is_dataview(e, val, &is) == napi_ok && is) {
    size_t length = 0;
    size_t offset = 0;
    napi_value ab;
    if (napi_get_dataview_info(e, val, &length, &p, &ab, &offset) != napi_ok) {
      return throwType(env, std::string(what) + ": cannot read the DataView");
    }
    *data = static_cast<uint8_t*>(p);
    *len = length;
  } else if (napi_is_arraybuffer(e, val, &is) == napi_ok && is) {
    size_t length = 0;
    if (napi_get_arraybuffer_info(e, val, &p, &length) != napi_ok) {
      return throwType(env, std::string(what) + ": cannot read the ArrayBuffer");
    }
    *data = static_cast<uint8_t*>(p);
    *len = length;
  } else {
    return throwType(env, std::string(what) + ": expected a TypedArray, Buffer, DataView or ArrayBuffer");
  }
  if (*len > 0 && *data == nullptr) return throwType(env, std::string(what) + ": no backing store (detached?)");
  return true;
}

bool getDim3(Napi::Env env, const Napi::Value& v, const char* what, uint32_t out[3]) {
  if (!v.IsArray()) return throwType(env, std::string(what) + ": expected an array [x, y, z]");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() < 1 || a.Length() > 3) return throwType(env, std::string(what) + ": expected 1 to 3 dimensions");
  for (uint32_t i = 0; i < 3; i++) {
    if (i >= a.Length()) {
      out[i] = 1;
      continue;
    }
    if (!getU32(env, a.Get(i), what, &out[i])) return false;
    if (out[i] == 0) return throwType(env, std::string(what) + ": dimensions must be at least 1");
  }
  return true;
}

Napi::Value handle(Napi::Env env, uint64_t h) { return Napi::BigInt::New(env, h); }

template <typename P>
Napi::Value handle(Napi::Env env, P* p) {
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

template <typename P>
P fromHandle(uint64_t h) {
  return reinterpret_cast<P>(static_cast<uintptr_t>(h));
}

// ------------------------------------------------------------------------------------------------
// Exports

// probe(): never throws for a missing or broken driver; describes what it found.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  load();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env);
  out.Set("devices", devices);
  if (g.driverVersion != 0) out.Set("driverVersion", Napi::Number::New(env, g.driverVersion));
  if (!g.ready) {
    out.Set("available", Napi::Boolean::New(env, false));
    out.Set("reason", Napi::String::New(env, g.reason));
    return out;
  }
  std::string fail;
  int count = 0;
  CUresult r = g.cuDeviceGetCount(&count);
  if (r != CUDA_SUCCESS) fail = "cuDeviceGetCount failed: " + errorText(r);
  for (int i = 0; fail.empty() && i < count; i++) {
    CUdevice dev = 0;
    r = g.cuDeviceGet(&dev, i);
    if (r != CUDA_SUCCESS) {
      fail = "cuDeviceGet(" + std::to_string(i) + ") failed: " + errorText(r);
      break;
    }
    char name[256] = {0};
    r = g.cuDeviceGetName(name, sizeof(name) - 1, dev);
    if (r != CUDA_SUCCESS) {
      fail = "cuDeviceGetName failed: " + errorText(r);
      break;
    }
    size_t mem = 0;
    r = g.cuDeviceTotalMem(&mem, dev);
    if (r != CUDA_SUCCESS) {
      fail = "cuDeviceTotalMem failed: " + errorText(r);
      break;
    }
    struct {
      const char* key;
      CUdevice_attribute attr;
      int value;
    } attrs[] = {
        {"major", CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0},
        {"minor", CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0},
        {"smCount", CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0},
        {"maxThreadsPerBlock", CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0},
        {"maxSharedMemPerBlock", CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 0},
        {"maxSharedMemPerBlockOptin", CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0},
        {"maxBlockDimX", CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 0},
        {"maxGridDimX", CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 0},
        {"maxGridDimY", CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 0},
        {"warpSize", CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0},
    };
    for (auto& a : attrs) {
      r = g.cuDeviceGetAttribute(&a.value, a.attr, dev);
      if (r != CUDA_SUCCESS) {
        fail = std::string("cuDeviceGetAttribute(") + a.key + ") failed: " + errorText(r);
        break;
      }
    }
    if (!fail.empty()) break;
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", Napi::Number::New(env, i));
    d.Set("name", Napi::String::New(env, name));
    Napi::Array cc = Napi::Array::New(env, 2);
    cc.Set(0u, Napi::Number::New(env, attrs[0].value));
    cc.Set(1u, Napi::Number::New(env, attrs[1].value));
    d.Set("computeCapability", cc);
    d.Set("totalMem", Napi::Number::New(env, static_cast<double>(mem)));
    for (size_t k = 2; k < sizeof(attrs) / sizeof(attrs[0]); k++) d.Set(attrs[k].key, Napi::Number::New(env, attrs[k].value));
    devices.Set(static_cast<uint32_t>(i), d);
  }
  if (fail.empty() && count == 0) fail = "the CUDA driver reports no devices";
  out.Set("available", Napi::Boolean::New(env, fail.empty()));
  if (!fail.empty()) out.Set("reason", Napi::String::New(env, fail));
  return out;
}

// ctxCreate(device: number): bigint: retains the device's primary context and makes it current.
Napi::Value CtxCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "ctxCreate")) return env.Undefined();
  int32_t index;
  if (!getI32(env, info[0], "ctxCreate: device", &index)) return env.Undefined();
  CUdevice dev = 0;
  if (!check(env, g.cuDeviceGet(&dev, index), "cuDeviceGet")) return env.Undefined();
  CUcontext ctx = nullptr;
  if (!check(env, g.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain")) return env.Undefined();
  if (!check(env, g.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")) {
    g.cuDevicePrimaryCtxRelease(dev);
    return env.Undefined();
  }
  return handle(env, ctx);
}

// ctxSetCurrent(ctx: bigint)
Napi::Value CtxSetCurrent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "ctxSetCurrent")) return env.Undefined();
  uint64_t h;
  if (!getHandle(env, info[0], "ctxSetCurrent: ctx", &h, true)) return env.Undefined();
  check(env, g.cuCtxSetCurrent(fromHandle<CUcontext>(h)), "cuCtxSetCurrent");
  return env.Undefined();
}

// ctxRelease(device: number): unbinds the calling thread's context and releases the primary context.
Napi::Value CtxRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "ctxRelease")) return env.Undefined();
  int32_t index;
  if (!getI32(env, info[0], "ctxRelease: device", &index)) return env.Undefined();
  CUdevice dev = 0;
  if (!check(env, g.cuDeviceGet(&dev, index), "cuDeviceGet")) return env.Undefined();
  if (!check(env, g.cuCtxSetCurrent(nullptr), "cuCtxSetCurrent")) return env.Undefined();
  check(env, g.cuDevicePrimaryCtxRelease(dev), "cuDevicePrimaryCtxRelease");
  return env.Undefined();
}

// ctxSynchronize(): waits for all work in the current context.
Napi::Value CtxSynchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env)) return env.Undefined();
  check(env, g.cuCtxSynchronize(), "cuCtxSynchronize");
  return env.Undefined();
}

// memAlloc(bytes: number): bigint
Napi::Value MemAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "memAlloc")) return env.Undefined();
  size_t bytes;
  if (!getSize(env, info[0], "memAlloc: bytes", &bytes)) return env.Undefined();
  if (bytes == 0) {
    throwType(env, "memAlloc: bytes must be at least 1");
    return env.Undefined();
  }
  CUdeviceptr p = 0;
  if (!check(env, g.cuMemAlloc(&p, bytes), "cuMemAlloc")) return env.Undefined();
  return handle(env, static_cast<uint64_t>(p));
}

// memFree(ptr: bigint)
Napi::Value MemFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "memFree")) return env.Undefined();
  uint64_t p;
  if (!getHandle(env, info[0], "memFree: ptr", &p)) return env.Undefined();
  check(env, g.cuMemFree(static_cast<CUdeviceptr>(p)), "cuMemFree");
  return env.Undefined();
}

// memsetD8(ptr: bigint, value: number, bytes: number)
Napi::Value MemsetD8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 3, "memsetD8")) return env.Undefined();
  uint64_t p;
  uint32_t value;
  size_t bytes;
  if (!getHandle(env, info[0], "memsetD8: ptr", &p) || !getU32(env, info[1], "memsetD8: value", &value) ||
      !getSize(env, info[2], "memsetD8: bytes", &bytes)) {
    return env.Undefined();
  }
  if (value > 255) {
    throwType(env, "memsetD8: value must be a byte");
    return env.Undefined();
  }
  check(env, g.cuMemsetD8(static_cast<CUdeviceptr>(p), static_cast<unsigned char>(value), bytes), "cuMemsetD8");
  return env.Undefined();
}

// memcpyHtoD(dst: bigint, src: TypedArray | Buffer | ArrayBuffer): copies src's bytes (synchronous).
Napi::Value MemcpyHtoD(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 2, "memcpyHtoD")) return env.Undefined();
  uint64_t dst;
  uint8_t* src = nullptr;
  size_t len = 0;
  if (!getHandle(env, info[0], "memcpyHtoD: dst", &dst) || !getBytes(env, info[1], "memcpyHtoD: src", &src, &len)) {
    return env.Undefined();
  }
  if (len > 0) check(env, g.cuMemcpyHtoD(static_cast<CUdeviceptr>(dst), src, len), "cuMemcpyHtoD");
  return env.Undefined();
}

// memcpyDtoH(dst: TypedArray | Buffer | ArrayBuffer, src: bigint): fills dst (waits for earlier work).
Napi::Value MemcpyDtoH(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 2, "memcpyDtoH")) return env.Undefined();
  uint8_t* dst = nullptr;
  size_t len = 0;
  uint64_t src;
  if (!getBytes(env, info[0], "memcpyDtoH: dst", &dst, &len) || !getHandle(env, info[1], "memcpyDtoH: src", &src)) {
    return env.Undefined();
  }
  if (len > 0) check(env, g.cuMemcpyDtoH(dst, static_cast<CUdeviceptr>(src), len), "cuMemcpyDtoH");
  return env.Undefined();
}

// moduleLoadData(image: Buffer): bigint. A cubin, fatbin or PTX text (a NUL is appended for PTX).
Napi::Value ModuleLoadData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "moduleLoadData")) return env.Undefined();
  uint8_t* data = nullptr;
  size_t len = 0;
  if (!getBytes(env, info[0], "moduleLoadData: image", &data, &len)) return env.Undefined();
  if (len == 0) {
    throwType(env, "moduleLoadData: empty image");
    return env.Undefined();
  }
  // A copy: 8-byte aligned (cubin/fatbin headers are read in place) and NUL-terminated (PTX).
  std::vector<uint64_t> image((len + 1 + 7) / 8, 0);
  std::memcpy(image.data(), data, len);
  CUmodule mod = nullptr;
  if (!check(env, g.cuModuleLoadData(&mod, image.data()), "cuModuleLoadData")) return env.Undefined();
  return handle(env, mod);
}

// moduleUnload(mod: bigint)
Napi::Value ModuleUnload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "moduleUnload")) return env.Undefined();
  uint64_t h;
  if (!getHandle(env, info[0], "moduleUnload: module", &h)) return env.Undefined();
  check(env, g.cuModuleUnload(fromHandle<CUmodule>(h)), "cuModuleUnload");
  return env.Undefined();
}

// moduleGetFunction(mod: bigint, name: string): bigint
Napi::Value ModuleGetFunction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 2, "moduleGetFunction")) return env.Undefined();
  uint64_t h;
  if (!getHandle(env, info[0], "moduleGetFunction: module", &h)) return env.Undefined();
  if (!info[1].IsString()) {
    throwType(env, "moduleGetFunction: name must be a string");
    return env.Undefined();
  }
  std::string name = info[1].As<Napi::String>().Utf8Value();
  CUfunction fn = nullptr;
  std::string what = "cuModuleGetFunction('" + name + "')";
  if (!check(env, g.cuModuleGetFunction(&fn, fromHandle<CUmodule>(h), name.c_str()), what.c_str())) return env.Undefined();
  return handle(env, fn);
}

// launchKernel(fn: bigint, grid: number[], block: number[], sharedBytes: number, params: (bigint | number)[])
// A BigInt parameter is passed as a 64-bit value (a device pointer), a Number as a 32-bit int.
// Launches on the legacy default stream; returns at once (errors of the kernel itself surface at the
// next synchronizing call).
Napi::Value LaunchKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 5, "launchKernel")) return env.Undefined();
  uint64_t fn;
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t shared;
  if (!getHandle(env, info[0], "launchKernel: function", &fn) || !getDim3(env, info[1], "launchKernel: grid", grid) ||
      !getDim3(env, info[2], "launchKernel: block", block) || !getU32(env, info[3], "launchKernel: sharedBytes", &shared)) {
    return env.Undefined();
  }
  if (!info[4].IsArray()) {
    throwType(env, "launchKernel: params must be an array");
    return env.Undefined();
  }
  Napi::Array params = info[4].As<Napi::Array>();
  const uint32_t n = params.Length();
  union Slot {
    uint64_t u64;
    int32_t i32;
  };
  std::vector<Slot> slots(n);
  std::vector<void*> ptrs(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = params.Get(i);
    std::string what = "launchKernel: param " + std::to_string(i);
    if (v.IsBigInt()) {
      if (!getU64(env, v, what.c_str(), &slots[i].u64)) return env.Undefined();
    } else if (v.IsNumber()) {
      if (!getI32(env, v, what.c_str(), &slots[i].i32)) return env.Undefined();
    } else {
      throwType(env, what + ": expected a BigInt (pointer) or a Number (int)");
      return env.Undefined();
    }
    ptrs[i] = &slots[i];
  }
  check(env,
        g.cuLaunchKernel(fromHandle<CUfunction>(fn), grid[0], grid[1], grid[2], block[0], block[1], block[2], shared,
                         nullptr, n > 0 ? ptrs.data() : nullptr, nullptr),
        "cuLaunchKernel");
  return env.Undefined();
}

// eventCreate(flags = 0): bigint
Napi::Value EventCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env)) return env.Undefined();
  uint32_t flags = 0;
  if (info.Length() > 0 && !info[0].IsUndefined() && !getU32(env, info[0], "eventCreate: flags", &flags)) {
    return env.Undefined();
  }
  CUevent ev = nullptr;
  if (!check(env, g.cuEventCreate(&ev, flags), "cuEventCreate")) return env.Undefined();
  return handle(env, ev);
}

Napi::Value EventRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "eventRecord")) return env.Undefined();
  uint64_t h;
  if (!getHandle(env, info[0], "eventRecord: event", &h)) return env.Undefined();
  check(env, g.cuEventRecord(fromHandle<CUevent>(h), nullptr), "cuEventRecord");
  return env.Undefined();
}

Napi::Value EventSynchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "eventSynchronize")) return env.Undefined();
  uint64_t h;
  if (!getHandle(env, info[0], "eventSynchronize: event", &h)) return env.Undefined();
  check(env, g.cuEventSynchronize(fromHandle<CUevent>(h)), "cuEventSynchronize");
  return env.Undefined();
}

// eventElapsedTime(start: bigint, end: bigint): number (ms; both events must have completed)
Napi::Value EventElapsedTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 2, "eventElapsedTime")) return env.Undefined();
  uint64_t a, b;
  if (!getHandle(env, info[0], "eventElapsedTime: start", &a) || !getHandle(env, info[1], "eventElapsedTime: end", &b)) {
    return env.Undefined();
  }
  float ms = 0;
  if (!check(env, g.cuEventElapsedTime(&ms, fromHandle<CUevent>(a), fromHandle<CUevent>(b)), "cuEventElapsedTime")) {
    return env.Undefined();
  }
  return Napi::Number::New(env, ms);
}

Napi::Value EventDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!requireDriver(env) || !argCount(info, 1, "eventDestroy")) return env.Undefined();
  uint64_t h;
  if (!getHandle(env, info[0], "eventDestroy: event", &h)) return env.Undefined();
  check(env, g.cuEventDestroy(fromHandle<CUevent>(h)), "cuEventDestroy");
  return env.Undefined();
}

// ------------------------------------------------------------------------------------------------
// NVRTC: CUDA C++ -> cubin or PTX in process. libnvrtc is dlopen'ed on the first nvrtcProbe /
// nvrtcCompile, from the path the caller gives (nvcc.ts's nvrtcLibraryPath()) and else by the usual
// sonames; a failed attempt is not remembered (a later probe may name another path), a loaded library
// stays for the life of the process.

struct Nvrtc {
  bool ready = false;
  std::string reason;  // why not ready (every candidate tried and what dlopen / dlsym said)
  std::string path;    // the file that was loaded
  int major = 0;
  int minor = 0;
  void* lib = nullptr;

  Fn_nvrtcGetErrorString nvrtcGetErrorString = nullptr;
  Fn_nvrtcVersion nvrtcVersion = nullptr;
  Fn_nvrtcCreateProgram nvrtcCreateProgram = nullptr;
  Fn_nvrtcDestroyProgram nvrtcDestroyProgram = nullptr;
  Fn_nvrtcCompileProgram nvrtcCompileProgram = nullptr;
  Fn_nvrtcGetProgramLogSize nvrtcGetProgramLogSize = nullptr;
  Fn_nvrtcGetProgramLog nvrtcGetProgramLog = nullptr;
  Fn_nvrtcGetCUBINSize nvrtcGetCUBINSize = nullptr;
  Fn_nvrtcGetCUBIN nvrtcGetCUBIN = nullptr;
  Fn_nvrtcGetPTXSize nvrtcGetPTXSize = nullptr;
  Fn_nvrtcGetPTX nvrtcGetPTX = nullptr;
};

Nvrtc nv;

template <typename F>
bool nvSym(void* lib, F& out, const char* name, std::string* missing) {
  void* p = dlsym(lib, name);
  if (p == nullptr) {
    if (missing->empty()) *missing = name;
    return false;
  }
  out = reinterpret_cast<F>(p);
  return true;
}

// Tries `path` (when not empty), then libnvrtc.so, .so.13, .so.12, .so.11; no-op once loaded.
void nvrtcLoad(const std::string& path) {
  if (nv.ready) return;
  std::vector<std::string> names;
  if (!path.empty()) names.push_back(path);
  for (const char* n : {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11"}) names.push_back(n);
  std::string tried;
  for (const std::string& name : names) {
    dlerror();
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* e = dlerror();
      tried += (tried.empty() ? "" : "; ") + std::string(e != nullptr ? e : (name + ": dlopen failed").c_str());
      continue;
    }
    Nvrtc n;
    std::string missing;
    bool ok = nvSym(lib, n.nvrtcGetErrorString, "nvrtcGetErrorString", &missing);
    ok = nvSym(lib, n.nvrtcVersion, "nvrtcVersion", &missing) && ok;
    ok = nvSym(lib, n.nvrtcCreateProgram, "nvrtcCreateProgram", &missing) && ok;
    ok = nvSym(lib, n.nvrtcDestroyProgram, "nvrtcDestroyProgram", &missing) && ok;
    ok = nvSym(lib, n.nvrtcCompileProgram, "nvrtcCompileProgram", &missing) && ok;
    ok = nvSym(lib, n.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", &missing) && ok;
    ok = nvSym(lib, n.nvrtcGetProgramLog, "nvrtcGetProgramLog", &missing) && ok;
    ok = nvSym(lib, n.nvrtcGetCUBINSize, "nvrtcGetCUBINSize", &missing) && ok;
    ok = nvSym(lib, n.nvrtcGetCUBIN, "nvrtcGetCUBIN", &missing) && ok;
    ok = nvSym(lib, n.nvrtcGetPTXSize, "nvrtcGetPTXSize", &missing) && ok;
    ok = nvSym(lib, n.nvrtcGetPTX, "nvrtcGetPTX", &missing) && ok;
    if (!ok) {
      tried += (tried.empty() ? "" : "; ") + name + " does not export " + missing + " (NVRTC older than CUDA 11.1?)";
      dlclose(lib);
      continue;
    }
    n.lib = lib;
    n.ready = true;
    n.path = name;
    Dl_info where;
    if (dladdr(reinterpret_cast<void*>(n.nvrtcVersion), &where) != 0 && where.dli_fname != nullptr) n.path = where.dli_fname;
    if (n.nvrtcVersion(&n.major, &n.minor) != NVRTC_SUCCESS) n.major = n.minor = 0;
    nv = n;
    return;
  }
  nv.reason = "libnvrtc not loadable: " + tried;
}

std::string nvrtcErrorText(nvrtcResult r) {
  const char* s = nv.nvrtcGetErrorString != nullptr ? nv.nvrtcGetErrorString(r) : nullptr;
  return s != nullptr ? s : "NVRTC error " + std::to_string(static_cast<int>(r));
}

bool nvCheck(Napi::Env env, nvrtcResult r, const char* what, const std::string& log) {
  if (r == NVRTC_SUCCESS) return true;
  std::string msg = std::string(what) + " failed: " + nvrtcErrorText(r);
  if (!log.empty()) msg += "\n" + log;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Value().Set("nvrtcResult", Napi::Number::New(env, static_cast<double>(static_cast<int>(r))));
  e.Value().Set("nvrtcError", Napi::String::New(env, nvrtcErrorText(r)));
  e.Value().Set("log", Napi::String::New(env, log));
  e.ThrowAsJavaScriptException();
  return false;
}

// Bytes from an NVRTC size + getter pair; `text` drops the trailing NUL that PTX and logs count.
bool nvBytes(nvrtcProgram prog, nvrtcResult (*sizeOf)(nvrtcProgram, size_t*), nvrtcResult (*get)(nvrtcProgram, char*), bool text, std::string* out,
             nvrtcResult* err, const char** what, const char* sizeName, const char* getName) {
  size_t n = 0;
  nvrtcResult r = sizeOf(prog, &n);
  if (r != NVRTC_SUCCESS) {
    *err = r;
    *what = sizeName;
    return false;
  }
  out->assign(n, '\0');
  if (n > 0) {
    r = get(prog, &(*out)[0]);
    if (r != NVRTC_SUCCESS) {
      *err = r;
      *what = getName;
      return false;
    }
  }
  if (text) {
    size_t end = out->find('\0');
    if (end != std::string::npos) out->resize(end);
  }
  return true;
}

// nvrtcProbe(path?: string): {available, reason?, version?, major?, minor?, path?}. Never throws for a
// missing or broken library.
Napi::Value NvrtcProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
    if (!info[0].IsString()) {
      throwType(env, "nvrtcProbe: path must be a string");
      return env.Undefined();
    }
    path = info[0].As<Napi::String>().Utf8Value();
  }
  nvrtcLoad(path);
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, nv.ready));
  if (!nv.ready) {
    out.Set("reason", Napi::String::New(env, nv.reason));
    return out;
  }
  out.Set("version", Napi::String::New(env, std::to_string(nv.major) + "." + std::to_string(nv.minor)));
  out.Set("major", Napi::Number::New(env, nv.major));
  out.Set("minor", Napi::Number::New(env, nv.minor));
  out.Set("path", Napi::String::New(env, nv.path));
  return out;
}

// nvrtcCompile(source: string, name: string, options: string[]): {cubin?: Buffer, ptx?: Buffer, log: string}.
// A cubin when the options name a real arch (-arch=sm_XX / --gpu-architecture=sm_XX, or the arch as the
// next option), else PTX. Every failing NVRTC call throws an Error with nvrtcGetErrorString's text and
// the program log (properties nvrtcResult, nvrtcError, log).
Napi::Value NvrtcCompile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  nvrtcLoad("");
  if (!nv.ready) {
    throwError(env, "NVRTC not available: " + nv.reason);
    return env.Undefined();
  }
  if (!argCount(info, 3, "nvrtcCompile")) return env.Undefined();
  if (!info[0].IsString() || !info[1].IsString()) {
    throwType(env, "nvrtcCompile: source and name must be strings");
    return env.Undefined();
  }
  if (!info[2].IsArray()) {
    throwType(env, "nvrtcCompile: options must be an array of strings");
    return env.Undefined();
  }
  std::string source = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  Napi::Array arr = info[2].As<Napi::Array>();
  std::vector<std::string> options;
  bool cubin = false;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) {
      throwType(env, "nvrtcCompile: option " + std::to_string(i) + " is not a string");
      return env.Undefined();
    }
    options.push_back(v.As<Napi::String>().Utf8Value());
    const std::string& o = options.back();
    for (const char* flag : {"-arch", "--gpu-architecture"}) {
      std::string f(flag);
      if (o.compare(0, f.size() + 1, f + "=") == 0) cubin = o.compare(f.size() + 1, 3, "sm_") == 0;
    }
    if (i > 0 && (options[i - 1] == "-arch" || options[i - 1] == "--gpu-architecture")) cubin = o.compare(0, 3, "sm_") == 0;
  }
  std::vector<const char*> argv;
  for (const std::string& o : options) argv.push_back(o.c_str());

  nvrtcProgram prog = nullptr;
  if (!nvCheck(env, nv.nvrtcCreateProgram(&prog, source.c_str(), name.c_str(), 0, nullptr, nullptr), "nvrtcCreateProgram", "")) {
    return env.Undefined();
  }
  struct Guard {
    nvrtcProgram* p;
    ~Guard() {
      if (*p != nullptr) nv.nvrtcDestroyProgram(p);
    }
  } guard{&prog};

  nvrtcResult compiled = nv.nvrtcCompileProgram(prog, static_cast<int>(argv.size()), argv.empty() ? nullptr : argv.data());
  std::string log;
  nvrtcResult err = NVRTC_SUCCESS;
  const char* what = nullptr;
  if (!nvBytes(prog, nv.nvrtcGetProgramLogSize, nv.nvrtcGetProgramLog, true, &log, &err, &what, "nvrtcGetProgramLogSize",
               "nvrtcGetProgramLog")) {
    log.clear();
    if (compiled == NVRTC_SUCCESS) {
      nvCheck(env, err, what, "");
      return env.Undefined();
    }
  }
  if (!nvCheck(env, compiled, "nvrtcCompileProgram", log)) return env.Undefined();

  std::string bytes;
  bool got = cubin ? nvBytes(prog, nv.nvrtcGetCUBINSize, nv.nvrtcGetCUBIN, false, &bytes, &err, &what, "nvrtcGetCUBINSize",
                             "nvrtcGetCUBIN")
                   : nvBytes(prog, nv.nvrtcGetPTXSize, nv.nvrtcGetPTX, true, &bytes, &err, &what, "nvrtcGetPTXSize", "nvrtcGetPTX");
  if (!got) {
    nvCheck(env, err, what, log);
    return env.Undefined();
  }
  nvrtcResult destroyed = nv.nvrtcDestroyProgram(&prog);
  prog = nullptr;
  if (!nvCheck(env, destroyed, "nvrtcDestroyProgram", log)) return env.Undefined();

  Napi::Object out = Napi::Object::New(env);
  out.Set(cubin ? "cubin" : "ptx", Napi::Buffer<char>::Copy(env, bytes.data(), bytes.size()));
  out.Set("log", Napi::String::New(env, log));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("ctxCreate", Napi::Function::New(env, CtxCreate, "ctxCreate"));
  exports.Set("ctxSetCurrent", Napi::Function::New(env, CtxSetCurrent, "ctxSetCurrent"));
  exports.Set("ctxRelease", Napi::Function::New(env, CtxRelease, "ctxRelease"));
  exports.Set("ctxSynchronize", Napi::Function::New(env, CtxSynchronize, "ctxSynchronize"));
  exports.Set("memAlloc", Napi::Function::New(env, MemAlloc, "memAlloc"));
  exports.Set("memFree", Napi::Function::New(env, MemFree, "memFree"));
  exports.Set("memsetD8", Napi::Function::New(env, MemsetD8, "memsetD8"));
  exports.Set("memcpyHtoD", Napi::Function::New(env, MemcpyHtoD, "memcpyHtoD"));
  exports.Set("memcpyDtoH", Napi::Function::New(env, MemcpyDtoH, "memcpyDtoH"));
  exports.Set("moduleLoadData", Napi::Function::New(env, ModuleLoadData, "moduleLoadData"));
  exports.Set("moduleUnload", Napi::Function::New(env, ModuleUnload, "moduleUnload"));
  exports.Set("moduleGetFunction", Napi::Function::New(env, ModuleGetFunction, "moduleGetFunction"));
  exports.Set("launchKernel", Napi::Function::New(env, LaunchKernel, "launchKernel"));
  exports.Set("eventCreate", Napi::Function::New(env, EventCreate, "eventCreate"));
  exports.Set("eventRecord", Napi::Function::New(env, EventRecord, "eventRecord"));
  exports.Set("eventSynchronize", Napi::Function::New(env, EventSynchronize, "eventSynchronize"));
  exports.Set("eventElapsedTime", Napi::Function::New(env, EventElapsedTime, "eventElapsedTime"));
  exports.Set("eventDestroy", Napi::Function::New(env, EventDestroy, "eventDestroy"));
  exports.Set("nvrtcProbe", Napi::Function::New(env, NvrtcProbe, "nvrtcProbe"));
  exports.Set("nvrtcCompile", Napi::Function::New(env, NvrtcCompile, "nvrtcCompile"));
#ifdef TESSERA_HAVE_NVRTC_H
  exports.Set("nvrtcBuiltWith", Napi::String::New(env, "nvrtc.h"));
#else
  exports.Set("nvrtcBuiltWith", Napi::String::New(env, "vendored nvrtc_min.h"));
#endif
#ifdef TESSERA_HAVE_CUDA_H
  exports.Set("builtWith", Napi::String::New(env, "cuda.h"));
#else
  exports.Set("builtWith", Napi::String::New(env, "vendored cuda_min.h"));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(tessera_cuda, Init)
