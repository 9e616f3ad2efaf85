/**
 * The llama2.c loader, the float64 reference forward pass and the quantization metrics, checked
 * against the reference behaviour recorded in models/README.md: greedy token ids of both checkpoints
 * (computed there by llama2.c's run.c and an independent NumPy implementation), the float NLL of
 * bytes1M on held-out text, and the invariants of the metrics (no change: KL 0, top-1 1).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { linearLayers, loadLlama2c, loadLlama2cFile } from '../src/model/llama2c.js';
import { captureLinearInputs, logitsForSequence } from '../src/model/forward.js';
import { greedy, mulberry32, sample } from '../src/model/sample.js';
import { BOS, byteWindowsFromFile, bytesToTokens, compareTo, evaluate, prepareReference, sampleEvalSequences } from '../src/model/eval.js';
import { caught } from './helpers/errors.js';

const modelPath = (name: string): string => fileURLToPath(new URL(`../models/${name}`, import.meta.url));
const stories = loadLlama2cFile(modelPath('stories260K.bin'));
const bytes1M = loadLlama2cFile(modelPath('bytes1M.bin'));


describe('loader', () => {
  it('reads the stories260K header and lists its linear layers', () => {
    expect(stories.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, headSize: 8, kvDim: 32, sharedClassifier: true });
    expect(stories.wcls).toBe(stories.tokenEmbedding);
    const linears = linearLayers(stories);
    expect(linears).toHaveLength(35);
    expect(linears.slice(0, 7).map(({ name, N, K }) => [name, N, K])).toEqual([
      ['layers.0.wq', 64, 64],
      ['layers.0.wk', 32, 64],
      ['layers.0.wv', 32, 64],
      ['layers.0.wo', 64, 64],
      ['layers.0.w1', 172, 64],
      ['layers.0.w2', 64, 172],
      ['layers.0.w3', 172, 64],
    ]);
    for (const l of linears) expect(l.weight.length).toBe(l.N * l.K);
  });

  it('rejects a truncated or garbled file with a TesseraError that says what is wrong', () => {
    const file = readFileSync(modelPath('stories260K.bin'));
    const truncated = caught(() => loadLlama2c(file.subarray(0, file.length - 100), 'stories260K.bin'));
    expect(truncated.code).toBe('E_SHAPE');
    expect(truncated.message).toMatch(/stories260K\.bin: expected 1056540 bytes for dim 64.*got 1056440 bytes \(truncated\)/);
    expect(caught(() => loadLlama2c(file.subarray(0, 10), 'x.bin')).message).toMatch(/x\.bin: expected a llama2\.c header of 28 bytes, got 10/);
    const garbled = new Uint8Array(file);
    new DataView(garbled.buffer).setInt32(0, -5, true);
    expect(caught(() => loadLlama2c(garbled, 'g.bin')).message).toMatch(/g\.bin: not a llama2\.c checkpoint/);
  });

  it('reads an unshared classifier stored after the arrays (negative vocab_size)', () => {
    const file = readFileSync(modelPath('stories260K.bin'));
    const cls = new Float32Array(512 * 64).map((_, i) => i);
    const unshared = new Uint8Array(file.length + cls.byteLength);
    unshared.set(file);
    unshared.set(new Uint8Array(cls.buffer), file.length);
    new DataView(unshared.buffer).setInt32(20, -512, true);
    const m = loadLlama2c(unshared);
    expect(m.config).toMatchObject({ vocabSize: 512, sharedClassifier: false });
    expect(m.wcls).toEqual(cls);
    expect(m.tokenEmbedding).toEqual(stories.tokenEmbedding);
  });
});

describe('reference forward pass', () => {
  it('stories260K: greedy decoding from BOS gives the README ids', () => {
    expect(greedy(stories, [BOS], 20)).toEqual([1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283, 264, 283, 452, 288, 13]);
  });

  it('bytes1M: BOS + "The function " continues greedily with "is a state and the state"', () => {
    const prompt = [BOS, ...bytesToTokens('The function ')];
    const continuation = greedy(bytes1M, prompt, 24).slice(prompt.length);
    expect(continuation).toEqual([108, 118, 35, 100, 35, 118, 119, 100, 119, 104, 35, 100, 113, 103, 35, 119, 107, 104, 35, 118, 119, 100, 119, 104]);
    expect(continuation).toEqual(bytesToTokens('is a state and the state'));
  });

  it('bytes1M: float NLL on the first 8 held-out windows of 257 bytes is 1.105 nats/byte', () => {
    const windows = byteWindowsFromFile(modelPath('bytes1M.heldout.txt'), 257, 8);
    const ref = prepareReference(bytes1M, windows);
    expect(ref.tokens).toBe(8 * 256);
    expect(ref.nllFloat).toBeCloseTo(1.1052, 3);
  });

  it('logitsForSequence matches step-by-step generation and rejects wrong-sized overrides', () => {
    const logits = logitsForSequence(stories, [1, 461, 461]);
    expect(logits).toHaveLength(3);
    expect(logits.map((l) => l.indexOf(Math.max(...l)))).toEqual([461, 461, 401]);
    const bad = caught(() => logitsForSequence(stories, [1], new Map([['layers.0.wq', new Float64Array(10)]])));
    expect(bad.code).toBe('E_SHAPE');
    expect(bad.message).toMatch(/layers\.0\.wq have 10 elements; expected 64 x 64 = 4096/);
    expect(caught(() => logitsForSequence(stories, [1], new Map([['layers.9.wq', new Float64Array(4096)]]))).message).toMatch(/no linear layer named layers\.9\.wq/);
  });

  it('captures every linear layer input for calibration', () => {
    const seqs = [[BOS, 5, 9], [BOS, 7]];
    const cap = captureLinearInputs(stories, seqs);
    expect(cap.size).toBe(35);
    const wq = cap.get('layers.0.wq')!;
    expect([wq.T, wq.K]).toEqual([5, 64]);
    expect(cap.get('layers.4.w2')!.K).toBe(172);
    // layer 0's attention input at the first token is rmsnorm(embedding[BOS]) * rms_att
    const e = stories.tokenEmbedding.subarray(BOS * 64, BOS * 64 + 64);
    const rms = 1 / Math.sqrt(e.reduce((s, v) => s + v * v, 0) / 64 + 1e-5);
    for (let i = 0; i < 64; i++) expect(wq.X[i]).toBeCloseTo(e[i]! * rms * stories.layers[0]!.rmsAtt[i]!, 5);
    expect(Array.from(cap.get('layers.0.wk')!.X)).toEqual(Array.from(wq.X));
  });

  it('seeded sampling reproduces its sequence', () => {
    const a = sample(stories, [BOS], 16, mulberry32(3));
    expect(a).toHaveLength(17);
    expect(sample(stories, [BOS], 16, mulberry32(3))).toEqual(a);
    expect(sample(stories, [BOS], 16, mulberry32(4))).not.toEqual(a);
  });
});

describe('evaluation metrics', () => {
  const sequences = sampleEvalSequences(stories, { count: 3, length: 48, seed: 1 });

  it('the unmodified model scores KL 0, top-1 1 and its own NLL', () => {
    expect(sequences.every((s) => s.length === 48 && s[0] === BOS)).toBe(true);
    const r = evaluate(stories, sequences);
    expect(r).toMatchObject({ kl: 0, top1: 1, tokens: 3 * 47 });
    expect(r.nll).toBe(r.nllFloat);
    expect(r.nllFloat).toBeGreaterThan(1);
  });

  it('perturbing one layer costs KL > 0, the same through a map or a function', () => {
    const ref = prepareReference(stories, sequences);
    const wo = linearLayers(stories).find((l) => l.name === 'layers.2.wo')!;
    const random = mulberry32(9);
    const noisy = Float64Array.from(wo.weight, (w) => w + 0.05 * (random() - 0.5));
    const byMap = compareTo(ref, new Map([[wo.name, noisy]]));
    const byFunction = compareTo(ref, (name) => (name === wo.name ? noisy : undefined));
    expect(byMap.kl).toBeGreaterThan(1e-4);
    expect(byMap.top1).toBeLessThanOrEqual(1);
    expect(byMap.nll).not.toBe(byMap.nllFloat);
    expect(byFunction).toEqual(byMap);
  });
});
