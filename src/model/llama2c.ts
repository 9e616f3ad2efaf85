/**
 * Loading Llama-architecture checkpoints in llama2.c's legacy `.bin` format (karpathy/llama2.c
 * `run.c`): a header of seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means an unshared classifier is stored at the end), then float32
 * arrays, row-major, little-endian: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
 * rms_final, freq_cis_real, freq_cis_imag (the last two unused: RoPE is computed), [wcls]. Every
 * weight is exposed as a Float32Array view, per layer, with linear layers as W[out, in]; the file's
 * size must match its header exactly, so a truncated or garbled file is a `TesseraError`, not garbage.
 * `linearLayers` lists the seven linear layers per transformer layer that weight quantization acts on.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fail } from '../errors.js';

export interface Llama2cConfig {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  /** dim / nHeads. */
  readonly headSize: number;
  /** headSize * nKvHeads: the width of k and v. */
  readonly kvDim: number;
  /** True when the classifier is the token embedding (vocab_size positive in the header). */
  readonly sharedClassifier: boolean;
}

/** One transformer layer. Linear weights are W[out, in], row-major: y = W x. */
export interface Llama2cLayer {
  readonly rmsAtt: Float32Array; // [dim]
  readonly wq: Float32Array; // [dim, dim]
  readonly wk: Float32Array; // [kvDim, dim]
  readonly wv: Float32Array; // [kvDim, dim]
  readonly wo: Float32Array; // [dim, dim]
  readonly rmsFfn: Float32Array; // [dim]
  readonly w1: Float32Array; // [hiddenDim, dim]
  readonly w2: Float32Array; // [dim, hiddenDim]
  readonly w3: Float32Array; // [hiddenDim, dim]
}

export interface Llama2cModel {
  readonly config: Llama2cConfig;
  readonly tokenEmbedding: Float32Array; // [vocab, dim]
  readonly layers: readonly Llama2cLayer[];
  readonly rmsFinal: Float32Array; // [dim]
  /** The classifier [vocab, dim]: the same array as `tokenEmbedding` when shared. */
  readonly wcls: Float32Array;
}

/** The linear layers of one transformer layer, in file order. */
export const LINEAR_NAMES = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type LinearName = (typeof LINEAR_NAMES)[number];

export interface LinearLayer {
  /** `layers.${layer}.${wq|wk|wv|wo|w1|w2|w3}`. */
  readonly name: string;
  readonly layer: number;
  /** Out features (rows of W). */
  readonly N: number;
  /** In features (columns of W). */
  readonly K: number;
  readonly weight: Float32Array;
}

const HEADER_BYTES = 7 * 4;

/** The [out, in] shape of a linear layer. */
export function linearShape(config: Llama2cConfig, name: LinearName): [number, number] {
  const { dim, hiddenDim, kvDim } = config;
  switch (name) {
    case 'wq':
    case 'wo':
      return [dim, dim];
    case 'wk':
    case 'wv':
      return [kvDim, dim];
    case 'w1':
    case 'w3':
      return [hiddenDim, dim];
    case 'w2':
      return [dim, hiddenDim];
  }
}

function readConfig(bytes: Uint8Array, source: string): Llama2cConfig {
  if (bytes.byteLength < HEADER_BYTES) {
    fail('E_ARG', `${source}: expected a llama2.c header of ${HEADER_BYTES} bytes, got ${bytes.byteLength} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabField, seqLen] = Array.from({ length: 7 }, (_, i) => view.getInt32(4 * i, true)) as [
    number, number, number, number, number, number, number,
  ];
  const header = `dim ${dim}, hidden_dim ${hiddenDim}, n_layers ${nLayers}, n_heads ${nHeads}, n_kv_heads ${nKvHeads}, vocab_size ${vocabField}, seq_len ${seqLen}`;
  const vocabSize = Math.abs(vocabField);
  if ([dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen].some((v) => v <= 0)) {
    fail('E_ARG', `${source}: not a llama2.c checkpoint: every header field must be non-zero and all but vocab_size positive (${header})`);
  }
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    fail('E_SHAPE', `${source}: inconsistent header: dim must split into n_heads heads of even size and n_heads into n_kv_heads groups (${header})`);
  }
  const headSize = dim / nHeads;
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, headSize, kvDim: headSize * nKvHeads, sharedClassifier: vocabField > 0 };
}

/** The number of float32 values that follow the header. */
function floatCount(c: Llama2cConfig): number {
  const perLayer = 2 * c.dim + 2 * c.dim * c.dim + 2 * c.kvDim * c.dim + 3 * c.hiddenDim * c.dim;
  const freqCis = c.seqLen * c.headSize; // real and imaginary, [seq_len, head_size / 2] each
  return c.vocabSize * c.dim + c.nLayers * perLayer + c.dim + freqCis + (c.sharedClassifier ? 0 : c.vocabSize * c.dim);
}

/**
 * Parses a llama2.c `.bin` checkpoint. `source` names it in error messages (a file name). The
 * returned arrays are views into one aligned copy of the float data.
 */
export function loadLlama2c(bytes: Uint8Array | ArrayBuffer, source = 'llama2.c checkpoint'): Llama2cModel {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const config = readConfig(data, source);
  const count = floatCount(config);
  const expected = HEADER_BYTES + 4 * count;
  if (data.byteLength !== expected) {
    const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier } = config;
    fail(
      'E_SHAPE',
      `${source}: expected ${expected} bytes for dim ${dim}, hidden_dim ${hiddenDim}, n_layers ${nLayers}, n_heads ${nHeads}, ` +
        `n_kv_heads ${nKvHeads}, vocab_size ${vocabSize} (${sharedClassifier ? 'shared' : 'separate'} classifier), seq_len ${seqLen}; ` +
        `got ${data.byteLength} bytes (${data.byteLength < expected ? 'truncated' : 'trailing data or a garbled header'})`,
    );
  }
  // One aligned copy: a Node Buffer may sit at any byte offset of a shared pool, and its `slice` is a
  // view, so the copy is made by the Uint8Array constructor. The float32 data is little-endian.
  const floats = new Float32Array(new Uint8Array(data.subarray(HEADER_BYTES)).buffer);
  let at = 0;
  const take = (n: number): Float32Array => floats.subarray(at, (at += n));
  const perLayer = (n: number): Float32Array[] => Array.from({ length: config.nLayers }, () => take(n));

  const { dim, hiddenDim, kvDim, vocabSize } = config;
  const tokenEmbedding = take(vocabSize * dim);
  const rmsAtt = perLayer(dim);
  const wq = perLayer(dim * dim);
  const wk = perLayer(kvDim * dim);
  const wv = perLayer(kvDim * dim);
  const wo = perLayer(dim * dim);
  const rmsFfn = perLayer(dim);
  const w1 = perLayer(hiddenDim * dim);
  const w2 = perLayer(dim * hiddenDim);
  const w3 = perLayer(hiddenDim * dim);
  const rmsFinal = take(dim);
  take(config.seqLen * config.headSize); // freq_cis_real and freq_cis_imag
  const wcls = config.sharedClassifier ? tokenEmbedding : take(vocabSize * dim);

  const layers = Array.from({ length: config.nLayers }, (_, l) => ({
    rmsAtt: rmsAtt[l]!,
    wq: wq[l]!,
    wk: wk[l]!,
    wv: wv[l]!,
    wo: wo[l]!,
    rmsFfn: rmsFfn[l]!,
    w1: w1[l]!,
    w2: w2[l]!,
    w3: w3[l]!,
  }));
  return { config, tokenEmbedding, layers, rmsFinal, wcls };
}

/** Reads and parses a llama2.c `.bin` file; errors name the file. */
export function loadLlama2cFile(path: string): Llama2cModel {
  return loadLlama2c(readFileSync(path), basename(path));
}

/** The model's linear layers (7 per transformer layer, in file order); the embedding/classifier is not one. */
export function linearLayers(model: Llama2cModel): LinearLayer[] {
  return model.layers.flatMap((layer, l) =>
    LINEAR_NAMES.map((name) => {
      const [N, K] = linearShape(model.config, name);
      return { name: `layers.${l}.${name}`, layer: l, N, K, weight: layer[name] };
    }),
  );
}
