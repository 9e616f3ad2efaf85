/** A readable text dump of kernel IR, for `--dump-after schedule` and golden tests. */
import { dimToString } from './dims.js';
import { NARROW_LAUNCH, NARROW_WORKGROUP, type KExpr, type Kernel, type KStmt } from './kernel.js';

export function printKExpr(e: KExpr): string {
  switch (e.k) {
    case 'lit': return e.t === 'f32' ? (/[.eIN]/.test(String(e.v)) ? String(e.v) : `${e.v}.0`) : e.t === 'bool' ? String(Boolean(e.v)) : `${e.v}${e.t === 'u32' ? 'u' : ''}`;
    case 'var': return e.name;
    case 'uniform': return `$${e.name}`;
    case 'tid': return 'tid';
    case 'lid': return 'lid';
    case 'wid': return 'wid';
    case 'load': return `${e.buf}[${printKExpr(e.index)}]`;
    case 'sload': return `@${e.arr}[${printKExpr(e.index)}]`;
    case 'un': return `${e.op}(${printKExpr(e.a)})`;
    case 'bin': return `${e.op}(${printKExpr(e.a)}, ${printKExpr(e.b)})`;
    case 'select': return `select(${printKExpr(e.c)}, ${printKExpr(e.a)}, ${printKExpr(e.b)})`;
    case 'cast': return `${e.t}(${printKExpr(e.a)})`;
    case 'subgroup': return `subgroup_${e.op}(${printKExpr(e.a)})`;
    case 'shuffle': return `shuffle(${printKExpr(e.a)}, ${printKExpr(e.lane)})`;
    case 'load4': return `${e.buf}[${printKExpr(e.index)}..+4]`;
    case 'splat': return `splat4(${printKExpr(e.a)})`;
    case 'comp': return `${printKExpr(e.a)}.${'xyzw'[e.i]}`;
    case 'fma4': return `fma4(${printKExpr(e.a)}, ${printKExpr(e.b)}, ${printKExpr(e.c)})`;
    case 'vec4': return `vec4(${e.a.map(printKExpr).join(', ')})`;
    case 'bin4': return `${e.op}4(${printKExpr(e.a)}, ${printKExpr(e.b)})`;
  }
}

function stmts(ss: readonly KStmt[], ind: string, out: string[]): void {
  for (const s of ss) {
    switch (s.k) {
      case 'let': out.push(`${ind}${s.mut ? 'var' : 'let'} ${s.name}: ${s.t} = ${printKExpr(s.init)}`); break;
      case 'set': out.push(`${ind}${s.name} = ${printKExpr(s.value)}`); break;
      case 'store': out.push(`${ind}${s.buf}[${printKExpr(s.index)}] = ${printKExpr(s.value)}`); break;
      case 'store4': out.push(`${ind}${s.buf}[${printKExpr(s.index)}..+4] = ${printKExpr(s.value)}`); break;
      case 'sstore': out.push(`${ind}@${s.arr}[${printKExpr(s.index)}] = ${printKExpr(s.value)}`); break;
      case 'scopy8': out.push(`${ind}@${s.arr}[${printKExpr(s.index)}..+8] = ${printKExpr(s.valid)} ? ${s.buf}[${printKExpr(s.src)}..+8] : 0`); break;
      case 'barrier': out.push(`${ind}barrier${s.storage ? ' storage' : ''}`); break;
      case 'mmaFill': out.push(`${ind}${s.frag} = 0`); break;
      case 'mmaLoad': out.push(`${ind}${s.frag} = @${s.arr}[${printKExpr(s.offset)}, ld ${s.ld}]`); break;
      case 'mma': out.push(`${ind}${s.d} += mma(${s.a}, ${s.b})`); break;
      case 'mmaStore': out.push(`${ind}@${s.arr}[${printKExpr(s.offset)}, ld ${s.ld}] = ${s.frag}`); break;
      case 'for':
        out.push(`${ind}for${s.lanes ? ' lanes' : ''} ${s.v} in ${printKExpr(s.from)}..${printKExpr(s.to)}${s.step !== 1 ? ` step ${s.step}` : ''} {`);
        stmts(s.body, ind + '  ', out);
        out.push(`${ind}}`);
        break;
      case 'if':
        out.push(`${ind}if ${printKExpr(s.cond)} {`);
        stmts(s.then, ind + '  ', out);
        if (s.else.length) {
          out.push(`${ind}} else {`);
          stmts(s.else, ind + '  ', out);
        }
        out.push(`${ind}}`);
        break;
    }
  }
}

export function printKernel(k: Kernel): string {
  const out = [
    `kernel ${k.name} [${k.schedule.kind} ${Object.entries(k.schedule.params).map(([a, b]) => `${a}=${b}`).join(' ')}]`,
    `  threads ${dimToString(k.threads)} / workgroup ${k.workgroupSize}${k.warp ? ' (warps)' : ''}${k.flexibleWorkgroup ? ` (flexible: ${NARROW_WORKGROUP} under ${NARROW_LAUNCH} threads)` : ''}`,
    ...k.buffers.map((b) => `  buffer ${b.name}: ${b.dtype}[${b.shape.map(dimToString).join(', ')}] ${b.access}`),
    ...(k.uniforms.length ? [`  uniforms ${k.uniforms.join(', ')}`] : []),
    ...k.shared.map((s) => `  shared ${s.name}: ${s.half ?? s.t}[${s.size}]`),
    ...(k.fragments ?? []).map((f) => `  fragment ${f.name}: ${f.use} 16x16`),
    '{',
  ];
  stmts(k.body, '  ', out);
  out.push('}');
  return out.join('\n');
}
