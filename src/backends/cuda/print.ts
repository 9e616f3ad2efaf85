/**
 * CUDA printer: Kernel IR -> one `extern "C" __global__` function per kernel, from the same IR the
 * WGSL and JS printers read. Buffers are pointer parameters in binding order, then one `int` per
 * symbolic dim (kernel.uniforms, in order). The launch is 1-D in the IR; the runtime (or a PyTorch
 * caller) folds a large grid into x/y, so the linear id is (blockIdx.y * gridDim.x + blockIdx.x) *
 * blockDim.x + threadIdx.x and kernels guard `tid < threads` themselves.
 *
 * Types are native: f16 is `__half` (loads widen to float, stores round to nearest even), bool is
 * one byte (as torch stores it), and integer arithmetic wraps through unsigned so it is defined.
 * Helpers match the reference semantics where C differs: NaN-propagating fmax/fmin, saturating
 * float->int with NaN -> 0 (PTX cvt.rzi.sat), integer division and modulo by zero give 0.
 */
import { isHalf, type DType } from '../../ir/dtype.js';
import { forEachKExpr, kstmtBodies, type KBinary, type KFragment, type KExpr, type Kernel, type KStmt, type KType, type KUnary, type Scalar } from '../../ir/kernel.js';
import { fail } from '../../errors.js';

export function cudaStorageType(d: DType): string {
  switch (d) {
    case 'f32': return 'float';
    case 'f16': return '__half';
    case 'bf16': return '__nv_bfloat16';
    case 'i32': return 'int';
    case 'u32': return 'unsigned int';
    case 'bool': return 'unsigned char';
  }
}

/** A 16-bit float widened to float, and a float rounded to 16 bits (nearest even); others as they are. */
function widen(d: 'f16' | 'bf16' | undefined, x: string): string {
  return d === 'f16' ? `__half2float(${x})` : d === 'bf16' ? `__bfloat162float(${x})` : x;
}
function narrow(d: 'f16' | 'bf16' | undefined, x: string): string {
  return d === 'f16' ? `__float2half_rn(${x})` : d === 'bf16' ? `__float2bfloat16_rn(${x})` : x;
}

/** Bytes per element in CUDA storage (native: f16 and bf16 2, bool 1). */
export function cudaElementBytes(d: DType): number {
  switch (d) {
    case 'f32': case 'i32': case 'u32': return 4;
    case 'f16': case 'bf16': return 2;
    case 'bool': return 1;
  }
}

const SCALAR: Record<KType, string> = { f32: 'float', i32: 'int', u32: 'unsigned int', bool: 'bool', vec4f: 'float4' };

/** Shared definitions every Tessera CUDA translation unit starts with (once per file). */
export const CUDA_PRELUDE = `#include <cuda_fp16.h>
#include <cuda_bf16.h>
#ifndef TESSERA_PRELUDE
#define TESSERA_PRELUDE
__device__ __forceinline__ float tsr_fmax(float a, float b) { return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fmaxf(a, b); }
__device__ __forceinline__ float tsr_fmin(float a, float b) { return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fminf(a, b); }
__device__ __forceinline__ int tsr_idiv(int a, int b) { return b == 0 ? 0 : (b == -1 ? (int)(0u - (unsigned)a) : a / b); }
__device__ __forceinline__ int tsr_imod(int a, int b) { return (b == 0 || b == -1) ? 0 : a % b; }
__device__ __forceinline__ unsigned tsr_udiv(unsigned a, unsigned b) { return b == 0u ? 0u : a / b; }
__device__ __forceinline__ unsigned tsr_umod(unsigned a, unsigned b) { return b == 0u ? 0u : a % b; }
__device__ __forceinline__ int tsr_iadd(int a, int b) { return (int)((unsigned)a + (unsigned)b); }
__device__ __forceinline__ int tsr_isub(int a, int b) { return (int)((unsigned)a - (unsigned)b); }
__device__ __forceinline__ int tsr_imul(int a, int b) { return (int)((unsigned)a * (unsigned)b); }
__device__ __forceinline__ int tsr_ineg(int a) { return (int)(0u - (unsigned)a); }
__device__ __forceinline__ int tsr_iabs(int a) { return a < 0 ? tsr_ineg(a) : a; }
__device__ __forceinline__ int tsr_ishl(int a, int b) { return (int)((unsigned)a << (b & 31)); }
// four signed int8 lanes per word (lane i = bits 8i..8i+7): dp4a on sm_61+, else the lanes sign-extended by shifts
__device__ __forceinline__ int tsr_dot4i8(unsigned a, unsigned b) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 610
  return __dp4a((int)a, (int)b, 0);
#else
  return ((int)(a << 24) >> 24) * ((int)(b << 24) >> 24) + ((int)(a << 16) >> 24) * ((int)(b << 16) >> 24)
    + ((int)(a << 8) >> 24) * ((int)(b << 8) >> 24) + ((int)a >> 24) * ((int)b >> 24);
#endif
}
template <typename T, typename F> __device__ __forceinline__ T tsr_sg_reduce(T x, int width, F f) {
  for (int o = width >> 1; o > 0; o >>= 1) x = f(x, __shfl_xor_sync(__activemask(), x, o, width));
  return x;
}
__device__ __forceinline__ float tsr_sg_add_f(float x, int w) { return tsr_sg_reduce(x, w, [](float a, float b) { return a + b; }); }
__device__ __forceinline__ float tsr_sg_max_f(float x, int w) { return tsr_sg_reduce(x, w, [](float a, float b) { return tsr_fmax(a, b); }); }
__device__ __forceinline__ float tsr_sg_min_f(float x, int w) { return tsr_sg_reduce(x, w, [](float a, float b) { return tsr_fmin(a, b); }); }
__device__ __forceinline__ int tsr_sg_add_i(int x, int w) { return tsr_sg_reduce(x, w, [](int a, int b) { return tsr_iadd(a, b); }); }
__device__ __forceinline__ int tsr_sg_max_i(int x, int w) { return tsr_sg_reduce(x, w, [](int a, int b) { return max(a, b); }); }
__device__ __forceinline__ int tsr_sg_min_i(int x, int w) { return tsr_sg_reduce(x, w, [](int a, int b) { return min(a, b); }); }
__device__ __forceinline__ unsigned tsr_sg_add_u(unsigned x, int w) { return tsr_sg_reduce(x, w, [](unsigned a, unsigned b) { return a + b; }); }
__device__ __forceinline__ unsigned tsr_sg_max_u(unsigned x, int w) { return tsr_sg_reduce(x, w, [](unsigned a, unsigned b) { return max(a, b); }); }
__device__ __forceinline__ unsigned tsr_sg_min_u(unsigned x, int w) { return tsr_sg_reduce(x, w, [](unsigned a, unsigned b) { return min(a, b); }); }
// four consecutive floats; one 16-byte load when the address is aligned (a torch tensor may be an offset view)
__device__ __forceinline__ float4 tsr_ld4(const float* p, int i) {
  const float* q = p + i;
  if ((reinterpret_cast<unsigned long long>(q) & 15ull) == 0ull) return *reinterpret_cast<const float4*>(q);
  return make_float4(q[0], q[1], q[2], q[3]);
}
__device__ __forceinline__ void tsr_st4(float* p, int i, float4 v) {
  float* q = p + i;
  if ((reinterpret_cast<unsigned long long>(q) & 15ull) == 0ull) { *reinterpret_cast<float4*>(q) = v; return; }
  q[0] = v.x; q[1] = v.y; q[2] = v.z; q[3] = v.w;
}
// eight halves from global to shared memory, or eight zeros where !valid (a scopy8): an asynchronous
// 16-byte copy on sm_80+ (cp.async, completed by tsr_copy_wait before the next barrier), one 16-byte
// load and store before, 2-byte copies from a source that is not 16-byte aligned (an offset view)
template <typename T> __device__ __forceinline__ void tsr_copy16(T* dst, const T* src, bool valid) {
  if ((reinterpret_cast<unsigned long long>(src) & 15ull) != 0ull) {
    const unsigned short* s16 = reinterpret_cast<const unsigned short*>(src);
    unsigned short* d16 = reinterpret_cast<unsigned short*>(dst);
    for (int i = 0; i < 8; i++) d16[i] = valid ? s16[i] : (unsigned short)0;
    return;
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" :: "r"(s), "l"(src), "r"(valid ? 16 : 0) : "memory");
#else
  *reinterpret_cast<uint4*>(dst) = valid ? *reinterpret_cast<const uint4*>(src) : make_uint4(0u, 0u, 0u, 0u);
#endif
}
__device__ __forceinline__ void tsr_copy_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\\n" ::: "memory");
#endif
}
__device__ __forceinline__ float4 tsr_add4(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }
__device__ __forceinline__ float4 tsr_sub4(float4 a, float4 b) { return make_float4(a.x - b.x, a.y - b.y, a.z - b.z, a.w - b.w); }
__device__ __forceinline__ float4 tsr_mul4(float4 a, float4 b) { return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w); }
__device__ __forceinline__ float4 tsr_div4(float4 a, float4 b) { return make_float4(a.x / b.x, a.y / b.y, a.z / b.z, a.w / b.w); }
__device__ __forceinline__ float4 tsr_splat4(float s) { return make_float4(s, s, s, s); }
__device__ __forceinline__ float4 tsr_fma4(float4 a, float4 b, float4 c) {
  return make_float4(fmaf(a.x, b.x, c.x), fmaf(a.y, b.y, c.y), fmaf(a.z, b.z, c.z), fmaf(a.w, b.w, c.w));
}
#endif
`;

function lit(e: Extract<KExpr, { k: 'lit' }>): string {
  switch (e.t) {
    case 'bool': return e.v ? 'true' : 'false';
    case 'u32': return `${e.v >>> 0}u`;
    case 'i32': return e.v === -2147483648 ? '(-2147483647 - 1)' : String(e.v | 0);
    case 'f32': {
      if (Number.isNaN(e.v)) return '__int_as_float(0x7fc00000)';
      if (e.v === Infinity) return '__int_as_float(0x7f800000)';
      if (e.v === -Infinity) return '__int_as_float(0xff800000)';
      if (Object.is(e.v, -0)) return '-0.0f';
      let s = String(Math.fround(e.v));
      for (let p = 1; p <= 9; p++) {
        const c = Math.fround(e.v).toPrecision(p);
        if (Math.fround(Number(c)) === Math.fround(e.v)) {
          s = String(Number(c));
          break;
        }
      }
      if (!/[.eE]/.test(s)) s += '.0';
      return `${s}f`;
    }
  }
}

class Printer {
  /** The kernel stages with scopy8 (its barriers first wait for asynchronous copies). */
  private readonly copies: boolean;
  constructor(private readonly k: Kernel) {
    this.copies = hasStmt(k.body, 'scopy8');
  }

  private bufType(name: string): DType {
    const b = this.k.buffers.find((x) => x.name === name);
    if (!b) fail('E_INTERNAL', `kernel ${this.k.name} uses unknown buffer ${name}`);
    return b.dtype;
  }

  typeOf(e: KExpr): Scalar {
    const t = e.k === 'uniform' || e.k === 'tid' || e.k === 'lid' || e.k === 'wid' ? 'i32' : e.t;
    return t === 'vec4f' ? fail('E_INTERNAL', `kernel ${this.k.name}: a vec4 value where a scalar is expected`) : t;
  }

  expr(e: KExpr): string {
    switch (e.k) {
      case 'lit': return lit(e);
      case 'var': return e.name;
      case 'uniform': return `d_${e.name}`;
      case 'tid': return 'tid';
      case 'lid': return this.k.warp ? '((int)(threadIdx.x >> 5))' : '((int)threadIdx.x)';
      case 'wid': return '((int)(blockIdx.y * gridDim.x + blockIdx.x))';
      case 'load': {
        const x = `b_${e.buf}[${this.expr(e.index)}]`;
        const d = this.bufType(e.buf);
        return d === 'bool' ? `(${x} != 0)` : isHalf(d) ? widen(d, x) : x;
      }
      case 'sload': return widen(this.half(e.arr), `s_${e.arr}[${this.expr(e.index)}]`);
      case 'load4': {
        if (this.bufType(e.buf) !== 'f32') fail('E_INTERNAL', `kernel ${this.k.name}: vec4 loads from ${this.bufType(e.buf)} buffer ${e.buf}`);
        return `tsr_ld4(b_${e.buf}, ${this.expr(e.index)})`;
      }
      case 'splat': return `tsr_splat4(${this.expr(e.a)})`;
      case 'comp': return `(${this.expr(e.a)}).${'xyzw'[e.i]}`;
      case 'fma4': return `tsr_fma4(${this.expr(e.a)}, ${this.expr(e.b)}, ${this.expr(e.c)})`;
      case 'vec4': return `make_float4(${e.a.map((x) => this.expr(x)).join(', ')})`;
      case 'bin4': return `tsr_${e.op}4(${this.expr(e.a)}, ${this.expr(e.b)})`;
      case 'select': return `(${this.expr(e.c)} ? ${this.expr(e.a)} : ${this.expr(e.b)})`;
      case 'cast': return this.cast(e.t, e.a);
      case 'subgroup': {
        if (this.k.warp) fail('E_INTERNAL', `kernel ${this.k.name}: subgroup operations in a warp kernel`);
        // the workgroup is one warp (<= 32 lanes): a butterfly over the block's lanes
        const fn = `tsr_sg_${e.op}_${e.t === 'f32' ? 'f' : e.t === 'u32' ? 'u' : 'i'}`;
        return `${fn}(${this.expr(e.a)}, ${this.k.workgroupSize})`;
      }
      case 'shuffle': {
        if (this.k.warp) fail('E_INTERNAL', `kernel ${this.k.name}: a shuffle in a warp kernel`);
        // the workgroup is one warp (<= 32 lanes)
        return `__shfl_sync(__activemask(), ${this.expr(e.a)}, ${this.expr(e.lane)}, ${this.k.workgroupSize})`;
      }
      case 'un': return this.unary(e.op, e.t, e.a);
      case 'bin': return this.binary(e.op, e.a, e.b);
    }
  }

  private cast(t: Scalar, a: KExpr): string {
    const x = this.expr(a);
    const from = this.typeOf(a);
    if (t === 'bool') return from === 'f32' ? `(${x} != 0.0f)` : `(${x} != 0)`;
    if (from === 'bool') return `(${SCALAR[t]})(${x} ? 1 : 0)`;
    if (from === 'f32' && t === 'i32') return `__float2int_rz(${x})`;
    if (from === 'f32' && t === 'u32') return `__float2uint_rz(${x})`;
    return `((${SCALAR[t]})(${x}))`;
  }

  private unary(op: KUnary, t: Scalar, a: KExpr): string {
    const x = this.expr(a);
    if (t === 'i32' && op === 'neg') return `tsr_ineg(${x})`;
    if (t === 'i32' && op === 'abs') return `tsr_iabs(${x})`;
    if (t === 'u32' && op === 'neg') return `(0u - ${x})`;
    if (t === 'u32' && op === 'abs') return x;
    switch (op) {
      case 'neg': return `(-${x})`;
      case 'not': return `(!${x})`;
      case 'isnan': return `isnan(${x})`;
      case 'abs': return `fabsf(${x})`;
      case 'exp': case 'expn': return `expf(${x})`;
      case 'log': return `logf(${x})`;
      case 'sqrt': return `sqrtf(${x})`;
      case 'rsqrt': return `rsqrtf(${x})`;
      case 'sin': return `sinf(${x})`;
      case 'cos': return `cosf(${x})`;
      case 'tanh': return `tanhf(${x})`;
      case 'erf': return `erff(${x})`;
      case 'floor': return `floorf(${x})`;
      case 'ceil': return `ceilf(${x})`;
      case 'f16round': return widen('f16', narrow('f16', x));
      case 'bf16round': return widen('bf16', narrow('bf16', x));
    }
  }

  private binary(op: KBinary, a: KExpr, b: KExpr): string {
    const x = this.expr(a);
    const y = this.expr(b);
    const t = this.typeOf(a);
    const C: Partial<Record<KBinary, string>> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=', and: '&&', or: '||', band: '&', bor: '|', bxor: '^' };
    if (C[op]) return `(${x} ${C[op]} ${y})`;
    if (op === 'dot4i8') return `tsr_dot4i8(${x}, ${y})`;
    if (t === 'f32') {
      switch (op) {
        case 'add': return `(${x} + ${y})`;
        case 'sub': return `(${x} - ${y})`;
        case 'mul': return `(${x} * ${y})`;
        case 'div': return `(${x} / ${y})`;
        case 'mod': return `fmodf(${x}, ${y})`;
        case 'pow': return `powf(${x}, ${y})`;
        case 'max': return `tsr_fmax(${x}, ${y})`;
        case 'min': return `tsr_fmin(${x}, ${y})`;
        default: return fail('E_UNSUPPORTED', `f32 ${op} in kernel ${this.k.name}`);
      }
    }
    if (t === 'i32') {
      switch (op) {
        case 'add': return `tsr_iadd(${x}, ${y})`;
        case 'sub': return `tsr_isub(${x}, ${y})`;
        case 'mul': return `tsr_imul(${x}, ${y})`;
        case 'div': return `tsr_idiv(${x}, ${y})`;
        case 'mod': return `tsr_imod(${x}, ${y})`;
        case 'max': return `max(${x}, ${y})`;
        case 'min': return `min(${x}, ${y})`;
        case 'shl': return `tsr_ishl(${x}, ${y})`;
        case 'shr': return `(${x} >> (${y} & 31))`;
        default: return fail('E_UNSUPPORTED', `i32 ${op} in kernel ${this.k.name}`);
      }
    }
    switch (op) {
      case 'add': return `(${x} + ${y})`;
      case 'sub': return `(${x} - ${y})`;
      case 'mul': return `(${x} * ${y})`;
      case 'div': return `tsr_udiv(${x}, ${y})`;
      case 'mod': return `tsr_umod(${x}, ${y})`;
      case 'max': return `max(${x}, ${y})`;
      case 'min': return `min(${x}, ${y})`;
      case 'shl': return `(${x} << (${y} & 31u))`;
      case 'shr': return `(${x} >> (${y} & 31u))`;
      default: return fail('E_UNSUPPORTED', `${t} ${op} in kernel ${this.k.name}`);
    }
  }

  half(arr: string): 'f16' | 'bf16' | undefined {
    return this.k.shared.find((s) => s.name === arr)?.half;
  }

  private storeValue(buf: string, v: KExpr): string {
    const d = this.bufType(buf);
    if (isHalf(d)) return narrow(d, this.expr(v));
    if (d === 'bool') return `(unsigned char)(${this.expr(v)} ? 1 : 0)`;
    return this.expr(v);
  }

  stmts(ss: readonly KStmt[], ind: string, out: string[]): void {
    for (const s of ss) {
      switch (s.k) {
        case 'let': out.push(`${ind}${s.mut ? '' : 'const '}${SCALAR[s.t]} ${s.name} = ${this.expr(s.init)};`); break;
        case 'set': out.push(`${ind}${s.name} = ${this.expr(s.value)};`); break;
        case 'store': out.push(`${ind}b_${s.buf}[${this.expr(s.index)}] = ${this.storeValue(s.buf, s.value)};`); break;
        case 'store4':
          if (this.bufType(s.buf) !== 'f32') fail('E_INTERNAL', `kernel ${this.k.name}: vec4 store to ${this.bufType(s.buf)} buffer ${s.buf}`);
          out.push(`${ind}tsr_st4(b_${s.buf}, ${this.expr(s.index)}, ${this.expr(s.value)});`);
          break;
        case 'sstore': {
          out.push(`${ind}s_${s.arr}[${this.expr(s.index)}] = ${narrow(this.half(s.arr), this.expr(s.value))};`);
          break;
        }
        // (asynchronous copies land before the barrier that publishes them)
        case 'barrier': out.push(this.copies ? `${ind}tsr_copy_wait(); __syncthreads();` : `${ind}__syncthreads();`); break;
        case 'scopy8':
          if (!this.half(s.arr) || this.bufType(s.buf) !== this.half(s.arr)) fail('E_INTERNAL', `kernel ${this.k.name}: scopy8 needs a half shared array and a buffer of its type`);
          out.push(`${ind}tsr_copy16(s_${s.arr} + (${this.expr(s.index)}), b_${s.buf} + (${this.expr(s.src)}), ${this.expr(s.valid)});`);
          break;
        case 'mmaFill': out.push(`${ind}nvcuda::wmma::fill_fragment(f_${s.frag}, 0.0f);`); break;
        case 'mmaLoad': out.push(`${ind}nvcuda::wmma::load_matrix_sync(f_${s.frag}, s_${s.arr} + (${this.expr(s.offset)}), ${s.ld});`); break;
        case 'mma': out.push(`${ind}nvcuda::wmma::mma_sync(f_${s.d}, f_${s.a}, f_${s.b}, f_${s.d});`); break;
        case 'mmaStore':
          out.push(`${ind}nvcuda::wmma::store_matrix_sync(s_${s.arr} + (${this.expr(s.offset)}), f_${s.frag}, ${s.ld}, nvcuda::wmma::mem_row_major);`);
          out.push(`${ind}__syncwarp();`);
          break;
        case 'for':
          if (s.lanes) {
            // the warp's lanes split the iterations; the warp meets again after the loop
            if (!this.k.warp) fail('E_INTERNAL', `kernel ${this.k.name}: a lanes loop outside a warp kernel`);
            out.push(`${ind}for (int ${s.v} = ${this.expr(s.from)} + tsr_lane * ${s.step}; ${s.v} < ${this.expr(s.to)}; ${s.v} += ${32 * s.step}) {`);
            this.stmts(s.body, ind + '  ', out);
            out.push(`${ind}}`);
            out.push(`${ind}__syncwarp();`);
            break;
          }
          out.push(`${ind}for (int ${s.v} = ${this.expr(s.from)}; ${s.v} < ${this.expr(s.to)}; ${s.v} += ${s.step}) {`);
          this.stmts(s.body, ind + '  ', out);
          out.push(`${ind}}`);
          break;
        case 'if':
          out.push(`${ind}if (${this.expr(s.cond)}) {`);
          this.stmts(s.then, ind + '  ', out);
          if (s.else.length) {
            out.push(`${ind}} else {`);
            this.stmts(s.else, ind + '  ', out);
          }
          out.push(`${ind}}`);
          break;
      }
    }
  }
}

/** Names an `extern "C"` entry point may not take: C/C++ keywords and the CUDA math library's functions. */
const RESERVED = new Set(
  ('auto bool break case char class const continue default delete do double else enum extern float for goto if inline int long ' +
    'main namespace new operator private public register return short signed sizeof static struct switch template this ' +
    'throw try typedef union unsigned using virtual void volatile while abs acos asin atan atan2 cbrt ceil cos cosh erf ' +
    'erfc exp exp2 expm1 fabs floor fma fmax fmin fmod frexp hypot isnan isinf ldexp lgamma log log10 log1p log2 max min ' +
    'modf nan pow remainder round rsqrt sin sinh sqrt tan tanh tgamma trunc').split(' '),
);

/** The entry point name for a kernel: its own name unless that is reserved in CUDA C++. */
export function cudaEntryName(k: Kernel): string {
  const base = k.name.replace(/[^A-Za-z0-9_]/g, '_');
  return RESERVED.has(base) || /^[0-9]/.test(base) ? `tessera_${base}` : base;
}

/** CUDA threads per block: the workgroup size, times 32 for a warp kernel (one warp per invocation). */
export function cudaBlockSize(k: Kernel): number {
  return k.warp ? 32 * k.workgroupSize : k.workgroupSize;
}

/** Bytes of `__shared__` memory a kernel declares. */
export function cudaSharedBytes(k: Kernel): number {
  return k.shared.reduce((n, s) => n + s.size * (s.half ? 2 : s.t === 'bool' ? 1 : 4), 0);
}

const WMMA = 'nvcuda::wmma';
/** The WMMA fragment type of a tile: an a or b tile of f16 (the default) or bf16, an f32 accumulator. */
function fragmentType(f: KFragment): string {
  if (f.use === 'acc') return `${WMMA}::fragment<${WMMA}::accumulator, 16, 16, 16, float>`;
  return `${WMMA}::fragment<${WMMA}::matrix_${f.use}, 16, 16, 16, ${cudaStorageType(f.half ?? 'f16')}, ${WMMA}::row_major>`;
}

function usesTid(k: Kernel): boolean {
  let used = false;
  forEachKExpr(k.body, (e) => {
    if (e.k === 'tid') used = true;
  });
  return used;
}

function hasStmt(body: readonly KStmt[], kind: KStmt['k']): boolean {
  return body.some((s) => s.k === kind || kstmtBodies(s).some((b) => hasStmt(b, kind)));
}

/** The kernel's CUDA entry point (without the prelude; see printCudaUnit). */
export function printCudaKernel(k: Kernel): string {
  const p = new Printer(k);
  const params = [
    ...k.buffers.map((b) => `${b.access === 'read' ? 'const ' : ''}${cudaStorageType(b.dtype)}* __restrict__ b_${b.name}`),
    ...k.uniforms.map((u) => `int d_${u}`),
  ];
  const frags = k.fragments ?? [];
  // a warp kernel's invocation is a warp: tid and lid count warps, tsr_lane is the thread's lane
  const out = [
    ...(frags.length ? ['#include <mma.h>', '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 700', '#error "Tessera tensor-core kernels need sm_70 or newer"', '#endif'] : []),
    ...(frags.some((f) => f.half === 'bf16') ? ['#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800', '#error "Tessera bf16 tensor-core kernels need sm_80 or newer"', '#endif'] : []),
    `// tessera kernel ${k.name}: schedule ${k.schedule.kind} ${JSON.stringify(k.schedule.params)}`,
    `extern "C" __global__ void __launch_bounds__(${cudaBlockSize(k)}) ${cudaEntryName(k)}(${params.join(', ')}) {`,
    // (a kernel guarded by its block index may not read tid: then it is not declared)
    ...(!usesTid(k) ? [] : k.warp
      ? [`  const int tid = (int)((blockIdx.y * gridDim.x + blockIdx.x) * ${k.workgroupSize}u + (threadIdx.x >> 5));`]
      : [`  const int tid = (int)((blockIdx.y * gridDim.x + blockIdx.x) * ${k.workgroupSize}u + threadIdx.x);`]),
    ...(k.warp ? ['  const int tsr_lane = (int)(threadIdx.x & 31u);'] : []),
    // 32-byte aligned: tensor-core loads and stores need 256-bit aligned addresses
    ...k.shared.map((s) => `  __shared__ ${k.warp ? '__align__(32) ' : ''}${s.half ? cudaStorageType(s.half) : SCALAR[s.t]} s_${s.name}[${s.size}];`),
    ...frags.map((f) => `  ${fragmentType(f)} f_${f.name};`),
  ];
  p.stmts(k.body, '  ', out);
  out.push('}');
  return out.join('\n');
}

/** A self-contained translation unit: the prelude, then each kernel. */
export function printCudaUnit(kernels: readonly Kernel[]): string {
  return [CUDA_PRELUDE, ...kernels.map(printCudaKernel)].join('\n');
}
