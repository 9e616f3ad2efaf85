// Tessera's CUDA emulator: the device-side CUDA that Tessera's kernels use, on the CPU, so that the
// CUDA C++ they print runs (compiled by the host's g++) without a GPU. See emulator.ts.
//
// Blocks run one after another; the threads of a block are fibers (ucontext) run in turn (in reverse
// in odd blocks) until each finishes or waits: __syncthreads releases when every live thread of the block waits there, a warp
// shuffle when every live lane of its mask has written its value. A wait that can never be released
// (threads waiting at different barriers) is reported as a deadlock, never a hang.
//   __shared__      a static array in its own section: one block runs at a time, so its threads
//                   share it; it is filled with 0xff bytes (NaN as floats) before every block, as
//                   uninitialized shared memory would be anything
//   buffers         16-byte aligned and ending just before an inaccessible page: a read or write past
//                   the end (by more than the alignment's slack) faults, and is reported with the
//                   buffer's parameter index and the offset
//   warps           32 consecutive threads of the block (threadIdx.x / 32)
//   __activemask()  the warp's lanes that have not returned
//   wmma            fragments hold whole 16x16 tiles; every lane computes the whole product (the
//                   element layout inside a fragment is opaque to Tessera's kernels: they only fill,
//                   load, multiply and store fragments)
//   half, bf16, fp8 CUDA's own headers, whose host paths convert as the device does
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

#undef __shared__
#define __shared__ static __attribute__((section("tsr_shared")))
// the section's bounds, from the linker (weak: a unit without shared arrays has no such section)
extern "C" char __start_tsr_shared[] __attribute__((weak));
extern "C" char __stop_tsr_shared[] __attribute__((weak));
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

// ------------------------------------------------------------------------------------------------
// Threads, blocks, barriers

enum TsrEmuState { TSR_RUNNABLE, TSR_BLOCK_WAIT, TSR_WARP_WAIT, TSR_DONE };

struct TsrEmuThread {
  ucontext_t ctx;
  unsigned tid;
  TsrEmuState state;
  unsigned mask;  // the lanes a warp wait waits for
};

static uint3 tsr_emu_block_idx;
static dim3 tsr_emu_grid_dim;
static dim3 tsr_emu_block_dim;
static TsrEmuThread* tsr_emu_cur;
static ucontext_t tsr_emu_sched;
static uint32_t tsr_emu_slots[1024];

static inline uint3 tsr_emu_thread_idx() { return make_uint3(tsr_emu_cur->tid, 0u, 0u); }
#define threadIdx (tsr_emu_thread_idx())
#define blockIdx tsr_emu_block_idx
#define gridDim tsr_emu_grid_dim
#define blockDim tsr_emu_block_dim

static inline void tsr_emu_wait(TsrEmuState s, unsigned mask) {
  tsr_emu_cur->state = s;
  tsr_emu_cur->mask = mask;
  swapcontext(&tsr_emu_cur->ctx, &tsr_emu_sched);
}

static inline void __syncthreads() { tsr_emu_wait(TSR_BLOCK_WAIT, 0u); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { tsr_emu_wait(TSR_WARP_WAIT, mask); }
static inline void __threadfence_block() {}
static inline void __threadfence() {}

static std::vector<TsrEmuThread>* tsr_emu_threads;

static inline unsigned __activemask() {
  const unsigned base = tsr_emu_cur->tid & ~31u;
  unsigned m = 0u;
  for (unsigned l = 0; l < 32u && base + l < tsr_emu_threads->size(); l++)
    if ((*tsr_emu_threads)[base + l].state != TSR_DONE) m |= 1u << l;
  return m;
}

template <typename T> static inline T tsr_emu_exchange(unsigned mask, T var, unsigned src) {
  static_assert(sizeof(T) == 4, "the emulator shuffles 32-bit values");
  memcpy(&tsr_emu_slots[tsr_emu_cur->tid], &var, 4);
  __syncwarp(mask);
  T r;
  memcpy(&r, &tsr_emu_slots[(tsr_emu_cur->tid & ~31u) + src], 4);
  __syncwarp(mask);
  return r;
}

template <typename T> static inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) {
  const unsigned lane = tsr_emu_cur->tid & 31u;
  const unsigned seg = lane & ~(unsigned)(width - 1);
  return tsr_emu_exchange(mask, var, seg + ((unsigned)srcLane & (unsigned)(width - 1)));
}

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) {
  const unsigned lane = tsr_emu_cur->tid & 31u;
  const unsigned seg = lane & ~(unsigned)(width - 1);
  unsigned src = lane ^ (unsigned)laneMask;
  // a lane of a later group of `width` reads its own value
  if ((src & ~(unsigned)(width - 1)) > seg) src = lane;
  return tsr_emu_exchange(mask, var, src);
}

template <typename T> static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const unsigned lane = tsr_emu_cur->tid & 31u;
  const unsigned seg = lane & ~(unsigned)(width - 1);
  const unsigned src = lane + delta;
  return tsr_emu_exchange(mask, var, src < seg + (unsigned)width ? src : lane);
}

// ------------------------------------------------------------------------------------------------
// Device functions Tessera's kernels call that the host headers do not declare

static inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
static inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
static inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
static inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
// cvt.rzi: toward zero, NaN to 0, saturating at the type's range
static inline int __float2int_rz(float x) {
  return x != x ? 0 : x >= 2147483648.0f ? 2147483647 : x <= -2147483648.0f ? (-2147483647 - 1) : (int)x;
}
static inline unsigned __float2uint_rz(float x) {
  return x != x || x <= 0.0f ? 0u : x >= 4294967296.0f ? 4294967295u : (unsigned)x;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __saturatef(float x) { return x != x ? 0.0f : fminf(fmaxf(x, 0.0f), 1.0f); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
  return c;
}

// ------------------------------------------------------------------------------------------------
// Tensor cores (WMMA 16x16x16)

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
  static const int num_elements = 256;
  T x[256];
};

template <typename Use, typename T, typename Layout>
static inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  const bool col = __is_same(Layout, col_major);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) f.x[r * 16 + c] = col ? p[c * ldm + r] : p[r * ldm + c];
}

template <typename Use, typename T, typename Layout, typename V>
static inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, V v) {
  for (int i = 0; i < 256; i++) f.x[i] = (T)v;
}

static inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * 16 + c];
}

template <typename T, typename LA, typename LB>
static inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                            const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  float out[256];
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float s = c.x[i * 16 + j];
      for (int k = 0; k < 16; k++) s += (float)a.x[i * 16 + k] * (float)b.x[k * 16 + j];
      out[i * 16 + j] = s;
    }
  for (int i = 0; i < 256; i++) d.x[i] = out[i];
}
}  // namespace wmma
}  // namespace nvcuda

// ------------------------------------------------------------------------------------------------
// The launch: every block in turn, its threads as fibers

typedef void (*TsrEmuEntry)(void* const* ptrs, const int* ints);

static TsrEmuEntry tsr_emu_entry_fn;
static void* const* tsr_emu_ptrs;
static const int* tsr_emu_ints;

static void tsr_emu_thread_main() {
  tsr_emu_entry_fn(tsr_emu_ptrs, tsr_emu_ints);
  tsr_emu_cur->state = TSR_DONE;
  swapcontext(&tsr_emu_cur->ctx, &tsr_emu_sched);
}

static const size_t TSR_EMU_STACK = 256 * 1024;

// Runs one block; returns 0, or 3 after printing why the block cannot finish.
static int tsr_emu_run_block(std::vector<TsrEmuThread>& threads, char* stacks) {
  const unsigned n = (unsigned)threads.size();
  for (unsigned t = 0; t < n; t++) {
    TsrEmuThread& th = threads[t];
    th.tid = t;
    th.state = TSR_RUNNABLE;
    th.mask = 0u;
    getcontext(&th.ctx);
    th.ctx.uc_stack.ss_sp = &stacks[(size_t)t * TSR_EMU_STACK];
    th.ctx.uc_stack.ss_size = TSR_EMU_STACK;
    th.ctx.uc_link = nullptr;
    makecontext(&th.ctx, tsr_emu_thread_main, 0);
  }
  for (;;) {
    // threads in order in even blocks and in reverse in odd ones, so that a kernel whose threads
    // race (communicate without a barrier) sees both orders
    const bool reverse = ((tsr_emu_block_idx.x + tsr_emu_block_idx.y) & 1u) != 0u;
    for (unsigned i = 0; i < n; i++) {
      TsrEmuThread& th = threads[reverse ? n - 1 - i : i];
      while (th.state == TSR_RUNNABLE) {
        tsr_emu_cur = &th;
        swapcontext(&tsr_emu_sched, &th.ctx);
      }
    }
    bool live = false, allBlock = true;
    for (const TsrEmuThread& th : threads) {
      if (th.state == TSR_DONE) continue;
      live = true;
      if (th.state != TSR_BLOCK_WAIT) allBlock = false;
    }
    if (!live) return 0;
    if (allBlock) {
      for (TsrEmuThread& th : threads) if (th.state == TSR_BLOCK_WAIT) th.state = TSR_RUNNABLE;
      continue;
    }
    // warp waits: released when every live lane of the waiters' masks waits too
    bool released = false;
    for (unsigned base = 0; base < n; base += 32) {
      unsigned mask = 0u;
      for (unsigned l = 0; l < 32 && base + l < n; l++) if (threads[base + l].state == TSR_WARP_WAIT) mask |= threads[base + l].mask;
      if (mask == 0u) continue;
      bool ready = true;
      for (unsigned l = 0; l < 32 && base + l < n; l++) {
        const TsrEmuState s = threads[base + l].state;
        if ((mask >> l & 1u) && s != TSR_DONE && s != TSR_WARP_WAIT) ready = false;
      }
      if (!ready) continue;
      for (unsigned l = 0; l < 32 && base + l < n; l++) if (threads[base + l].state == TSR_WARP_WAIT) threads[base + l].state = TSR_RUNNABLE;
      released = true;
    }
    if (!released) {
      unsigned atBlock = 0, atWarp = 0, done = 0;
      for (const TsrEmuThread& th : threads) th.state == TSR_BLOCK_WAIT ? atBlock++ : th.state == TSR_WARP_WAIT ? atWarp++ : done++;
      fprintf(stderr, "deadlock in block (%u, %u, %u): %u threads wait at __syncthreads, %u at a warp shuffle or __syncwarp, %u returned\n",
              tsr_emu_block_idx.x, tsr_emu_block_idx.y, tsr_emu_block_idx.z, atBlock, atWarp, done);
      return 3;
    }
  }
}

static bool tsr_emu_read(FILE* f, void* p, size_t n) { return fread(p, 1, n, f) == n; }

// Buffers and their guard pages, for the fault report.
struct TsrEmuBuffer {
  char* base;
  uint64_t bytes;
  char* guard;
  long param;
};
static std::vector<TsrEmuBuffer> tsr_emu_buffers;

static void tsr_emu_fault(int sig, siginfo_t* info, void*) {
  char msg[256];
  int n = 0;
  const char* a = (const char*)info->si_addr;
  for (const TsrEmuBuffer& b : tsr_emu_buffers) {
    if (a >= b.guard && a < b.guard + 4096) {
      n = snprintf(msg, sizeof msg, "an access past the end of parameter %ld (a buffer of %llu bytes), at byte offset %lld\n", b.param,
                   (unsigned long long)b.bytes, (long long)(a - b.base));
      break;
    }
  }
  if (n == 0) n = snprintf(msg, sizeof msg, "%s at address %p, outside every buffer\n", sig == SIGBUS ? "a bus error" : "a segmentation fault", info->si_addr);
  if (write(2, msg, (size_t)n) < 0) _exit(4);
  _exit(4);
}

// A buffer of `bytes` ending (16-byte aligned) just before an inaccessible page.
static char* tsr_emu_guarded(uint64_t bytes, char** guard) {
  const size_t page = 4096;
  const size_t pages = (size_t)((bytes + 15 + page - 1) / page) + 1;
  char* m = (char*)mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  *guard = m + (pages - 1) * page;
  if (mprotect(*guard, page, PROT_NONE) != 0) return nullptr;
  return (char*)((uintptr_t)(*guard - bytes) & ~(uintptr_t)15);
}

// The launch file: u32 grid x, y, z, block x, y, z, buffers, params; each buffer a u64 byte count
// and its bytes; each param a u32 kind (0: pointer, 1: int), u32 buffer or value, u64 byte offset.
// The buffers' bytes are written back to the output file after the launch, in the same order.
static int tsr_emu_main(int argc, char** argv, TsrEmuEntry entry) {
  if (argc != 3) { fprintf(stderr, "usage: %s <launch file> <output file>\n", argv[0]); return 2; }
  FILE* in = fopen(argv[1], "rb");
  if (!in) { fprintf(stderr, "cannot open %s\n", argv[1]); return 2; }
  uint32_t head[8];
  if (!tsr_emu_read(in, head, sizeof head)) { fprintf(stderr, "short launch file\n"); return 2; }
  tsr_emu_buffers.resize(head[6]);
  for (uint32_t b = 0; b < head[6]; b++) {
    TsrEmuBuffer& buf = tsr_emu_buffers[b];
    if (!tsr_emu_read(in, &buf.bytes, 8)) { fprintf(stderr, "short launch file\n"); return 2; }
    buf.base = tsr_emu_guarded(buf.bytes, &buf.guard);
    buf.param = -1;
    if (!buf.base) { fprintf(stderr, "no memory for a buffer of %llu bytes\n", (unsigned long long)buf.bytes); return 2; }
    if (!tsr_emu_read(in, buf.base, buf.bytes)) { fprintf(stderr, "short launch file\n"); return 2; }
  }
  std::vector<void*> ptrs;
  std::vector<int> ints;
  for (uint32_t i = 0; i < head[7]; i++) {
    uint32_t kv[2];
    uint64_t off;
    if (!tsr_emu_read(in, kv, 8) || !tsr_emu_read(in, &off, 8)) { fprintf(stderr, "short launch file\n"); return 2; }
    if (kv[0] == 0) {
      if (kv[1] >= head[6]) { fprintf(stderr, "parameter %u names buffer %u of %u\n", i, kv[1], head[6]); return 2; }
      ptrs.push_back(tsr_emu_buffers[kv[1]].base + off);
      if (tsr_emu_buffers[kv[1]].param < 0) tsr_emu_buffers[kv[1]].param = (long)i;
    } else {
      ints.push_back((int)kv[1]);
    }
  }
  fclose(in);
  tsr_emu_entry_fn = entry;
  tsr_emu_ptrs = ptrs.data();
  tsr_emu_ints = ints.data();
  tsr_emu_grid_dim = dim3(head[0], head[1], head[2]);
  tsr_emu_block_dim = dim3(head[3], head[4], head[5]);
  if (head[4] != 1 || head[5] != 1) { fprintf(stderr, "the emulator runs 1-D blocks\n"); return 2; }
  static char altstack[64 * 1024];
  stack_t ss = {};
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  sigaltstack(&ss, nullptr);
  struct sigaction sa = {};
  sa.sa_sigaction = tsr_emu_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
  std::vector<TsrEmuThread> threads(head[3]);
  // (malloc: the pages a fiber never touches are never committed)
  char* stacks = (char*)malloc((size_t)head[3] * TSR_EMU_STACK);
  if (!stacks) { fprintf(stderr, "no memory for %u fiber stacks\n", head[3]); return 2; }
  tsr_emu_threads = &threads;
  for (uint32_t z = 0; z < head[2]; z++)
    for (uint32_t y = 0; y < head[1]; y++)
      for (uint32_t x = 0; x < head[0]; x++) {
        tsr_emu_block_idx = make_uint3(x, y, z);
        if (__start_tsr_shared) memset(__start_tsr_shared, 0xff, (size_t)(__stop_tsr_shared - __start_tsr_shared));
        const int rc = tsr_emu_run_block(threads, stacks);
        if (rc != 0) return rc;
      }
  FILE* out = fopen(argv[2], "wb");
  if (!out) { fprintf(stderr, "cannot write %s\n", argv[2]); return 2; }
  for (const TsrEmuBuffer& b : tsr_emu_buffers) fwrite(b.base, 1, b.bytes, out);
  fclose(out);
  return 0;
}
