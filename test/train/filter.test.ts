/** The SFT difficulty filter: decisions by pass rate and difficulty label, per-domain report, cached results. */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { RewardRouter } from '../../src/reward/router.js';
import { loadTrainConfig, type SftConfig } from '../../src/train/config.js';
import { Encoder } from '../../src/train/encode.js';
import { decide, type FilterEntry, formatFilterReport, runFilter, summarize } from '../../src/train/filter.js';
import { initStageModel } from '../../src/train/model.js';
import { openRecords, type RecordSource } from '../../src/train/records.js';
import { baseConfig, type Fixture, fixture } from './helpers.js';

const F = { maxPassRate: 1, minPassRate: 0, hardLevel: 4 } as SftConfig['sft']['filter'];

describe('decisions', () => {
  it('too easy at or above maxPassRate; too hard at or below minPassRate when labelled hard or unlabelled', () => {
    expect(decide(4, 4, 1, F)).toBe('too_easy');
    expect(decide(3, 4, 1, F)).toBe('keep');
    expect(decide(0, 4, 5, F)).toBe('too_hard');
    expect(decide(0, 4, 2, F)).toBe('keep'); // a failure on an easy-labelled item is the model's, not the item's
    expect(decide(0, 4, undefined, F)).toBe('too_hard');
    expect(decide(1, 4, 5, { ...F, minPassRate: 0.25 })).toBe('too_hard');
    expect(decide(3, 4, 1, { ...F, maxPassRate: 0.75 })).toBe('too_easy');
  });

  it('summarises per domain', () => {
    const e = (domain: string, correct: number, decision: FilterEntry['decision']): FilterEntry => ({
      key: `${domain}${correct}`,
      id: 'x',
      domain,
      k: 4,
      correct,
      decision,
    });
    const r = summarize(
      [e('stem', 4, 'too_easy'), e('stem', 2, 'keep'), e('stem', 0, 'too_hard'), e('ocr', 0, 'unscored')],
      'm',
      4,
      1,
      false,
    );
    expect(r).toMatchObject({ candidates: 4, kept: 2, tooEasy: 1, tooHard: 1 });
    expect(r.perDomain.stem).toEqual({ candidates: 3, scored: 3, kept: 1, tooEasy: 1, tooHard: 1, meanPassRate: 0.5 });
    expect(r.perDomain.ocr).toMatchObject({ candidates: 1, scored: 0, kept: 1 });
    expect(formatFilterReport(r)[1]).toMatch(/ocr .*1 candidates .*1 kept/);
  });
});

describe('runFilter with a model', () => {
  let f: Fixture;
  let sources: RecordSource[];
  let cfg: SftConfig;
  beforeAll(async () => {
    f = await fixture();
    sources = [await openRecords(f.samples, { limit: 6 })];
    cfg = loadTrainConfig(baseConfig(f, '/unused', { sft: { filter: { k: 2, maxNewTokens: 4 } } }), 'sft') as SftConfig;
  });

  it('scores k answers per candidate, reports per domain, and reuses its file when the settings match', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'glmv-filter-'));
    let loads = 0;
    const load = async () => {
      loads++;
      const sm = await initStageModel(cfg);
      const encoder = new Encoder({
        tokenizer: sm.tokenizer,
        imageConfig: sm.imageConfig,
        videoConfig: sm.videoConfig,
        template: sm.template,
        style: sm.style,
      });
      return { sm, encoder };
    };
    const inputs = {
      runDir,
      seed: 0,
      filter: { ...cfg.sft.filter, hardLevel: 1 },
      modelDir: 'random',
      sources,
      mcq: 'blank' as const,
      quiet: true,
    };
    const router = new RewardRouter({});
    // An untrained model never answers right: everything is too hard once every label counts as hard.
    const a = await runFilter(inputs, load, router);
    expect(a.report).toMatchObject({ candidates: 6, kept: 0, tooHard: 6, reused: false, k: 2 });
    expect([...a.decisions.values()].every((d) => d === 'too_hard')).toBe(true);
    expect(existsSync(join(runDir, 'filter.jsonl'))).toBe(true);
    expect(readFileSync(join(runDir, 'filter.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(7);
    const again = await runFilter(inputs, load, router);
    expect(again.report.reused).toBe(true);
    expect(loads).toBe(1);
    expect([...again.decisions]).toEqual([...a.decisions]);
    // A grader that passes everything: all too easy. Changed settings are scored afresh; maxCandidates leaves the rest unscored.
    const lenient = {
      scoreBatch: async (items: unknown[]) => items.map(() => ({ correct: true, answer: 'x' })),
    } as unknown as RewardRouter;
    const b = await runFilter({ ...inputs, filter: { ...inputs.filter, maxCandidates: 4 } }, load, lenient);
    expect(loads).toBe(2);
    expect(b.report).toMatchObject({ candidates: 6, tooEasy: 4, kept: 2, reused: false });
    expect([...b.decisions.values()].filter((d) => d === 'unscored')).toHaveLength(2);
    await router.close();
  });
});
