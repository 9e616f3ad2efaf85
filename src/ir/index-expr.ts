/**
 * Index expressions: the body of a `compute` node. `compute([M, N], (i, j) => ...)` builds one of
 * these; the lowering substitutes output indices into it, so a compute node fuses like any other.
 * Plain JSON, so it hashes, prints and parses with the rest of the graph IR.
 *
 * Integer arithmetic is i32 with C semantics (division truncates, modulo takes the dividend's sign);
 * indices are non-negative, where that is floor division and a non-negative modulo.
 */
import type { DType } from './dtype.js';
import type { Dim } from './dims.js';
import type { BinaryOp, UnaryOp } from './ops.js';

export type IExpr =
  | { readonly k: 'idx'; readonly i: number } // the i-th output index (i32)
  | { readonly k: 'rvar'; readonly name: string } // a reduction variable (i32)
  | { readonly k: 'num'; readonly v: number; readonly dtype: DType }
  | { readonly k: 'dim'; readonly d: Dim } // a dim's value as i32
  | { readonly k: 'at'; readonly arg: number; readonly idx: readonly IExpr[] } // args[arg][idx...]
  | { readonly k: 'un'; readonly op: UnaryOp; readonly a: IExpr }
  | { readonly k: 'bin'; readonly op: BinaryOp; readonly a: IExpr; readonly b: IExpr }
  | { readonly k: 'where'; readonly c: IExpr; readonly a: IExpr; readonly b: IExpr }
  | { readonly k: 'cast'; readonly dtype: DType; readonly a: IExpr }
  | { readonly k: 'red'; readonly fn: 'sum' | 'max' | 'min'; readonly name: string; readonly extent: Dim; readonly body: IExpr };

export function iexprChildren(e: IExpr): IExpr[] {
  switch (e.k) {
    case 'idx': case 'rvar': case 'num': case 'dim': return [];
    case 'at': return [...e.idx];
    case 'un': case 'cast': return [e.a];
    case 'bin': return [e.a, e.b];
    case 'where': return [e.c, e.a, e.b];
    case 'red': return [e.body];
  }
}
