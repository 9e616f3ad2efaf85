/**
 * Graph simplification: a table of rewrite rules applied bottom-up until nothing changes, plus
 * constant folding of scalar constants. CSE is free (nodes are interned) and DCE is implicit
 * (a program is what its outputs reach).
 */
import { isFloat } from '../ir/dtype.js';
import { shapeEq, type DimBindings } from '../ir/dims.js';
import { intern, topoOrder, type Node, type Program } from '../ir/graph.js';
import { isBinary, isUnary } from '../ir/ops.js';
import { isView, rowKernelOperand } from './fuse.js';

type Rule = { name: string; apply(n: Node): Node | undefined };

const constValue = (n: Node): number | undefined => {
  let x = n;
  while (x.op === 'expand' || x.op === 'reshape') x = x.args[0]!;
  return x.op === 'const' ? Number(x.attrs.value) : undefined;
};
const isFloatNode = (n: Node) => isFloat(n.dtype);

/** Reshape/expand a scalar const to `shape` (the DSL's broadcast of a const). */
function constLike(value: number, like: Node): Node {
  const c = intern('const', [], like.dtype, [], { value });
  if (like.shape.length === 0) return c;
  const ones = like.shape.map(() => 1);
  const r = intern('reshape', [c], like.dtype, ones, { shape: ones });
  return intern('expand', [r], like.dtype, like.shape, { shape: [...like.shape] });
}

const FOLD: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => Math.max(a, b),
  minimum: (a, b) => Math.min(a, b),
};
const UNFOLD: Record<string, (a: number) => number> = { neg: (a) => -a, exp: Math.exp, log: Math.log, sqrt: Math.sqrt, abs: Math.abs };

const LOCAL_RULES: readonly Rule[] = [
  { name: 'x+0', apply: (n) => (n.op === 'add' && constValue(n.args[1]!) === 0 ? n.args[0] : n.op === 'add' && constValue(n.args[0]!) === 0 ? n.args[1] : undefined) },
  { name: 'x-0', apply: (n) => (n.op === 'sub' && constValue(n.args[1]!) === 0 ? n.args[0] : undefined) },
  { name: 'x*1', apply: (n) => (n.op === 'mul' && constValue(n.args[1]!) === 1 ? n.args[0] : n.op === 'mul' && constValue(n.args[0]!) === 1 ? n.args[1] : undefined) },
  { name: 'x/1', apply: (n) => (n.op === 'div' && constValue(n.args[1]!) === 1 ? n.args[0] : undefined) },
  { name: 'neg(neg(x))', apply: (n) => (n.op === 'neg' && n.args[0]!.op === 'neg' ? n.args[0]!.args[0] : undefined) },
  { name: 'cast(x)->same', apply: (n) => (n.op === 'cast' && n.args[0]!.dtype === n.dtype ? n.args[0] : undefined) },
  { name: 'reshape(x)->same', apply: (n) => (n.op === 'reshape' && shapeEq(n.shape, n.args[0]!.shape) ? n.args[0] : undefined) },
  { name: 'expand(x)->same', apply: (n) => (n.op === 'expand' && shapeEq(n.shape, n.args[0]!.shape) ? n.args[0] : undefined) },
  {
    name: 'reshape(reshape(x))',
    apply: (n) => (n.op === 'reshape' && n.args[0]!.op === 'reshape' ? intern('reshape', [n.args[0]!.args[0]!], n.dtype, n.shape, n.attrs) : undefined),
  },
  {
    name: 'permute(permute(x))',
    apply: (n) => {
      if (n.op !== 'permute' || n.args[0]!.op !== 'permute') return undefined;
      const inner = n.args[0]!.attrs.perm as number[];
      const outer = n.attrs.perm as number[];
      const perm = outer.map((p) => inner[p]!);
      const x = n.args[0]!.args[0]!;
      return perm.every((p, i) => p === i) ? x : intern('permute', [x], n.dtype, n.shape, { perm });
    },
  },
  {
    name: 'fold binary consts',
    apply: (n) => {
      const f = FOLD[n.op];
      if (!f || !isFloatNode(n) || !isBinary(n.op)) return undefined;
      const a = constValue(n.args[0]!);
      const b = constValue(n.args[1]!);
      return a !== undefined && b !== undefined ? constLike(f(a, b), n) : undefined;
    },
  },
  {
    name: 'fold unary consts',
    apply: (n) => {
      const f = UNFOLD[n.op];
      if (!f || !isFloatNode(n) || !isUnary(n.op)) return undefined;
      const a = constValue(n.args[0]!);
      return a !== undefined ? constLike(f(a), n) : undefined;
    },
  },
];

/** The factors of a product tree of same-shaped muls: ((a * b) * c) -> [a, b, c]. */
function factorsOf(n: Node): Node[] {
  return n.op === 'mul' && shapeEq(n.args[0]!.shape, n.shape) && shapeEq(n.args[1]!.shape, n.shape) ? [...factorsOf(n.args[0]!), ...factorsOf(n.args[1]!)] : [n];
}

/** A tensor read straight from memory, through views. */
function isMemory(n: Node): boolean {
  while (isView(n)) n = n.args[0]!;
  return n.op === 'input';
}

/** `expand(s)` of a per-row value s [..., M, 1] over the columns of a [..., M, K] operand. */
function isRowBroadcast(f: Node, shape: readonly Node['shape'][number][]): boolean {
  if (f.op !== 'expand') return false;
  const s = f.args[0]!.shape;
  const r = shape.length;
  return s.length === r && r >= 2 && s[r - 1] === 1 && shapeEq(s.slice(0, r - 1), shape.slice(0, r - 1));
}

/**
 * matmul(P * rowScale(s), B) = matmul(P, B) * rowScale(s): a per-row factor of A (an RMSNorm's or a
 * layer norm's 1/rms, a per-token activation scale) leaves the K loop and becomes an epilogue
 * multiply, once per output instead of once per A element per column tile. When more than memory
 * is left in A (RMSNorm's x * g) and fusion will have the norm's row kernel write the whole
 * operand (`rowKernelOperand`), the rule stands aside.
 */
const rowScaleOutOfMatmul = (dims?: DimBindings): Rule => ({
  name: 'row scale out of matmul',
  apply: (n) => {
    if (n.op !== 'matmul' || !isFloatNode(n)) return undefined;
    const [A, B] = n.args as [Node, Node];
    const fs = factorsOf(A);
    const i = fs.findIndex((f) => isRowBroadcast(f, A.shape));
    if (i < 0 || fs.length < 2) return undefined;
    const rest = fs.filter((_, j) => j !== i).reduce((acc, f) => intern('mul', [acc, f], A.dtype, A.shape, {}));
    // with more than memory left in A, the norm's row kernel writes A whole instead (fusion's cost model)
    if (!isMemory(rest) && rowKernelOperand(n, 0, (m) => m.op === 'matmul', dims)) return undefined;
    const mm = intern('matmul', [rest, B], n.dtype, n.shape, n.attrs);
    const s = fs[i]!.args[0]!;
    const scale = intern('expand', [s], s.dtype, n.shape, { shape: [...n.shape] });
    return intern('mul', [mm, scale], n.dtype, n.shape, {});
  },
});

/** Rebuilds `n` with new args (interned, so unchanged subgraphs stay identical). */
function withArgs(n: Node, args: readonly Node[]): Node {
  return args.every((a, i) => a === n.args[i]) ? n : intern(n.op, args, n.dtype, n.shape, n.attrs);
}

/** The rules, with the dims the program will run at where they decide by cost (`specialize`). */
export function rulesFor(dims?: DimBindings): readonly Rule[] {
  return [...LOCAL_RULES, rowScaleOutOfMatmul(dims)];
}

export const RULES: readonly Rule[] = rulesFor();

export function simplify(p: Program, rules: readonly Rule[] = RULES): Program {
  const map = new Map<Node, Node>();
  const rewrite = (n: Node): Node => {
    let cur = withArgs(n, n.args.map((a) => map.get(a) ?? a));
    for (let guard = 0; guard < 100; guard++) {
      const next = rules.reduce<Node | undefined>((acc, r) => acc ?? r.apply(cur), undefined);
      if (!next || next === cur) break;
      cur = next.args.some((a) => map.has(a)) ? withArgs(next, next.args.map((a) => map.get(a) ?? a)) : next;
    }
    return cur;
  };
  for (const n of topoOrder(p.outputs.map((o) => o.node))) map.set(n, rewrite(n));
  return { ...p, outputs: p.outputs.map((o) => ({ name: o.name, node: map.get(o.node)! })) };
}

