/**
 * Issue #20 item 11: after kill -9 and a resume, metrics.jsonl lists each step once — the killed run's lines past
 * the checkpoint move to metrics.discarded.jsonl.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTrainConfig, type ModelStageConfig } from '../../src/train/config.js';
import { runStage } from '../../src/train/trainer.js';
import { readMetricsFile, truncateMetricsAfter } from '../../src/util/progress.js';
import { baseConfig, type Fixture, fixture } from './helpers.js';

let f: Fixture;
let tmp: string;
beforeAll(async () => {
  f = await fixture();
  tmp = mkdtempSync(join(tmpdir(), 'glmv-resume-metrics-'));
});

const quiet = { quiet: true, log: () => {} };

describe('metrics on resume', () => {
  it('a run killed after its step-2 checkpoint and resumed lists steps 1..4 once', async () => {
    const dir = join(tmp, 'run');
    const c = loadTrainConfig(
      baseConfig(f, dir, { run: { dir, steps: 4, checkpointEvery: 2, logEvery: 1, seed: 1 } } as never),
      'pretrain',
    ) as ModelStageConfig;
    await runStage(c, quiet);
    const path = join(dir, 'metrics.jsonl');
    const killed = readFileSync(path, 'utf8');
    // kill -9 after step 3 leaves the lines of step 3 (and a torn one) past the last checkpoint (step 2).
    const lines = killed.split('\n').filter(Boolean);
    const upTo = (n: number) =>
      lines.filter((l) => {
        const r = JSON.parse(l) as { step?: number; event?: string };
        return r.event !== 'done' && (r.step === undefined || r.step <= n);
      });
    writeFileSync(path, `${upTo(3).join('\n')}\n{"event":"train","st`);
    await runStage(c, { ...quiet, resume: join(dir, 'checkpoints', 'step-000002') });
    const steps = readMetricsFile(path)
      .filter((r) => r.event === 'train')
      .map((r) => r.step);
    expect(steps).toEqual([1, 2, 3, 4]);
    const side = readFileSync(join(dir, 'metrics.discarded.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(side[0]).toMatch(/"step":3/);
    expect(side[side.length - 1]).toBe('{"event":"train","st');
  }, 300_000);

  it('truncateMetricsAfter keeps records up to the step, cuts at the first later one or a torn line', () => {
    const p = join(tmp, 'm.jsonl');
    writeFileSync(p, '{"step":1}\n{"event":"filter"}\n{"step":2}\n{"step":3}\n{"event":"done"}\n');
    expect(truncateMetricsAfter(p, 2)).toBe(2);
    expect(readFileSync(p, 'utf8')).toBe('{"step":1}\n{"event":"filter"}\n{"step":2}\n');
    expect(readFileSync(join(tmp, 'm.discarded.jsonl'), 'utf8')).toBe('{"step":3}\n{"event":"done"}\n');
    expect(truncateMetricsAfter(p, 2)).toBe(0);
    expect(truncateMetricsAfter(join(tmp, 'none.jsonl'), 2)).toBe(0);
  });
});
