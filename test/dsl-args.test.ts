/**
 * The DSL's boundary against untyped callers: every op, every Tensor method and the entry points
 * (kernel, tensor, dim) called with arbitrary arguments (tensors, dims, numbers of every kind,
 * strings, arrays, objects, functions, nothing) either build a program that compiles, or throw a
 * TesseraError; never a TypeError or RangeError from inside the compiler.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { TesseraError } from '../src/errors.js';
import { compile } from '../src/passes/pipeline.js';

const N = D.dim('N');
const OPS = Object.entries(D).filter(([name, f]) => typeof f === 'function' && !['kernel', 'Tensor', 'IndexExpr'].includes(name)) as [string, (...a: unknown[]) => unknown][];
const METHODS = Object.getOwnPropertyNames(D.Tensor.prototype).filter((m) => m !== 'constructor');

/** An argument: one of the kernel's tensors (`t`), or any value. */
type Arg = { t: number } | { v: unknown };
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, NaN, Infinity, -Infinity, -1, 0, 1, 2, 1.5, 2 ** 40, 'f32', 'i32', 'bogus', '', N, D.dim('M'), [], [1, 2], [N], [[1, 2]], [-1], [{ step: 0 }], {}, { sym: 5 }, { op: '+', a: 1 }, () => 1),
  fc.integer({ min: -4, max: 8 }),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 6 }), fc.constant(N), fc.constant(-1)), { maxLength: 4 }),
);
const arg: fc.Arbitrary<Arg> = fc.oneof({ weight: 2, arbitrary: fc.integer({ min: 0, max: 4 }).map((t) => ({ t })) }, { weight: 3, arbitrary: junk.map((v) => ({ v })) });
const show = (args: readonly Arg[]) => args.map((x) => ('t' in x ? `t${x.t}` : typeof x.v === 'object' ? JSON.stringify(x.v) : String(x.v))).join(', ');

/** Builds (and compiles) a kernel over five tensors whose body is `f` of them. */
function build(f: (ts: readonly D.Tensor[]) => unknown): void {
  const def = D.kernel(
    'k',
    { a: D.tensor('f32', [N, 4]), b: D.tensor('f32', [4]), c: D.tensor('i32', [N, 4]), d: D.tensor('f32', [4, N]), e: D.tensor('bool', [N, 4]) },
    (h) => {
      const out = f([h.a, h.b, h.c, h.d, h.e]);
      return out instanceof D.Tensor ? out : h.a;
    },
  );
  compile(def.program);
}

/** Runs `f`; anything thrown but a TesseraError fails, with `what` named. */
function onlyTesseraErrors(what: () => string, f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof TesseraError)) throw new Error(`${what()} threw ${(e as Error).name}: ${(e as Error).message}`);
  }
}

describe('DSL arguments', () => {
  it('every op, given arbitrary arguments, builds a program that compiles or throws a TesseraError', () => {
    expect(OPS.length).toBeGreaterThan(60);
    fc.assert(
      fc.property(fc.constantFrom(...OPS), fc.array(arg, { maxLength: 4 }), ([name, op], args) => {
        onlyTesseraErrors(() => `D.${name}(${show(args)})`, () => build((ts) => op(...args.map((x) => ('t' in x ? ts[x.t] : x.v)))));
      }),
      { numRuns: 3000, seed: 7 },
    );
  });

  it('every Tensor method, and kernel, tensor and dim, given arbitrary arguments, throw only TesseraErrors', () => {
    expect(METHODS.length).toBeGreaterThan(30);
    fc.assert(
      fc.property(fc.constantFrom(...METHODS, '@kernel', '@tensor', '@dim'), fc.array(arg, { maxLength: 4 }), fc.integer({ min: 0, max: 4 }), (m, args, self) => {
        onlyTesseraErrors(() => `${m}(${show(args)}) on t${self}`, () => {
          if (m === '@kernel') D.kernel(...(args.map((x) => ('t' in x ? { a: D.tensor('f32', [4]) } : x.v)) as Parameters<typeof D.kernel>));
          else if (m === '@tensor') D.tensor(...(args.map((x) => ('t' in x ? 'f32' : x.v)) as Parameters<typeof D.tensor>));
          else if (m === '@dim') D.dim(...(args.map((x) => ('t' in x ? 'Q' : x.v)) as Parameters<typeof D.dim>));
          else
            build((ts) => {
              const t = ts[self]!;
              const desc = Object.getOwnPropertyDescriptor(D.Tensor.prototype, m)!;
              return desc.get ? desc.get.call(t) : (t[m as keyof D.Tensor] as (...a: unknown[]) => unknown)(...args.map((x) => ('t' in x ? ts[x.t] : x.v)));
            });
        });
      }),
      { numRuns: 3000, seed: 8 },
    );
  });

  it('says what was wrong and where', () => {
    const e = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return err as TesseraError;
      }
      throw new Error('no error');
    };
    const t = (f: (a: D.Tensor) => unknown) => e(() => build((ts) => f(ts[0]!)));
    expect(t((a) => D.add(a, 'x' as unknown as number)).message).toMatch(/E_ARG: add: b must be a tensor or a number, got the string 'x'/);
    expect(t(() => D.relu(undefined as unknown as D.Tensor)).message).toMatch(/relu: x must be a tensor, got nothing/);
    expect(t((a) => D.sum(a, [0.5])).message).toMatch(/sum: axes\[0\] must be an integer, got 0.5/);
    expect(t((a) => D.matmul(a, a, null as unknown as object)).message).toMatch(/matmul: opts must be \{ transA\?, transB\? \}, got null/);
    expect(t((a) => D.pad(a, [[1], [0, 0]] as unknown as [number, number][])).message).toMatch(/pad: widths\[0\] must be a pair/);
    expect(t((a) => D.compute([4], () => 'x' as unknown as number)).message).toMatch(/compute: an operand must be an index expression or a number/);
    expect(e(() => D.dim(true as unknown as string)).message).toMatch(/dim name true is not an identifier/);
    expect(e(() => D.kernel('k', { a: 3 } as unknown as D.Params, () => D.scalar(1))).message).toMatch(/parameter 'a' must be a D.tensor\(dtype, shape\) spec, got 3/);
    expect(t(() => D.relu(undefined as unknown as D.Tensor)).location?.file).toMatch(/dsl-args\.test\.ts$/);
  });
});
