/**
 * `node --import tsx bench/quant-quality.ts [--quick] [--models stories260K,bytes1M] [--out DIR|none]`
 *
 * Weight-quantization quality on the two llama2.c checkpoints in models/: every linear layer (35 in
 * stories260K, 42 in bytes1M; embeddings and norms kept) quantized with each scheme, then the model's
 * next-token distributions compared with the float model's on held-out sequences: KL(p_float || q)
 * in nats, top-1 agreement, and NLL of the actual next tokens. Effective bits per weight count every
 * stored byte (codes, scales, zeros, codebooks, tables) over the linear weights.
 *
 * Evaluation data: stories260K has no tokenizer, so its sequences are sampled from the float model
 * (temperature 1, seeded); bytes1M uses windows of its held-out documentation text. Calibration data
 * for GPTQ and VPTQ (each layer's inputs in the float model) comes from other seeds / other windows,
 * never from the evaluation sequences.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureLinearInputs } from '../src/model/forward.js';
import { linearLayers, loadLlama2cFile, type Llama2cModel } from '../src/model/llama2c.js';
import { byteWindowsFromFile, compareTo, prepareReference, sampleEvalSequences, type EvalResult } from '../src/model/eval.js';
import { FORMATS, type QuantizedMatrix } from '../src/quant/index.js';
import { QUALITY_SCHEMES, type Calibration, type QualityScheme } from './quant-schemes.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MODELS = join(HERE, '..', 'models');

export interface QualityRow extends EvalResult {
  readonly scheme: string;
  readonly bitsPerWeight: number;
  readonly seconds: number;
}

export interface ModelQuality {
  readonly model: string;
  readonly evalData: string;
  readonly calibData: string;
  readonly linearWeights: number;
  readonly rows: QualityRow[];
}

interface Data {
  readonly evalSeqs: number[][];
  readonly calibSeqs: number[][];
  readonly evalData: string;
  readonly calibData: string;
}

function dataFor(name: string, model: Llama2cModel, quick: boolean): Data {
  if (name === 'bytes1M') {
    const n = quick ? 4 : 8;
    const windows = byteWindowsFromFile(join(MODELS, 'bytes1M.heldout.txt'), 257, 2 * n);
    return {
      evalSeqs: windows.slice(0, n),
      calibSeqs: windows.slice(n, 2 * n),
      evalData: `held-out text, windows 0..${n - 1} of 257 bytes (${n * 256} predictions)`,
      calibData: `held-out text, windows ${n}..${2 * n - 1}`,
    };
  }
  const count = quick ? 4 : 16;
  return {
    evalSeqs: sampleEvalSequences(model, { count, length: 128, seed: 1234 }),
    calibSeqs: sampleEvalSequences(model, { count, length: 128, seed: 99 }),
    evalData: `${count} sequences of 128 tokens sampled from the float model (seed 1234)`,
    calibData: `${count} sampled sequences (seed 99)`,
  };
}

async function quantizeModel(model: Llama2cModel, scheme: QualityScheme, calib: Calibration): Promise<{ overrides: Map<string, Float64Array>; bits: number }> {
  const overrides = new Map<string, Float64Array>();
  let bits = 0;
  let weights = 0;
  for (const layer of linearLayers(model)) {
    const q: QuantizedMatrix = await scheme.quantize(layer.weight, layer.N, layer.K, calib(layer.name));
    const format = FORMATS[q.format]!;
    overrides.set(layer.name, format.dequantize(q));
    bits += format.bitsPerWeight(q) * layer.N * layer.K;
    weights += layer.N * layer.K;
  }
  return { overrides, bits: bits / weights };
}

export async function runQuality(opts: { models: readonly string[]; quick: boolean; schemes?: readonly QualityScheme[]; log: (s: string) => void }): Promise<ModelQuality[]> {
  const out: ModelQuality[] = [];
  for (const name of opts.models) {
    const model = loadLlama2cFile(join(MODELS, `${name}.bin`));
    const data = dataFor(name, model, opts.quick);
    const ref = prepareReference(model, data.evalSeqs);
    const captured = captureLinearInputs(model, data.calibSeqs);
    const calib: Calibration = (layer) => captured.get(layer)!;
    const rows: QualityRow[] = [{ scheme: 'float32', bitsPerWeight: 32, seconds: 0, ...compareTo(ref) }];
    for (const scheme of opts.schemes ?? QUALITY_SCHEMES) {
      if (!FORMATS[scheme.format]) continue;
      const t0 = performance.now();
      const { overrides, bits } = await quantizeModel(model, scheme, calib);
      const seconds = (performance.now() - t0) / 1000;
      const r = compareTo(ref, overrides);
      rows.push({ scheme: scheme.label, bitsPerWeight: bits, seconds, ...r });
      opts.log(`${name} ${scheme.label}: ${bits.toFixed(3)} bits, KL ${r.kl.toFixed(4)}, top-1 ${r.top1.toFixed(3)}, NLL ${r.nll.toFixed(4)} (${seconds.toFixed(1)} s)`);
    }
    out.push({ model: name, evalData: data.evalData, calibData: data.calibData, linearWeights: linearLayers(model).reduce((s, l) => s + l.N * l.K, 0), rows });
  }
  return out;
}

/** A Markdown table per model. */
export function qualityMarkdown(results: readonly ModelQuality[]): string {
  return results
    .map((m) => {
      const head = `**${m.model}** (${m.linearWeights.toLocaleString('en-US')} linear weights; eval: ${m.evalData}; calibration: ${m.calibData})\n\n| scheme | bits/weight | KL vs float (nats) | top-1 agreement | NLL (nats/token) |\n|---|---:|---:|---:|---:|`;
      const rows = m.rows.map((r) => `| ${r.scheme} | ${r.bitsPerWeight.toFixed(2)} | ${r.kl.toFixed(4)} | ${r.top1.toFixed(3)} | ${r.nll.toFixed(4)} |`);
      return [head, ...rows].join('\n');
    })
    .join('\n\n');
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const i = process.argv.indexOf('--models');
  const models = i >= 0 ? process.argv[i + 1]!.split(',') : ['stories260K', 'bytes1M'];
  const results = await runQuality({ models, quick, log: (s) => console.log(s) });
  const md = qualityMarkdown(results);
  console.log(`\n${md}`);
  const o = process.argv.indexOf('--out');
  const outDir = o >= 0 ? process.argv[o + 1]! : join(HERE, 'results', 'quant');
  if (outDir !== 'none') {
    mkdirSync(outDir, { recursive: true });
    const stem = join(outDir, `${new Date().toISOString().slice(0, 10)}-quality${quick ? '-quick' : ''}`);
    writeFileSync(`${stem}.json`, JSON.stringify({ date: new Date().toISOString(), command: `npm run bench:quant${quick ? ' -- --quick' : ''}`, results }, null, 2) + '\n');
    writeFileSync(`${stem}.md`, md + '\n');
    console.log(`wrote ${stem}.json and .md`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
