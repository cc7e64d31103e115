/**
 * RLCS inside verl: integrations/verl/glmv_curriculum.py driven with verl's curriculum-sampler call sequence
 * (verl_curriculum_replay.py: construct with the dataset and data config, iterate through a drop-last batch
 * sampler, update with each step's reordered batch of uids, rewards and acc) against `glmv curriculum serve`'s
 * service: draws are valid distinct dataset positions, online results move prompts into the right tiers and away
 * from the batches, and the expansion EMA is the paper's ratio EMA of the batches' invalid shares.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCurriculumServer, CurriculumService } from '../../src/rl/curriculum-service.js';
import { expansionRatio } from '../../src/rl/expansion.js';
import { listen, ROOT, runPython } from './helpers.js';

const service = new CurriculumService({ seed: 3, expansion: { decay: 0.8, maxRatio: 4 } });
const app = buildCurriculumServer(service);
let url = '';
beforeAll(async () => {
  url = await listen(app);
});
afterAll(async () => {
  await app.close();
});

interface Step {
  indices: number[];
  invalid_share: number;
  expansion: { ema: number; ratio: number };
  gen_prompts: number;
  populations: Record<string, number>;
}

describe('verl data.sampler → glmv curriculum service', () => {
  it('draws, learns tiers from the rollouts and reports the expansion EMA', async () => {
    const SIZE = 48;
    const STEPS = 10;
    const out = await runPython<{ len: number; steps: Step[] }>('test/integrations/verl_curriculum_replay.py', {
      path: join(ROOT, 'integrations/verl/glmv_curriculum.py'),
      url,
      size: SIZE,
      n: 4,
      train_batch_size: 6,
      gen_batch_size: 8,
      steps: STEPS,
    });
    expect(out.len).toBe(SIZE);
    expect(out.steps).toHaveLength(STEPS);
    let ema = 0;
    for (const [t, s] of out.steps.entries()) {
      expect(s.indices).toHaveLength(8);
      expect(new Set(s.indices).size).toBe(8);
      for (const i of s.indices) expect(i >= 0 && i < SIZE && Number.isInteger(i)).toBe(true);
      // The paper's EMA: the first observation initialises it, then ema ← 0.8·ema + 0.2·ratio.
      const ratio = expansionRatio(s.invalid_share, 4);
      ema = t === 0 ? ratio : 0.8 * ema + 0.2 * ratio;
      expect(s.expansion.ratio).toBeCloseTo(ratio, 12);
      expect(s.expansion.ema).toBeCloseTo(ema, 12);
      expect(s.gen_prompts).toBe(Math.max(6, Math.ceil(6 * ema - 1e-9)));
    }
    // Tiers from the online results: always-solved prompts (i % 4 = 0) are too easy, never-solved ones too hard.
    let seenEasy = 0;
    let seenHard = 0;
    for (let i = 0; i < SIZE; i++) {
      const p = service.prompt(`${i % 2 ? 'hiyouga/geometry3k' : 'openai/gsm8k'}/${i}`)!;
      if (p.record.seen === 0) {
        expect(p.tier).toBe('unseen');
        continue;
      }
      if (i % 4 === 0) {
        expect(p.tier).toBe('too_easy');
        seenEasy++;
      }
      if (i % 4 === 1) {
        expect(p.tier).toBe('too_hard');
        seenHard++;
      }
    }
    expect(seenEasy + seenHard).toBeGreaterThan(0);
    // Once seen, those prompts weigh 0.05 / 0.1 against 1 for unseen and medium ones: later batches rarely hold them.
    const late = out.steps.slice(-4).flatMap((s) => s.indices);
    const solvedOrHopeless = late.filter((i) => {
      const p = service.prompt(`${i % 2 ? 'hiyouga/geometry3k' : 'openai/gsm8k'}/${i}`)!;
      return (i % 4 === 0 || i % 4 === 1) && p.record.seen > 1;
    });
    expect(solvedOrHopeless.length).toBeLessThan(late.length / 4);
  }, 120_000);

  it('refuses what verl would silently mistrain on: duplicate keys, draws before registration, unknown ids', async () => {
    const dup = await app.inject({
      method: 'POST',
      url: '/curriculum/register',
      payload: { prompts: [{ id: 'a' }, { id: 'a' }] },
    });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().error).toMatch(/duplicate sample id "a"/);
    const fresh = new CurriculumService();
    const f = buildCurriculumServer(fresh);
    expect((await f.inject({ method: 'POST', url: '/curriculum/draw', payload: { n: 1, step: 0 } })).statusCode).toBe(
      409,
    );
    await f.inject({ method: 'POST', url: '/curriculum/register', payload: { prompts: [{ id: 'x' }] } });
    const unknown = await f.inject({
      method: 'POST',
      url: '/curriculum/update',
      payload: { step: 0, groups: [{ id: 'nope', rewards: [1] }] },
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toMatch(/none of the 1 group ids/);
    await f.close();
  });
});
