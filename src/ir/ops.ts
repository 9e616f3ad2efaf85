/**
 * The graph IR's op vocabulary, with each op's arity and attribute shape. Composites (softmax,
 * layernorm, ...) are not ops: the DSL decomposes them so fusion sees their parts.
 */

export const UNARY_OPS = [
  'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu',
  'gelu_tanh', 'gelu_erf', 'silu', 'reciprocal', 'floor', 'ceil', 'not',
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

export const ARITH_OPS = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'mod'] as const;
export const COMPARE_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
export const LOGIC_OPS = ['and', 'or'] as const;
/** Bitwise ops on i32/u32 (packed low-bit weights): shift amounts are taken modulo 32. */
export const BITWISE_OPS = ['bitand', 'bitor', 'bitxor', 'shl', 'shr'] as const;
export type BitwiseOp = (typeof BITWISE_OPS)[number];
/**
 * Packed integer ops on u32 words holding small lanes. `dot4i8(a, b)`: each u32 holds four signed
 * int8 lanes (lane i in bits 8i..8i+7), the result is the i32 Σ_i a_i · b_i (WGSL dot4I8Packed,
 * CUDA __dp4a): the inner step of an int8 GEMM.
 */
export const PACKED_OPS = ['dot4i8'] as const;
export type PackedOp = (typeof PACKED_OPS)[number];
export type ArithOp = (typeof ARITH_OPS)[number];
export type CompareOp = (typeof COMPARE_OPS)[number];
export type LogicOp = (typeof LOGIC_OPS)[number];
export type BinaryOp = ArithOp | CompareOp | LogicOp | BitwiseOp | PackedOp;
export const BINARY_OPS: readonly BinaryOp[] = [...ARITH_OPS, ...COMPARE_OPS, ...LOGIC_OPS, ...BITWISE_OPS, ...PACKED_OPS];

export const REDUCE_OPS = ['sum', 'mean', 'max', 'min', 'argmax', 'argmin'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

export const MOVEMENT_OPS = ['reshape', 'permute', 'expand', 'slice', 'pad', 'concat', 'gather'] as const;
export type MovementOp = (typeof MOVEMENT_OPS)[number];

/** Every op name the graph IR knows. */
export const ALL_OPS = [
  'input', 'const', 'cast', 'where', 'matmul', 'compute',
  ...UNARY_OPS, ...BINARY_OPS, ...REDUCE_OPS, ...MOVEMENT_OPS,
] as const;
export type OpName = (typeof ALL_OPS)[number];

export function isOpName(s: string): s is OpName {
  return (ALL_OPS as readonly string[]).includes(s);
}
export const isUnary = (op: string): op is UnaryOp => (UNARY_OPS as readonly string[]).includes(op);
export const isBinary = (op: string): op is BinaryOp => (BINARY_OPS as readonly string[]).includes(op);
export const isBitwise = (op: string): op is BitwiseOp => (BITWISE_OPS as readonly string[]).includes(op);
export const isPacked = (op: string): op is PackedOp => (PACKED_OPS as readonly string[]).includes(op);
export const isCompare = (op: string): op is CompareOp => (COMPARE_OPS as readonly string[]).includes(op);
export const isReduce = (op: string): op is ReduceOp => (REDUCE_OPS as readonly string[]).includes(op);
export const isMovement = (op: string): op is MovementOp => (MOVEMENT_OPS as readonly string[]).includes(op);
/** Ops computed independently per element: cheap to recompute, always fusable. */
export const isElementwise = (op: string): boolean =>
  isUnary(op) || isBinary(op) || op === 'cast' || op === 'where' || op === 'const';
