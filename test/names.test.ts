/** Program names that collide with the compiler's own locals or with target keywords still work. */
import { describe, expect, it } from 'vitest';
import * as D from '../src/dsl/index.js';
import { testBackends } from './helpers/backends.js';
import { checkOnBackend } from './helpers/compare.js';

describe('names', () => {
  it('inputs named like generated locals and keywords run on every backend', async () => {
    const N = D.dim('N');
    const names = ['i', 'e', 'k', 'tid', 'v0', 'acc0', 'r0', 'j0', 'c0', 'main', 'let', 'var', 'float', 'u', 'bufs', 'H', 'dims', 'out_out'];
    const params = Object.fromEntries(names.map((n) => [n, D.tensor('f32', [N])]));
    const def = D.kernel('names', params, (t) => ({ out: D.softmax(Object.values(t).reduce((a, b) => a.add(b))), sum: D.matmul(t['i']!, t['k']!) }));
    const inputs = Object.fromEntries(names.map((n, j) => [n, { shape: [6], data: Float32Array.from({ length: 6 }, (_, q) => Math.sin(j + q)) }]));
    for (const { name, rt } of await testBackends()) expect(await checkOnBackend(def, rt, inputs, { rtol: 1e-5, atol: 1e-5 }), name).toBeNull();
  });
});
