/**
 * bfloat16: the host conversions (round to nearest even on the top 16 bits of an f32, NaN kept
 * quiet, f32's range), and bf16 buffers round-tripping through every backend's upload and download.
 * Kernels over bf16 are covered by the op property suite (bf16_*) and the tensor-core tests.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bf16BitsToF32, bf16Round, f32ToBf16Bits } from '../src/runtime/f16.js';
import { promote } from '../src/ir/dtype.js';
import { testBackends, type NamedBackend } from './helpers/backends.js';

let backends: NamedBackend[] = [];
beforeAll(async () => {
  backends = await testBackends();
});

describe('bfloat16', () => {
  it('rounds to nearest even on the f32 bits', () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80], // a tie: to even
      [1 + 3 * 2 ** -8, 0x3f82], // a tie: to even, upward
      [1 + 2 ** -8 + 2 ** -20, 0x3f81], // above the tie
      [-2.5, 0xc020],
      [-0, 0x8000],
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [3.4028234663852886e38, 0x7f80], // f32 max rounds up to infinity
      [2 ** -133, 0x0001], // the smallest bf16 subnormal: bf16 has f32's exponent range
    ];
    for (const [x, bits] of cases) expect(f32ToBf16Bits(x), String(x)).toBe(bits);
    expect(f32ToBf16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
    expect(bf16BitsToF32(0x3f82)).toBe(1.015625);
    expect(bf16Round(1 / 3)).toBe(0.333984375);
    expect(promote('bf16', 'f16')).toBe('f32');
    expect(promote('bf16', 'bf16')).toBe('bf16');
    expect(promote('bf16', 'f32')).toBe('f32');
    expect(promote('bf16', 'i32')).toBe('bf16');
  });

  it('bf16 buffers round to bf16 on upload and come back as those values on every backend', async () => {
    const xs = Float32Array.from([1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -1e-40, 1e38, -Infinity, NaN, 65536.5, -0]);
    for (const { name, rt } of backends) {
      const b = rt.alloc('bf16', xs.length);
      rt.upload(b, xs);
      const got = Array.from(await rt.download(b));
      const want = Array.from(xs, bf16Round);
      // a software driver may flush an f32 subnormal to zero
      got.forEach((g, i) => expect(Object.is(g, want[i]) || (Math.abs(want[i]!) < 1.2e-38 && g === 0), `${name} ${xs[i]}: ${g} vs ${want[i]}`).toBe(true));
      rt.free(b);
    }
  });
});
