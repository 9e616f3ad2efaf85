import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TesseraError } from '../src/errors.js';
import { dimCdiv, dimMul, dimSub, simplifyDim, sym, type Dim, type Shape } from '../src/ir/dims.js';
import { DTYPES, type DType } from '../src/ir/dtype.js';
import { intern, type Attrs, type Node, type Program } from '../src/ir/graph.js';
import type { IExpr } from '../src/ir/index-expr.js';
import { inferType, sliceSize } from '../src/ir/infer.js';
import { ARITH_OPS, BINARY_OPS, BITWISE_OPS, COMPARE_OPS, LOGIC_OPS, PACKED_OPS, REDUCE_OPS, UNARY_OPS, type OpName } from '../src/ir/ops.js';
import { isPrintableDim, parseDim, parseIExpr, parseProgram, printIExpr, printProgram } from '../src/ir/text/index.js';

const M = sym('M');
const N = sym('N');
const P = sym('P');

const input = (name: string, dtype: DType, shape: Shape) => intern('input', [], dtype, shape, { name });
const konst = (value: number, dtype: DType = 'f32', extra: Attrs = {}) => intern('const', [], dtype, [], { value, ...extra });
function node(op: OpName, args: Node[], attrs: Attrs = {}): Node {
  const t = inferType(op, args, attrs);
  return intern(op, args, t.dtype, t.shape, attrs);
}
function program(name: string, inputs: Node[], outputs: Node[]): Program {
  return {
    name,
    inputs: inputs.map((n) => ({ name: n.attrs.name as string, dtype: n.dtype, shape: n.shape })),
    outputs: outputs.map((node, i) => ({ name: `o${i}`, node })),
  };
}

// IExpr builders, with the key order the DSL uses
const idx = (i: number): IExpr => ({ k: 'idx', i });
const rv = (name: string): IExpr => ({ k: 'rvar', name });
const num = (v: number, dtype: DType): IExpr => ({ k: 'num', v, dtype });
const dimE = (d: Dim): IExpr => ({ k: 'dim', d });
const at = (arg: number, ...i: IExpr[]): IExpr => ({ k: 'at', arg, idx: i });
const un = (op: (typeof UNARY_OPS)[number], a: IExpr): IExpr => ({ k: 'un', op, a });
const bin = (op: (typeof BINARY_OPS)[number], a: IExpr, b: IExpr): IExpr => ({ k: 'bin', op, a, b });
const cast = (dtype: DType, a: IExpr): IExpr => ({ k: 'cast', dtype, a });
const red = (fn: 'sum' | 'max' | 'min', name: string, extent: Dim, body: IExpr): IExpr => ({ k: 'red', fn, name, extent, body });

/** Hash-consing key of a value: key order and non-finite numbers matter, as in graph.ts. */
const keyOf = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x));

function expectRoundTrip(p: Program): string {
  const text = printProgram(p);
  const q = parseProgram(text);
  expect(q.name).toBe(p.name);
  expect(q.inputs).toEqual(p.inputs);
  expect(q.outputs.map((o) => o.name)).toEqual(p.outputs.map((o) => o.name));
  q.outputs.forEach((o, i) => expect(o.node).toBe(p.outputs[i]!.node));
  expect(printProgram(q)).toBe(text);
  return text;
}

function allOps(): Program {
  const x = input('x', 'f32', [M, N]);
  const y = input('y', 'f32', [M, N]);
  const w = input('w', 'f32', [N, P]);
  const c = input('c', 'bool', [M, N]);
  const ix = input('ix', 'i32', [3]);
  const outs: Node[] = [konst(0.5), konst(-Infinity), konst(NaN), konst(-0), konst(7, 'i32'), intern('const', [], 'bool', [], { value: true })];
  for (const op of UNARY_OPS) outs.push(node(op, [op === 'not' ? c : x]));
  for (const op of [...ARITH_OPS, ...COMPARE_OPS]) outs.push(node(op, [x, y]));
  for (const op of LOGIC_OPS) outs.push(node(op, [c, node('lt', [x, y])]));
  const xi = node('cast', [x], { to: 'u32' });
  for (const op of BITWISE_OPS) outs.push(node(op, [xi, xi]));
  for (const op of PACKED_OPS) outs.push(node(op, [xi, xi]));
  outs.push(node('cast', [x], { to: 'i32' }), node('where', [c, x, y]), node('matmul', [x, w]));
  for (const op of REDUCE_OPS) outs.push(node(op, [x], { axes: [1], keepdims: !op.startsWith('arg') }));
  const rowSum = node('sum', [x], { axes: [1], keepdims: true });
  outs.push(
    node('reshape', [x], { shape: [dimMul(M, N)] }),
    node('permute', [x], { perm: [1, 0] }),
    node('expand', [rowSum], { shape: [M, N] }),
    node('slice', [x], { starts: [dimSub(M, 1), 0], steps: [-2, 1], sizes: [sliceSize(dimSub(M, 1), -1, -2), N] }),
    node('pad', [x], { before: [1, 0], after: [0, 2], value: -Infinity }),
    node('concat', [x, y, x], { axis: 0 }),
    node('gather', [x, ix], { axis: 0 }),
    node('compute', [x, w], { shape: [M, P], expr: red('sum', 'r0', N, bin('mul', at(0, idx(0), rv('r0')), at(1, rv('r0'), idx(1)))) }),
    node('compute', [x, c], {
      shape: [M, N],
      expr: {
        k: 'where',
        c: bin('and', at(1, idx(0), idx(1)), bin('lt', idx(1), bin('sub', dimE(N), num(1, 'i32')))),
        a: bin('add', un('exp', at(0, bin('minimum', idx(0), dimE(dimCdiv(dimMul(M, N), 4))), idx(1))), cast('f32', red('max', 'r0', M, bin('mod', rv('r0'), num(3, 'i32'))))),
        b: bin('pow', cast('f32', num(0.5, 'f16')), bin('div', num(-0, 'f32'), cast('f32', bin('add', num(7, 'u32'), cast('u32', num(1, 'bool')))))),
      },
    }),
  );
  return program('all_ops', [x, y, w, c, ix], outs);
}

describe('text form round trip', () => {
  it('covers every op kind and gives back the same nodes', () => {
    const text = expectRoundTrip(allOps());
    for (const op of ['input', 'const', 'cast', 'where', 'matmul', 'compute', ...UNARY_OPS, ...BINARY_OPS, ...REDUCE_OPS, 'reshape', 'permute', 'expand', 'slice', 'pad', 'concat', 'gather'])
      expect(text).toMatch(new RegExp(`= ${op}\\b`));
    expect(text).toContain('expr: sum r0 < N: at(0, [i0, r0]) * at(1, [r0, i1])');
    expect(text).toContain('{starts: [M-1, 0], steps: [-2, 1], sizes: [cdiv((M-1)--1, 2), N]} : f32[cdiv((M-1)--1, 2), N]');
    expect(text).toContain('{before: [1, 0], after: [0, 2], value: -inf}');
  });

  it('prints a program in a readable form', () => {
    const a = input('a', 'f16', [M, N]);
    const b = input('b', 'f16', [N, P]);
    const mm = node('compute', [a, b], { shape: [M, P], expr: red('sum', 'r0', N, bin('mul', at(0, idx(0), rv('r0')), at(1, rv('r0'), idx(1)))) });
    const scaled = node('mul', [mm, node('expand', [node('reshape', [konst(0.125, 'f16')], { shape: [1, 1] })], { shape: [M, P] })]);
    const p: Program = { name: 'scaled_mm', inputs: [a, b].map((n) => ({ name: n.attrs.name as string, dtype: n.dtype, shape: n.shape })), outputs: [{ name: 'y', node: scaled }] };
    expect(expectRoundTrip(p)).toMatchInlineSnapshot(`
      "program scaled_mm(a: f16[M, N], b: f16[N, P]) -> (y) {
        %0 = input a : f16[M, N]
        %1 = input b : f16[N, P]
        %2 = compute(%0, %1) {shape: [M, P], expr: sum r0 < N: at(0, [i0, r0]) * at(1, [r0, i1])} : f16[M, P]
        %3 = const {value: 0.125} : f16[]
        %4 = reshape(%3) {shape: [1, 1]} : f16[1, 1]
        %5 = expand(%4) {shape: [M, P]} : f16[M, P]
        %6 = mul(%2, %5) : f16[M, P]
        y = %6
      }
      "
    `);
  });

  it('keeps odd attrs exact: key order, quoted keys, nested maps, non-canonical dims, strings', () => {
    const odd = konst(1, 'f32', {
      z: 1, a: [[], {}, null, false, 'say "hi"\n'], 'two words': -0, expr: 5, other: bin('add', idx(0), idx(1)),
      raw: { op: '+', a: N, b: M }, tiny: 5e-324, big: 1.7976931348623157e308, nested: { expr: idx(0), sym: 'inf' }, ['__proto__']: 3,
    });
    const p = program('odd', [], [odd]);
    const text = expectRoundTrip(p);
    expect(text).toContain('"two words": -0, "expr": 5');
    expect(text).toContain('nested: {expr: i0, sym: "inf"}');
    expect(keyOf(parseProgram(text).outputs[0]!.node.attrs)).toBe(keyOf(odd.attrs));
  });

  it('names that are not identifiers or that are keywords', () => {
    const a = input('my input', 'f32', [sym('sum'), 4]);
    const s = node('exp', [a]);
    const text = expectRoundTrip({ name: 'weird-name', inputs: [{ name: 'my input', dtype: 'f32', shape: [sym('sum'), 4] }], outputs: [{ name: 'max', node: s }, { name: 'out 2', node: a }] });
    expect(text).toContain('program "weird-name"("my input": f32[sum, 4]) -> (max, "out 2") {');
  });

  it('reads hand-written text with comments and any %names, and prints it stably', () => {
    const text = `
      // a comment line
      program f(x: f32[M, 2*N], y: f32[M, (N*2)]) -> (z, w) {  // trailing comment
        %in = input x : f32[M, N*2]
        %y = input {name: "y"} : f32[M, (2*N)]
        %s = add(%in, %y) : f32[M, 2*N]
        %r = sum(%s) {axes: [0], keepdims: false} : f32[2 * N]
        w = %r
        z = %s
      }`;
    const p = parseProgram(text);
    const printed = printProgram(p);
    expect(printed).toContain('%2 = add(%0, %1) : f32[M, 2*N]');
    expect(printed).toContain('%3 = sum(%2) {axes: [0], keepdims: false} : f32[2*N]');
    expect(printProgram(parseProgram(printed))).toBe(printed);
    expect(parseProgram(printed).outputs[1]!.node).toBe(p.outputs[1]!.node);
  });

  it('the examples parse and are what the printer writes, less their comments', () => {
    const dir = new URL('../examples/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.tsr'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const text = readFileSync(new URL(f, dir), 'utf8');
      const bare = text.split('\n').filter((l) => !l.trim().startsWith('//')).join('\n');
      expect(printProgram(parseProgram(text, f))).toBe(bare);
    }
  });
});

describe('index expressions', () => {
  it('spells out names a bare word cannot say', () => {
    const e = red('sum', 'i0', M, red('max', 'N', N, bin('add', bin('add', at(0, idx(0), rv('i0')), cast('f32', bin('add', dimE(N), rv('N')))), cast('f32', rv('k')))));
    const s = printIExpr(e);
    expect(s).toBe('sum i0 < M: max N < N: at(0, [idx(0), i0]) + cast(f32, dim(N) + N) + cast(f32, rvar(k))');
    expect(parseIExpr(s)).toEqual(e);
  });

  it('parenthesizes by precedence', () => {
    const a = at(0, idx(0));
    const e = bin('or', bin('and', bin('lt', bin('sub', a, bin('sub', a, num(-1, 'i32'))), bin('mul', a, bin('div', a, a))), bin('eq', bin('lt', a, a), num(1, 'bool'))), red('sum', 'k', 4, a));
    const s = printIExpr(e);
    expect(s).toBe('at(0, [i0]) - (at(0, [i0]) - -1) < at(0, [i0]) * (at(0, [i0]) / at(0, [i0])) && (at(0, [i0]) < at(0, [i0])) == bool(1) || (sum k < 4: at(0, [i0]))');
    expect(keyOf(parseIExpr(s))).toBe(keyOf(e));
  });

  it('round-trips random expressions exactly', () => {
    // dims are integers: leave out the NaN, inf and -0 a division by zero or a product with 0 can fold to
    const isPrintableDimOrNumber = (d: Dim) => (typeof d === 'number' ? Number.isFinite(d) && !Object.is(d, -0) : isPrintableDim(d));
    const names = ['r0', 'k', 'i0', 'M', 'sum'];
    const dimArb: fc.Arbitrary<Dim> = fc.letrec<{ d: Dim }>((tie) => ({
      d: fc.oneof({ depthSize: 'small', withCrossShrink: true },
        fc.integer({ min: -3, max: 9 }),
        fc.constantFrom('M', 'N', 'r0', 'i1').map(sym),
        fc.record({ op: fc.constantFrom('+', '-', '*', '/', 'cdiv' as const), a: tie('d'), b: tie('d') }).map((d) => simplifyDim(d as Dim))),
    })).d.filter(isPrintableDimOrNumber);
    const exprArb: fc.Arbitrary<IExpr> = fc.letrec<{ e: IExpr }>((tie) => ({
      e: fc.oneof({ depthSize: 'small', withCrossShrink: true },
        fc.nat(3).map(idx),
        fc.constantFrom(...names).map(rv),
        fc.tuple(fc.oneof(fc.integer(), fc.double()), fc.constantFrom(...DTYPES)).map(([v, d]) => num(v, d)),
        dimArb.map(dimE),
        fc.tuple(fc.nat(3), fc.array(tie('e'), { maxLength: 3 })).map(([a, i]) => at(a, ...i)),
        fc.tuple(fc.constantFrom(...UNARY_OPS), tie('e')).map(([op, a]) => un(op, a)),
        fc.tuple(fc.constantFrom(...BINARY_OPS), tie('e'), tie('e')).map(([op, a, b]) => bin(op, a, b)),
        fc.tuple(tie('e'), tie('e'), tie('e')).map(([c, a, b]): IExpr => ({ k: 'where', c, a, b })),
        fc.tuple(fc.constantFrom(...DTYPES), tie('e')).map(([d, a]) => cast(d, a)),
        fc.tuple(fc.constantFrom('sum', 'max', 'min' as const), fc.constantFrom(...names), dimArb, tie('e')).map(([f, n, d, b]) => red(f, n, d, b))),
    })).e;
    fc.assert(fc.property(exprArb, (e) => {
      const back = parseIExpr(printIExpr(e));
      expect(back).toEqual(e);
      expect(keyOf(back)).toBe(keyOf(e));
    }), { numRuns: 500 });
  });

  it('dims read back as dimToString writes them', () => {
    expect(parseDim('cdiv(M+1, 4)*N')).toEqual(simplifyDim({ op: '*', a: dimCdiv({ op: '+', a: M, b: 1 }, 4), b: N }));
    expect(parseDim('2*3')).toBe(6);
    expect(parseDim('N*2')).toEqual(dimMul(2, N));
  });
});

describe('text form errors', () => {
  const header = 'program p(x: f32[M, N]) -> (y) {\n';
  function error(text: string, file?: string): TesseraError {
    try {
      parseProgram(text, file);
    } catch (e) {
      if (e instanceof TesseraError) return e;
      throw e;
    }
    throw new Error('expected a TesseraError');
  }
  const cases: [string, string, string, number, number, RegExp][] = [
    ['lexer', `${header}  %0 = input x : f32[M, N]\n  %1 = exp(%0) $ : f32[M, N]\n`, 'E_PARSE', 3, 16, /unexpected character "\$"/],
    ['syntax', `${header}  %0 = input x : f32[M, N]\n  %1 = exp(%0) f32[M, N]\n  y = %1\n}\n`, 'E_PARSE', 3, 16, /expected ':' but found 'f32'/],
    ['bad statement', `${header}  %0 = input x : f32[M, N]\n  (y) = %0\n}\n`, 'E_PARSE', 3, 3, /expected a node .*, an output .* or '}' but found '\('/],
    ['end of input', `${header}  %0 = input x : f32[M, N]\n  y = %0\n`, 'E_PARSE', 3, 9, / or '}' but found end of input/],
    ['unknown op', `${header}  %0 = input x : f32[M, N]\n  %1 = frobnicate(%0) : f32[M, N]\n`, 'E_UNKNOWN_OP', 3, 8, /unknown op 'frobnicate'/],
    ['undefined ref', `${header}  %0 = input x : f32[M, N]\n  %1 = exp(%7) : f32[M, N]\n`, 'E_PARSE', 3, 12, /%7 is not defined/],
    ['unknown dtype', `${header}  %0 = input x : f64[M, N]\n`, 'E_PARSE', 2, 18, /unknown dtype 'f64'/],
    ['type mismatch', `${header}  %0 = input x : f32[M, N]\n  %1 = exp(%0) : f32[N, M]\n  y = %1\n}\n`, 'E_VERIFY', 3, 18, /exp gives f32\[M, N\] but the text says f32\[N, M\]/],
    ['infer error', `${header}  %0 = input x : f32[M, N]\n  %1 = permute(%0) {perm: [1, 0]} : f32[N, M]\n  %2 = add(%0, %1) : f32[M, N]\n`, 'E_SHAPE', 4, 8, /different shapes/],
    ['input not a parameter', `${header}  %0 = input z : f32[M, N]\n`, 'E_VERIFY', 2, 8, /input "z" is not a parameter/],
    ['input type', `${header}  %0 = input x : f32[M, 3]\n`, 'E_VERIFY', 2, 18, /declared f32\[M, N\]/],
    ['defined twice', `${header}  %0 = input x : f32[M, N]\n  %0 = exp(%0) : f32[M, N]\n`, 'E_PARSE', 3, 3, /%0 is already defined/],
    ['output never assigned', `${header}  %0 = input x : f32[M, N]\n}\n`, 'E_PARSE', 3, 1, /output 'y' is never assigned/],
    ['undeclared output', `${header}  %0 = input x : f32[M, N]\n  z = %0\n}\n`, 'E_PARSE', 3, 3, /'z' is not an output/],
    ['bad index expr', `${header}  %0 = input x : f32[M, N]\n  %1 = compute(%0) {shape: [M], expr: at(0, [i0, ]) } : f32[M]\n`, 'E_PARSE', 3, 50, /expected an index expression but found '\]'/],
  ];
  it.each(cases)('%s', (_name, text, code, line, column, message) => {
    const e = error(text);
    expect({ code: e.code, line: e.location?.line, column: e.location?.column }).toEqual({ code, line, column });
    expect(e.detail).toMatch(message);
  });

  it('names the file in the location', () => {
    const e = error(`${header}  %0 = input x : f32[M, N]\n  y = %1\n}\n`, 'model.tsr');
    expect(e.location).toEqual({ file: 'model.tsr', line: 3, column: 7 });
    expect(e.message).toContain('model.tsr:3:7');
  });
});
