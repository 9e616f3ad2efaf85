/**
 * Kernel IR printed as JavaScript, so every program runs on the CPU with nothing installed. The
 * generated function loops over invocations; f32 results are rounded with Math.fround and integer
 * results wrapped to 32 bits so the CPU agrees with GPU arithmetic.
 */
import { fail, TesseraError } from '../../errors.js';
import { forEachKExpr, kstmtBodies, scopy8Stmts, type KExpr, type Kernel, type KStmt } from '../../ir/kernel.js';
import type { Dim } from '../../ir/dims.js';

/** Helpers every generated kernel can call (passed in as `H`). */
/**
 * The math helpers generated kernels call as `H.name`, as source text: the standalone modules that
 * `compile --target js` writes embed exactly this text, and the CPU runtime evaluates the same text,
 * so the two cannot drift (and the output does not depend on how this file was transpiled).
 */
const HELPER_SOURCE: Readonly<Record<string, string>> = {
  // vec4f values are 4-element arrays
  ld4: '(b, i) => [b[i], b[i + 1], b[i + 2], b[i + 3]]',
  splat4: '(x) => [x, x, x, x]',
  add4: '(a, b) => [Math.fround(a[0] + b[0]), Math.fround(a[1] + b[1]), Math.fround(a[2] + b[2]), Math.fround(a[3] + b[3])]',
  sub4: '(a, b) => [Math.fround(a[0] - b[0]), Math.fround(a[1] - b[1]), Math.fround(a[2] - b[2]), Math.fround(a[3] - b[3])]',
  mul4: '(a, b) => [Math.fround(a[0] * b[0]), Math.fround(a[1] * b[1]), Math.fround(a[2] * b[2]), Math.fround(a[3] * b[3])]',
  div4: '(a, b) => [Math.fround(a[0] / b[0]), Math.fround(a[1] / b[1]), Math.fround(a[2] / b[2]), Math.fround(a[3] / b[3])]',
  // tensor-core tiles (warp kernels) as 256-element arrays: load/store a 16 x 16 block at o + r * ld + c,
  // d += a x b with f32 accumulation (a product of two f16 values is exact in f32)
  mmaLd: '(f, s, o, ld) => { for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) f[r * 16 + c] = s[o + r * ld + c]; }',
  mmaSt: '(f, s, o, ld) => { for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) s[o + r * ld + c] = f[r * 16 + c]; }',
  mma: `(d, a, b) => {
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) {
      let s = d[i * 16 + j];
      for (let k = 0; k < 16; k++) s = Math.fround(s + a[i * 16 + k] * b[k * 16 + j]);
      d[i * 16 + j] = s;
    }
  }`,
  st4: '(b, i, v) => { b[i] = v[0]; b[i + 1] = v[1]; b[i + 2] = v[2]; b[i + 3] = v[3]; }',
  fma4: '(a, b, c) => [Math.fround(a[0] * b[0] + c[0]), Math.fround(a[1] * b[1] + c[1]), Math.fround(a[2] * b[2] + c[2]), Math.fround(a[3] * b[3] + c[3])]',
  fmax: '(a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b))',
  fmin: '(a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b))',
  idiv: '(a, b) => (b === 0 ? 0 : Math.trunc(a / b) | 0)',
  udiv: '(a, b) => (b === 0 ? 0 : Math.trunc(a / b) >>> 0)',
  imod: '(a, b) => (b === 0 ? 0 : (a % b) | 0)',
  umod: '(a, b) => (b === 0 ? 0 : (a % b) >>> 0)',
  ftoi: '(x) => (Number.isNaN(x) ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(x))))',
  ftou: '(x) => (Number.isNaN(x) ? 0 : Math.max(0, Math.min(4294967295, Math.trunc(x))))',
  // four signed int8 lanes per word: x << 24 >> 24 sign-extends lane 0 (JS shifts work on the int32
  // bits); the final | 0 turns a sum of -0 products into 0
  dot4i8: '(a, b) => ((a << 24 >> 24) * (b << 24 >> 24) + (a << 16 >> 24) * (b << 16 >> 24) + (a << 8 >> 24) * (b << 8 >> 24) + (a >> 24) * (b >> 24)) | 0',
  // erfc by the Numerical Recipes Chebyshev fit (|error| < 1.2e-7): Abramowitz & Stegun 7.1.26 is too coarse for f32
  erf: `(x) => {
    const t = 1 / (1 + 0.5 * Math.abs(x));
    const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? y : -y;
  }`,
  // round to the nearest f16 (ties to even), overflow to infinity
  f16: `(x) => {
    if (!Number.isFinite(x) || x === 0) return x;
    const a = Math.abs(x);
    if (a >= 65520) return x > 0 ? Infinity : -Infinity;
    const e = Math.max(Math.floor(Math.log2(a)), -14);
    const q = 2 ** (e - 10);
    const r = a / q;
    const f = Math.floor(r);
    const rem = r - f;
    return Math.sign(x) * (rem > 0.5 || (rem === 0.5 && f % 2 === 1) ? f + 1 : f) * q;
  }`,
  // round to the nearest bfloat16 (ties to even): the top half of the f32 bits
  bf16: `(x) => {
    if (Number.isNaN(x)) return x;
    const w = new Float32Array([x]);
    const b = new Uint32Array(w.buffer);
    b[0] = ((b[0] + 0x7fff + ((b[0] >>> 16) & 1)) >>> 16) << 16;
    return w[0];
  }`,
};

type Fn = (...args: number[]) => number;

/** The helpers as functions, plus bounds-checked loads and stores for the sanitizer mode. */
export const JS_HELPERS: {
  readonly math: Readonly<Record<string, Fn>>;
  ld(buf: ArrayLike<number>, i: number, name: string): number;
  st(buf: { length: number; [i: number]: number }, i: number, v: number, name: string): void;
} = {
  math: new Function(`return {${Object.entries(HELPER_SOURCE).map(([k, v]) => `${k}: ${v}`).join(',\n')}};`)() as Record<string, Fn>,
  ld: (buf: ArrayLike<number>, i: number, name: string) => {
    if (!(i >= 0 && i < buf.length)) throw new TesseraError('E_INTERNAL', `out-of-bounds read of ${name}[${i}] (length ${buf.length})`);
    return buf[i]!;
  },
  st: (buf: { length: number; [i: number]: number }, i: number, v: number, name: string) => {
    if (!(i >= 0 && i < buf.length)) throw new TesseraError('E_INTERNAL', `out-of-bounds write of ${name}[${i}] (length ${buf.length})`);
    buf[i] = v;
  },
};

function lit(e: Extract<KExpr, { k: 'lit' }>): string {
  if (e.t === 'bool') return e.v ? 'true' : 'false';
  if (Number.isNaN(e.v)) return 'NaN';
  if (e.v === Infinity) return 'Infinity';
  if (e.v === -Infinity) return '-Infinity';
  return Object.is(e.v, -0) ? '-0' : String(e.v);
}

/** With bounds checks, every buffer access goes through H.ld / H.st, which throw when out of range. */
let checked = false;

function loadExpr(buf: string, index: string): string {
  return checked ? `H.ld(b_${buf}, ${index}, '${buf}')` : `b_${buf}[${index}]`;
}

function expr(e: KExpr): string {
  switch (e.k) {
    case 'lit': return lit(e);
    case 'var': return e.name;
    case 'uniform': return `u.${e.name}`;
    case 'tid': return 'tid';
    case 'lid': return 'lid';
    case 'wid': return 'wid';
    case 'load': return e.t === 'bool' ? `(${loadExpr(e.buf, expr(e.index))} !== 0)` : loadExpr(e.buf, expr(e.index));
    case 'sload': return `${e.arr}[${expr(e.index)}]`;
    case 'load4': {
      const i = expr(e.index);
      return checked ? `(H.ld(b_${e.buf}, ${i}, '${e.buf}'), H.ld(b_${e.buf}, ${i} + 3, '${e.buf}'), H.ld4(b_${e.buf}, ${i}))` : `H.ld4(b_${e.buf}, ${i})`;
    }
    case 'splat': return `H.splat4(${expr(e.a)})`;
    case 'comp': return `${expr(e.a)}[${e.i}]`;
    case 'fma4': return `H.fma4(${expr(e.a)}, ${expr(e.b)}, ${expr(e.c)})`;
    case 'vec4': return `[${e.a.map(expr).join(', ')}]`;
    case 'bin4': return `H.${e.op}4(${expr(e.a)}, ${expr(e.b)})`;
    case 'select': return `(${expr(e.c)} ? ${expr(e.a)} : ${expr(e.b)})`;
    case 'cast': return cast(e.t, e.a);
    case 'subgroup': return `(yield ['${e.op}', ${expr(e.a)}, '${e.t}'])`; // the workgroup driver combines the lanes' values
    case 'shuffle': return `(yield ['shuffle', ${expr(e.a)}, '${e.t}', ${expr(e.lane)}])`; // the driver hands each lane the named lane's value
    case 'un': return unary(e);
    case 'bin': return binary(e);
  }
}

function cast(t: string, a: KExpr): string {
  const x = expr(a);
  const from = typeOf(a);
  if (t === 'bool') return `(${x} != 0)`;
  if (from === 'bool') return `(${x} ? 1 : 0)`;
  if (t === 'f32') return `Math.fround(${x})`;
  if (from === 'f32') return t === 'i32' ? `H.ftoi(${x})` : `H.ftou(${x})`;
  return t === 'i32' ? `(${x} | 0)` : `(${x} >>> 0)`;
}

function typeOf(e: KExpr): string {
  return e.k === 'uniform' || e.k === 'tid' || e.k === 'lid' || e.k === 'wid' ? 'i32' : e.t;
}

function unary(e: Extract<KExpr, { k: 'un' }>): string {
  const a = expr(e.a);
  const f = (s: string) => (e.t === 'f32' ? `Math.fround(${s})` : s);
  switch (e.op) {
    case 'neg': return e.t === 'i32' ? `(-${a} | 0)` : e.t === 'u32' ? `(-${a} >>> 0)` : `(-${a})`;
    case 'abs': return e.t === 'i32' ? `(Math.abs(${a}) | 0)` : `Math.abs(${a})`;
    case 'not': return `(!${a})`;
    case 'isnan': return `Number.isNaN(${a})`;
    case 'rsqrt': return f(`1 / Math.sqrt(${a})`);
    case 'erf': return f(`H.erf(${a})`);
    case 'expn': return f(`Math.exp(${a})`);
    case 'f16round': return `H.f16(${a})`;
    case 'bf16round': return `H.bf16(${a})`;
    default: return f(`Math.${e.op}(${a})`);
  }
}

const OPS: Record<string, string> = { add: '+', sub: '-', mul: '*', div: '/', mod: '%', eq: '===', ne: '!==', lt: '<', le: '<=', gt: '>', ge: '>=', and: '&&', or: '||', band: '&', bor: '|', bxor: '^', shl: '<<' };

function binary(e: Extract<KExpr, { k: 'bin' }>): string {
  const a = expr(e.a);
  const b = expr(e.b);
  const t = typeOf(e.a);
  if (t === 'f32') {
    if (e.op === 'max') return `H.fmax(${a}, ${b})`;
    if (e.op === 'min') return `H.fmin(${a}, ${b})`;
    if (e.op === 'pow') return `Math.fround(Math.pow(${a}, ${b}))`;
    if (['add', 'sub', 'mul', 'div', 'mod'].includes(e.op)) return `Math.fround(${a} ${OPS[e.op]} ${b})`;
    return `(${a} ${OPS[e.op]} ${b})`;
  }
  if (e.op === 'dot4i8') return `H.dot4i8(${a}, ${b})`;
  const wrap = t === 'u32' ? '>>> 0' : '| 0';
  switch (e.op) {
    case 'mul': return `(Math.imul(${a}, ${b}) ${wrap})`;
    case 'div': return t === 'u32' ? `H.udiv(${a}, ${b})` : `H.idiv(${a}, ${b})`;
    case 'mod': return t === 'u32' ? `H.umod(${a}, ${b})` : `H.imod(${a}, ${b})`;
    case 'max': return `Math.max(${a}, ${b})`;
    case 'min': return `Math.min(${a}, ${b})`;
    case 'shr': return t === 'u32' ? `(${a} >>> ${b})` : `(${a} >> ${b})`;
    case 'pow': return fail('E_UNSUPPORTED', 'integer pow');
    case 'add': case 'sub': case 'band': case 'bor': case 'bxor': case 'shl':
      return `((${a} ${OPS[e.op]} ${b}) ${wrap})`;
    default: return `(${a} ${OPS[e.op]} ${b})`;
  }
}

function stmts(ss: readonly KStmt[], ind: string, out: string[], k: Kernel): void {
  const storeValue = (buf: string, v: KExpr) => {
    const b = k.buffers.find((x) => x.name === buf);
    if (b?.dtype === 'bool') return `(${expr(v)} ? 1 : 0)`;
    if (b?.dtype === 'f16' || b?.dtype === 'bf16') return `H.${b.dtype}(${expr(v)})`;
    return expr(v);
  };
  for (const s of ss) {
    switch (s.k) {
      case 'let': out.push(`${ind}${s.mut ? 'let' : 'const'} ${s.name} = ${expr(s.init)};`); break;
      case 'set': out.push(`${ind}${s.name} = ${expr(s.value)};`); break;
      case 'store':
        out.push(checked ? `${ind}H.st(b_${s.buf}, ${expr(s.index)}, ${storeValue(s.buf, s.value)}, '${s.buf}');` : `${ind}b_${s.buf}[${expr(s.index)}] = ${storeValue(s.buf, s.value)};`);
        break;
      case 'store4':
        if (checked) {
          const v = `v4_${out.length}`;
          out.push(`${ind}{ const ${v} = ${expr(s.value)}; const i_${v} = ${expr(s.index)}; for (let q = 0; q < 4; q++) H.st(b_${s.buf}, i_${v} + q, ${v}[q], '${s.buf}'); }`);
        } else out.push(`${ind}H.st4(b_${s.buf}, ${expr(s.index)}, ${expr(s.value)});`);
        break;
      case 'sstore': {
        // a half array holds f32 words rounded to f16 or bf16, as a tensor core would see them
        const half = k.shared.find((x) => x.name === s.arr)?.half;
        const v = half ? `H.${half}(${expr(s.value)})` : expr(s.value);
        out.push(`${ind}${s.arr}[${expr(s.index)}] = ${v};`);
        break;
      }
      case 'scopy8': stmts(scopy8Stmts(s), ind, out, k); break;
      case 'barrier': out.push(`${ind}yield;`); break;
      case 'mmaFill': out.push(`${ind}f_${s.frag}.fill(0);`); break;
      case 'mmaLoad': out.push(`${ind}H.mmaLd(f_${s.frag}, ${s.arr}, ${expr(s.offset)}, ${s.ld});`); break;
      case 'mma': out.push(`${ind}H.mma(f_${s.d}, f_${s.a}, f_${s.b});`); break;
      case 'mmaStore': out.push(`${ind}H.mmaSt(f_${s.frag}, ${s.arr}, ${expr(s.offset)}, ${s.ld});`); break;
      case 'for':
        out.push(`${ind}for (let ${s.v} = ${expr(s.from)}; ${s.v} < ${expr(s.to)}; ${s.v} += ${s.step}) {`);
        stmts(s.body, ind + '  ', out, k);
        out.push(`${ind}}`);
        break;
      case 'if':
        out.push(`${ind}if (${expr(s.cond)}) {`);
        stmts(s.then, ind + '  ', out, k);
        if (s.else.length) {
          out.push(`${ind}} else {`);
          stmts(s.else, ind + '  ', out, k);
        }
        out.push(`${ind}}`);
        break;
    }
  }
}

/**
 * The kernel as the body of `function (bufs, u, nThreads, H)`: `bufs` are typed arrays in binding
 * order, `u` the dim values, `nThreads` the padded invocation count.
 */
/** Whether invocations must run in lockstep: a barrier, or a subgroup operation. */
export function hasBarrier(ss: readonly KStmt[]): boolean {
  let sync = false;
  forEachKExpr(ss, (e) => {
    if (e.k === 'subgroup' || e.k === 'shuffle') sync = true;
  });
  const barrier = (b: readonly KStmt[]): boolean => b.some((s) => s.k === 'barrier' || kstmtBodies(s).some(barrier));
  return sync || barrier(ss);
}

/** A warp kernel's tensor-core tiles, 256 values each, per invocation (one invocation runs a warp's work). */
function fragments(k: Kernel, ind: string, out: string[]): void {
  for (const f of k.fragments ?? []) out.push(`${ind}const f_${f.name} = new Float32Array(256);`);
}

const sharedArray = (t: string) => (t === 'f32' ? 'Float32Array' : t === 'u32' ? 'Uint32Array' : 'Int32Array');

export function printJS(k: Kernel, opts: { boundsCheck?: boolean } = {}): string {
  checked = opts.boundsCheck === true;
  const out = [`// tessera kernel ${k.name}: schedule ${k.schedule.kind} ${JSON.stringify(k.schedule.params)}`];
  k.buffers.forEach((b, i) => out.push(`const b_${b.name} = bufs[${i}];`));
  if (!hasBarrier(k.body)) {
    for (const s of k.shared) out.push(`const ${s.name} = new ${sharedArray(s.t)}(${s.size});`);
    out.push('for (let tid = 0; tid < nThreads; tid++) {');
    out.push(`  const lid = tid % ${k.workgroupSize};`);
    out.push(`  const wid = Math.floor(tid / ${k.workgroupSize});`);
    fragments(k, '  ', out);
    stmts(k.body, '  ', out, k);
    out.push('}');
    return out.join('\n');
  }
  // Barriers: each invocation of a workgroup is a generator that yields at every barrier; the
  // workgroup's invocations are stepped in turn, so all reach a barrier before any passes it.
  const wg = k.workgroupSize;
  out.push(`const groups = Math.ceil(nThreads / ${wg});`);
  out.push('for (let wid = 0; wid < groups; wid++) {');
  for (const s of k.shared) out.push(`  const ${s.name} = new ${sharedArray(s.t)}(${s.size});`);
  out.push('  const invocation = function* (tid, lid) {');
  fragments(k, '    ', out);
  stmts(k.body, '    ', out, k);
  out.push('  };');
  out.push(`  const lanes = [];`);
  out.push(`  for (let lid = 0; lid < ${wg}; lid++) lanes.push(invocation(wid * ${wg} + lid, lid));`);
  // A lane yields undefined at a barrier, [op, value] at a subgroup reduction and ['shuffle', value,
  // type, lane] at a shuffle (the workgroup is the subgroup): once every lane has yielded, each gets
  // the combined value, or the named lane's value, back.
  out.push('  let sent = lanes.map(() => undefined);');
  out.push('  for (;;) {');
  out.push('    const got = lanes.map((lane, i) => lane.next(sent[i]));');
  out.push('    if (got.every((g) => g.done)) break;');
  out.push('    const req = got[0].value;');
  out.push("    if (Array.isArray(req) && req[0] === 'shuffle') {");
  out.push('      sent = got.map((g) => got[g.value[3]].value[1]);');
  out.push('    } else if (Array.isArray(req)) {');
  out.push("      const vals = got.map((g) => g.value[1]);");
  out.push("      let r = req[0] === 'add' ? vals.reduce((a, b) => a + b) : vals.some((v) => Number.isNaN(v)) ? NaN : req[0] === 'max' ? Math.max(...vals) : Math.min(...vals);");
  out.push("      r = req[2] === 'i32' ? r | 0 : req[2] === 'u32' ? r >>> 0 : req[2] === 'f32' ? Math.fround(r) : r;");
  out.push('      sent = lanes.map(() => r);');
  out.push('    } else sent = lanes.map(() => undefined);');
  out.push('  }');
  out.push('}');
  return out.join('\n');
}

function dimJS(d: Dim): string {
  if (typeof d === 'number') return String(d);
  if ('sym' in d) return `dims.${d.sym}`;
  const a = dimJS(d.a);
  const b = dimJS(d.b);
  switch (d.op) {
    case '+': return `(${a} + ${b})`;
    case '-': return `(${a} - ${b})`;
    case '*': return `(${a} * ${b})`;
    case '/': return `Math.floor(${a} / ${b})`;
    case 'cdiv': return `Math.ceil(${a} / ${b})`;
  }
}

/**
 * The kernel as a standalone ES module (what `tessera compile --target js` writes): it imports
 * nothing, and exports `run(bufs, dims)` taking typed arrays in binding order (Float32Array for
 * f32 and f16, Int32Array, Uint32Array, Uint8Array for bool) and the symbolic dims by name.
 */
export function printJSModule(k: Kernel): string {
  const helpers = Object.entries(HELPER_SOURCE).map(([name, src]) => `  ${name}: ${src},`);
  const body = printJS(k).split('\n').slice(1);
  return [
    `// tessera kernel ${k.name}: schedule ${k.schedule.kind} ${JSON.stringify(k.schedule.params)}`,
    `// bindings: ${k.buffers.map((b) => `${b.name} (${b.dtype}, ${b.access})`).join(', ')}; dims: ${k.uniforms.join(', ') || 'none'}`,
    'const H = {',
    ...helpers,
    '};',
    `export const name = ${JSON.stringify(k.name)};`,
    `export const bindings = ${JSON.stringify(k.buffers.map((b) => b.name))};`,
    'export function run(bufs, dims) {',
    `  const u = dims;`,
    `  const nThreads = ${dimJS(k.threads)};`,
    ...body.map((l) => `  ${l}`),
    '}',
    '',
  ].join('\n');
}
