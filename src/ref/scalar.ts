/**
 * Scalar semantics shared by the elementwise ops, reductions, matmul and compute bodies. Each
 * function takes float64 values and the operands' dtype, and returns the result rounded with
 * `roundTo` when the result dtype is an integer or bool (floats stay float64). The rules are listed
 * in src/ref/index.ts.
 */
import { isFloat, isInt, promote, type DType } from '../ir/dtype.js';
import type { BinaryOp, UnaryOp } from '../ir/ops.js';
import { roundTo } from './tensor.js';

const isFloatType = (t: DType): boolean => isFloat(t);

/** Rounds integer and bool results; floats pass through unrounded. */
function store(t: DType, x: number): number {
  return isFloatType(t) ? x : roundTo(t, x);
}

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * The error function, accurate to about 1e-15. For |x| < 3 the everywhere-positive series
 * erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)) (no cancellation);
 * for 3 <= |x| < 6.5 the continued fraction
 * erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))));
 * beyond that erf(x) is ±1 to double precision.
 */
export function erf(x: number): number {
  if (Number.isNaN(x) || x === 0) return x;
  const a = Math.abs(x);
  const sign = x < 0 ? -1 : 1;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 0; n < 200; n++) {
      term *= (2 * a * a) / (2 * n + 3);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return sign * TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
  }
  if (a < 6.5) {
    let t = a;
    for (let k = 120; k >= 1; k--) t = a + k / 2 / t;
    const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / t;
    return sign * (1 - erfc);
  }
  return sign;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** The signed int8 in bits 8i..8i+7 of the 32-bit word `w`. */
const int8Lane = (w: number, i: number): number => {
  const byte = Math.floor(w / 2 ** (8 * i)) % 256; // arithmetic, not JS bit ops: independent of the printers' helper
  return byte >= 128 ? byte - 256 : byte;
};

/** Σ_{i<4} a_i · b_i over the four signed int8 lanes of the u32 words `a` and `b` (|result| <= 65536). */
export function dot4i8(a: number, b: number): number {
  const ua = roundTo('u32', a);
  const ub = roundTo('u32', b);
  let s = 0;
  for (let i = 0; i < 4; i++) s += int8Lane(ua, i) * int8Lane(ub, i);
  return s;
}

/** Result dtype of a unary op on an operand of dtype `t`. */
export function unaryType(op: UnaryOp, t: DType): DType {
  return op === 'not' ? 'bool' : t;
}

/** Result dtype of a binary op whose operands have dtypes `a` and `b`. */
export function binaryType(op: BinaryOp, a: DType, b: DType): DType {
  switch (op) {
    case 'eq': case 'ne': case 'lt': case 'le': case 'gt': case 'ge': case 'and': case 'or':
      return 'bool';
    case 'dot4i8':
      return 'i32';
    default:
      return operandType(a, b);
  }
}

/** The dtype both operands of a binary op (or where's branches) are converted to. */
export function operandType(a: DType, b: DType): DType {
  return promote(a, b) ?? a;
}

/** `op` applied to `x` of dtype `t`. */
export function unaryScalar(op: UnaryOp, x: number, t: DType): number {
  let r: number;
  switch (op) {
    case 'neg': r = -x; break;
    case 'abs': r = Math.abs(x); break;
    case 'exp': r = Math.exp(x); break;
    case 'log': r = Math.log(x); break;
    case 'sqrt': r = Math.sqrt(x); break;
    case 'rsqrt': r = 1 / Math.sqrt(x); break;
    case 'sin': r = Math.sin(x); break;
    case 'cos': r = Math.cos(x); break;
    case 'tanh': r = Math.tanh(x); break;
    case 'sigmoid': r = sigmoid(x); break;
    case 'relu': r = Math.max(x, 0); break; // NaN stays NaN
    case 'gelu_tanh': r = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))); break;
    case 'gelu_erf': r = 0.5 * x * (1 + erf(x / Math.SQRT2)); break;
    case 'silu': r = x * sigmoid(x); break;
    case 'reciprocal': r = 1 / x; break;
    case 'floor': r = Math.floor(x); break;
    case 'ceil': r = Math.ceil(x); break;
    case 'not': r = x === 0 ? 1 : 0; break;
  }
  return store(unaryType(op, t), r);
}

/** `op` applied to `a` and `b`, both already of dtype `t` (see `operandType`). */
export function binaryScalar(op: BinaryOp, a: number, b: number, t: DType): number {
  const int = isInt(t);
  let r: number;
  switch (op) {
    case 'add': r = a + b; break;
    case 'sub': r = a - b; break;
    // Math.imul keeps all 32 low bits, which a float64 product of two large ints would not.
    case 'mul': r = int ? Math.imul(a, b) : a * b; break;
    case 'div': r = int ? (b === 0 ? 0 : Math.trunc(a / b)) : a / b; break;
    // JS % is C's fmod: the exact truncated remainder, with the dividend's sign.
    case 'mod': r = int && b === 0 ? 0 : a % b; break;
    case 'pow': r = Math.pow(a, b); break;
    case 'maximum': r = Math.max(a, b); break; // NaN if either is NaN
    case 'minimum': r = Math.min(a, b); break;
    case 'eq': r = a === b ? 1 : 0; break;
    case 'ne': r = a !== b ? 1 : 0; break;
    case 'lt': r = a < b ? 1 : 0; break;
    case 'le': r = a <= b ? 1 : 0; break;
    case 'gt': r = a > b ? 1 : 0; break;
    case 'ge': r = a >= b ? 1 : 0; break;
    case 'and': r = a !== 0 && b !== 0 ? 1 : 0; break;
    case 'or': r = a !== 0 || b !== 0 ? 1 : 0; break;
    // bitwise (ints only): JS works on the low 32 bits and masks shift amounts to 5 bits, as devices do
    case 'bitand': r = a & b; break;
    case 'bitor': r = a | b; break;
    case 'bitxor': r = a ^ b; break;
    case 'shl': r = a << (b & 31); break;
    case 'shr': r = t === 'u32' ? a >>> (b & 31) : a >> (b & 31); break;
    case 'dot4i8': r = dot4i8(a, b); break;
  }
  return store(binaryType(op, t, t), r);
}

/** `x` of dtype `from` converted to dtype `to`. */
export function castScalar(x: number, from: DType, to: DType): number {
  if (to === 'bool') return x !== 0 ? 1 : 0; // NaN != 0, so NaN -> true
  if (to === 'f16' || to === 'bf16') return roundTo(to, x);
  if (to === 'f32') return isFloatType(from) ? x : Math.fround(x); // ints above 2^24 round as on a device
  // to i32 / u32
  if (isFloatType(from)) {
    if (Number.isNaN(x)) return 0;
    const lo = to === 'i32' ? -(2 ** 31) : 0;
    const hi = to === 'i32' ? 2 ** 31 - 1 : 2 ** 32 - 1;
    return Math.min(Math.max(Math.trunc(x), lo), hi);
  }
  return roundTo(to, x); // int <-> int wraps modulo 2^32; bool is 0/1
}

/** The identity of a sum/max/min accumulation in dtype `t` (what reducing nothing gives). */
export function reduceIdentity(fn: 'sum' | 'max' | 'min', t: DType): number {
  if (fn === 'sum') return 0;
  const max = fn === 'max';
  switch (t) {
    case 'f32': case 'f16': case 'bf16': return max ? -Infinity : Infinity;
    case 'i32': return max ? -(2 ** 31) : 2 ** 31 - 1;
    case 'u32': return max ? 0 : 2 ** 32 - 1;
    case 'bool': return max ? 0 : 1;
  }
}
