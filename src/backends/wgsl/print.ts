/**
 * WGSL printer: Kernel IR -> one WGSL compute shader.
 *
 * Layout: kernel.buffers[i] is @group(0) @binding(i); the symbolic dims in kernel.uniforms form one
 * uniform struct of i32 at binding = buffers.length (absent when there are none). The grid is 1-D
 * for the kernel; the runtime folds it into x/y and the shader rebuilds the linear id from
 * workgroup_id and num_workgroups. Kernels guard `tid < threads` themselves, so the extra
 * workgroups of a folded grid are harmless.
 *
 * Storage vs compute types: floats compute in f32 whatever the storage. f16 storage is array<f16>
 * when the device has shader-f16, otherwise f32 words (see `storageType`); either way a store rounds
 * to f16 precision (round to nearest even, overflow to infinity) so results agree across devices.
 * bool storage is u32 0/1.
 *
 * WGSL differs from the reference semantics in places, which the printer papers over with small
 * helper functions emitted only when used: NaN-propagating float max/min, saturating float->int
 * casts with NaN -> 0, integer division by zero -> 0, erf (WGSL has none), tanh that survives large
 * |x| (SwiftShader returns NaN for tanh(100)), pow for negative bases, and isnan via a bit test
 * (WGSL lets compilers assume NaN never happens). Non-finite f32 constants cannot be written as
 * literals (a const-expression may not be inf or NaN), so they go through a bitcast helper.
 * `dot4i8` is the builtin dot4I8Packed where the device's WGSL has packed_4x8_integer_dot_product
 * (WGSLCaps.packed4x8Dot, with a `requires` directive), else a helper with shifts.
 */
import type { DType } from '../../ir/dtype.js';
import { scopy8Stmts, vec4Buffers, type KBinary, type KExpr, type KStmt, type KType, type KUnary, type Kernel, type Scalar } from '../../ir/kernel.js';
import { fail } from '../../errors.js';

export interface WGSLCaps {
  /** The device has shader-f16: f16 tensors are stored as array<f16>. */
  readonly f16: boolean;
  /**
   * WGSL has the `packed_4x8_integer_dot_product` language feature (navigator.gpu.wgslLanguageFeatures):
   * `dot4i8` prints as the builtin dot4I8Packed. Absent or false: a helper computing it with shifts.
   */
  readonly packed4x8Dot?: boolean;
}

/** WGSL element type of a device buffer holding `dtype`. */
export type WGSLStorage = 'f32' | 'f16' | 'i32' | 'u32';

/** How the WebGPU runtime stores a dtype on the device; the printer and the runtime both use this. */
export function storageType(dtype: DType, caps: WGSLCaps): WGSLStorage {
  switch (dtype) {
    case 'f32': return 'f32';
    case 'f16': return caps.f16 ? 'f16' : 'f32';
    case 'bf16': return 'f32'; // WGSL has no bf16: f32 words holding bf16-rounded values
    case 'i32': return 'i32';
    case 'u32': return 'u32';
    case 'bool': return 'u32';
  }
}

/** Bytes per element on the device. */
export function storageBytes(dtype: DType, caps: WGSLCaps): number {
  return storageType(dtype, caps) === 'f16' ? 2 : 4;
}

/** Workgroup memory a kernel declares, in bytes, as WebGPU counts it (each variable rounded up to 16). */
export function sharedBytes(kernel: Kernel): number {
  let total = 0;
  for (const s of kernel.shared) total += Math.ceil((s.size * 4) / 16) * 16;
  return total;
}

/**
 * The pipeline constant (WGSL `override`) holding a flexible kernel's workgroup size: its default is
 * the kernel's `workgroupSize`; any other positive size computes the same (Kernel.flexibleWorkgroup).
 */
export const FLEXIBLE_WORKGROUP_CONSTANT = 'wg_size';

// ---------------------------------------------------------------------------------------------
// Names

const WGSL_RESERVED = new Set(
  (
    // keywords
    'alias break case const const_assert continue continuing default diagnostic discard else enable false fn for if let ' +
    'loop override requires return struct switch true var while ' +
    // reserved words
    'NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await become binding_array cast ' +
    'catch class co_await co_return co_yield coherent column_major common compile compile_fragment concept const_cast ' +
    'consteval constexpr constinit crate debugger decltype delete demote demote_to_helper do dynamic_cast enum explicit ' +
    'export extends extern external fallthrough filter final finally friend from fxgroup get goto groupshared highp impl ' +
    'implements import inline instanceof interface layout lowp macro macro_rules match mediump meta mod module move mut ' +
    'mutable namespace new nil noexcept noinline nointerpolation noperspective null nullptr of operator package packoffset ' +
    'partition pass patch pixelfragment precise precision premerge priv protected pub public readonly ref regardless ' +
    'register reinterpret_cast require resource restrict self set shared sizeof smooth snorm static static_assert ' +
    'static_cast std subroutine super target template this thread_local throw trait try type typedef typeid typename ' +
    'typeof union unless unorm unsafe unsized use using varying virtual volatile wgsl where with writeonly yield ' +
    // predeclared names the printed code relies on (a user declaration would shadow them)
    'array atomic bool f16 f32 i32 u32 vec2 vec3 vec4 ptr sampler texture_2d read read_write storage uniform workgroup ' +
    'private function abs bitcast ceil clamp cos exp exp2 floor inverseSqrt log max min pow round select sin sqrt tanh ' +
    'fract trunc sign pack2x16float unpack2x16float workgroupBarrier dot4I8Packed ' +
    // the printer's own names
    'main wid nwg lidx tid dims Dims wg_size'
  ).split(' '),
);

/** Maps IR names to unique, legal WGSL identifiers: deterministic, and the identity for ordinary names. */
class Namer {
  private readonly map = new Map<string, string>();
  private readonly taken = new Set<string>();

  /** `key` identifies the IR entity (buffers and locals live in different namespaces in the IR). */
  name(key: string, preferred: string = key): string {
    const orig = key;
    const got = this.map.get(orig);
    if (got !== undefined) return got;
    let base = preferred.replace(/[^A-Za-z0-9_]/g, '_');
    if (base === '' || /^[0-9]/.test(base)) base = `v_${base}`;
    // `__` prefixes are reserved in WGSL; `t_` is the printer's helper prefix.
    if (base.startsWith('_')) base = `v${base}`;
    if (base.startsWith('t_') || WGSL_RESERVED.has(base)) base = `${base}_`;
    let out = base;
    for (let i = 1; this.taken.has(out); i++) out = `${base}_${i}`;
    this.map.set(orig, out);
    this.taken.add(out);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Literals

const FLT_MAX = 3.4028234663852886e38;

/** A decimal WGSL accepts for an f32 value: shortest digits that round back to it, never above FLT_MAX. */
function floatDigits(f: number): string {
  if (Object.is(f, -0)) return '-0.0';
  let s = String(f);
  for (let p = 1; p <= 9; p++) {
    const cand = f.toPrecision(p);
    const back = Number(cand);
    if (Math.fround(back) === f && Math.abs(back) <= FLT_MAX) {
      s = String(back);
      break;
    }
  }
  if (!/[.eE]/.test(s)) s += '.0';
  else if (/^-?\d+[eE]/.test(s)) s = s.replace(/[eE]/, '.0e');
  return s.replace('e+', 'e');
}

/** Helpers the printed body calls, emitted once each in this fixed order, with their dependencies. */
const HELPERS: ReadonlyArray<{ name: string; deps: readonly string[]; src: string }> = [
  {
    name: 't_bits_f32',
    deps: [],
    src: `// Non-finite constants: a const-expression may not be inf or NaN, a function call is not one.
fn t_bits_f32(b: u32) -> f32 {
  return bitcast<f32>(b);
}`,
  },
  {
    name: 't_isnan',
    deps: [],
    src: `fn t_isnan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`,
  },
  {
    name: 't_sgmax',
    deps: ['t_isnan', 't_bits_f32'],
    src: `// Subgroup max/min that propagate NaN (subgroupMax leaves NaN unspecified); no branch, so the
// subgroup operations stay in uniform control flow.
fn t_sgmax(x: f32) -> f32 {
  let nans = subgroupAdd(select(0u, 1u, t_isnan(x)));
  return select(subgroupMax(x), t_bits_f32(0x7fc00000u), nans > 0u);
}
fn t_sgmin(x: f32) -> f32 {
  let nans = subgroupAdd(select(0u, 1u, t_isnan(x)));
  return select(subgroupMin(x), t_bits_f32(0x7fc00000u), nans > 0u);
}`,
  },
  {
    name: 't_max',
    deps: ['t_isnan', 't_bits_f32'],
    src: `// max/min that propagate NaN, as the reference does.
fn t_max(a: f32, b: f32) -> f32 {
  if (t_isnan(a) || t_isnan(b)) {
    return t_bits_f32(0x7fc00000u);
  }
  return max(a, b);
}`,
  },
  {
    name: 't_min',
    deps: ['t_isnan', 't_bits_f32'],
    src: `fn t_min(a: f32, b: f32) -> f32 {
  if (t_isnan(a) || t_isnan(b)) {
    return t_bits_f32(0x7fc00000u);
  }
  return min(a, b);
}`,
  },
  {
    name: 't_f2i',
    deps: ['t_isnan'],
    src: `// float -> i32: truncate toward zero, saturate, NaN -> 0.
fn t_f2i(x: f32) -> i32 {
  if (x >= 2147483648.0) {
    return 2147483647i;
  }
  return select(i32(x), 0i, t_isnan(x));
}`,
  },
  {
    name: 't_f2u',
    deps: ['t_isnan'],
    src: `// float -> u32: truncate toward zero, saturate, NaN -> 0.
fn t_f2u(x: f32) -> u32 {
  if (x >= 4294967296.0) {
    return 4294967295u;
  }
  return select(u32(x), 0u, t_isnan(x));
}`,
  },
  {
    name: 't_idiv',
    deps: [],
    src: `// Integer division truncates; dividing by zero gives 0.
fn t_idiv(a: i32, b: i32) -> i32 {
  return select(a / b, 0i, b == 0i);
}`,
  },
  {
    name: 't_imod',
    deps: [],
    src: `fn t_imod(a: i32, b: i32) -> i32 {
  return select(a % b, 0i, b == 0i);
}`,
  },
  {
    name: 't_udiv',
    deps: [],
    src: `fn t_udiv(a: u32, b: u32) -> u32 {
  return select(a / b, 0u, b == 0u);
}`,
  },
  {
    name: 't_umod',
    deps: [],
    src: `fn t_umod(a: u32, b: u32) -> u32 {
  return select(a % b, 0u, b == 0u);
}`,
  },
  {
    name: 't_exp',
    deps: ['t_isnan'],
    src: `// exp and log with NaN, zero and negatives as IEEE has them (SwiftShader: exp(NaN) = inf,
// log(-x) = log(x), log(0) = -88).
fn t_exp(x: f32) -> f32 {
  return select(exp(x), x, t_isnan(x));
}`,
  },
  {
    name: 't_log',
    deps: ['t_isnan', 't_bits_f32'],
    src: `fn t_log(x: f32) -> f32 {
  if (x == 0.0) {
    return t_bits_f32(0xff800000u);
  }
  return select(log(x), t_bits_f32(0x7fc00000u), x < 0.0 || t_isnan(x));
}`,
  },
  {
    name: 't_sincos',
    deps: [],
    src: `// sin and cos that do not depend on the driver's range reduction (SwiftShader: 2e-4 error at |x| = 20):
// x = j*pi/2 + r with pi/2 in three parts (Cody-Waite), then the Cephes sinf/cosf polynomials on
// [-pi/4, pi/4]. About 1e-7 absolute error up to |x| ~ 1e4 (rotary embeddings' range).
fn t_sincos(x: f32, quarter: i32) -> f32 {
  let j = round(x * 0.636619772);
  let r = ((x - j * 1.5703125) - j * 0.000483751297) - j * 7.54978995e-8;
  let z = r * r;
  let s = ((-0.000195152959 * z + 0.00833216087) * z - 0.166666546) * z * r + r;
  let c = ((0.0000244331571 * z - 0.00138873163) * z + 0.0416666418) * z * z - 0.5 * z + 1.0;
  let q = (i32(j) + quarter) & 3i;
  let v = select(s, c, (q & 1i) == 1i);
  return select(v, -v, q >= 2i);
}`,
  },
  {
    name: 't_tanh',
    deps: ['t_isnan'],
    src: `// tanh without the driver's (SwiftShader: tanh(100) = NaN): the Cephes tanhf polynomial below 0.625,
// else 1 - 2 / (exp(2|x|) + 1) with |x| clamped (tanh is 1 in f32 beyond 9).
fn t_tanh(x: f32) -> f32 {
  if (t_isnan(x)) {
    return x;
  }
  let a = abs(x);
  if (a < 0.625) {
    let z = x * x;
    return ((((-0.00570498872745 * z + 0.0206390887954) * z - 0.0537397155531) * z + 0.133314422036) * z - 0.333332819422) * z * x + x;
  }
  let t = 1.0 - 2.0 / (exp(2.0 * min(a, 15.0)) + 1.0);
  return select(-t, t, x > 0.0);
}`,
  },
  {
    name: 't_erf',
    deps: [],
    src: `// erf: Maclaurin series below 0.5 (relative error ~1e-9), else 1 - erfc with the Numerical Recipes
// Chebyshev fit of erfc (relative error < 1.2e-7).
fn t_erf(x: f32) -> f32 {
  let z = abs(x);
  if (z < 0.5) {
    let s = x * x;
    return x * (1.1283791671 + s * (-0.37612638903 + s * (0.11283791671 + s * (-0.026866170645
      + s * (0.0052239776254 + s * (-0.00085483270235 + s * (0.00012055332982 + s * -0.000014925650358)))))));
  }
  let t = 1.0 / (1.0 + 0.5 * z);
  let c = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
    + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
    + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(c - 1.0, 1.0 - c, x >= 0.0);
}`,
  },
  {
    name: 't_pow',
    deps: ['t_isnan', 't_bits_f32'],
    src: `// pow with the reference's (IEEE / JS) special cases: x^0 = 1, NaN, zeros, infinities, 1^inf = NaN,
// and negative bases with integer exponents. WGSL's pow is only defined for x > 0.
fn t_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0) {
    return 1.0;
  }
  let nan = t_bits_f32(0x7fc00000u);
  let inf = t_bits_f32(0x7f800000u);
  if (t_isnan(x) || t_isnan(y)) {
    return nan;
  }
  let ax = abs(x);
  let neg = (bitcast<u32>(x) >> 31u) == 1u;
  let yint = floor(y) == y;
  let yodd = yint && abs(y) < 16777216.0 && fract(y * 0.5) != 0.0;
  var r: f32;
  if (ax == 0.0) {
    r = select(inf, 0.0, y > 0.0);
  } else if (ax == inf) {
    r = select(0.0, inf, y > 0.0);
  } else if (abs(y) == inf) {
    if (ax == 1.0) {
      return nan;
    }
    r = select(0.0, inf, (ax > 1.0) == (y > 0.0));
  } else {
    if (neg && !yint) {
      return nan;
    }
    r = pow(ax, y);
  }
  return select(r, -r, neg && yodd);
}`,
  },
  {
    name: 't_ipow',
    deps: [],
    src: `// Integer power by squaring (wrapping); negative exponents give 1/b^-e truncated.
fn t_ipow(b: i32, e: i32) -> i32 {
  if (e < 0i) {
    if (b == 1i) {
      return 1i;
    }
    if (b == -1i) {
      return select(1i, -1i, (e & 1i) == 1i);
    }
    return 0i;
  }
  var r = 1i;
  var p = b;
  var k = e;
  while (k != 0i) {
    if ((k & 1i) == 1i) {
      r = r * p;
    }
    p = p * p;
    k = k >> 1u;
  }
  return r;
}`,
  },
  {
    name: 't_upow',
    deps: [],
    src: `fn t_upow(b: u32, e: u32) -> u32 {
  var r = 1u;
  var p = b;
  var k = e;
  while (k != 0u) {
    if ((k & 1u) == 1u) {
      r = r * p;
    }
    p = p * p;
    k = k >> 1u;
  }
  return r;
}`,
  },
  {
    name: 't_dot4i8',
    deps: [],
    src: `// dot4I8Packed without the packed_4x8_integer_dot_product language feature: the four signed int8
// lanes (lane i = bits 8i..8i+7) sign-extended by shifts on i32.
fn t_dot4i8(a: u32, b: u32) -> i32 {
  let x = bitcast<i32>(a);
  let y = bitcast<i32>(b);
  return ((x << 24u) >> 24u) * ((y << 24u) >> 24u) + ((x << 16u) >> 24u) * ((y << 16u) >> 24u)
    + ((x << 8u) >> 24u) * ((y << 8u) >> 24u) + (x >> 24u) * (y >> 24u);
}`,
  },
  {
    name: 't_f16_round',
    deps: ['t_isnan', 't_bits_f32'],
    src: `// Round an f32 to the nearest f16 value (ties to even, overflow to infinity), kept as f32.
fn t_f16_round(v: f32) -> f32 {
  if (t_isnan(v)) {
    return v;
  }
  if (abs(v) >= 65520.0) {
    return select(t_bits_f32(0xff800000u), t_bits_f32(0x7f800000u), v > 0.0);
  }
  // The f16 quantum at v's binade, 2^(e - 10), never below the subnormal step 2^-24.
  let e = max(bitcast<u32>(abs(v)) >> 23u, 113u) - 10u;
  return round(v * bitcast<f32>((254u - e) << 23u)) * bitcast<f32>(e << 23u);
}`,
  },
  {
    name: 't_bf16_round',
    deps: ['t_isnan'],
    src: `// Round an f32 to the nearest bfloat16 value (ties to even: its top 16 bits), kept as f32.
fn t_bf16_round(v: f32) -> f32 {
  if (t_isnan(v)) {
    return v;
  }
  let b = bitcast<u32>(v);
  return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);
}`,
  },
  {
    name: 't_to_f16',
    deps: ['t_f16_round'],
    src: `fn t_to_f16(v: f32) -> f16 {
  return f16(t_f16_round(v));
}`,
  },
];

// ---------------------------------------------------------------------------------------------
// Printer

function typeOf(e: KExpr): Scalar {
  switch (e.k) {
    case 'uniform': case 'tid': case 'lid': case 'wid': return 'i32';
    default: return e.t === 'vec4f' ? fail('E_VERIFY', `a vec4 value where a scalar is expected`) : e.t;
  }
}

function wgslScalar(t: KType): string {
  return t === 'vec4f' ? 'vec4<f32>' : t;
}

const BIN_SYMBOL: Partial<Record<KBinary, string>> = {
  add: '+', sub: '-', mul: '*', div: '/', mod: '%',
  eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=',
  band: '&', bor: '|', bxor: '^',
};

class Printer {
  private readonly names = new Namer();
  private readonly uniformNames = new Namer();
  private readonly used = new Set<string>();
  /** WGSL language extensions the body uses (printed as a `requires` directive). */
  private readonly requires = new Set<string>();
  private readonly bufs = new Map<string, { name: string; dtype: DType; vec4?: boolean }>();
  private readonly shared = new Map<string, string>();
  private readonly lines: string[] = [];

  constructor(private readonly kernel: Kernel, private readonly caps: WGSLCaps) {}

  print(): string {
    const k = this.kernel;
    if (!Number.isInteger(k.workgroupSize) || k.workgroupSize < 1) {
      fail('E_VERIFY', `kernel '${k.name}': workgroupSize must be a positive integer, got ${k.workgroupSize}`);
    }
    // A buffer read with load4 or written with store4 is bound as array<vec4<f32>> (the runtime sizes buffers in 16-byte
    // units); its scalar accesses become buf[i >> 2][i & 3].
    const vec4 = vec4Buffers(k.body);
    for (const b of k.buffers) {
      if (this.bufs.has(b.name)) fail('E_VERIFY', `kernel '${k.name}': buffer '${b.name}' declared twice`);
      if (vec4.has(b.name) && storageType(b.dtype, this.caps) !== 'f32') fail('E_VERIFY', `kernel '${k.name}': vec4 access to ${b.dtype} buffer '${b.name}'`);
      this.bufs.set(b.name, { name: this.names.name(`buffer:${b.name}`, b.name), dtype: b.dtype, ...(vec4.has(b.name) ? { vec4: true } : {}) });
    }
    for (const n of vec4) if (!this.bufs.has(n)) fail('E_VERIFY', `kernel '${k.name}': no buffer named '${n}'`);
    for (const s of k.shared) {
      if (this.shared.has(s.name) || this.bufs.has(s.name)) fail('E_VERIFY', `kernel '${k.name}': shared array '${s.name}' clashes with another declaration`);
      this.shared.set(s.name, this.names.name(`shared:${s.name}`, s.name));
    }
    for (const u of k.uniforms) this.uniformNames.name(u);

    // Body first: it decides which helpers are needed.
    this.lines.length = 0;
    this.emitBlock(k.body, 1);
    const body = this.lines.splice(0);

    const out: string[] = [];
    const params = Object.keys(k.schedule.params)
      .sort()
      .map((p) => `${p}=${k.schedule.params[p]}`)
      .join(' ');
    out.push(`// tessera kernel ${k.name.replace(/[\r\n]/g, ' ')}: schedule ${k.schedule.kind}${params ? ` ${params}` : ''}`);
    const anyF16 = k.buffers.some((b) => storageType(b.dtype, this.caps) === 'f16');
    if (anyF16) out.push('enable f16;');
    if (k.subgroup) out.push('enable subgroups;');
    if (this.requires.size > 0) out.push(`requires ${[...this.requires].sort().join(', ')};`);
    out.push('');
    k.buffers.forEach((b, i) => {
      const access = b.access === 'read' ? 'read' : 'read_write';
      const elem = this.bufs.get(b.name)!.vec4 ? 'vec4<f32>' : storageType(b.dtype, this.caps);
      out.push(`@group(0) @binding(${i}) var<storage, ${access}> ${this.bufs.get(b.name)!.name}: array<${elem}>; // ${b.dtype}`);
    });
    if (k.uniforms.length > 0) {
      out.push('');
      out.push('struct Dims {');
      for (const u of k.uniforms) out.push(`  ${this.uniformNames.name(u)}: i32,`);
      out.push('}');
      out.push(`@group(0) @binding(${k.buffers.length}) var<uniform> dims: Dims;`);
    }
    if (k.shared.length > 0) {
      out.push('');
      for (const s of k.shared) {
        if (!Number.isInteger(s.size) || s.size < 1) fail('E_VERIFY', `kernel '${k.name}': shared array '${s.name}' has size ${s.size}`);
        out.push(`var<workgroup> ${this.shared.get(s.name)!}: array<${wgslScalar(s.t)}, ${s.size}>;`);
      }
    }
    // Helpers and their dependencies, in the fixed HELPERS order.
    const need = new Set<string>();
    const add = (n: string): void => {
      if (need.has(n)) return;
      need.add(n);
      for (const d of HELPERS.find((h) => h.name === n)!.deps) add(d);
    };
    for (const n of this.used) add(n);
    for (const h of HELPERS) {
      if (!need.has(h.name)) continue;
      out.push('');
      out.push(h.src);
    }
    out.push('');
    // A flexible kernel computes the same for any workgroup size: the size is a pipeline constant
    // (WGSL override), so an embedder may launch it in other sizes as the runtime does
    // (launchWorkgroupSize).
    const flexible = k.flexibleWorkgroup === true;
    const size = flexible ? FLEXIBLE_WORKGROUP_CONSTANT : `${k.workgroupSize}u`;
    if (flexible) out.push(`override ${FLEXIBLE_WORKGROUP_CONSTANT}: u32 = ${k.workgroupSize}u;`);
    out.push(`@compute @workgroup_size(${flexible ? FLEXIBLE_WORKGROUP_CONSTANT : k.workgroupSize})`);
    out.push(
      'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {',
    );
    out.push(`  let tid = i32((wid.y * nwg.x + wid.x) * ${size} + lidx);`);
    // a warp kernel's tensor-core tiles: 256 values per invocation (the invocation does a warp's work)
    for (const f of k.fragments ?? []) out.push(`  var ${this.fragName(f.name)}: array<f32, 256>;`);
    out.push(...body);
    out.push('}');
    return out.join('\n') + '\n';
  }

  private helper(name: string): string {
    this.used.add(name);
    return name;
  }

  private line(depth: number, s: string): void {
    this.lines.push('  '.repeat(depth) + s);
  }

  private emitBlock(stmts: readonly KStmt[], depth: number): void {
    for (const s of stmts) this.emitStmt(s, depth);
  }

  /** buf[i], or buf[i >> 2][i & 3] for a buffer bound as vec4. */
  private element(b: { name: string; vec4?: boolean }, index: KExpr): string {
    if (!b.vec4) return `${b.name}[${this.expr(index)}]`;
    const i = this.operand(index);
    return `${b.name}[${i} >> 2u][${i} & 3i]`;
  }

  private buf(name: string): { name: string; dtype: DType; vec4?: boolean } {
    const b = this.bufs.get(name);
    if (!b) fail('E_VERIFY', `kernel '${this.kernel.name}': no buffer named '${name}'`);
    return b;
  }

  private fragName(name: string): string {
    if (!(this.kernel.fragments ?? []).some((f) => f.name === name)) fail('E_VERIFY', `kernel '${this.kernel.name}': no fragment named '${name}'`);
    return this.names.name(`frag:${name}`, `f_${name}`);
  }

  private sharedName(name: string): string {
    const s = this.shared.get(name);
    if (s === undefined) fail('E_VERIFY', `kernel '${this.kernel.name}': no shared array named '${name}'`);
    return s;
  }

  private emitStmt(s: KStmt, depth: number): void {
    switch (s.k) {
      case 'let':
        this.line(depth, `${s.mut ? 'var' : 'let'} ${this.names.name(s.name)}: ${wgslScalar(s.t)} = ${this.expr(s.init)};`);
        return;
      case 'set':
        this.line(depth, `${this.names.name(s.name)} = ${this.expr(s.value)};`);
        return;
      case 'store': {
        const b = this.buf(s.buf);
        this.line(depth, `${this.element(b, s.index)} = ${this.storeValue(b.dtype, s.value)};`);
        return;
      }
      case 'store4': {
        const b = this.buf(s.buf);
        if (!b.vec4) fail('E_VERIFY', `kernel '${this.kernel.name}': vec4 store to buffer '${s.buf}' not bound as vec4`);
        this.line(depth, `${b.name}[${this.quadIndex(s.index)}] = ${this.expr(s.value)};`);
        return;
      }
      case 'sstore': {
        // a half array holds f32 words rounded to f16 or bf16, as a tensor core would see them
        const half = this.kernel.shared.find((x) => x.name === s.arr)?.half;
        const v = half ? `${this.helper(half === 'bf16' ? 't_bf16_round' : 't_f16_round')}(${this.expr(s.value)})` : this.expr(s.value);
        this.line(depth, `${this.sharedName(s.arr)}[${this.expr(s.index)}] = ${v};`);
        return;
      }
      case 'scopy8':
        for (const x of scopy8Stmts(s)) this.emitStmt(x, depth);
        return;
      case 'mmaFill':
        this.line(depth, `${this.fragName(s.frag)} = array<f32, 256>();`);
        return;
      case 'mmaLoad': case 'mmaStore': {
        // a warp kernel's invocation is one thread here: the tile moves in two loops
        const f = this.fragName(s.frag);
        const arr = this.sharedName(s.arr);
        const [o, r, c] = [this.names.name(`mma:o${this.lines.length}`, 'mo'), this.names.name(`mma:r${this.lines.length}`, 'mr'), this.names.name(`mma:c${this.lines.length}`, 'mc')];
        const at = `${o} + ${r} * ${this.intLit(s.ld)} + ${c}`;
        this.line(depth, '{');
        this.line(depth + 1, `let ${o}: i32 = ${this.expr(s.offset)};`);
        this.line(depth + 1, `for (var ${r}: i32 = 0i; ${r} < 16i; ${r}++) {`);
        this.line(depth + 2, `for (var ${c}: i32 = 0i; ${c} < 16i; ${c}++) {`);
        this.line(depth + 3, s.k === 'mmaLoad' ? `${f}[${r} * 16i + ${c}] = ${arr}[${at}];` : `${arr}[${at}] = ${f}[${r} * 16i + ${c}];`);
        this.line(depth + 2, '}');
        this.line(depth + 1, '}');
        this.line(depth, '}');
        return;
      }
      case 'mma': {
        const [d, a, b] = [this.fragName(s.d), this.fragName(s.a), this.fragName(s.b)];
        const [i, j, q, acc] = ['i', 'j', 'q', 's'].map((x) => this.names.name(`mma:${x}${this.lines.length}`, `m${x}`)) as [string, string, string, string];
        this.line(depth, `for (var ${i}: i32 = 0i; ${i} < 16i; ${i}++) {`);
        this.line(depth + 1, `for (var ${j}: i32 = 0i; ${j} < 16i; ${j}++) {`);
        this.line(depth + 2, `var ${acc}: f32 = ${d}[${i} * 16i + ${j}];`);
        this.line(depth + 2, `for (var ${q}: i32 = 0i; ${q} < 16i; ${q}++) {`);
        this.line(depth + 3, `${acc} = ${acc} + ${a}[${i} * 16i + ${q}] * ${b}[${q} * 16i + ${j}];`);
        this.line(depth + 2, '}');
        this.line(depth + 2, `${d}[${i} * 16i + ${j}] = ${acc};`);
        this.line(depth + 1, '}');
        this.line(depth, '}');
        return;
      }
      case 'for': {
        if (!Number.isInteger(s.step) || s.step <= 0) fail('E_VERIFY', `kernel '${this.kernel.name}': loop '${s.v}' has step ${s.step}`);
        const v = this.names.name(s.v);
        this.line(depth, `for (var ${v}: i32 = ${this.expr(s.from)}; ${v} < ${this.expr(s.to)}; ${v} += ${this.intLit(s.step)}) {`);
        this.emitBlock(s.body, depth + 1);
        this.line(depth, '}');
        return;
      }
      case 'if':
        this.line(depth, `if (${this.expr(s.cond)}) {`);
        this.emitBlock(s.then, depth + 1);
        if (s.else.length > 0) {
          this.line(depth, '} else {');
          this.emitBlock(s.else, depth + 1);
        }
        this.line(depth, '}');
        return;
      case 'barrier':
        // storageBarrier is a control barrier too, over storage memory
        this.line(depth, s.storage ? 'storageBarrier();' : 'workgroupBarrier();');
        return;
    }
  }

  private storeValue(dtype: DType, value: KExpr): string {
    const v = this.expr(value);
    switch (dtype) {
      case 'f32': case 'i32': case 'u32': return v;
      case 'f16': return storageType(dtype, this.caps) === 'f16' ? `${this.helper('t_to_f16')}(${v})` : `${this.helper('t_f16_round')}(${v})`;
      case 'bf16': return `${this.helper('t_bf16_round')}(${v})`;
      case 'bool': return `select(0u, 1u, ${v})`;
    }
  }

  private intLit(v: number): string {
    return this.lit('i32', v);
  }

  private lit(t: Scalar, v: number): string {
    switch (t) {
      case 'bool': return v ? 'true' : 'false';
      case 'i32': {
        const i = Math.trunc(v) | 0;
        if (i === -2147483648) return '(-2147483647i - 1i)';
        return `${i}i`;
      }
      case 'u32': return `${Math.trunc(v) >>> 0}u`;
      case 'f32': {
        const f = Math.fround(v);
        if (Number.isNaN(f)) return `${this.helper('t_bits_f32')}(0x7fc00000u)`;
        if (f === Infinity) return `${this.helper('t_bits_f32')}(0x7f800000u)`;
        if (f === -Infinity) return `${this.helper('t_bits_f32')}(0xff800000u)`;
        return floatDigits(f);
      }
    }
  }

  /** An operand position: atoms print bare, compound expressions in parentheses (WGSL forbids mixing some operators unparenthesized). */
  /** The vec4 number of element index `e` (a multiple of 4): q for 4 * q, else e >> 2. */
  private quadIndex(e: KExpr): string {
    if (e.k === 'bin' && e.op === 'mul' && e.b.k === 'lit' && e.b.v === 4) return this.expr(e.a);
    return `${this.operand(e)} >> 2u`;
  }

  private operand(e: KExpr): string {
    const s = this.expr(e);
    if (e.k === 'bin' && BIN_SYMBOL[e.op] !== undefined) return `(${s})`;
    if (e.k === 'bin' && (e.op === 'and' || e.op === 'or' || e.op === 'shl' || e.op === 'shr')) return `(${s})`;
    if (e.k === 'un' && (e.op === 'neg' || e.op === 'not')) return `(${s})`;
    if (e.k === 'cast' && e.t === 'bool') return `(${s})`;
    if (e.k === 'lit' && s.startsWith('-')) return `(${s})`;
    if (e.k === 'lit' && s.startsWith('(')) return s;
    return s;
  }

  expr(e: KExpr): string {
    switch (e.k) {
      case 'lit': return this.lit(e.t, e.v);
      case 'var': return this.names.name(e.name);
      case 'uniform': {
        if (!this.kernel.uniforms.includes(e.name)) fail('E_VERIFY', `kernel '${this.kernel.name}': uniform '${e.name}' is not in kernel.uniforms`);
        return `dims.${this.uniformNames.name(e.name)}`;
      }
      case 'tid': return 'tid';
      case 'lid': return 'i32(lidx)';
      case 'wid': return 'i32(wid.y * nwg.x + wid.x)';
      case 'load': {
        const b = this.buf(e.buf);
        const raw = this.element(b, e.index);
        switch (storageType(b.dtype, this.caps)) {
          case 'f16': return `f32(${raw})`;
          default: return b.dtype === 'bool' ? `(${raw} != 0u)` : raw;
        }
      }
      case 'sload': return `${this.sharedName(e.arr)}[${this.expr(e.index)}]`;
      case 'load4': return `${this.buf(e.buf).name}[${this.quadIndex(e.index)}]`;
      case 'splat': return `vec4<f32>(${this.expr(e.a)})`;
      case 'comp': return `${this.operand(e.a)}.${'xyzw'[e.i]}`;
      case 'fma4': return `fma(${this.expr(e.a)}, ${this.expr(e.b)}, ${this.expr(e.c)})`;
      case 'vec4': return `vec4<f32>(${e.a.map((x) => this.expr(x)).join(', ')})`;
      case 'bin4': return `(${this.expr(e.a)} ${{ add: '+', sub: '-', mul: '*', div: '/' }[e.op]} ${this.expr(e.b)})`;
      case 'un': return this.unary(e.op, e.t, e.a);
      case 'bin': return this.binary(e.op, e.t, e.a, e.b);
      case 'select': return `select(${this.expr(e.b)}, ${this.expr(e.a)}, ${this.expr(e.c)})`;
      case 'cast': return this.cast(e.t, e.a);
      case 'subgroup': {
        const x = this.expr(e.a);
        if (e.op === 'add') return `subgroupAdd(${x})`;
        if (e.t === 'f32') {
          const max = this.helper('t_sgmax'); // the helper defines t_sgmax and t_sgmin
          return `${e.op === 'max' ? max : 't_sgmin'}(${x})`;
        }
        return `subgroup${e.op === 'max' ? 'Max' : 'Min'}(${x})`;
      }
      case 'shuffle': return `subgroupShuffle(${this.expr(e.a)}, u32(${this.expr(e.lane)}))`;
    }
  }

  private unary(op: KUnary, t: Scalar, a: KExpr): string {
    const at = typeOf(a);
    const x = this.expr(a);
    switch (op) {
      case 'neg':
        if (at === 'u32') return `0u - ${this.operand(a)}`;
        return `-${this.operand(a)}`;
      case 'abs': return at === 'u32' ? x : `abs(${x})`;
      case 'exp': return `${this.helper('t_exp')}(${x})`;
      case 'expn': return `exp(${x})`;
      case 'log': return `${this.helper('t_log')}(${x})`;
      case 'sqrt': return `sqrt(${x})`;
      case 'rsqrt': return `inverseSqrt(${x})`;
      case 'sin': return `${this.helper('t_sincos')}(${x}, 0i)`;
      case 'cos': return `${this.helper('t_sincos')}(${x}, 1i)`;
      case 'tanh': return `${this.helper('t_tanh')}(${x})`;
      case 'erf': return `${this.helper('t_erf')}(${x})`;
      case 'floor': return at === 'f32' ? `floor(${x})` : x;
      case 'ceil': return at === 'f32' ? `ceil(${x})` : x;
      case 'not': return at === 'bool' ? `!${this.operand(a)}` : `~${this.operand(a)}`;
      case 'isnan': return at === 'f32' ? `${this.helper('t_isnan')}(${x})` : 'false';
      case 'f16round': return `${this.helper('t_f16_round')}(${x})`;
      case 'bf16round': return `${this.helper('t_bf16_round')}(${x})`;
    }
    return fail('E_UNSUPPORTED', `WGSL: unary op '${op as string}' (${t})`);
  }

  private binary(op: KBinary, t: Scalar, a: KExpr, b: KExpr): string {
    const at = typeOf(a);
    switch (op) {
      // integer division by a literal other than 0 and -1 needs no guard
      case 'div':
        if (at !== 'f32' && b.k === 'lit' && b.v !== 0 && b.v !== -1) return this.infix('/', a, b);
        if (at === 'i32') return this.call2(this.helper('t_idiv'), a, b);
        if (at === 'u32') return this.call2(this.helper('t_udiv'), a, b);
        return this.infix('/', a, b);
      case 'mod':
        if (at !== 'f32' && b.k === 'lit' && b.v !== 0 && b.v !== -1) return this.infix('%', a, b);
        if (at === 'i32') return this.call2(this.helper('t_imod'), a, b);
        if (at === 'u32') return this.call2(this.helper('t_umod'), a, b);
        return this.infix('%', a, b);
      case 'pow':
        if (at === 'i32') return this.call2(this.helper('t_ipow'), a, b);
        if (at === 'u32') return this.call2(this.helper('t_upow'), a, b);
        return this.call2(this.helper('t_pow'), a, b);
      case 'max': return at === 'f32' ? this.call2(this.helper('t_max'), a, b) : this.call2('max', a, b);
      case 'min': return at === 'f32' ? this.call2(this.helper('t_min'), a, b) : this.call2('min', a, b);
      case 'and': return this.infix(at === 'bool' ? '&&' : '&', a, b);
      case 'or': return this.infix(at === 'bool' ? '||' : '|', a, b);
      case 'bxor': return at === 'bool' ? this.infix('!=', a, b) : this.infix('^', a, b);
      // Float `!=` must be true when either side is NaN; drivers compile it as an ordered compare.
      case 'ne': return at === 'f32' ? `!(${this.infix('==', a, b)})` : this.infix('!=', a, b);
      case 'dot4i8':
        if (this.caps.packed4x8Dot === true) {
          this.requires.add('packed_4x8_integer_dot_product');
          return this.call2('dot4I8Packed', a, b);
        }
        return this.call2(this.helper('t_dot4i8'), a, b);
      case 'shl': case 'shr': {
        const bt = typeOf(b);
        const amt = b.k === 'lit' ? `${(b.v >>> 0) & 31}u` : bt === 'u32' ? `${this.operand(b)} & 31u` : `u32(${this.expr(b)}) & 31u`;
        return `${this.operand(a)} ${op === 'shl' ? '<<' : '>>'} (${amt})`;
      }
      default: {
        const sym = BIN_SYMBOL[op];
        if (sym === undefined) return fail('E_UNSUPPORTED', `WGSL: binary op '${op}' (${t})`);
        return this.infix(sym, a, b);
      }
    }
  }

  /** `f(a, b)`. */
  private call2(f: string, a: KExpr, b: KExpr): string {
    return `${f}(${this.expr(a)}, ${this.expr(b)})`;
  }

  /** `a sym b`, operands parenthesized where needed. */
  private infix(sym: string, a: KExpr, b: KExpr): string {
    return `${this.operand(a)} ${sym} ${this.operand(b)}`;
  }

  private cast(t: Scalar, a: KExpr): string {
    const from = typeOf(a);
    const x = this.expr(a);
    if (from === t) return x;
    switch (t) {
      case 'bool':
        // NaN -> true: `!(x == 0.0)`, because drivers compile float `!=` as an ordered compare (NaN != 0 false).
        if (from === 'f32') return `!(${this.operand(a)} == 0.0)`;
        return `${this.operand(a)} != ${from === 'i32' ? '0i' : '0u'}`;
      case 'f32':
        return from === 'bool' ? `select(0.0, 1.0, ${x})` : `f32(${x})`;
      case 'i32':
        if (from === 'bool') return `select(0i, 1i, ${x})`;
        if (from === 'f32') return `${this.helper('t_f2i')}(${x})`;
        return `i32(${x})`;
      case 'u32':
        if (from === 'bool') return `select(0u, 1u, ${x})`;
        if (from === 'f32') return `${this.helper('t_f2u')}(${x})`;
        return `u32(${x})`;
    }
  }
}

/** WGSL source for a kernel. Deterministic: the same kernel and caps always print the same text. */
export function printWGSL(kernel: Kernel, caps: WGSLCaps): string {
  return new Printer(kernel, caps).print();
}
