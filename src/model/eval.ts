/**
 * How much a weight change (a quantized copy of the linear layers) costs a llama2.c model, measured
 * on its outputs in float64. On a set of token sequences, every position that has a next token is
 * scored: the float model's next-token distribution p against the modified model's q gives mean
 * KL(p || q) in nats and top-1 agreement (equal argmax); the modified and float models' mean negative
 * log-likelihood of the actual next tokens gives NLL in nats/token. The float side is computed once
 * (`prepareReference`) and reused for every format (`compareTo`). Sequences come from the float
 * model itself (`sampleEvalSequences`, seeded, temperature 1, from BOS) or, for the byte-level model,
 * from held-out text (`byteWindows`: byte b is token b + 3, windows with no BOS).
 */
import { readFileSync } from 'node:fs';
import { fail } from '../errors.js';
import { createState, forwardToken, type WeightOverrides } from './forward.js';
import type { Llama2cModel } from './llama2c.js';
import { argmax, mulberry32, sample } from './sample.js';

export const BOS = 1;
/** Byte-level models (bytes1M): tokens 0..2 are pad, BOS, EOS; byte b is token b + 3. */
export const BYTE_OFFSET = 3;

export interface EvalResult {
  /** Mean KL(p_float || q_modified) per position, nats. */
  readonly kl: number;
  /** Fraction of positions where the argmax tokens agree. */
  readonly top1: number;
  /** Mean NLL of the modified model on the sequences' next tokens, nats/token. */
  readonly nll: number;
  /** The same for the float model. */
  readonly nllFloat: number;
  /** Positions scored. */
  readonly tokens: number;
}

/** The float model's log-probabilities at every scored position, kept to compare formats against. */
export interface Reference {
  readonly model: Llama2cModel;
  readonly sequences: readonly (readonly number[])[];
  /** Per sequence, [length - 1, vocab] log-softmax of the float logits, row t predicting token t + 1. */
  readonly logprobs: readonly Float64Array[];
  /** Per sequence, the float argmax at each scored position. */
  readonly argmax: readonly Int32Array[];
  readonly nllFloat: number;
  readonly tokens: number;
}

/** out = log_softmax(logits). */
function logSoftmax(out: Float64Array, logits: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
}

/** Runs every sequence and calls `visit` with the log-probs at each scored position (a reused buffer). */
function scan(model: Llama2cModel, sequences: readonly (readonly number[])[], overrides: WeightOverrides | undefined, visit: (s: number, t: number, logp: Float64Array) => void): void {
  const { seqLen, vocabSize } = model.config;
  for (const [s, seq] of sequences.entries()) {
    if (seq.length < 2 || seq.length - 1 > seqLen) fail('E_ARG', `sequence ${s} has ${seq.length} tokens; scoring needs 2..${seqLen + 1}`);
  }
  const state = createState(model, overrides);
  const logp = new Float64Array(vocabSize);
  for (const [s, seq] of sequences.entries()) {
    for (let t = 0; t < seq.length - 1; t++) {
      logSoftmax(logp, forwardToken(state, seq[t]!, t));
      visit(s, t, logp);
    }
  }
}

/** The float model's side of every comparison on `sequences` (each 2..seqLen+1 tokens). */
export function prepareReference(model: Llama2cModel, sequences: readonly (readonly number[])[]): Reference {
  const V = model.config.vocabSize;
  const logprobs = sequences.map((seq) => new Float64Array((seq.length - 1) * V));
  const best = sequences.map((seq) => new Int32Array(seq.length - 1));
  let nll = 0;
  let tokens = 0;
  scan(model, sequences, undefined, (s, t, logp) => {
    logprobs[s]!.set(logp, t * V);
    best[s]![t] = argmax(logp);
    nll -= logp[sequences[s]![t + 1]!]!;
    tokens++;
  });
  return { model, sequences, logprobs, argmax: best, nllFloat: nll / tokens, tokens };
}

/** The model with `overrides` in place of its linear weights, scored against the float reference. */
export function compareTo(ref: Reference, overrides?: WeightOverrides): EvalResult {
  const V = ref.model.config.vocabSize;
  let kl = 0;
  let agree = 0;
  let nll = 0;
  scan(ref.model, ref.sequences, overrides, (s, t, logq) => {
    const logp = ref.logprobs[s]!;
    const row = t * V;
    let d = 0;
    for (let i = 0; i < V; i++) {
      const lp = logp[row + i]!;
      d += Math.exp(lp) * (lp - logq[i]!);
    }
    kl += d;
    if (argmax(logq) === ref.argmax[s]![t]) agree++;
    nll -= logq[ref.sequences[s]![t + 1]!]!;
  });
  const n = ref.tokens;
  return { kl: kl / n, top1: agree / n, nll: nll / n, nllFloat: ref.nllFloat, tokens: n };
}

/** One-off comparison: `compareTo(prepareReference(model, sequences), overrides)`. */
export function evaluate(model: Llama2cModel, sequences: readonly (readonly number[])[], overrides?: WeightOverrides): EvalResult {
  return compareTo(prepareReference(model, sequences), overrides);
}

export interface SampleEvalOptions {
  /** Number of sequences. */
  count: number;
  /** Tokens per sequence, BOS included. */
  length: number;
  seed: number;
}

/** `count` sequences of BOS + (length - 1) tokens sampled from the float model at temperature 1, one seeded stream. */
export function sampleEvalSequences(model: Llama2cModel, { count, length, seed }: SampleEvalOptions): number[][] {
  if (!(length >= 2)) fail('E_ARG', `evaluation sequences need at least 2 tokens, got length ${length}`);
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => sample(model, [BOS], length - 1, random));
}

/** Byte-level tokens of a string's UTF-8 bytes (byte b is token b + 3). */
export function bytesToTokens(text: string | Uint8Array): number[] {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  return Array.from(bytes, (b) => b + BYTE_OFFSET);
}

/**
 * Consecutive non-overlapping windows of `length` bytes from the start of `bytes`, as byte-level
 * tokens with no BOS (all full windows, or the first `count`). With length 257, each window feeds
 * 256 bytes predicting the next 256.
 */
export function byteWindows(bytes: Uint8Array, length = 257, count?: number): number[][] {
  const available = Math.floor(bytes.length / length);
  const n = count ?? available;
  if (n > available) fail('E_ARG', `${n} windows of ${length} bytes need ${n * length} bytes; the text has ${bytes.length}`);
  return Array.from({ length: n }, (_, i) => bytesToTokens(bytes.subarray(i * length, (i + 1) * length)));
}

/** `byteWindows` of a file (bytes1M.heldout.txt). */
export function byteWindowsFromFile(path: string, length = 257, count?: number): number[][] {
  return byteWindows(readFileSync(path), length, count);
}
