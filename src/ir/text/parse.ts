/**
 * Parser for the graph IR text form that print.ts writes (see there for the syntax). Nodes are rebuilt
 * with `intern`, so parsing printed text gives back the very same node objects. Each node's printed
 * type is checked against `inferType`; every error is a TesseraError at a line:column:
 * E_PARSE (lexing, syntax, undefined %ref, unknown dtype, outputs), E_UNKNOWN_OP, E_VERIFY (the printed
 * type is not the one the op gives), and inferType's own E_SHAPE / E_DTYPE / E_AXIS / E_ARG.
 */
import { EmbeddedActionsParser, EOF, tokenLabel, type IParserErrorMessageProvider, type IRecognitionException, type IToken, type ParserMethod, type TokenType } from 'chevrotain';
import { isTesseraError, TesseraError, type ErrorCode, type SourceLocation } from '../../errors.js';
import { shapeEq, simplifyDim, type Dim, type DimOp, type Shape } from '../dims.js';
import { DTYPES, isDType, type DType } from '../dtype.js';
import { intern, type AttrValue, type Attrs, type Node, type Program, type TensorParam } from '../graph.js';
import type { IExpr } from '../index-expr.js';
import { inferType, type TypeOf } from '../infer.js';
import { isOpName, type BinaryOp, type OpName, type UnaryOp } from '../ops.js';
import * as T from './lexer.js';
import { INFIX, printType } from './print.js';

interface NameTok { readonly text: string; readonly tok: IToken }
interface Typed { readonly dtype: DType; readonly shape: Shape; readonly at: IToken }
interface NumLit { readonly v: number; readonly float: boolean }

const BIN_BY_SYM = new Map(Object.entries(INFIX).map(([op, v]) => [v.sym, op as BinaryOp]));

/** What a rule expects, for "expected X but found Y" when no alternative matches. */
const WANTS: Record<string, string> = {
  statement: "a node '%n = op(...) : type' or an output 'name = %n'",
  atom: 'an index expression', dimAtom: 'a dim', value: 'a value', name: 'a name', number: 'a number',
};
const found = (t: IToken | undefined) => (!t || t.tokenType === EOF ? 'end of input' : `'${t.image}'`);
const labels = (paths: TokenType[][][]) => [...new Set(paths.flat().map((p) => (p[0] ? tokenLabel(p[0]) : 'end of input')))].join(' or ');
const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual, ruleName }) =>
    `expected ${ruleName === 'program' && expected === T.RBrace ? "a node '%n = op(...) : type', an output 'name = %n' or '}'" : tokenLabel(expected)} but found ${found(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `expected end of input but found ${found(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual, ruleName }) => `expected ${WANTS[ruleName] ?? labels(expectedPathsPerAlt)} but found ${found(actual[0])}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual, ruleName }) => `expected ${WANTS[ruleName] ?? labels([expectedIterationPaths])} but found ${found(actual[0])}`,
};

function setKey(o: Record<string, AttrValue>, k: string, v: AttrValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true }); // safe for "__proto__"
}

class TextParser extends EmbeddedActionsParser {
  private file: string | undefined;
  private refs = new Map<string, Node>();
  private params = new Map<string, TensorParam>();
  private declared = new Map<string, NameTok>();
  private bound = new Map<string, Node>();
  private scope: string[] = [];

  constructor() {
    super(T.allTokens, { maxLookahead: 3, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  begin(file: string | undefined, tokens: IToken[]): void {
    this.file = file;
    this.refs.clear();
    this.params.clear();
    this.declared.clear();
    this.bound.clear();
    this.scope = [];
    this.input = tokens;
  }

  loc(tok: IToken): SourceLocation {
    return { file: this.file, line: tok.startLine ?? 1, column: tok.startColumn ?? 1 };
  }

  private fail(code: ErrorCode, message: string, tok: IToken): never {
    throw new TesseraError(code, message, this.loc(tok));
  }

  // ---- program structure ----

  program = this.RULE('program', (): Program => {
    this.CONSUME(T.Program);
    const name = this.SUBRULE(this.name);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => {
      const p = this.SUBRULE1(this.name);
      this.CONSUME(T.Colon);
      const t = this.SUBRULE(this.type);
      this.ACTION(() => {
        if (this.params.has(p.text)) this.fail('E_PARSE', `parameter '${p.text}' is declared twice`, p.tok);
        this.params.set(p.text, { name: p.text, dtype: t.dtype, shape: t.shape });
      });
    } });
    this.CONSUME(T.RParen);
    this.CONSUME(T.Arrow);
    this.CONSUME1(T.LParen);
    this.MANY_SEP1({ SEP: T.Comma, DEF: () => {
      const o = this.SUBRULE2(this.name);
      this.ACTION(() => {
        if (this.declared.has(o.text)) this.fail('E_PARSE', `output '${o.text}' is declared twice`, o.tok);
        this.declared.set(o.text, o);
      });
    } });
    this.CONSUME1(T.RParen);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.statement));
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => {
      const outputs = [...this.declared.values()].map((o) => {
        const node = this.bound.get(o.text);
        if (!node) this.fail('E_PARSE', `output '${o.text}' is never assigned; add '${o.text} = %n'`, close);
        return { name: o.text, node };
      });
      return { name: name.text, inputs: [...this.params.values()], outputs };
    });
  });

  statement = this.RULE('statement', (): void => {
    this.OR([{ ALT: () => this.SUBRULE(this.nodeDef) }, { ALT: () => this.SUBRULE(this.outputBind) }]);
  });

  nodeDef = this.RULE('nodeDef', (): void => {
    const ref = this.CONSUME(T.Ref);
    this.CONSUME(T.Equals);
    const opTok = this.CONSUME(T.Name);
    this.ACTION(() => {
      if (this.refs.has(ref.image)) this.fail('E_PARSE', `${ref.image} is already defined`, ref);
      if (!isOpName(opTok.image)) this.fail('E_UNKNOWN_OP', `unknown op '${opTok.image}'`, opTok);
    });
    const args: Node[] = [];
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => {
        const r = this.CONSUME1(T.Ref);
        this.ACTION(() => args.push(this.lookup(r)));
      } });
      this.CONSUME(T.RParen);
    });
    // `input x` is short for `input {name: "x"}`
    const inputName = this.OPTION1({ GATE: () => opTok.image === 'input', DEF: () => this.SUBRULE(this.name) });
    const attrs = this.OPTION2(() => this.SUBRULE(this.map));
    this.CONSUME(T.Colon);
    const type = this.SUBRULE(this.type);
    this.ACTION(() => {
      if (inputName && attrs) this.fail('E_PARSE', 'input takes a name or {attrs}, not both', inputName.tok);
      const op = opTok.image as OpName;
      const a: Attrs = inputName ? { name: inputName.text } : (attrs ?? {});
      this.verify(op, args, a, type, opTok);
      this.refs.set(ref.image, intern(op, args, type.dtype, type.shape, a));
    });
  });

  outputBind = this.RULE('outputBind', (): void => {
    const n = this.SUBRULE(this.name);
    this.CONSUME(T.Equals);
    const r = this.CONSUME(T.Ref);
    this.ACTION(() => {
      if (!this.declared.has(n.text))
        this.fail('E_PARSE', `'${n.text}' is not an output; the header declares (${[...this.declared.keys()].join(', ')})`, n.tok);
      if (this.bound.has(n.text)) this.fail('E_PARSE', `output '${n.text}' is assigned twice`, n.tok);
      this.bound.set(n.text, this.lookup(r));
    });
  });

  name = this.RULE('name', (): NameTok => {
    const tok = this.OR([{ ALT: () => this.CONSUME(T.Name) }, { ALT: () => this.CONSUME(T.StringLit) }]);
    return this.ACTION(() => ({ text: tok.tokenType === T.StringLit ? (JSON.parse(tok.image) as string) : tok.image, tok }));
  });

  dtype = this.RULE('dtype', (): DType => {
    const tok = this.CONSUME(T.Name);
    return this.ACTION(() => {
      if (!isDType(tok.image)) this.fail('E_PARSE', `unknown dtype '${tok.image}'; expected one of ${DTYPES.join(', ')}`, tok);
      return tok.image;
    });
  });

  type = this.RULE('type', (): Typed => {
    const at = this.LA(1);
    const dtype = this.SUBRULE(this.dtype);
    const shape: Dim[] = [];
    this.CONSUME(T.LBracket);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => {
      const d = this.SUBRULE(this.dim);
      this.ACTION(() => shape.push(d));
    } });
    this.CONSUME(T.RBracket);
    return { dtype, shape, at };
  });

  // ---- dims: + - * / (floor), cdiv(a, b), parentheses; the result is simplified ----

  dim = this.RULE('dim', (): Dim => {
    const d = this.SUBRULE(this.dimSum);
    return this.ACTION(() => simplifyDim(d));
  });

  dimSum = this.RULE('dimSum', (): Dim => {
    let d = this.SUBRULE(this.dimProd);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(T.Plus) }, { ALT: () => this.CONSUME(T.Minus) }]);
      const b = this.SUBRULE1(this.dimProd);
      this.ACTION(() => (d = { op: op.image as DimOp, a: d, b }));
    });
    return d;
  });

  dimProd = this.RULE('dimProd', (): Dim => {
    let d = this.SUBRULE(this.dimAtom);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(T.Star) }, { ALT: () => this.CONSUME(T.Slash) }]);
      const b = this.SUBRULE1(this.dimAtom);
      this.ACTION(() => (d = { op: op.image as DimOp, a: d, b }));
    });
    return d;
  });

  dimAtom = this.RULE('dimAtom', (): Dim =>
    this.OR<Dim>({ IGNORE_AMBIGUITIES: true, DEF: [
      { ALT: () => this.SUBRULE(this.number).v },
      { ALT: () => {
        this.CONSUME(T.Cdiv);
        this.CONSUME(T.LParen);
        const a = this.SUBRULE(this.dimSum);
        this.CONSUME(T.Comma);
        const b = this.SUBRULE1(this.dimSum);
        this.CONSUME(T.RParen);
        return { op: 'cdiv', a, b };
      } },
      { ALT: () => {
        this.CONSUME1(T.LParen);
        const d = this.SUBRULE2(this.dimSum);
        this.CONSUME1(T.RParen);
        return d;
      } },
      { ALT: () => ({ sym: this.CONSUME(T.Name).image }) },
    ] }),
  );

  number = this.RULE('number', (): NumLit => {
    const neg = this.OPTION(() => this.CONSUME(T.Minus));
    const t = this.OR([{ ALT: () => this.CONSUME(T.NumberLit) }, { ALT: () => this.CONSUME(T.Inf) }, { ALT: () => this.CONSUME(T.Nan) }]);
    return this.ACTION(() => {
      const v = t.tokenType === T.NumberLit ? Number(t.image) : t.tokenType === T.Inf ? Infinity : NaN;
      return { v: neg ? -v : v, float: t.tokenType !== T.NumberLit || /[.eE]/.test(t.image) };
    });
  });

  // ---- attribute values ----

  value = this.RULE('value', (): AttrValue =>
    this.OR<AttrValue>({ IGNORE_AMBIGUITIES: true, DEF: [
      { ALT: () => this.SUBRULE(this.map) },
      { ALT: () => this.SUBRULE(this.list) },
      { ALT: () => {
        const t = this.CONSUME(T.StringLit);
        return this.ACTION(() => JSON.parse(t.image) as string);
      } },
      { ALT: () => (this.CONSUME(T.True), true) },
      { ALT: () => (this.CONSUME(T.False), false) },
      { ALT: () => (this.CONSUME(T.Null), null) },
      { ALT: () => this.SUBRULE(this.dim) },
    ] }),
  );

  list = this.RULE('list', (): AttrValue[] => {
    const out: AttrValue[] = [];
    this.CONSUME(T.LBracket);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => {
      const v = this.SUBRULE(this.value);
      this.ACTION(() => out.push(v));
    } });
    this.CONSUME(T.RBracket);
    return out;
  });

  /** `{key: value, ...}`, keys kept in order; a bare `expr` key holds an index expression. */
  map = this.RULE('map', (): Attrs => {
    const out: Record<string, AttrValue> = {};
    this.CONSUME(T.LBrace);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => {
      const key = this.SUBRULE(this.name);
      this.CONSUME(T.Colon);
      const v = this.OR<AttrValue>([
        { GATE: () => key?.tok?.tokenType === T.Identifier && key.text === 'expr', ALT: () => this.SUBRULE(this.iexpr) },
        { ALT: () => this.SUBRULE(this.value) },
      ]);
      this.ACTION(() => {
        if (Object.hasOwn(out, key.text)) this.fail('E_PARSE', `key '${key.text}' appears twice`, key.tok);
        setKey(out, key.text, v);
      });
    } });
    this.CONSUME(T.RBrace);
    return out;
  });

  // ---- index expressions: || && (compare) + - * / over atoms; reductions bind loosest ----

  private level(name: string, ops: TokenType[], next: () => ParserMethod<[], IExpr>, once = false): ParserMethod<[], IExpr> {
    return this.RULE(name, (): IExpr => {
      let e = this.SUBRULE(next());
      const step = () => {
        const t = this.OR(ops.map((op) => ({ ALT: () => this.CONSUME(op) })));
        const b = this.SUBRULE1(next());
        this.ACTION(() => (e = { k: 'bin', op: BIN_BY_SYM.get(t.image)!, a: e, b }));
      };
      if (once) this.OPTION(step); // comparisons do not chain
      else this.MANY(step);
      return e;
    });
  }

  iexpr = this.level('iexpr', [T.OrOr], () => this.andExpr);
  andExpr = this.level('andExpr', [T.AndAnd], () => this.cmpExpr);
  cmpExpr = this.level('cmpExpr', [T.EqEq, T.NotEq, T.LessEq, T.GreaterEq, T.Less, T.Greater], () => this.addExpr, true);
  addExpr = this.level('addExpr', [T.Plus, T.Minus], () => this.mulExpr);
  mulExpr = this.level('mulExpr', [T.Star, T.Slash], () => this.atom);

  atom = this.RULE('atom', (): IExpr =>
    this.OR<IExpr>({ IGNORE_AMBIGUITIES: true, DEF: [
      { ALT: () => this.SUBRULE(this.reduction) },
      { ALT: () => this.SUBRULE(this.opCall) },
      { ALT: () => this.SUBRULE(this.atCall) },
      { ALT: () => this.SUBRULE(this.explicit) },
      { ALT: () => this.SUBRULE(this.literal) },
      { ALT: () => {
        this.CONSUME(T.LParen);
        const e = this.SUBRULE(this.iexpr);
        this.CONSUME(T.RParen);
        return e;
      } },
      { ALT: () => {
        const t = this.CONSUME(T.Name);
        return this.ACTION(() => this.resolve(t.image));
      } },
    ] }),
  );

  /** `sum k < K: body` (also max, min): k is a reduction variable inside body. */
  reduction = this.RULE('reduction', (): IExpr => {
    const fn = this.CONSUME(T.RedFn);
    const v = this.CONSUME(T.Name);
    this.CONSUME(T.Less);
    const extent = this.SUBRULE(this.dim);
    this.CONSUME(T.Colon);
    this.ACTION(() => this.scope.push(v.image));
    const body = this.SUBRULE(this.iexpr);
    return this.ACTION(() => {
      this.scope.pop();
      return { k: 'red', fn: fn.image as 'sum' | 'max' | 'min', name: v.image, extent, body };
    });
  });

  opCall = this.RULE('opCall', (): IExpr =>
    this.OR<IExpr>([
      { ALT: () => {
        const f = this.CONSUME(T.BinFn);
        this.CONSUME(T.LParen);
        const a = this.SUBRULE(this.iexpr);
        this.CONSUME(T.Comma);
        const b = this.SUBRULE1(this.iexpr);
        this.CONSUME(T.RParen);
        return { k: 'bin', op: f.image as BinaryOp, a, b };
      } },
      { ALT: () => {
        const f = this.CONSUME(T.UnFn);
        this.CONSUME1(T.LParen);
        const a = this.SUBRULE2(this.iexpr);
        this.CONSUME1(T.RParen);
        return { k: 'un', op: f.image as UnaryOp, a };
      } },
      { ALT: () => {
        this.CONSUME(T.Where);
        this.CONSUME2(T.LParen);
        const c = this.SUBRULE3(this.iexpr);
        this.CONSUME1(T.Comma);
        const a = this.SUBRULE4(this.iexpr);
        this.CONSUME2(T.Comma);
        const b = this.SUBRULE5(this.iexpr);
        this.CONSUME2(T.RParen);
        return { k: 'where', c, a, b };
      } },
      { ALT: () => {
        this.CONSUME(T.Cast);
        this.CONSUME3(T.LParen);
        const dtype = this.SUBRULE(this.dtype);
        this.CONSUME3(T.Comma);
        const a = this.SUBRULE6(this.iexpr);
        this.CONSUME3(T.RParen);
        return { k: 'cast', dtype, a };
      } },
    ]),
  );

  /** `at(arg, [i, ...])`: operand `arg` of the compute node at the given indices. */
  atCall = this.RULE('atCall', (): IExpr => {
    this.CONSUME(T.At);
    this.CONSUME(T.LParen);
    const arg = this.SUBRULE(this.index);
    this.CONSUME(T.Comma);
    this.CONSUME(T.LBracket);
    const idx: IExpr[] = [];
    this.MANY_SEP({ SEP: T.Comma, DEF: () => {
      const e = this.SUBRULE(this.iexpr);
      this.ACTION(() => idx.push(e));
    } });
    this.CONSUME(T.RBracket);
    this.CONSUME(T.RParen);
    return { k: 'at', arg, idx };
  });

  /** `dim(M*N)`, `idx(0)`, `rvar(k)`: what a bare name cannot say. */
  explicit = this.RULE('explicit', (): IExpr =>
    this.OR<IExpr>([
      { ALT: () => {
        this.CONSUME(T.DimKw);
        this.CONSUME(T.LParen);
        const d = this.SUBRULE(this.dim);
        this.CONSUME(T.RParen);
        return { k: 'dim', d };
      } },
      { ALT: () => {
        this.CONSUME(T.Idx);
        this.CONSUME1(T.LParen);
        const i = this.SUBRULE(this.index);
        this.CONSUME1(T.RParen);
        return { k: 'idx', i };
      } },
      { ALT: () => {
        this.CONSUME(T.Rvar);
        this.CONSUME2(T.LParen);
        const name = this.CONSUME(T.Name).image;
        this.CONSUME2(T.RParen);
        return { k: 'rvar', name };
      } },
    ]),
  );

  /** `2` (i32), `2.0` / `inf` / `nan` (f32), `f16(0.5)`, `bool(1)`. */
  literal = this.RULE('literal', (): IExpr =>
    this.OR<IExpr>([
      { ALT: () => {
        const dtype = this.SUBRULE(this.dtype);
        this.CONSUME(T.LParen);
        const n = this.SUBRULE(this.number);
        this.CONSUME(T.RParen);
        return { k: 'num', v: n.v, dtype };
      } },
      { ALT: () => {
        const n = this.SUBRULE1(this.number);
        return this.ACTION(() => ({ k: 'num', v: n.v, dtype: n.float ? 'f32' : 'i32' }));
      } },
    ]),
  );

  index = this.RULE('index', (): number => {
    const t = this.CONSUME(T.NumberLit);
    return this.ACTION(() => {
      const v = Number(t.image);
      if (!Number.isInteger(v)) this.fail('E_PARSE', `expected a non-negative integer but found '${t.image}'`, t);
      return v;
    });
  });

  // ---- semantic actions ----

  private resolve(s: string): IExpr {
    if (this.scope.includes(s)) return { k: 'rvar', name: s };
    if (/^i\d+$/.test(s)) return { k: 'idx', i: Number(s.slice(1)) };
    return { k: 'dim', d: { sym: s } };
  }

  private lookup(r: IToken): Node {
    const n = this.refs.get(r.image);
    if (!n) this.fail('E_PARSE', `${r.image} is not defined (a node is defined before its uses)`, r);
    return n;
  }

  /** Checks the printed type against the op's: parameters for inputs, inferType for the rest. */
  private verify(op: OpName, args: readonly Node[], attrs: Attrs, t: Typed, opTok: IToken): void {
    const said = printType(t.dtype, t.shape);
    if (op === 'input' || op === 'const') {
      if (args.length) this.fail('E_VERIFY', `${op} takes no operands`, opTok);
      if (op === 'const') {
        if (t.shape.length) this.fail('E_VERIFY', `const is a scalar, so its type is ${t.dtype}[], not ${said}`, t.at);
        return;
      }
      const p = typeof attrs.name === 'string' ? this.params.get(attrs.name) : undefined;
      if (!p) this.fail('E_VERIFY', `input ${JSON.stringify(attrs.name ?? null)} is not a parameter of the program`, opTok);
      if (p.dtype !== t.dtype || !shapeEq(p.shape, t.shape))
        this.fail('E_VERIFY', `input ${p.name} is declared ${printType(p.dtype, p.shape)} but the text says ${said}`, t.at);
      return;
    }
    let r: TypeOf;
    try {
      r = inferType(op, args, attrs);
    } catch (e) {
      if (isTesseraError(e)) throw new TesseraError(e.code, e.detail, this.loc(opTok));
      this.fail('E_VERIFY', `${op}: ${e instanceof Error ? e.message : String(e)}`, opTok);
    }
    if (r.dtype !== t.dtype || !shapeEq(r.shape, t.shape)) this.fail('E_VERIFY', `${op} gives ${printType(r.dtype, r.shape)} but the text says ${said}`, t.at);
  }
}

let parser: TextParser | undefined;

function syntaxLocation(e: IRecognitionException, text: string, file: string | undefined): SourceLocation {
  const t = e.token;
  if (t.tokenType !== EOF && t.startLine !== undefined) return { file, line: t.startLine, column: t.startColumn ?? 1 };
  const prev = (e as { previousToken?: IToken }).previousToken;
  if (prev && prev.endLine !== undefined && !Number.isNaN(prev.endLine)) return { file, line: prev.endLine, column: (prev.endColumn ?? 0) + 1 };
  const lines = text.split('\n');
  return { file, line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

function run<R>(text: string, file: string | undefined, entry: (p: TextParser) => R): R {
  const tokens = T.lex(text, file);
  parser ??= new TextParser();
  parser.begin(file, tokens);
  const out = entry(parser);
  const err = parser.errors[0];
  if (err) throw new TesseraError('E_PARSE', err.message, syntaxLocation(err, text, file));
  return out;
}

/** A whole program, as printProgram writes it. `file` only labels error locations. */
export function parseProgram(text: string, file?: string): Program {
  return run(text, file, (p) => p.program());
}

/** One index expression, as printIExpr writes it (names resolve as they would at top level). */
export function parseIExpr(text: string, file?: string): IExpr {
  return run(text, file, (p) => p.iexpr());
}

/** One dim, as dimToString writes it, simplified. */
export function parseDim(text: string, file?: string): Dim {
  return run(text, file, (p) => p.dim());
}
