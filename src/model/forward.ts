/**
 * The float64 reference forward pass of a llama2.c model, step by step with a KV cache, exactly as
 * run.c computes it: x = embedding[token]; per layer, RMSNorm (eps 1e-5), q/k/v projections, RoPE
 * (run.c's pairing: element pairs (i, i+1), i even, rotated by pos * 10000^(-(i mod head_size) /
 * head_size); k only for i < kv_dim), causal grouped-query attention with scores / sqrt(head_size),
 * x += wo att; RMSNorm, SwiGLU FFN x += w2 (silu(w1 xb) * w3 xb); logits = wcls rmsnorm(x, rms_final).
 * Any linear layer can be replaced (by `layers.{l}.{wq..w3}` name) with another W[out, in] of the same
 * size, such as a dequantized copy, so quantization error is measured on the model's own outputs.
 */
import { fail } from '../errors.js';
import { LINEAR_NAMES, linearShape, type LinearName, type Llama2cModel } from './llama2c.js';

/**
 * Replacement linear weights, by layer name (`layers.0.wq`): a map, or a function given the name and
 * the original weights that returns the replacement (or undefined to keep the original).
 */
export type WeightOverrides =
  | ReadonlyMap<string, Float64Array | Float32Array>
  | ((name: string, original: Float32Array) => Float64Array | Float32Array | undefined);

const RMS_EPS = 1e-5;
const ROPE_THETA = 10000;

type LayerWeights = Record<LinearName | 'rmsAtt' | 'rmsFfn', Float64Array>;

/** A model bound to its (possibly replaced) weights, with a KV cache and scratch buffers for one sequence. */
export interface ForwardState {
  readonly model: Llama2cModel;
  readonly layers: readonly LayerWeights[];
  readonly keys: readonly Float64Array[]; // per layer [seqLen, kvDim]
  readonly values: readonly Float64Array[]; // per layer [seqLen, kvDim]
  readonly cos: Float64Array; // [seqLen, headSize / 2]
  readonly sin: Float64Array;
  readonly embedding: Float64Array;
  readonly rmsFinal: Float64Array;
  readonly wcls: Float64Array;
  readonly x: Float64Array;
  readonly xb: Float64Array;
  readonly xb2: Float64Array;
  readonly q: Float64Array;
  readonly att: Float64Array; // [seqLen] scores of one head
  readonly hb: Float64Array;
  readonly hb2: Float64Array;
  readonly logits: Float64Array;
  /** Called with each linear layer's input vector before it is applied (calibration capture). */
  tap?: (name: string, input: Float64Array) => void;
}

function resolveLinear(model: Llama2cModel, l: number, name: LinearName, overrides: WeightOverrides | undefined): Float64Array {
  const original = model.layers[l]![name];
  const full = `layers.${l}.${name}`;
  const replaced = overrides === undefined ? undefined : typeof overrides === 'function' ? overrides(full, original) : overrides.get(full);
  if (replaced !== undefined && replaced.length !== original.length) {
    const [N, K] = linearShape(model.config, name);
    fail('E_SHAPE', `replacement weights for ${full} have ${replaced.length} elements; expected ${N} x ${K} = ${original.length}`);
  }
  return Float64Array.from(replaced ?? original);
}

/**
 * A fresh state for `model` with optional replacement linear weights. A state runs one sequence at a
 * time; to start another, call `forwardToken` from position 0 again (the cache is overwritten).
 */
export function createState(model: Llama2cModel, overrides?: WeightOverrides): ForwardState {
  const c = model.config;
  if (overrides instanceof Map) {
    const known = new Set(model.layers.flatMap((_, l) => LINEAR_NAMES.map((n) => `layers.${l}.${n}`)));
    for (const name of overrides.keys()) if (!known.has(name)) fail('E_ARG', `no linear layer named ${name} to replace (names are layers.{0..${c.nLayers - 1}}.{${LINEAR_NAMES.join(',')}})`);
  }
  const layers = model.layers.map((layer, l) => {
    const w = { rmsAtt: Float64Array.from(layer.rmsAtt), rmsFfn: Float64Array.from(layer.rmsFfn) } as LayerWeights;
    for (const name of LINEAR_NAMES) w[name] = resolveLinear(model, l, name, overrides);
    return w;
  });
  const half = c.headSize / 2;
  const cos = new Float64Array(c.seqLen * half);
  const sin = new Float64Array(c.seqLen * half);
  for (let j = 0; j < half; j++) {
    const freq = 1 / ROPE_THETA ** ((2 * j) / c.headSize);
    for (let pos = 0; pos < c.seqLen; pos++) {
      cos[pos * half + j] = Math.cos(pos * freq);
      sin[pos * half + j] = Math.sin(pos * freq);
    }
  }
  const embedding = Float64Array.from(model.tokenEmbedding);
  const cache = (): Float64Array[] => Array.from({ length: c.nLayers }, () => new Float64Array(c.seqLen * c.kvDim));
  return {
    model,
    layers,
    keys: cache(),
    values: cache(),
    cos,
    sin,
    embedding,
    rmsFinal: Float64Array.from(model.rmsFinal),
    wcls: c.sharedClassifier ? embedding : Float64Array.from(model.wcls),
    x: new Float64Array(c.dim),
    xb: new Float64Array(c.dim),
    xb2: new Float64Array(c.dim),
    q: new Float64Array(c.dim),
    att: new Float64Array(c.seqLen),
    hb: new Float64Array(c.hiddenDim),
    hb2: new Float64Array(c.hiddenDim),
    logits: new Float64Array(c.vocabSize),
  };
}

/**
 * out[outAt + i] = (W x)[i] for W[n, k]. Four rows share each load of x; every row still sums in
 * order j = 0..k-1, so the result is the plain dot product's, bit for bit.
 */
function matvec(out: Float64Array, outAt: number, w: Float64Array, x: Float64Array, n: number, k: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const r0 = i * k;
    const r1 = r0 + k;
    const r2 = r1 + k;
    const r3 = r2 + k;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < k; j++) {
      const xj = x[j]!;
      s0 += w[r0 + j]! * xj;
      s1 += w[r1 + j]! * xj;
      s2 += w[r2 + j]! * xj;
      s3 += w[r3 + j]! * xj;
    }
    out[outAt + i] = s0;
    out[outAt + i + 1] = s1;
    out[outAt + i + 2] = s2;
    out[outAt + i + 3] = s3;
  }
  for (; i < n; i++) {
    const row = i * k;
    let s = 0;
    for (let j = 0; j < k; j++) s += w[row + j]! * x[j]!;
    out[outAt + i] = s;
  }
}

function rmsnorm(out: Float64Array, x: Float64Array, weight: Float64Array): void {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const scale = 1 / Math.sqrt(ss / x.length + RMS_EPS);
  for (let i = 0; i < x.length; i++) out[i] = weight[i]! * (scale * x[i]!);
}

/** Rotates pairs (i, i+1), i even, of v[at..at+n) by the angles of position `pos`. */
function rope(state: ForwardState, v: Float64Array, at: number, n: number, pos: number): void {
  const half = state.model.config.headSize / 2;
  const base = pos * half;
  for (let i = 0; i < n; i += 2) {
    const j = base + ((i / 2) % half);
    const fcr = state.cos[j]!;
    const fci = state.sin[j]!;
    const v0 = v[at + i]!;
    const v1 = v[at + i + 1]!;
    v[at + i] = v0 * fcr - v1 * fci;
    v[at + i + 1] = v0 * fci + v1 * fcr;
  }
}

/**
 * Runs `token` at position `pos` (positions 0..pos-1 of this sequence must already have run) and
 * returns the logits for the next token. The returned array is the state's buffer: the next call
 * overwrites it.
 */
export function forwardToken(state: ForwardState, token: number, pos: number): Float64Array {
  const { dim, hiddenDim, nHeads, nKvHeads, headSize, kvDim, vocabSize, seqLen } = state.model.config;
  if (!Number.isInteger(token) || token < 0 || token >= vocabSize) fail('E_ARG', `token ${token} is outside the vocabulary 0..${vocabSize - 1}`);
  if (!Number.isInteger(pos) || pos < 0 || pos >= seqLen) fail('E_ARG', `position ${pos} is outside the model's context 0..${seqLen - 1}`);
  const { x, xb, xb2, q, att, hb, hb2 } = state;
  const group = nHeads / nKvHeads;
  const invSqrt = 1 / Math.sqrt(headSize);
  x.set(state.embedding.subarray(token * dim, (token + 1) * dim));

  for (let l = 0; l < state.layers.length; l++) {
    const w = state.layers[l]!;
    const keys = state.keys[l]!;
    const values = state.values[l]!;
    const kvAt = pos * kvDim;

    rmsnorm(xb, x, w.rmsAtt);
    if (state.tap) for (const n of ['wq', 'wk', 'wv']) state.tap(`layers.${l}.${n}`, xb);
    matvec(q, 0, w.wq, xb, dim, dim);
    matvec(keys, kvAt, w.wk, xb, kvDim, dim);
    matvec(values, kvAt, w.wv, xb, kvDim, dim);
    rope(state, q, 0, dim, pos);
    rope(state, keys, kvAt, kvDim, pos);

    for (let h = 0; h < nHeads; h++) {
      const qAt = h * headSize;
      const kvHead = Math.floor(h / group) * headSize;
      let max = -Infinity;
      for (let t = 0; t <= pos; t++) {
        const kAt = t * kvDim + kvHead;
        let s = 0;
        for (let i = 0; i < headSize; i++) s += q[qAt + i]! * keys[kAt + i]!;
        s *= invSqrt;
        att[t] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let t = 0; t <= pos; t++) sum += att[t] = Math.exp(att[t]! - max);
      xb.fill(0, qAt, qAt + headSize);
      for (let t = 0; t <= pos; t++) {
        const a = att[t]! / sum;
        const vAt = t * kvDim + kvHead;
        for (let i = 0; i < headSize; i++) xb[qAt + i] += a * values[vAt + i]!;
      }
    }
    state.tap?.(`layers.${l}.wo`, xb);
    matvec(xb2, 0, w.wo, xb, dim, dim);
    for (let i = 0; i < dim; i++) x[i] += xb2[i]!;

    rmsnorm(xb, x, w.rmsFfn);
    if (state.tap) for (const n of ['w1', 'w3']) state.tap(`layers.${l}.${n}`, xb);
    matvec(hb, 0, w.w1, xb, hiddenDim, dim);
    matvec(hb2, 0, w.w3, xb, hiddenDim, dim);
    for (let i = 0; i < hiddenDim; i++) {
      const g = hb[i]!;
      hb[i] = (g / (1 + Math.exp(-g))) * hb2[i]!;
    }
    state.tap?.(`layers.${l}.w2`, hb);
    matvec(xb2, 0, w.w2, hb, dim, hiddenDim);
    for (let i = 0; i < dim; i++) x[i] += xb2[i]!;
  }

  rmsnorm(xb, x, state.rmsFinal);
  matvec(state.logits, 0, state.wcls, xb, vocabSize, dim);
  return state.logits;
}

/** The logits after each position of `tokens` (entry t predicts token t + 1), each a fresh array. */
export function logitsForSequence(model: Llama2cModel, tokens: readonly number[], overrides?: WeightOverrides): Float64Array[] {
  const state = createState(model, overrides);
  return tokens.map((token, pos) => forwardToken(state, token, pos).slice());
}

/**
 * Calibration activations: every linear layer's inputs over `sequences` as X [T, K] (T = total tokens),
 * from the float model, by layer name.
 */
export function captureLinearInputs(model: Llama2cModel, sequences: readonly (readonly number[])[]): Map<string, { X: Float32Array; T: number; K: number }> {
  const rows = new Map<string, number[][]>();
  const state = createState(model);
  state.tap = (name, input) => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = []));
    r.push(Array.from(input));
  };
  // a window one longer than the context (its last token only a target) contributes its first seqLen tokens
  for (const seq of sequences) seq.slice(0, model.config.seqLen).forEach((token, pos) => forwardToken(state, token, pos));
  const out = new Map<string, { X: Float32Array; T: number; K: number }>();
  for (const [name, r] of rows) {
    const K = r[0]!.length;
    out.set(name, { X: Float32Array.from(r.flat()), T: r.length, K });
  }
  return out;
}
