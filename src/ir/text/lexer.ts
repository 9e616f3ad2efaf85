/**
 * Tokens of the graph IR text form. Keywords (op names, dtypes, `sum`, `at`, `inf` ...) are their own
 * token types so the grammar can dispatch on them, but every keyword is also a `Name`, so a word that
 * is a keyword elsewhere still works as a dim symbol, a parameter or an output name.
 */
import { createToken, Lexer, type IToken, type TokenType } from 'chevrotain';
import { TesseraError } from '../../errors.js';
import { DTYPES } from '../dtype.js';
import { BINARY_OPS, UNARY_OPS } from '../ops.js';
import { INFIX } from './print.js';

const punct = (name: string, pattern: string): TokenType => createToken({ name, pattern, label: `'${pattern}'` });

export const Name = createToken({ name: 'Name', pattern: Lexer.NA, label: 'a name' });
/** `sum`, `max`, `min`: start a reduction `sum k < K: body` in an index expression. */
export const RedFn = createToken({ name: 'RedFn', pattern: Lexer.NA, label: 'sum, max or min' });
/** Binary ops without an infix spelling, written as calls in index expressions: `pow(a, b)` ... */
export const BinFn = createToken({ name: 'BinFn', pattern: Lexer.NA, label: 'a binary op' });
export const UnFn = createToken({ name: 'UnFn', pattern: Lexer.NA, label: 'a unary op' });
export const DTypeKw = createToken({ name: 'DTypeKw', pattern: Lexer.NA, label: 'a dtype' });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Name], label: 'a name' });

/** Keyword words with their extra categories; every keyword is also a Name. */
const words = new Map<string, TokenType[]>();
const word = (w: string, ...cats: TokenType[]) => words.set(w, [...(words.get(w) ?? []), ...cats]);
for (const w of ['program', 'at', 'cast', 'where', 'dim', 'idx', 'rvar', 'cdiv', 'inf', 'nan', 'true', 'false', 'null']) word(w);
for (const w of ['sum', 'max', 'min']) word(w, RedFn);
for (const w of BINARY_OPS.filter((op) => !INFIX[op])) word(w, BinFn);
for (const w of UNARY_OPS) word(w, UnFn);
for (const w of DTYPES) word(w, DTypeKw);
// longest first: `maximum` must meet its own keyword before `max` (whose longer_alt is Identifier)
const keywords = new Map(
  [...words].sort(([a], [b]) => b.length - a.length).map(([w, cats]) => [w, createToken({ name: `Kw_${w}`, pattern: w, longer_alt: Identifier, categories: [Name, ...cats], label: `'${w}'` })]),
);
const kw = (w: string): TokenType => keywords.get(w)!;

export const Program = kw('program');
export const At = kw('at');
export const Cast = kw('cast');
export const Where = kw('where');
export const DimKw = kw('dim');
export const Idx = kw('idx');
export const Rvar = kw('rvar');
export const Cdiv = kw('cdiv');
export const Inf = kw('inf');
export const Nan = kw('nan');
export const True = kw('true');
export const False = kw('false');
export const Null = kw('null');

export const Ref = createToken({ name: 'Ref', pattern: /%[A-Za-z0-9_]+/, label: 'a %reference' });
export const NumberLit = createToken({ name: 'NumberLit', pattern: /\d+(?:\.\d*)?(?:[eE][+-]?\d+)?/, label: 'a number' });
export const StringLit = createToken({ name: 'StringLit', pattern: /"(?:[^"\\\n]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/, label: 'a string' });
export const Arrow = punct('Arrow', '->');
export const EqEq = punct('EqEq', '==');
export const NotEq = punct('NotEq', '!=');
export const LessEq = punct('LessEq', '<=');
export const GreaterEq = punct('GreaterEq', '>=');
export const AndAnd = punct('AndAnd', '&&');
export const OrOr = punct('OrOr', '||');
export const Less = punct('Less', '<');
export const Greater = punct('Greater', '>');
export const Equals = punct('Equals', '=');
export const Plus = punct('Plus', '+');
export const Minus = punct('Minus', '-');
export const Star = punct('Star', '*');
export const Slash = punct('Slash', '/');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');

const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
const Comment = createToken({ name: 'Comment', pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });

export const allTokens: TokenType[] = [
  WhiteSpace, Comment, Ref, NumberLit, StringLit,
  Arrow, EqEq, NotEq, LessEq, GreaterEq, AndAnd, OrOr, Less, Greater, Equals,
  Plus, Minus, Star, Slash, LParen, RParen, LBracket, RBracket, LBrace, RBrace, Comma, Colon,
  ...keywords.values(), Identifier,
  Name, RedFn, BinFn, UnFn, DTypeKw,
];

const lexer = new Lexer(allTokens, { ensureOptimizations: false });

/** Tokens of `text`; an unexpected character is an E_PARSE error at its line:column. */
export function lex(text: string, file?: string): IToken[] {
  const r = lexer.tokenize(text);
  const e = r.errors[0];
  if (e) {
    const ch = text.slice(e.offset, e.offset + 1);
    throw new TesseraError('E_PARSE', `unexpected character ${JSON.stringify(ch)}`, { file, line: e.line ?? 1, column: e.column ?? 1 });
  }
  return r.tokens;
}
