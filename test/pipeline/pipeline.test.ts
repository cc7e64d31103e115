/**
 * The end-to-end recipe at the `tiny` preset: every stage runs, artifacts are well-formed, SFT lifts the format
 * compliance above the pre-trained model, a run killed in the middle of a stage finishes when started again, and the
 * report renders in headless Chromium.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatModel } from '../../src/io/chat.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';
import { resolvePipelineConfig } from '../../src/pipeline/config.js';
import type { StageEval } from '../../src/pipeline/evaluate.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { type HeadroomSummary, type PipelineState, type SeedRun, STAGES } from '../../src/pipeline/state.js';

const CHROMIUM = '/usr/bin/chromium';
let out = '';
let state: PipelineState;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'glmv-pipe-'));
  const r = await runPipeline(resolvePipelineConfig({ preset: 'tiny' }), { out, quiet: true, log: () => {} });
  expect(r.interrupted).toBe(false);
  state = r.state;
}, 900_000);

function evalOf(stage: 'eval-pretrain' | 'eval-sft' | 'eval-rl', mode: 'think' | 'nothink'): StageEval {
  return (state.stages[stage]!.summary.modes as Record<string, StageEval>)[mode]!;
}

describe('glmv pipeline --tiny', () => {
  it('runs every stage and records it', () => {
    for (const s of STAGES.filter((x) => x !== 'ship' && x !== 'rl-seeds'))
      expect(state.stages[s]?.status, s).toBe('done');
    expect(state.stages['rl-seeds']?.status).toBe('skipped'); // rlSeeds 1
    const saved = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8')) as PipelineState;
    expect(Object.keys(saved.stages)).toHaveLength(STAGES.length - 1);
  });

  it('leaves complete model folders that load and answer', async () => {
    for (const s of ['pretrain', 'longctx', 'sft', 'rl']) {
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'chat_template.jinja'])
        expect(existsSync(join(out, s, 'final', f)), `${s}/${f}`).toBe(true);
    }
    const chat = await ChatModel.load(join(out, 'rl', 'final'));
    expect(
      (await chat.chat([{ role: 'user', content: 'hello' }], { maxNewTokens: 4 })).completionTokens,
    ).toBeGreaterThan(0);
  });

  it('ships a finished run later (only the ship stage runs) and ships again over the old copy', async () => {
    const target = join(mkdtempSync(join(tmpdir(), 'glmv-ship-')), 'model');
    const log: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await runPipeline(resolvePipelineConfig({ preset: 'tiny', sets: [`ship=${target}`] }), {
        out,
        quiet: true,
        log: (l) => log.push(l),
      });
      expect(r.state.stages.ship?.status).toBe('done');
    }
    expect(log.filter((l) => l.startsWith('pipeline: ') && l.endsWith(' …'))).toEqual([
      'pipeline: ship …',
      'pipeline: ship …',
    ]);
    const card = JSON.parse(readFileSync(join(target, 'training_summary.json'), 'utf8'));
    expect(card.source).toBe(join(out, 'rl', 'final'));
    const chat = await ChatModel.load(target);
    expect((await chat.chat([{ role: 'user', content: 'hi' }], { maxNewTokens: 2 })).completionTokens).toBeGreaterThan(
      0,
    );
    await expect(runPipeline(resolvePipelineConfig({ preset: 'quick' }), { out, quiet: true })).rejects.toThrow(
      /different config/,
    );
  });

  it('continues a run recorded before a config field existed (the field takes its default), refuses another value', async () => {
    const old = mkdtempSync(join(tmpdir(), 'glmv-pipe-old-'));
    cpSync(out, old, { recursive: true });
    const file = join(old, 'pipeline.json');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { config: { tokenizer: { digits?: string } } };
    expect(saved.config.tokenizer.digits).toBe('grouped');
    delete saved.config.tokenizer.digits;
    writeFileSync(file, JSON.stringify(saved));
    const log: string[] = [];
    const r = await runPipeline(resolvePipelineConfig({ preset: 'tiny' }), {
      out: old,
      quiet: true,
      log: (l) => log.push(l),
    });
    expect(r.interrupted).toBe(false);
    expect(log.filter((l) => l.endsWith(' …'))).toEqual([]); // nothing ran again
    await expect(
      runPipeline(resolvePipelineConfig({ preset: 'tiny', sets: ['tokenizer.digits=single'] }), {
        out: old,
        quiet: true,
      }),
    ).rejects.toThrow(/tokenizer\.digits/);
  });

  it('tokenizer.digits=single trains a tokenizer with one digit per token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glmv-pipe-digits-'));
    await runPipeline(resolvePipelineConfig({ preset: 'tiny', sets: ['tokenizer.digits=single'] }), {
      out: dir,
      quiet: true,
      log: () => {},
      until: 'tokenizer',
    });
    const single = await GlmTokenizer.fromPretrained(join(dir, 'tokenizer', 'tokenizer'));
    const grouped = await GlmTokenizer.fromPretrained(join(out, 'tokenizer', 'tokenizer'));
    expect(single.encode('12345')).toHaveLength(5);
    expect(grouped.encode('12345').length).toBeLessThan(5); // GLM-4's runs of up to three digits
  });

  it('measures more RL seeds on a finished run: only the new seed runs, and the report compares the seeds', async () => {
    const log: string[] = [];
    const run = () =>
      runPipeline(resolvePipelineConfig({ preset: 'tiny', sets: ['rlSeeds=2'] }), {
        out,
        quiet: true,
        log: (l) => log.push(l),
      });
    const r = await run();
    const started = () => log.filter((l) => l.startsWith('pipeline: ') && l.endsWith(' …'));
    expect(started()).toEqual(['pipeline: rl-seeds …', 'pipeline: report …']);
    const sum = r.state.stages['rl-seeds']!.summary as {
      seeds: SeedRun[];
      sft: Record<string, { meanReward: number }>;
      mean: Record<string, Record<string, { mean: number; sd: number }>>;
    };
    expect(sum.seeds.map((s) => s.seed)).toEqual([0, 1]);
    // Seed 0 is the RL stage itself; seed 1 is a run of its own with its own seed.
    expect(sum.seeds[0]!.modes.think!.accuracy).toBe(evalOf('eval-rl', 'think').accuracy);
    expect(JSON.parse(readFileSync(join(out, 'rl-seed1', 'config.json'), 'utf8')).run.seed).toBe(1);
    expect(existsSync(join(out, 'rl-seed1', 'final', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'eval', 'rl-seed1-nothink', 'summary.json'))).toBe(true);
    const rewards = sum.seeds.map((s) => s.modes.think!.meanReward);
    expect(sum.mean.think!.meanReward!.mean).toBeCloseTo((rewards[0]! + rewards[1]!) / 2, 12);
    expect(sum.mean.think!.rewardGain!.mean).toBeCloseTo(
      (rewards[0]! + rewards[1]!) / 2 - sum.sft.think!.meanReward,
      12,
    );
    expect(sum.mean.think!.meanReward!.sd).toBeCloseTo(Math.abs(rewards[0]! - rewards[1]!) / Math.SQRT2, 12);
    // The extra seed's cost is recorded with it, so a later report still shows what the stage took.
    expect(sum.seeds[1]!.seconds).toBeGreaterThan(0);
    expect((r.state.stages['rl-seeds']!.summary as { computeSeconds: number }).computeSeconds).toBe(
      sum.seeds[1]!.seconds,
    );
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('RL seed 1');
    // stage rows in pipeline order
    expect(html.indexOf('<td>headroom</td>')).toBeLessThan(html.indexOf('<td>rl</td>'));
    expect(html.indexOf('<td>rl</td>')).toBeLessThan(html.indexOf('<td>rl-seeds</td>'));
    expect(html).toContain('RL mean ± sd (2)');
    // Asked again, nothing runs: the seed is done.
    log.length = 0;
    await run();
    expect(started()).toEqual([]);
    // Continued without --set rlSeeds, the run keeps its measured seeds.
    const again = await runPipeline(resolvePipelineConfig({ preset: 'tiny' }), {
      out,
      quiet: true,
      log: (l) => log.push(l),
    });
    expect(started()).toEqual([]);
    expect(log).toContain("pipeline: keeping the run's 2 RL seeds (asked for 1)");
    expect(again.state.stages['rl-seeds']?.status).toBe('done');
  }, 300_000);

  it('SFT lifts format compliance above the pre-trained model', () => {
    const pre = evalOf('eval-pretrain', 'think');
    const sft = evalOf('eval-sft', 'think');
    expect(pre.n).toBe(22);
    expect(sft.formatRate).toBeGreaterThan(pre.formatRate);
    expect(sft.formatRate).toBeGreaterThan(0.3);
    for (const e of [pre, sft]) {
      const lines = readFileSync(e.file, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(e.n);
      for (const l of lines)
        expect(Object.keys(JSON.parse(l))).toEqual(
          expect.arrayContaining(['id', 'domain', 'reasoning', 'content', 'reward', 'correct']),
        );
    }
  });

  it('writes metrics for every training stage and a report', () => {
    for (const s of ['pretrain', 'longctx', 'sft']) {
      const rows = readFileSync(join(out, s, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(rows.some((r) => r.event === 'train' && Number.isFinite(r.loss))).toBe(true);
    }
    const rl = readFileSync(join(out, 'rl', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rl.filter((r) => typeof r.reward_mean === 'number')).toHaveLength(2);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const h of [
      'Accuracy per domain after each stage',
      'Training curves',
      'Reinforcement learning',
      'Sample responses',
      'SFT difficulty filter',
    ])
      expect(html).toContain(h);
    expect(html).toMatch(/<svg class="chart"/);
    expect(html).toMatch(/data:image\/png;base64,/);
  });

  it('measures RL headroom of the SFT model before RL: pass@1 and pass@k over domain-balanced RL prompts', () => {
    const h = state.stages.headroom!.summary as unknown as HeadroomSummary;
    expect(h.k).toBe(2);
    expect(h.prompts).toBe(11);
    const file = JSON.parse(readFileSync(h.file, 'utf8')) as {
      results: Array<{ id: string; domain: string; correct: number; k: number }>;
    };
    expect(file.results).toHaveLength(11);
    // 11 prompts over the 11 domains of the RL pool: one each.
    expect(new Set(file.results.map((r) => r.domain)).size).toBe(11);
    const pass1 = file.results.reduce((a, r) => a + r.correct / r.k, 0) / 11;
    expect(h.pass1).toBeCloseTo(pass1, 12);
    expect(h.passk).toBeCloseTo(file.results.filter((r) => r.correct > 0).length / 11, 12);
    expect(h.gap).toBeCloseTo(h.passk - h.pass1, 12);
    expect(h.passk).toBeGreaterThanOrEqual(h.pass1);
    expect(Object.values(h.perDomain).reduce((a, d) => a + d.prompts, 0)).toBe(11);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('RL headroom');
  });

  it('skips RL, with the reason, when the SFT model has no headroom', async () => {
    // The finished run up to SFT, asked again with a gap no model can show.
    const copy = mkdtempSync(join(tmpdir(), 'glmv-headroom-'));
    cpSync(out, copy, { recursive: true });
    const saved = JSON.parse(readFileSync(join(copy, 'pipeline.json'), 'utf8')) as PipelineState;
    for (const s of ['headroom', 'rl', 'eval-rl', 'rl-seeds', 'report'] as const) delete saved.stages[s];
    saved.config.headroom.minGap = 1;
    writeFileSync(join(copy, 'pipeline.json'), JSON.stringify(saved));
    const r = await runPipeline(resolvePipelineConfig({ preset: 'tiny', sets: ['headroom.minGap=1'] }), {
      out: copy,
      quiet: true,
      log: () => {},
    });
    expect(r.state.stages.headroom?.status).toBe('done');
    expect(r.state.stages.rl?.status).toBe('skipped');
    expect(String(r.state.stages.rl?.summary.reason)).toMatch(
      /no RL headroom: pass@2 − pass@1 .* under headroom.minGap 100.0/,
    );
    expect(r.state.stages['eval-rl']?.status).toBe('skipped');
    expect(r.state.stages['rl-seeds']?.status).toBe('skipped');
    expect(readFileSync(join(copy, 'report.html'), 'utf8')).toContain('RL was skipped: no RL headroom');
  }, 120_000);

  it('renders in headless Chromium', () => {
    expect(
      existsSync(CHROMIUM),
      'headless Chromium is needed: apt-get install -y chromium (scripts/setup.sh installs it)',
    ).toBe(true);
    const flags = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${mkdtempSync(join(tmpdir(), 'chr-'))}`,
    ];
    const url = `file://${join(out, 'report.html')}`;
    const dom = spawnSync(CHROMIUM, [...flags, '--dump-dom', url], { encoding: 'utf8', timeout: 120_000 });
    expect(dom.status, dom.stderr).toBe(0);
    // The rendered DOM holds the charts and the accuracy table rows.
    expect((dom.stdout.match(/<svg class="chart"/g) ?? []).length).toBeGreaterThanOrEqual(5);
    expect(dom.stdout).toMatch(/<td>all \(accuracy %\)<\/td>/);
    const png = join(out, 'report.png');
    const shot = spawnSync(CHROMIUM, [...flags, '--window-size=1200,2000', `--screenshot=${png}`, url], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(shot.status, shot.stderr).toBe(0);
    expect(statSync(png).size).toBeGreaterThan(30_000); // a blank page compresses to a few KB
  });
});

describe('a killed pipeline', () => {
  it('finishes when started again, resuming the interrupted stage from its checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glmv-pipe-kill-'));
    const args = ['--import', 'tsx', 'src/cli/main.ts', 'pipeline', '--tiny', '--quiet', '--out', dir];
    const child: ChildProcess = spawn(process.execPath, args, {
      stdio: 'ignore',
      env: { ...process.env, GLMV_QUIET: '1' },
    });
    const metrics = join(dir, 'sft', 'metrics.jsonl');
    // Kill it hard once SFT is past its first checkpoint (step 50) and before it ends (400).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error('the pipeline ended before it could be killed'));
          return;
        }
        if (!existsSync(metrics)) return;
        const steps = readFileSync(metrics, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"event":"train"')).length;
        if (steps >= 60) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 100);
    });
    await new Promise((r) => child.once('exit', r));
    const again = spawnSync(process.execPath, args, {
      encoding: 'utf8',
      env: { ...process.env, GLMV_QUIET: '1' },
      timeout: 600_000,
    });
    expect(again.status, again.stderr).toBe(0);
    const st = JSON.parse(readFileSync(join(dir, 'pipeline.json'), 'utf8')) as PipelineState;
    expect(st.stages.report?.status).toBe('done');
    expect(st.stages.sft?.summary.resumedFrom).toMatch(/step-000(050|100|150|200|250|300|350)/);
    expect(st.stages.sft?.summary.steps).toBe(400);
  }, 900_000);
});
