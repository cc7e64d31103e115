/** The pipeline's data stage: every synthetic dataset the later stages read, generated once (resumable). */
import { rmSync } from 'node:fs';
import { generateDataset } from '../../data/dataset.js';
import { generatePretrain } from '../../data/pretrain.js';
import { listShards } from '../../data/store.js';
import type { StageContext, StageOutcome } from './stage.js';

export async function dataStage(c: StageContext): Promise<StageOutcome> {
  const d = c.config.data;
  const p = c.paths.data;
  const size = String(d.imageSize);
  const seed = c.config.seed;
  const counts: Record<string, number> = {};
  const gen = async (name: string, out: string, spec: Parameters<typeof generateDataset>[0]) => {
    const have = listShards(out).reduce((a, s) => a + s.count, 0);
    if (have >= spec.n) {
      counts[name] = have;
      return;
    }
    const r = await generateDataset(spec, { out, resume: have > 0, quiet: c.quiet });
    counts[name] = r.info.count;
  };
  const pretrain = async (name: string, out: string, n: number, split: 'train' | 'heldout') => {
    if (listShards(out).reduce((a, s) => a + s.count, 0) >= n) {
      counts[name] = n;
      return;
    }
    rmSync(out, { recursive: true, force: true });
    counts[name] = (
      await generatePretrain({ kinds: 'all', n, split, seed, difficulty: '1-5', size: d.imageSize }, out, c.quiet)
    ).count;
  };
  await pretrain('pretrain', p.pretrain, d.pretrainDocs, 'train');
  await pretrain('pretrain-heldout', p.pretrainHeldout, d.pretrainHeldout, 'heldout');
  await gen('sft', p.sft, {
    domains: d.domains,
    n: d.sftSamples,
    split: 'train',
    seed,
    difficulty: d.difficulty,
    size,
    mcq: 'blank',
  });
  await gen('text', p.text, {
    domains: 'text',
    n: d.textSamples,
    split: 'train',
    seed: seed + 1,
    difficulty: d.difficulty,
  });
  // RL prompts: the train split under another seed, so SFT never saw them.
  await gen('rl', p.rl, {
    domains: d.domains,
    n: d.rlSamples,
    split: 'train',
    seed: seed + 7,
    difficulty: d.difficulty,
    size,
    mcq: 'blank',
  });
  await gen('heldout', p.heldout, {
    domains: d.domains,
    n: d.heldout,
    split: 'heldout',
    seed,
    difficulty: d.difficulty,
    size,
    mcq: 'blank',
  });
  return { summary: { counts } };
}
