/**
 * Packing codes into u32 words inside a DSL program (what every round-to-nearest quantizer ends
 * with), following the convention of types.ts: `per` codes of `bits` bits per word, code i of a row
 * at bit (i % per) * bits of word floor(i / per); lanes past the row's end are 0.
 */
import { compute, lit, reduceSum, select, type IndexExpr } from '../dsl/compute.js';
import type { Tensor } from '../dsl/tensor.js';
import { perWord, wordsPerRow } from './types.js';

/**
 * Words [rows, ceil(extent / per)] holding code(r, i) (a u32 below 2^bits) for i < extent, `per`
 * codes per word (default floor(32 / bits)).
 */
export function packCodesDSL(rows: number, extent: number, bits: number, code: (r: IndexExpr, i: IndexExpr) => IndexExpr, per = perWord(bits)): Tensor {
  const words = per === perWord(bits) ? wordsPerRow(extent, bits) : Math.ceil(extent / per);
  return compute([rows, words], (r, wi) =>
    reduceSum(per, (j) => {
      const i = wi.mul(per).add(j);
      return select(i.lt(extent), code(r, i.min(extent - 1)).cast('u32').shl(j.mul(bits).cast('u32')), lit(0, 'u32'));
    }),
  );
}
