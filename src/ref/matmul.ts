/** Reference matmul: [...B, M, K] x [...B, K, N] -> [...B, M, N], equal batch dims, no broadcasting. */
import { fail } from '../errors.js';
import { binaryScalar, operandType } from './scalar.js';
import { roundIntegers, sameShape, showShape, zeros, type RefTensor } from './tensor.js';

/**
 * out[..., m, n] = sum_k a[..., m, k] * b[..., k, n], accumulated in float64 in increasing k.
 * Integer matmuls accumulate with 32-bit wrapping multiply-adds, like the kernels.
 */
export function refMatmul(a: RefTensor, b: RefTensor): RefTensor {
  const r = a.shape.length;
  const bad = () => fail('E_SHAPE', `matmul of ${showShape(a.shape)} and ${showShape(b.shape)}`);
  if (r < 2 || b.shape.length !== r) bad();
  const batch = a.shape.slice(0, r - 2);
  if (!sameShape(batch, b.shape.slice(0, r - 2))) bad();
  const [M, K] = [a.shape[r - 2]!, a.shape[r - 1]!];
  const [K2, N] = [b.shape[r - 2]!, b.shape[r - 1]!];
  if (K !== K2) bad();

  const t = operandType(a.dtype, b.dtype);
  const int = t === 'i32' || t === 'u32';
  const out = zeros(t, [...batch, M, N]);
  const B = batch.reduce((p, d) => p * d, 1);
  for (let bi = 0; bi < B; bi++) {
    const aOff = bi * M * K;
    const bOff = bi * K * N;
    const oOff = bi * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const x = a.data[aOff + m * K + k]!;
          const y = b.data[bOff + k * N + n]!;
          acc = int ? binaryScalar('add', acc, binaryScalar('mul', x, y, t), t) : acc + x * y;
        }
        out.data[oOff + m * N + n] = acc;
      }
    }
  }
  return roundIntegers(out);
}
