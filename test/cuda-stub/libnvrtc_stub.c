/*
 * A fake libnvrtc.so for testing the addon's NVRTC path and compileCuda's 'nvrtc' / 'auto' compilers
 * without NVRTC (test/cuda.test.ts builds it with cc and runs test/cuda-stub/nvrtc-check.ts with
 * LD_LIBRARY_PATH pointing at it).
 *
 * nvrtcVersion reports 12.8. nvrtcCompileProgram compiles nothing: for -arch=sm_XX (or
 * --gpu-architecture=sm_XX, either with '=' or as two options) it makes a fixed fake cubin, a minimal ELF64 header followed by
 * "TESSERA-NVRTC-STUB-CUBIN <arch>" and the names of the source's `__global__ void` functions, each
 * NUL-terminated (so the fake libcuda's cuModuleLoadData / cuModuleGetFunction accept it); for a
 * compute_XX arch (or none) a fixed fake PTX text "// TESSERA-NVRTC-STUB-PTX <arch>". The log is
 * "stub: compiled <name> with <options>"; an option --bogus fails with NVRTC_ERROR_INVALID_OPTION. A source containing TESSERA_NVRTC_STUB_FAIL fails with
 * NVRTC_ERROR_COMPILATION and an error log naming the marker. Each compile appends
 * "compile <name> <options>" to $TESSERA_NVRTC_STUB_LOG when that is set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvrtcResult;
struct prog {
  char* src;
  char* name;
  char* log;
  unsigned char* cubin;
  size_t cubinLen;
  char* ptx;
};
typedef struct prog* nvrtcProgram;

static char* dup(const char* s) {
  size_t n = strlen(s) + 1;
  char* r = (char*)malloc(n);
  memcpy(r, s, n);
  return r;
}

const char* nvrtcGetErrorString(nvrtcResult r) {
  switch (r) {
    case 0: return "NVRTC_SUCCESS";
    case 3: return "NVRTC_ERROR_INVALID_INPUT";
    case 4: return "NVRTC_ERROR_INVALID_PROGRAM";
    case 5: return "NVRTC_ERROR_INVALID_OPTION";
    case 6: return "NVRTC_ERROR_COMPILATION";
    default: return "NVRTC_ERROR unknown";
  }
}

nvrtcResult nvrtcVersion(int* major, int* minor) {
  if (!major || !minor) return 3;
  *major = 12;
  *minor = 8;
  return 0;
}

nvrtcResult nvrtcCreateProgram(nvrtcProgram* p, const char* src, const char* name, int numHeaders, const char* const* headers,
                               const char* const* includeNames) {
  (void)headers;
  (void)includeNames;
  if (!p || !src || numHeaders != 0) return 3;
  struct prog* r = (struct prog*)calloc(1, sizeof *r);
  r->src = dup(src);
  r->name = dup(name && *name ? name : "default_program");
  *p = r;
  return 0;
}

nvrtcResult nvrtcDestroyProgram(nvrtcProgram* p) {
  if (!p || !*p) return 4;
  struct prog* r = *p;
  free(r->src);
  free(r->name);
  free(r->log);
  free(r->cubin);
  free(r->ptx);
  free(r);
  *p = NULL;
  return 0;
}

/* Appends the NUL-terminated name of each `__global__ void [__launch_bounds__(...)] NAME(` to out. */
static size_t entryNames(const char* src, unsigned char* out) {
  size_t n = 0;
  const char* s = src;
  while ((s = strstr(s, "__global__ void")) != NULL) {
    s += strlen("__global__ void");
    while (*s == ' ') s++;
    if (strncmp(s, "__launch_bounds__(", 18) == 0) {
      s = strchr(s, ')');
      if (!s) break;
      s++;
      while (*s == ' ') s++;
    }
    const char* b = s;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_') s++;
    if (s > b) {
      if (out) memcpy(out + n, b, (size_t)(s - b)), out[n + (size_t)(s - b)] = 0;
      n += (size_t)(s - b) + 1;
    }
  }
  return n;
}

nvrtcResult nvrtcCompileProgram(nvrtcProgram p, int numOptions, const char* const* options) {
  if (!p) return 4;
  if (numOptions < 0 || (numOptions > 0 && !options)) return 3;
  char opts[8192] = "";
  const char* arch = "";
  for (int i = 0; i < numOptions; i++) {
    if (!options[i]) return 3;
    if (i > 0) strncat(opts, " ", sizeof opts - strlen(opts) - 1);
    strncat(opts, options[i], sizeof opts - strlen(opts) - 1);
    if (strncmp(options[i], "-arch=", 6) == 0) arch = options[i] + 6;
    if (strncmp(options[i], "--gpu-architecture=", 19) == 0) arch = options[i] + 19;
    if ((strcmp(options[i], "-arch") == 0 || strcmp(options[i], "--gpu-architecture") == 0) && i + 1 < numOptions && options[i + 1]) {
      arch = options[i + 1];
    }
    if (strncmp(options[i], "--bogus", 7) == 0) {
      free(p->log);
      p->log = dup("nvrtc: error: unrecognized option --bogus");
      return 5;
    }
  }
  const char* path = getenv("TESSERA_NVRTC_STUB_LOG");
  if (path) {
    FILE* f = fopen(path, "a");
    if (f) {
      fprintf(f, "compile %s %s\n", p->name, opts);
      fclose(f);
    }
  }
  free(p->log);
  free(p->cubin);
  free(p->ptx);
  p->cubin = NULL;
  p->ptx = NULL;
  p->cubinLen = 0;
  char buf[9000];
  if (strstr(p->src, "TESSERA_NVRTC_STUB_FAIL")) {
    snprintf(buf, sizeof buf, "%s(1): error: the stub rejects this source (TESSERA_NVRTC_STUB_FAIL)\n1 error detected in the compilation of \"%s\".\n",
             p->name, p->name);
    p->log = dup(buf);
    return 6;
  }
  snprintf(buf, sizeof buf, "stub: compiled %s with %s", p->name, opts);
  p->log = dup(buf);
  if (strncmp(arch, "sm_", 3) == 0) {
    char tag[128];
    snprintf(tag, sizeof tag, "TESSERA-NVRTC-STUB-CUBIN %s", arch);
    size_t names = entryNames(p->src, NULL);
    size_t len = 64 + strlen(tag) + 1 + names;
    unsigned char* b = (unsigned char*)calloc(1, len);
    memcpy(b, "\x7f" "ELF", 4);
    b[4] = 2; /* ELFCLASS64 */
    b[5] = 1; /* little-endian */
    uint64_t shoff = len; /* no section headers: the image ends at e_shoff */
    memcpy(b + 0x28, &shoff, 8);
    memcpy(b + 64, tag, strlen(tag) + 1);
    entryNames(p->src, b + 64 + strlen(tag) + 1);
    p->cubin = b;
    p->cubinLen = len;
  }
  snprintf(buf, sizeof buf, "// TESSERA-NVRTC-STUB-PTX %s\n", arch);
  p->ptx = dup(buf);
  return 0;
}

nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram p, size_t* n) {
  if (!p) return 4;
  if (!n) return 3;
  *n = (p->log ? strlen(p->log) : 0) + 1;
  return 0;
}
nvrtcResult nvrtcGetProgramLog(nvrtcProgram p, char* out) {
  if (!p) return 4;
  if (!out) return 3;
  strcpy(out, p->log ? p->log : "");
  return 0;
}
nvrtcResult nvrtcGetCUBINSize(nvrtcProgram p, size_t* n) {
  if (!p) return 4;
  if (!n) return 3;
  *n = p->cubinLen; /* 0 for a virtual arch, as NVRTC does */
  return 0;
}
nvrtcResult nvrtcGetCUBIN(nvrtcProgram p, char* out) {
  if (!p) return 4;
  if (!out || !p->cubin) return 3;
  memcpy(out, p->cubin, p->cubinLen);
  return 0;
}
nvrtcResult nvrtcGetPTXSize(nvrtcProgram p, size_t* n) {
  if (!p) return 4;
  if (!n || !p->ptx) return 3;
  *n = strlen(p->ptx) + 1;
  return 0;
}
nvrtcResult nvrtcGetPTX(nvrtcProgram p, char* out) {
  if (!p) return 4;
  if (!out || !p->ptx) return 3;
  strcpy(out, p->ptx);
  return 0;
}
