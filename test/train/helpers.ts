/**
 * Small on-disk fixtures for the training tests: a few generated samples and pre-training documents at 56 px, a BPE
 * tokenizer learned from them, and a tiny GLM-4.1V-shaped architecture (4 visual tokens per image).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDataset } from '../../src/data/dataset.js';
import { generatePretrain } from '../../src/data/pretrain.js';
import type { TrainConfigInput } from '../../src/train/config.js';
import { loadTrainConfig, type TokenizerConfig } from '../../src/train/config.js';
import { trainTokenizerStage } from '../../src/train/tokenizer.js';

export interface Fixture {
  root: string;
  samples: string;
  docs: string;
  tokenizer: string;
}

let cached: Promise<Fixture> | null = null;

/** Generates the fixture once per test file (a second or two). */
export function fixture(): Promise<Fixture> {
  cached ??= (async () => {
    const root = mkdtempSync(join(tmpdir(), 'glmv-train-'));
    const samples = join(root, 'samples');
    const docs = join(root, 'docs');
    await generateDataset(
      { domains: 'vqa,ocr,grounding,text', n: 24, split: 'train', seed: 1, difficulty: '1-2', size: '56' },
      { out: samples, quiet: true },
    );
    await generatePretrain(
      {
        kinds: 'caption,ocr,grounding,instruction,text,interleaved,video_caption',
        n: 42,
        split: 'train',
        seed: 1,
        difficulty: '1-2',
        size: 56,
      },
      docs,
      true,
    );
    const tok = loadTrainConfig(
      {
        run: { dir: join(root, 'tok') },
        data: { sources: [{ path: docs }, { path: samples }] },
        tokenizer: { vocabSize: 700 },
      },
      'tokenizer',
    ) as TokenizerConfig;
    const res = await trainTokenizerStage(tok, { quiet: true, log: () => {} });
    return { root, samples, docs, tokenizer: res.checkpoint };
  })();
  return cached;
}

/** The tiny architecture: 64-wide decoder, 2 layers; 32-wide single-block ViT over 56 px images. */
export const TINY_ARCH = {
  hiddenSize: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediateSize: 128,
  maxPositions: 4096,
  vision: { depth: 1, hiddenSize: 32, heads: 2, intermediateSize: 64, patchSize: 14, imageSize: 56 },
};

/** A pretrain/sft config over the fixture (fields can be overridden). */
export function baseConfig(f: Fixture, dir: string, extra: Partial<TrainConfigInput> & Record<string, unknown> = {}) {
  return {
    run: { dir, steps: 4, checkpointEvery: 0, seed: 3 },
    model: { init: 'scratch', tokenizer: f.tokenizer, arch: TINY_ARCH },
    data: { sources: [{ path: f.docs }] },
    pack: { seqLen: 256, padMultiple: 16 },
    batch: { rows: 2, microRows: 1 },
    optim: { lr: 3e-3, warmupSteps: 1 },
    ...extra,
  };
}
