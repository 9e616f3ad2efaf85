/**
 * Differential fuzzing: seeded random programs compiled and run on every backend, compared with the
 * reference interpreter. Each failure names its seed and the command that replays it.
 * TESSERA_FUZZ_COUNT and TESSERA_FUZZ_SEED override how many programs run and where they start.
 */
import { describe, expect, it } from 'vitest';
import { generateProgram, randomInputs } from '../src/fuzz/gen.js';
import { compile } from '../src/passes/pipeline.js';
import { simplify } from '../src/passes/simplify.js';
import { parseProgram, printProgram } from '../src/ir/text/index.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend, mismatch, reference } from './helpers/compare.js';
import { smokeRun } from './helpers/webgpu.js';

const COUNT = Number(process.env['TESSERA_FUZZ_COUNT'] ?? (smokeRun() ? 40 : 220));
const START = Number(process.env['TESSERA_FUZZ_SEED'] ?? 1000);
const TOL = { rtol: 2e-3, atol: 2e-3 };

const replay = (seed: number) => `TESSERA_FUZZ_SEED=${seed} TESSERA_FUZZ_COUNT=1 npx vitest run test/fuzz.test.ts`;

describe('random programs', () => {
  it(`${COUNT} programs from seed ${START} match the reference on every backend`, async () => {
    const backends = await testBackends();
    const failures: string[] = [];
    const ops = new Map<string, number>();
    let kernels = 0;
    for (let seed = START; seed < START + COUNT; seed++) {
      let g;
      try {
        g = generateProgram(seed);
        const cp = compile(g.def.program);
        kernels += cp.kernels.length;
        for (const op of g.ops) ops.set(op, (ops.get(op) ?? 0) + 1);
        const inputs = randomInputs(g.def, g.dims, seed);
        for (const b of backends) {
          const m = await checkOnBackend(cp, b.rt, inputs, TOL, g.dims);
          if (m) failures.push(`seed ${seed} on ${b.name}: ${m}\n  ops: ${g.ops.join(', ')}\n  replay: ${replay(seed)}`);
        }
      } catch (e) {
        failures.push(`seed ${seed}: ${(e as Error).message}\n  ops: ${g?.ops.join(', ') ?? '?'}\n  replay: ${replay(seed)}`);
      }
      if (failures.length >= 5) break;
    }
    console.log(`[fuzz] ${COUNT} programs, ${kernels} kernels on ${backends.map((b) => b.name).join(' + ')}; op counts: ${[...ops].map(([k, v]) => `${k}=${v}`).join(' ')}`);
    expect(failures, failures.join('\n\n')).toEqual([]);
  });

  it('the text form round-trips every generated program to the same nodes', () => {
    for (let seed = START; seed < START + COUNT; seed++) {
      const p = generateProgram(seed).def.program;
      const text = printProgram(p);
      const back = parseProgram(text);
      expect(back.outputs.map((o) => o.node), `seed ${seed}\n${text}`).toEqual(p.outputs.map((o) => o.node));
      back.outputs.forEach((o, i) => expect(o.node).toBe(p.outputs[i]!.node));
      expect(printProgram(back)).toBe(text);
    }
  });

  it('simplification preserves results (interpreted before and after)', () => {
    const failures: string[] = [];
    for (let seed = START; seed < START + COUNT; seed++) {
      const g = generateProgram(seed);
      const inputs = randomInputs(g.def, g.dims, seed);
      const before = reference(g.def.program, inputs, g.dims);
      const after = reference(simplify(g.def.program), inputs, g.dims);
      for (const [name, t] of Object.entries(before)) {
        const m = mismatch(after[name]!.data, t, { rtol: 1e-9, atol: 1e-12 });
        if (m) failures.push(`seed ${seed} output ${name}: ${m}\n  replay: ${replay(seed)}`);
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
