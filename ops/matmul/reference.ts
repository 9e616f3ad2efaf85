/**
 * float64 batched matmul for the matmul family's references: out[b, m, n] = sum_k a[b, m, k] * B[b, k, n],
 * with B read as [b, n, k] when `transB`. Plain loops, no shared code with the compiler.
 */
import type { RefTensor } from '../../src/ref/index.js';
import { f32Out } from '../ref-util.js';

export function refBatchedMatmul(a: RefTensor, b: RefTensor, transB: boolean): RefTensor {
  const r = a.shape.length;
  const batch = a.shape.slice(0, r - 2);
  const [M, K] = [a.shape[r - 2]!, a.shape[r - 1]!];
  const N = transB ? b.shape[r - 2]! : b.shape[r - 1]!;
  const out = f32Out([...batch, M, N]);
  const count = batch.reduce((p, d) => p * d, 1);
  for (let bi = 0; bi < count; bi++) {
    const ao = bi * M * K;
    const bo = bi * K * N;
    const oo = bi * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[ao + m * K + k]! * b.data[bo + (transB ? n * K + k : k * N + n)]!;
        out.data[oo + m * N + n] = s;
      }
    }
  }
  return out;
}
