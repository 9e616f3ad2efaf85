/** `tessera tune`: tunes each kernel, caches the winners, reuses them, and checks the tuned program. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main, type CliIO } from '../src/cli/main.js';

const SAMPLE = join(resolve(import.meta.dirname, '..'), 'test/fixtures/cli-sample.ts');
const cache = mkdtempSync(join(tmpdir(), 'tessera-tune-cli-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { out: (s) => void (out += s), err: (s) => void (err += s) };
  return { code: await main(argv, io), out, err };
}

describe('tessera tune', () => {
  it('tunes, caches and verifies on the JS backend', async () => {
    const first = await cli('tune', SAMPLE, '--backend', 'js', '--dims', 'M=5,N=7', '--repeat', '1', '--cache', cache);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/candidates in/);
    expect(first.out).toMatch(/tuned program: .* MATCH/);
    // the first tune on a device calibrates its profile, later ones read it
    expect(first.out).toMatch(/\ndevice profile: f32 matmuls .*\(probe \d+³, wall time: default /);
    expect(readdirSync(cache).some((f) => f.endsWith('.json'))).toBe(true);
    const again = await cli('tune', SAMPLE, '--backend', 'js', '--dims', 'M=5,N=7', '--repeat', '1', '--cache', cache);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/cached/);
    expect(again.out).toMatch(/\ndevice profile \(cached\): /);
    expect(again.out).not.toMatch(/candidates in/);
  });

  it('tunes the program specialized to the dims with --specialize, and checks it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-tune-spec-'));
    const r = await cli('tune', SAMPLE, '--backend', 'js', '--dims', 'M=5,N=7', '--repeat', '1', '--cache', dir, '--specialize');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/tuned, specialized program: .* MATCH/);
    // the specialized kernels have their own cache entries: tuning generically afterwards re-times
    const generic = await cli('tune', SAMPLE, '--backend', 'js', '--dims', 'M=5,N=7', '--repeat', '1', '--cache', dir);
    expect(generic.out).toMatch(/candidates in/);
  });

  it('is listed in --help and rejects a bad backend', async () => {
    expect((await cli('--help')).out).toMatch(/tune/);
    const bad = await cli('tune', SAMPLE, '--backend', 'nope');
    expect(bad.code).toBe(2);
  });
});
