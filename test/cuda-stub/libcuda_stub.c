/*
 * A fake libcuda.so.1 for testing the addon and the CUDA runtime without a GPU (test/cuda.test.ts
 * builds it with cc and runs test/cuda-stub/stub-check.ts with LD_LIBRARY_PATH pointing at it).
 *
 * Device memory is host memory (malloc), so uploads, downloads and memset are real; kernels are not
 * run: cuLaunchKernel appends a line to $TESSERA_STUB_LOG with the function name, grid, block, shared
 * bytes and the parameters, read as $TESSERA_STUB_SIG says ('p' = 64-bit, 'i' = 32-bit int, one
 * letter per parameter). cuModuleLoadData accepts ELF images (cubins) and cuModuleGetFunction finds
 * a name if the image contains it. $TESSERA_STUB_FAIL=<function name>:<CUresult> makes that function
 * fail; $TESSERA_STUB_NO_DEVICE=1 makes cuInit fail with CUDA_ERROR_NO_DEVICE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

struct ctx { int refs; };
struct mod { unsigned char* image; size_t len; };
struct fn { char name[256]; };
struct ev { double ms; };

static struct ctx primary;
static void* current;

/* TESSERA_STUB_FAIL=name:code fails every call of `name` with `code`; name:code:times only the first `times` */
static int fired;
static CUresult injected(const char* name) {
  const char* f = getenv("TESSERA_STUB_FAIL");
  if (!f) { fired = 0; return 0; }
  size_t n = strlen(name);
  if (strncmp(f, name, n) != 0 || f[n] != ':') return 0;
  const char* times = strchr(f + n + 1, ':');
  if (times && fired >= atoi(times + 1)) return 0;
  fired++;
  return atoi(f + n + 1);
}
#define FAILPOINT(name) do { CUresult r_ = injected(name); if (r_) return r_; } while (0)

static const char* names[][2] = {
  {"0", "CUDA_SUCCESS"}, {"1", "CUDA_ERROR_INVALID_VALUE"}, {"2", "CUDA_ERROR_OUT_OF_MEMORY"},
  {"100", "CUDA_ERROR_NO_DEVICE"}, {"101", "CUDA_ERROR_INVALID_DEVICE"}, {"200", "CUDA_ERROR_INVALID_IMAGE"},
  {"500", "CUDA_ERROR_NOT_FOUND"}, {"700", "CUDA_ERROR_ILLEGAL_ADDRESS"}, {"999", "CUDA_ERROR_UNKNOWN"},
};

CUresult cuGetErrorName(CUresult e, const char** s) {
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (atoi(names[i][0]) == e) { *s = names[i][1]; return 0; }
  }
  *s = NULL;
  return 1;
}

CUresult cuGetErrorString(CUresult e, const char** s) {
  const char* n = NULL;
  if (cuGetErrorName(e, &n)) { *s = NULL; return 1; }
  *s = e == 700 ? "an illegal memory access was encountered" : e == 2 ? "out of memory" : "stub error";
  return 0;
}

CUresult cuInit(unsigned int flags) {
  (void)flags;
  if (getenv("TESSERA_STUB_NO_DEVICE")) return 100;
  return 0;
}
CUresult cuDriverGetVersion(int* v) { *v = 12040; return 0; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return 0; }
CUresult cuDeviceGet(CUdevice* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char* name, int len, CUdevice d) { (void)d; snprintf(name, (size_t)len, "Tessera Stub GPU"); return 0; }
CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
  (void)d;
  switch (attr) {
    case 1: *v = 1024; return 0;        /* max threads per block */
    case 2: *v = 1024; return 0;        /* max block dim x */
    case 5: *v = 2147483647; return 0;  /* max grid dim x */
    case 6: *v = 65535; return 0;       /* max grid dim y */
    case 8: *v = 49152; return 0;       /* shared per block */
    case 10: *v = 32; return 0;         /* warp */
    case 16: *v = 132; return 0;        /* SMs */
    case 75: *v = 9; return 0;          /* cc major */
    case 76: *v = 0; return 0;          /* cc minor */
    case 97: *v = 232448; return 0;     /* shared optin */
    default: return 1;
  }
}
CUresult cuDeviceTotalMem_v2(size_t* b, CUdevice d) { (void)d; *b = (size_t)1 << 30; return 0; }
CUresult cuDevicePrimaryCtxRetain(void** c, CUdevice d) { (void)d; primary.refs++; *c = &primary; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { (void)d; if (primary.refs <= 0) return 1; primary.refs--; return 0; }
CUresult cuCtxSetCurrent(void* c) { current = c; return 0; }
CUresult cuCtxSynchronize(void) { FAILPOINT("cuCtxSynchronize"); return current ? 0 : 201; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
  FAILPOINT("cuMemAlloc_v2");
  void* m = malloc(n);
  if (!m) return 2;
  memset(m, 0xAB, n); /* garbage, as real device memory would be: the runtime must zero it */
  *p = (CUdeviceptr)(uintptr_t)m;
  return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free((void*)(uintptr_t)p); return 0; }
CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) { memset((void*)(uintptr_t)p, v, n); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { memcpy((void*)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { FAILPOINT("cuMemcpyDtoH_v2"); memcpy(d, (void*)(uintptr_t)s, n); return 0; }

CUresult cuModuleLoadData(struct mod** m, const void* image) {
  FAILPOINT("cuModuleLoadData");
  const unsigned char* b = (const unsigned char*)image;
  if (!(b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F')) return 200;
  /* ELF64 header: e_shoff at 0x28, e_shentsize at 0x3A, e_shnum at 0x3C: the image ends after the section headers. */
  uint64_t shoff; uint16_t shentsize, shnum;
  memcpy(&shoff, b + 0x28, 8); memcpy(&shentsize, b + 0x3A, 2); memcpy(&shnum, b + 0x3C, 2);
  size_t len = (size_t)(shoff + (uint64_t)shentsize * shnum);
  struct mod* r = (struct mod*)malloc(sizeof *r);
  r->image = (unsigned char*)malloc(len);
  memcpy(r->image, b, len);
  r->len = len;
  *m = r;
  return 0;
}
CUresult cuModuleUnload(struct mod* m) { free(m->image); free(m); return 0; }
CUresult cuModuleGetFunction(struct fn** f, struct mod* m, const char* name) {
  size_t n = strlen(name);
  for (size_t i = 0; i + n <= m->len; i++) {
    if (memcmp(m->image + i, name, n) == 0 && (i + n == m->len || m->image[i + n] == 0)) {
      struct fn* r = (struct fn*)calloc(1, sizeof *r);
      snprintf(r->name, sizeof r->name, "%s", name);
      *f = r;
      return 0;
    }
  }
  return 500;
}

CUresult cuLaunchKernel(struct fn* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
  FAILPOINT("cuLaunchKernel");
  const char* path = getenv("TESSERA_STUB_LOG");
  if (!path) return 0;
  FILE* out = fopen(path, "a");
  if (!out) return 999;
  fprintf(out, "launch %s grid %u %u %u block %u %u %u shared %u stream %p extra %p params", f->name, gx, gy, gz, bx, by, bz,
          shared, stream, (void*)extra);
  const char* sig = getenv("TESSERA_STUB_SIG");
  for (size_t i = 0; sig && sig[i]; i++) {
    if (sig[i] == 'p') fprintf(out, " 0x%llx", (unsigned long long)*(uint64_t*)params[i]);
    else fprintf(out, " %d", *(int32_t*)params[i]);
  }
  fprintf(out, "\n");
  fclose(out);
  return 0;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
CUresult cuEventCreate(struct ev** e, unsigned flags) { (void)flags; *e = (struct ev*)calloc(1, sizeof(struct ev)); return 0; }
CUresult cuEventRecord(struct ev* e, void* s) { (void)s; e->ms = now_ms(); return 0; }
CUresult cuEventSynchronize(struct ev* e) { (void)e; return 0; }
CUresult cuEventElapsedTime_v2(float* ms, struct ev* a, struct ev* b) { *ms = (float)(b->ms - a->ms); return 0; }
CUresult cuEventDestroy_v2(struct ev* e) { free(e); return 0; }
