/**
 * Small dense host linear algebra in float64 for the quantizers (GPTQ's K×K Hessian): Cholesky,
 * the inverse of a symmetric positive definite matrix through its Cholesky factor, and the upper
 * Cholesky factor of that inverse. Matrices are row-major n×n `ArrayLike<number>`; results are new
 * Float64Arrays. These are O(n³) on the host: K is a layer's input width (hundreds to a few
 * thousand), done once per layer, and factorisation is sequential by nature.
 */
import { fail } from '../errors.js';

function checkSquare(A: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) fail('E_SHAPE', `${what}: bad size ${n}`);
  if (A.length !== n * n) fail('E_SHAPE', `${what}: ${A.length} values for a ${n}x${n} matrix`);
}

/**
 * Lower Cholesky factor L of a symmetric positive definite A (A = L·Lᵀ; only A's lower triangle is
 * read). Throws E_ARG naming the failing pivot when A is not (numerically) positive definite.
 */
export function cholesky(A: ArrayLike<number>, n: number): Float64Array {
  checkSquare(A, n, 'cholesky');
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = A[j * n + j]!;
    for (let k = 0; k < j; k++) d -= L[j * n + k]! * L[j * n + k]!;
    // a pivot at rounding-noise level relative to the diagonal means A is singular to working precision
    if (!(d > 8 * n * Number.EPSILON * Math.abs(A[j * n + j]!)) || !Number.isFinite(d)) {
      fail(
        'E_ARG',
        `cholesky: matrix is not positive definite (pivot ${d} at row ${j} of ${n}); ` +
          `for a GPTQ Hessian add more damping (opts.damp, e.g. 0.1) or more calibration samples`,
      );
    }
    const ljj = Math.sqrt(d);
    L[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = A[i * n + j]!;
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!;
      L[i * n + j] = s / ljj;
    }
  }
  return L;
}

/** A⁻¹ from A's lower Cholesky factor L: A⁻¹ = L⁻ᵀ·L⁻¹ (as torch.cholesky_inverse). Symmetric. */
export function choleskyInverse(L: ArrayLike<number>, n: number): Float64Array {
  checkSquare(L, n, 'choleskyInverse');
  // M = L⁻¹ (lower triangular), column by column by forward substitution
  const M = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    M[j * n + j] = 1 / L[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += L[i * n + k]! * M[k * n + j]!;
      M[i * n + j] = -s / L[i * n + i]!;
    }
  }
  // (A⁻¹)_ij = Σ_{k ≥ max(i, j)} M_ki · M_kj
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += M[k * n + i]! * M[k * n + j]!;
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/** The inverse of a symmetric positive definite matrix, via Cholesky. */
export function inverseSPD(A: ArrayLike<number>, n: number): Float64Array {
  return choleskyInverse(cholesky(A, n), n);
}

/** Upper Cholesky factor U of a symmetric positive definite A (A = Uᵀ·U; U = Lᵀ). */
export function choleskyUpper(A: ArrayLike<number>, n: number): Float64Array {
  const L = cholesky(A, n);
  const U = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) U[j * n + i] = L[i * n + j]!;
  return U;
}

/** C = A·B for row-major A [m, k] and B [k, n], in float64 (for tests and small host products). */
export function matmul64(A: ArrayLike<number>, B: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const a = A[i * k + p]!;
      if (a === 0) continue;
      for (let j = 0; j < n; j++) C[i * n + j] += a * B[p * n + j]!;
    }
  }
  return C;
}
