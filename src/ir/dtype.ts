/**
 * Element types. Graph IR tensors carry a storage dtype; kernels compute floats in f32 and
 * integers in i32/u32, converting on load and store (see kernel.ts), so every backend agrees.
 */

export const DTYPES = ['f32', 'f16', 'bf16', 'i32', 'u32', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f16' || d === 'bf16';
}

/** A 16-bit float storage type (IEEE half, or bfloat16: f32's exponent, 8 significant bits). */
export function isHalf(d: DType): d is 'f16' | 'bf16' {
  return d === 'f16' || d === 'bf16';
}

export function isInt(d: DType): boolean {
  return d === 'i32' || d === 'u32';
}

/** Bytes one element occupies in a dense buffer as the graph IR sees it. */
export function byteSize(d: DType): number {
  return isHalf(d) ? 2 : 4;
}

/** Result dtype of mixing two operands: floats win, f32 beats f16 and bf16 (f16 with bf16 is f32), i32 beats u32. */
export function promote(a: DType, b: DType): DType | undefined {
  if (a === b) return a;
  if (isHalf(a) && isHalf(b)) return 'f32';
  const rank: Record<DType, number> = { bool: 0, u32: 1, i32: 2, f16: 3, bf16: 3, f32: 4 };
  return rank[a] > rank[b] ? a : b;
}
