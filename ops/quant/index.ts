/**
 * Low-bit linear layers written directly in the DSL over symbolic dims: y = x · Wᵀ with W stored as
 * int4 codes packed eight to a u32 along K, with an f32 scale and zero point per group of 32
 * (GPTQ/AWQ-style asymmetric int4), dequantized inside the matmul's loads. The reference decodes
 * the words in float64 with its own loops.
 */
import { compute, dim, kernel, matmul, tensor } from '../../src/dsl/index.js';
import { dimCdiv } from '../../src/ir/dims.js';
import { arg, f32Out } from '../ref-util.js';
import { defineOp } from '../spec.js';

const M = dim('M');
const N = dim('N');
const K = dim('K');
const GROUP = 32;

export const int4LinearOp = defineOp({
  name: 'int4_linear',
  family: 'quant',
  build: () =>
    kernel(
      'int4_linear',
      { x: tensor('f32', [M, K]), codes: tensor('u32', [N, dimCdiv(K, 8)]), scales: tensor('f32', [N, dimCdiv(K, GROUP)]), zeros: tensor('f32', [N, dimCdiv(K, GROUP)]) },
      ({ x, codes, scales, zeros }) => {
        const w = compute([N, K], (n, k) => {
          const q = codes.at(n, k.div(8)).shr(k.mod(8).mul(4).cast('u32')).bitand(15).cast('i32').cast('f32');
          return q.sub(zeros.at(n, k.div(GROUP))).mul(scales.at(n, k.div(GROUP)));
        });
        return matmul(x, w.T);
      },
    ),
  reference: (ins) => {
    const x = arg(ins, 'x');
    const codes = arg(ins, 'codes');
    const s = arg(ins, 'scales');
    const z = arg(ins, 'zeros');
    const [Mv, Kv] = x.shape as [number, number];
    const Nv = codes.shape[0]!;
    const words = codes.shape[1]!;
    const groups = s.shape[1]!;
    const out = f32Out([Mv, Nv]);
    for (let m = 0; m < Mv; m++) {
      for (let n = 0; n < Nv; n++) {
        let acc = 0;
        for (let k = 0; k < Kv; k++) {
          const word = codes.data[n * words + Math.floor(k / 8)]!;
          const nibble = Math.floor(word / 16 ** (k % 8)) % 16;
          const g = n * groups + Math.floor(k / GROUP);
          acc += x.data[m * Kv + k]! * (nibble - z.data[g]!) * s.data[g]!;
        }
        out.data[m * Nv + n] = acc;
      }
    }
    return { out };
  },
  // per weight: the multiply-add; unpacking is not counted
  flops: ({ M, N, K }) => 2 * M! * N! * K!,
  tolerance: { rtol: 1e-4, atol: 1e-3 },
  sampleDims: { M: 3, N: 20, K: 72 },
  benchDims: { M: 1, N: 4096, K: 4096 },
  inputRange: 1,
  maxKernels: 1,
});
