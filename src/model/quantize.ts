/**
 * `glmv quantize`'s writer: a model folder's decoder and vision-tower Linear layers quantised weight-only (symmetric
 * int8 per output channel, int4 group-wise) into a new folder in the compressed-tensors "pack-quantized" format
 * (compressed.ts reads it; docs/checkpoints.md describes it). It streams: one source shard at a time, each tensor read
 * from the mapping and quantised, so a 9B checkpoint quantises in a few GB of memory.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  int64Raw,
  Linear,
  type QuantBits,
  quantizeWeight,
  type RawTensor,
  saveSafetensors,
  type Tensor,
} from '../engine/index.js';
import { readRegularFileSync } from '../util/files.js';
import { Progress } from '../util/progress.js';
import {
  CheckpointReader,
  INDEX_FILE,
  legacyName,
  SINGLE_FILE,
  writeJsonAtomic,
  writeTextAtomic,
} from './checkpoint.js';
import { readQuantizationConfig } from './compressed.js';
import { loadConfig } from './config.js';
import { createModel } from './glm4v.js';

export interface QuantizeOptions {
  bits: QuantBits;
  /** int4 group size (default 128); int8 is per output channel unless a group size is given. */
  groupSize?: number | null;
  /** Also quantise the vision tower's Linear layers (default true). */
  vision?: boolean;
  /**
   * Also quantise lm_head (default false: compressed-tensors tools leave it in the float type). At batch-1 decode the
   * bf16 lm_head of GLM-4.1V (151552 × 4096, 1.24 GB) is read on every token; quantised it moves a quarter (int4) or
   * half (int8) of that, at the price of the logits' own quantisation error.
   */
  lmHead?: boolean;
  progress?: boolean;
}

export interface QuantizeReport {
  quantized: number;
  /** Linear layers kept in their float type, with the reason. */
  skipped: Array<{ name: string; reason: string }>;
  bytesIn: number;
  bytesOut: number;
  files: string[];
  seconds: number;
}

const MODEL_FILE = /^(model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json)$/;

/** Quantises the Linear layers of the decoder and the vision tower of `inDir` into a new folder `outDir`. */
export function quantizeCheckpoint(inDir: string, outDir: string, opts: QuantizeOptions): QuantizeReport {
  const t0 = Date.now();
  const { bits } = opts;
  if (bits !== 4 && bits !== 8) throw new Error(`quantize: --bits must be 4 or 8, got ${bits}`);
  const groupSize = opts.groupSize === undefined ? (bits === 4 ? 128 : null) : opts.groupSize;
  if (groupSize !== null && (!Number.isInteger(groupSize) || groupSize <= 0 || groupSize % 8 !== 0))
    throw new Error(`quantize: the group size must be a positive multiple of 8, got ${groupSize}`);
  if (!existsSync(inDir) || !statSync(inDir).isDirectory()) throw new Error(`quantize: ${inDir} is not a model folder`);
  if (readQuantizationConfig(inDir)) throw new Error(`quantize: ${inDir} is already quantised`);
  const config = loadConfig(inDir);
  const rawConfig = JSON.parse(readRegularFileSync(join(inDir, 'config.json'))) as Record<string, unknown>;
  if (existsSync(outDir) && readdirSync(outDir).length)
    throw new Error(`quantize: ${outDir} exists and is not empty; choose a new folder`);
  mkdirSync(outDir, { recursive: true });

  // Which Linear layers exist, from the model itself (placeholders: nothing is allocated for real).
  const skeleton = createModel(config, { init: 'empty', dtype: 'bfloat16' });
  const linears = new Map<string, [number, number]>();
  for (const [name, m] of skeleton.namedModules())
    if (m instanceof Linear && name !== 'lm_head') linears.set(name, [m.outFeatures, m.inFeatures]);
  // lm_head (absent when tied to the embeddings, which stay a float lookup table).
  if (opts.lmHead && !config.tieWordEmbeddings) linears.set('lm_head', [config.text.vocabSize, config.text.hiddenSize]);
  const wanted = (name: string) => (opts.vision ?? true) || !name.startsWith('model.visual.');

  const reader = new CheckpointReader(inDir);
  const report: QuantizeReport = {
    quantized: 0,
    skipped: [],
    bytesIn: reader.bytes,
    bytesOut: 0,
    files: [],
    seconds: 0,
  };
  const byFile = new Map<string, string[]>();
  for (const [name, t] of reader.tensors) {
    const f = basename(t.file.path);
    if (!byFile.has(f)) byFile.set(f, []);
    byFile.get(f)!.push(name);
  }
  const sharded = existsSync(join(inDir, INDEX_FILE));
  const bar = (opts.progress ?? true) ? new Progress({ label: 'quantize', total: reader.tensors.size }) : null;
  const weightMap: Record<string, string> = {};
  let done = 0;
  try {
    for (const [file, names] of byFile) {
      const out = new Map<string, Tensor | RawTensor>();
      for (const name of names) {
        const modelName = legacyName(name) ?? name;
        const mod = modelName.endsWith('.weight') ? modelName.slice(0, -'.weight'.length) : null;
        const shape = mod ? linears.get(mod) : undefined;
        const t = reader.read(name);
        if (mod && shape && wanted(mod)) {
          const [N, K] = shape;
          const g = groupSize ?? K;
          if (K % g !== 0) {
            report.skipped.push({ name: mod, reason: `${K} inputs are not a multiple of the group size ${g}` });
            out.set(name, t);
          } else {
            const q = quantizeWeight(t, bits, g, t.dtype === 'bfloat16' ? 'bfloat16' : 'float32');
            const base = name.slice(0, -'.weight'.length);
            out.set(`${base}.weight_packed`, q.packed);
            out.set(`${base}.weight_scale`, q.scale);
            out.set(`${base}.weight_shape`, int64Raw([N, K]));
            t.dispose();
            report.quantized++;
          }
        } else {
          if (mod && shape) report.skipped.push({ name: mod, reason: 'vision tower left unquantised (--no-vision)' });
          out.set(name, t);
        }
        bar?.update(++done, `${report.quantized} layers`);
      }
      saveSafetensors(join(outDir, file), out, { format: 'pt' });
      for (const [name, t] of out) {
        weightMap[name] = file;
        report.bytesOut +=
          'bytes' in t && t.bytes instanceof Uint8Array
            ? t.bytes.byteLength
            : (t as Tensor).size * bytesOf(t as Tensor);
        if (!('bytes' in t)) (t as Tensor).dispose();
      }
      report.files.push(file);
    }
  } finally {
    bar?.stop();
    reader.close();
  }
  if (sharded) {
    writeJsonAtomic(join(outDir, INDEX_FILE), { metadata: { total_size: report.bytesOut }, weight_map: weightMap });
    report.files.push(INDEX_FILE);
  } else if (!report.files.includes(SINGLE_FILE)) throw new Error(`quantize: ${inDir} has no ${SINGLE_FILE}`);

  const headQuantized = !!opts.lmHead && linears.has('lm_head') && !report.skipped.some((s) => s.name === 'lm_head');
  const ignore = [...(headQuantized ? [] : ['lm_head']), ...report.skipped.map((s) => s.name)];
  rawConfig.quantization_config = {
    quant_method: 'compressed-tensors',
    format: 'pack-quantized',
    quantization_status: 'compressed',
    config_groups: {
      group_0: {
        targets: ['Linear'],
        weights: {
          num_bits: bits,
          type: 'int',
          symmetric: true,
          strategy: groupSize === null ? 'channel' : 'group',
          group_size: groupSize,
          dynamic: false,
          actorder: null,
          observer: 'minmax',
          observer_kwargs: {},
          block_structure: null,
        },
        input_activations: null,
        output_activations: null,
      },
    },
    ignore,
    kv_cache_scheme: null,
  };
  writeTextAtomic(join(outDir, 'config.json'), `${JSON.stringify(rawConfig, null, 2)}\n`);
  report.files.push('config.json');
  // Tokenizer, processor and generation files travel as they are.
  for (const f of readdirSync(inDir)) {
    if (f === 'config.json' || MODEL_FILE.test(f) || f.includes('.tmp-')) continue;
    const p = join(inDir, f);
    if (!statSync(p).isFile()) continue;
    copyFileSync(p, join(outDir, f));
    report.files.push(f);
  }
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}

function bytesOf(t: Tensor): number {
  return t.dtype === 'bfloat16' ? 2 : t.dtype === 'float64' ? 8 : t.dtype === 'bool' ? 1 : 4;
}
