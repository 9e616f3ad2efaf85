/**
 * Decoding token sequences from a llama2.c model with the float64 forward pass: greedy (argmax) and
 * seeded sampling at a temperature (run.c's inverse-CDF draw from softmax(logits / temperature), fed
 * by a mulberry32 stream so a seed reproduces a sequence on every platform). Both return the prompt
 * followed by `steps` new tokens and never stop early (run.c stops at BOS; fixed lengths suit evaluation).
 */
import { fail } from '../errors.js';
import { createState, forwardToken, type WeightOverrides } from './forward.js';
import type { Llama2cModel } from './llama2c.js';

export { mulberry32 } from '../fuzz/rng.js';

/** The index of the largest value (the first, on ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** A draw from softmax(logits / temperature) using the uniform number `u` in [0, 1). */
export function sampleLogits(logits: ArrayLike<number>, temperature: number, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp((logits[i]! - max) / temperature);
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf += p[i]! / sum;
    if (u < cdf) return i;
  }
  return p.length - 1; // rounding left the total just under u
}

/** Feeds `prompt`, then appends `steps` tokens, each chosen by `pick` from the logits. */
function generate(model: Llama2cModel, prompt: readonly number[], steps: number, pick: (logits: Float64Array) => number, overrides?: WeightOverrides): number[] {
  if (prompt.length === 0) fail('E_ARG', 'generation needs a non-empty prompt (start with BOS, token 1)');
  const total = prompt.length + steps;
  if (!Number.isInteger(steps) || steps < 0 || total - 1 > model.config.seqLen) {
    fail('E_ARG', `cannot generate ${steps} tokens after a ${prompt.length}-token prompt: the model's context is ${model.config.seqLen} tokens`);
  }
  const state = createState(model, overrides);
  const tokens = [...prompt];
  for (let pos = 0; tokens.length < total; pos++) {
    const logits = forwardToken(state, tokens[pos]!, pos);
    if (pos >= prompt.length - 1) tokens.push(pick(logits));
  }
  return tokens;
}

/** The prompt followed by `steps` greedily decoded tokens. */
export function greedy(model: Llama2cModel, prompt: readonly number[], steps: number, overrides?: WeightOverrides): number[] {
  return generate(model, prompt, steps, argmax, overrides);
}

export interface SampleOptions {
  /** Softmax temperature (> 0); 1 samples the model's own distribution. */
  temperature?: number;
  overrides?: WeightOverrides;
}

/** The prompt followed by `steps` tokens sampled with uniform numbers from `random` (e.g. `mulberry32(seed)`). */
export function sample(model: Llama2cModel, prompt: readonly number[], steps: number, random: () => number, options: SampleOptions = {}): number[] {
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) fail('E_ARG', `sampling temperature must be positive, got ${temperature}`);
  return generate(model, prompt, steps, (logits) => sampleLogits(logits, temperature, random()), options.overrides);
}
