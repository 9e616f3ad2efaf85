/**
 * The float64 reference implementation of every graph-IR op, and an interpreter for whole programs.
 * It is the oracle of the property tests, so it is written as plain loops and shares no code with
 * the compiler's lowering.
 *
 * Numerics
 * - Every value is a float64. After each op, integer and bool results are rounded to their dtype
 *   (`roundTo`: i32/u32 truncate and wrap modulo 2^32, bool is x != 0); f32, f16 and bf16 results are kept
 *   in float64 (compare with a tolerance). Tensors made with `refTensor`/`refFromHost` hold values
 *   as stored in their dtype (f32 via Math.fround, f16 rounded to half, bf16 to bfloat16).
 * - Binary operands of different dtypes are converted to their promoted dtype first (`promote`).
 *
 * Ops
 * - unary: neg abs exp log sqrt rsqrt(1/sqrt) sin cos tanh sigmoid(1/(1+e^-x)) relu(max(x,0), NaN
 *   stays NaN) gelu_tanh(0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))) gelu_erf(0.5x(1+erf(x/sqrt2)))
 *   silu(x*sigmoid(x)) reciprocal floor ceil not(x == 0). neg/abs on integers wrap (abs(INT_MIN) =
 *   INT_MIN, -1u = 2^32-1).
 * - binary: add sub mul div pow maximum minimum mod; eq ne lt le gt ge and or give bool 0/1 (NaN compares
 *   unequal to everything). Integer mul keeps the low 32 bits exactly; integer div truncates toward
 *   zero and x / 0 = 0; mod is the truncated remainder (sign of the dividend, C fmod for floats,
 *   float x mod 0 = NaN) and integer x mod 0 = 0. Float max/min propagate NaN.
 * - bitwise (i32/u32): bitand bitor bitxor shl shr on the 32-bit patterns, shift amounts modulo 32,
 *   shr arithmetic on i32 and logical on u32. dot4i8(a: u32, b: u32) -> i32 is the sum of the products
 *   of the four signed int8 lanes (lane i = bits 8i..8i+7, two's complement).
 * - cast: float -> int truncates toward zero and clamps to the target range, NaN -> 0; int -> int
 *   wraps modulo 2^32; anything -> bool is x != 0 (NaN -> 1); bool -> number is 0/1; -> f16 and -> bf16 round
 *   to their type; int -> f32 rounds to the nearest f32 (as a device does); float -> f32 keeps the value.
 * - where(c, a, b) = c != 0 ? a : b.
 * - sum mean max min over `axes` with keepdims (mean of ints truncates); argmax/argmin over one
 *   axis, i32, first index on ties, a NaN counts as the extreme and the first NaN wins.
 * - reshape, permute, expand, slice, pad, concat, gather, matmul, compute: see movement.ts,
 *   matmul.ts and compute.ts; const is a [] scalar; input comes from the inputs record.
 */
export * from './tensor.js';
export { erf, sigmoid, unaryScalar, binaryScalar, castScalar } from './scalar.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './movement.js';
export * from './matmul.js';
export * from './compute.js';
export * from './eval.js';
