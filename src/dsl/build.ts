/**
 * The one place the DSL creates graph nodes: infers the type with ir/infer.ts and re-throws any
 * error with the user's call site, so a shape mistake points at the line that made it.
 */
import { callSite, TesseraError, type ErrorCode } from '../errors.js';
import type { DType } from '../ir/dtype.js';
import type { Shape } from '../ir/dims.js';
import { intern, type Attrs, type Node } from '../ir/graph.js';
import { inferType } from '../ir/infer.js';
import type { OpName } from '../ir/ops.js';
import { recordSite } from '../ir/sites.js';

/** Runs `f`; a TesseraError without a location gets the DSL call site. */
export function atCallSite<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TesseraError && !e.location) throw new TesseraError(e.code, e.detail, callSite());
    throw e;
  }
}

export function dslError(code: ErrorCode, message: string): TesseraError {
  return new TesseraError(code, message, callSite());
}

export function buildNode(op: OpName, args: readonly Node[], attrs: Attrs = {}): Node {
  return atCallSite(() => {
    const t = inferType(op, args, attrs);
    const n = intern(op, args, t.dtype, t.shape, attrs);
    recordSite(n, new Error());
    return n;
  });
}

export function leafNode(op: 'input' | 'const', dtype: DType, shape: Shape, attrs: Attrs): Node {
  const n = intern(op, [], dtype, shape, attrs);
  recordSite(n, new Error());
  return n;
}
