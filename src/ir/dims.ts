/**
 * Symbolic dimensions. A dim is a number, a named symbol bound at dispatch, or a small arithmetic
 * expression over them (reshape, slice, pad and concat produce these). Dims are plain JSON so they
 * print, parse, hash and compare structurally; `simplifyDim` keeps them canonical.
 */
import { fail } from '../errors.js';

export type DimOp = '+' | '-' | '*' | '/' | 'cdiv';
export type Dim = number | { readonly sym: string } | { readonly op: DimOp; readonly a: Dim; readonly b: Dim };

/** Is `x` a Dim (checked at the DSL's boundary, where untyped callers may pass anything)? */
export function isDim(x: unknown): x is Dim {
  if (typeof x === 'number') return true;
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  if ('sym' in x) return typeof x.sym === 'string';
  return 'op' in x && 'a' in x && 'b' in x && isDim(x.a) && isDim(x.b);
}
export type Shape = readonly Dim[];

export function sym(name: string): Dim {
  return { sym: name };
}

export function isConst(d: Dim): d is number {
  return typeof d === 'number';
}

function mk(op: DimOp, a: Dim, b: Dim): Dim {
  return simplifyDim({ op, a, b });
}
export const dimAdd = (a: Dim, b: Dim): Dim => mk('+', a, b);
export const dimSub = (a: Dim, b: Dim): Dim => mk('-', a, b);
export const dimMul = (a: Dim, b: Dim): Dim => mk('*', a, b);
export const dimDiv = (a: Dim, b: Dim): Dim => mk('/', a, b);
export const dimCdiv = (a: Dim, b: Dim): Dim => mk('cdiv', a, b);

export function dimProduct(ds: readonly Dim[]): Dim {
  return ds.reduce<Dim>((acc, d) => dimMul(acc, d), 1);
}

function applyOp(op: DimOp, a: number, b: number): number {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': return Math.floor(a / b);
    case 'cdiv': return Math.ceil(a / b);
  }
}

/** Constant folding, identities, and a canonical operand order for + and *. */
export function simplifyDim(d: Dim): Dim {
  if (typeof d === 'number' || 'sym' in d) return d;
  const a = simplifyDim(d.a);
  const b = simplifyDim(d.b);
  if (typeof a === 'number' && typeof b === 'number') return applyOp(d.op, a, b);
  switch (d.op) {
    case '+':
      if (a === 0) return b;
      if (b === 0) return a;
      break;
    case '-':
      if (b === 0) return a;
      if (dimKey(a) === dimKey(b)) return 0;
      break;
    case '*':
      if (a === 0 || b === 0) return 0;
      if (a === 1) return b;
      if (b === 1) return a;
      break;
    case '/':
    case 'cdiv':
      if (b === 1) return a;
      if (typeof b === 'number' && typeof a !== 'number' && 'op' in a && a.op === '*') {
        // (x * c) / c == x, the shape of a reshape that splits then merges an axis
        if (a.b === b) return a.a;
        if (a.a === b) return a.b;
      }
      break;
  }
  if ((d.op === '+' || d.op === '*') && dimKey(a) > dimKey(b)) return { op: d.op, a: b, b: a };
  return { op: d.op, a, b };
}

export function dimKey(d: Dim): string {
  if (typeof d === 'number') return String(d);
  if ('sym' in d) return d.sym;
  return `(${dimKey(d.a)}${d.op === 'cdiv' ? ' cdiv ' : d.op}${dimKey(d.b)})`;
}

/** Human/text-form spelling: `M`, `4`, `M*N`, `(M+1)`, `cdiv(M, 4)`. The text-form parser reads it back. */
export function dimToString(d: Dim): string {
  if (typeof d === 'number') return String(d);
  if ('sym' in d) return d.sym;
  if (d.op === 'cdiv') return `cdiv(${dimToString(d.a)}, ${dimToString(d.b)})`;
  const wrap = (x: Dim) => (typeof x === 'object' && 'op' in x && x.op !== 'cdiv' ? `(${dimToString(x)})` : dimToString(x));
  return `${wrap(d.a)}${d.op}${wrap(d.b)}`;
}

export function shapeToString(s: Shape): string {
  return `[${s.map(dimToString).join(', ')}]`;
}

export function dimEq(a: Dim, b: Dim): boolean {
  return dimKey(simplifyDim(a)) === dimKey(simplifyDim(b));
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]!));
}

export function dimSymbols(d: Dim, out: Set<string> = new Set()): Set<string> {
  if (typeof d === 'number') return out;
  if ('sym' in d) out.add(d.sym);
  else {
    dimSymbols(d.a, out);
    dimSymbols(d.b, out);
  }
  return out;
}

export function shapeSymbols(s: Shape, out: Set<string> = new Set()): Set<string> {
  for (const d of s) dimSymbols(d, out);
  return out;
}

export type DimBindings = Readonly<Record<string, number>>;

/** Value of a dim under bindings; an unbound symbol is an E_UNBOUND_DIM error. */
export function evalDim(d: Dim, env: DimBindings): number {
  if (typeof d === 'number') return d;
  if ('sym' in d) {
    const v = env[d.sym];
    if (v === undefined) fail('E_UNBOUND_DIM', `symbolic dim '${d.sym}' has no value; pass it in the dims or through an input's shape`);
    return v;
  }
  return applyOp(d.op, evalDim(d.a, env), evalDim(d.b, env));
}

/** The value of a dim when it is constant or every symbol in it is bound in `env`, else undefined. */
export function knownDim(d: Dim, env: DimBindings = {}): number | undefined {
  for (const s of dimSymbols(d)) if (env[s] === undefined) return undefined;
  return evalDim(d, env);
}

export function evalShape(s: Shape, env: DimBindings): number[] {
  return s.map((d) => evalDim(d, env));
}

export function numel(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}
