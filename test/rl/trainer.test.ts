import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/rl.js';
import { applyOverrides, parseRlConfig, type RlConfig, type RlConfigInput, toyPreset } from '../../src/rl/config.js';
import {
  filterRollouts,
  formatCurves,
  formatRollouts,
  formatTiers,
  readMetrics,
  readRollouts,
} from '../../src/rl/inspect.js';
import { buildEngine, buildPolicy, buildRouter, loadPrompts } from '../../src/rl/setup.js';
import type { StepRecord } from '../../src/rl/step-log.js';
import { RlTrainer } from '../../src/rl/trainer.js';
import type { RolloutEngine } from '../../src/rl/types.js';
import { stubRouter } from '../helpers/stubRouter.js';

const root = mkdtempSync(join(tmpdir(), 'rl-trainer-'));
const dirs: string[] = [];

function config(name: string, o: Partial<RlConfigInput> & { sets?: string[] } = {}): RlConfig {
  const dir = join(root, name);
  dirs.push(dir);
  const { sets, ...rest } = o;
  const base = toyPreset(dir);
  return parseRlConfig(applyOverrides({ ...base, ...rest }, sets ?? []));
}

async function build(cfg: RlConfig, opts: { resume?: boolean; wrap?: (e: RolloutEngine) => RolloutEngine } = {}) {
  const prompts = await loadPrompts(cfg);
  const policy = await buildPolicy(cfg, prompts, { quiet: true, skipInit: !!opts.resume });
  const engine0 = buildEngine(cfg, policy);
  const engine = opts.wrap ? opts.wrap(engine0) : engine0;
  const router = buildRouter(cfg);
  const logs: string[] = [];
  const trainer = new RlTrainer(cfg, {
    policy,
    engine,
    router,
    samples: prompts,
    quiet: true,
    log: (l) => logs.push(l),
  });
  return { trainer, router, logs, policy };
}

/** What must replay identically after a resume: everything but wall times. */
function stable(r: StepRecord | Record<string, unknown>): Record<string, unknown> {
  const { time: _t, ms: _m, rollout_tok_s: _r, ...rest } = r as Record<string, unknown>;
  return rest;
}

afterAll(() => {
  vi.restoreAllMocks();
});

describe('RL trainer on the toy task', () => {
  const small = ['data.sources=[{kind: toy, task: name, max: 9}, {kind: toy, task: add, max: 4}]', 'batch.prompts=8'];
  let e2eDir = '';

  it('raises the reward clearly within a few dozen steps (cold start → GRPO)', async () => {
    const cfg = config('e2e', {
      sets: [
        ...small,
        'run.steps=30',
        'run.checkpointEvery=0',
        'rollout.maxThinkingTokens=6',
        'policy.coldStart.steps=200',
        'policy.coldStart.correctShare=0.5',
        'grpo.lr=1e-3',
        'grpo.miniBatches=2',
        'curriculum.offlinePassK.k=4',
      ],
    });
    e2eDir = cfg.run.dir;
    const { trainer, router } = await build(cfg);
    await trainer.start({ resume: false });
    const recs = await trainer.run();
    await router.close();
    expect(recs.length).toBe(30);
    const mean = (rs: StepRecord[]) => rs.reduce((a, r) => a + (r.reward_mean as number), 0) / rs.length;
    const first = mean(recs.slice(0, 3));
    const last = mean(recs.slice(-5));
    expect(last).toBeGreaterThan(first + 0.25);
    expect(last).toBeGreaterThan(0.55);
    // both domains were mixed in and logged
    const lastRec = recs[recs.length - 1]!;
    expect(Object.keys(lastRec.domains as object).sort()).toEqual(['stem', 'text']);
    // tier populations moved towards the easy end as the policy improved
    const tiers = (r: StepRecord) => (r.tiers as Record<string, Record<string, number>>)['*']!;
    const easyFirst = tiers(recs[0]!).easy! + tiers(recs[0]!).too_easy!;
    const easyLast = tiers(lastRec).easy! + tiers(lastRec).too_easy!;
    expect(easyLast).toBeGreaterThan(easyFirst + 5);
    // the final checkpoint exists
    expect(existsSync(join(cfg.run.dir, 'checkpoints', 'step-000030', 'model.safetensors'))).toBe(true);
  });

  it('lets a run be read back: rollouts per domain with reasons, curves, tiers', () => {
    const { step, rows } = readRollouts(e2eDir, 'last');
    expect(step).toBe(29);
    expect(rows.length).toBeGreaterThanOrEqual(64);
    const text = formatRollouts(step, filterRollouts(rows, { domain: 'stem' }), { limit: 2 });
    expect(text).toMatch(/== stem: \d+ rollouts, pass/);
    expect(text).toMatch(/why: math:/);
    expect(filterRollouts(rows, { only: 'correct' }).every((r) => r.correct)).toBe(true);
    const metrics = readMetrics(e2eDir);
    expect(metrics.length).toBe(30);
    expect(formatCurves(metrics, { domain: 'text' })).toMatch(/step\s+reward\s+pass/);
    expect(formatTiers(metrics).split('\n')[0]).toMatch(/unseen\s+too_hard\s+hard\s+medium\s+easy\s+too_easy/);
    expect(() => readRollouts(e2eDir, 99)).toThrow(/no rollouts for step 99; saved steps are 0..29/);
    expect(() => readRollouts(join(root, 'nope'), 1)).toThrow(/no such folder/);
    const offline = readFileSync(join(e2eDir, 'metrics.jsonl'), 'utf8').split('\n')[0]!;
    expect(JSON.parse(offline)).toMatchObject({ event: 'offline_passk', k: 4, prompts: 35 });
  });

  it('resumes exactly: a run stopped after 2 steps and resumed equals the uninterrupted run', async () => {
    const sets = [
      'data.sources=[{kind: toy, task: name, max: 9}]',
      'curriculum.mix={}',
      'batch.prompts=4',
      'rollout.groupSize=4',
      'run.steps=4',
      'run.checkpointEvery=0',
      'policy.coldStart.steps=30',
      'grpo.epochs=2',
      'grpo.miniBatches=2',
      'grpo.microBatch=5',
      'grpo.kl.coef=0.01',
      'grpo.entropyCoef=0.001',
      'curriculum.offlinePassK.k=2',
    ];
    const a = config('straight', { sets });
    const ra = await build(a);
    await ra.trainer.start({ resume: false });
    await ra.trainer.run();
    await ra.router.close();

    const b = config('resumed', { sets });
    const rb1 = await build(b);
    await rb1.trainer.start({ resume: false });
    await rb1.trainer.run({ stopAfter: 2 });
    await rb1.router.close();
    expect(rb1.trainer.step).toBe(2);
    const rb2 = await build(b, { resume: true });
    expect(await rb2.trainer.start({ resume: true })).toBe(2);
    await rb2.trainer.run();
    await rb2.router.close();

    const read = (d: string) =>
      readFileSync(join(d, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => stable(JSON.parse(l)));
    const ma = read(a.run.dir);
    const mb = read(b.run.dir);
    expect(mb.length).toBe(ma.length);
    expect(mb).toEqual(ma);
    const wa = readFileSync(join(a.run.dir, 'checkpoints', 'step-000004', 'model.safetensors'));
    const wb = readFileSync(join(b.run.dir, 'checkpoints', 'step-000004', 'model.safetensors'));
    expect(wb.equals(wa)).toBe(true);
    const oa = readFileSync(join(a.run.dir, 'checkpoints', 'step-000004', 'optimizer.safetensors'));
    const ob = readFileSync(join(b.run.dir, 'checkpoints', 'step-000004', 'optimizer.safetensors'));
    expect(ob.equals(oa)).toBe(true);
    for (const s of ['step-000000', 'step-000003'])
      expect(readFileSync(join(b.run.dir, 'rollouts', `${s}.jsonl`), 'utf8')).toBe(
        readFileSync(join(a.run.dir, 'rollouts', `${s}.jsonl`), 'utf8'),
      );
    // a resumed run refuses a changed config, a fresh start refuses an existing run
    const changed = parseRlConfig(
      applyOverrides(JSON.parse(readFileSync(join(b.run.dir, 'config.json'), 'utf8')), ['grpo.lr=0.5']),
    );
    const rc = await build(changed, { resume: true });
    await expect(rc.trainer.start({ resume: true })).rejects.toThrow(/grpo.lr: 0.001 vs 0.5/);
    await rc.router.close();
    const rd = await build(b);
    await expect(rd.trainer.start({ resume: false })).rejects.toThrow(/already holds a run; pass --resume/);
    await rd.router.close();
  });

  it('degrades gracefully: no valid group means no update (logged), failed rollouts are excluded', async () => {
    const cfg = config('degrade', {
      sets: [
        'data.sources=[{kind: toy, task: name, max: 9}]',
        'curriculum.mix={}',
        'batch.prompts=4',
        'rollout.groupSize=4',
        'run.steps=2',
        'policy.coldStart.steps=0',
        'expansion.maxRatio=2',
      ],
    });
    // An untrained policy writes no valid format: every group is all wrong. Every third rollout also "fails".
    let n = 0;
    const { trainer, router, logs } = await build(cfg, {
      wrap: (e) => ({
        name: 'flaky',
        generate: async (p, g, s) =>
          (await e.generate(p, g, s)).map((grp) =>
            grp.map((r) => (n++ % 3 === 0 ? { ...r, finishReason: 'error' as const, text: '', error: 'boom' } : r)),
          ),
      }),
    });
    await trainer.start({ resume: false });
    const recs = await trainer.run();
    await router.close();
    expect(recs.map((r) => r.skipped_update)).toEqual([true, true]);
    expect(recs[0]!.invalid_share).toBe(1);
    expect(recs[1]!.prompts_sampled).toBe(8); // EMA at maxRatio 2 → twice the prompts
    expect(recs[0]!.errors as number).toBeGreaterThan(0);
    expect(recs[0]!.unusable).toBe(recs[0]!.errors);
    expect(trainer.skipped).toBe(2);
    expect(logs.some((l) => /update skipped/.test(l))).toBe(true);
    const rows = readRollouts(cfg.run.dir, 0).rows;
    expect(rows.filter((r) => r.status === 'error').every((r) => r.reason === 'boom')).toBe(true);
  });
});

describe('truncated responses', () => {
  it('maskTruncated trains nothing on responses cut by the length limit', async () => {
    const run = async (mask: boolean) => {
      const cfg = config(`mask-${mask}`, {
        sets: [
          'data.sources=[{kind: toy, task: name, max: 9}]',
          'curriculum.mix={}',
          'batch.prompts=2',
          'rollout.groupSize=3',
          'run.steps=1',
          'policy.coldStart.steps=0',
          'expansion.enabled=false',
          `grpo.maskTruncated=${mask}`,
        ],
      });
      const prompts = await loadPrompts(cfg);
      const policy = await buildPolicy(cfg, prompts, { quiet: true });
      const inner = buildEngine(cfg, policy);
      const engine: RolloutEngine = {
        name: 'all-truncated',
        generate: async (p, g, sp) =>
          (await inner.generate(p, g, sp)).map((grp) => grp.map((r) => ({ ...r, finishReason: 'length' as const }))),
      };
      let k = 0;
      const router = stubRouter(() => k++ % 2, { verifier: 'counting', route: 't' });
      const before = policy.parameters().map((p) => Float32Array.from(p.toFloat32()));
      const trainer = new RlTrainer(cfg, { policy, engine, router, samples: prompts, quiet: true, log: () => {} });
      await trainer.start({ resume: false });
      const [rec] = await trainer.run();
      const moved = policy.parameters().some((p, i) => p.toFloat32().some((v, j) => v !== before[i]![j]));
      return { rec: rec!, moved };
    };
    const masked = await run(true);
    expect(masked.rec.skipped_update).toBe(true);
    expect(masked.moved).toBe(false);
    const unmasked = await run(false);
    expect(unmasked.moved).toBe(true);
  });
});

describe('curriculum misconfiguration', () => {
  it('says which tiers have no weight when nothing can be drawn', async () => {
    const cfg = config('zero-tiers', {
      sets: [
        'data.sources=[{kind: toy, task: name, max: 9}]',
        'curriculum.mix={}',
        'batch.prompts=2',
        'rollout.groupSize=2',
        'run.steps=1',
        'policy.coldStart.steps=0',
        'curriculum.schedule=[{step: 0, weights: {unseen: 0, too_hard: 0, hard: 0, medium: 0, easy: 0, too_easy: 1}}]',
      ],
    });
    const { trainer, router } = await build(cfg);
    await trainer.start({ resume: false });
    await expect(trainer.run()).rejects.toThrow(/drew no prompt .*"too_easy":0.*give those tiers a weight/);
    await router.close();
  });
});

describe('config', () => {
  it('reports every problem with its path', () => {
    const good = toyPreset(join(root, 'cfg'));
    expect(() => parseRlConfig({ ...good, batch: { prompts: 0 } })).toThrow(/batch.prompts/);
    expect(() => parseRlConfig(applyOverrides(good, ['grpo.lossAgg=mean']))).toThrow(/grpo.lossAgg/);
    expect(() => parseRlConfig(applyOverrides(good, ['grpo.clipLow=1']))).toThrow(/grpo.clipLow/);
    expect(() => parseRlConfig(applyOverrides(good, ['rollout.groupSize=1']))).toThrow(/rollout.groupSize/);
    expect(() => parseRlConfig(applyOverrides(good, ['grpo.typo=1']))).toThrow(/grpo.*typo/);
    expect(() => parseRlConfig(applyOverrides(good, ['rollout.engine=server']))).toThrow(/rollout.server/);
    expect(() =>
      parseRlConfig(applyOverrides(good, ['rollout.engine=server', 'rollout.server.baseURL=http://x/v1'])),
    ).toThrow(/toy policy/);
    expect(() => parseRlConfig(applyOverrides(good, ['rollout.maxThinkingTokens=100']))).toThrow(/maxLen 48/);
    expect(() => parseRlConfig(applyOverrides(good, ['expansion.maxRolloutsPerStep=10']))).toThrow(/below one step/);
    expect(() => applyOverrides(good, ['grpo.lr'])).toThrow(/key.path=value/);
    expect(applyOverrides(good, ['grpo.dualClip=3', 'data.sources.0.max=9'])).toMatchObject({
      grpo: { dualClip: 3 },
      data: { sources: [{ max: 9 }, { task: 'add' }] },
    });
  });

  it('a GLM policy path that is not a model folder is named in the error', async () => {
    const cfg = parseRlConfig(
      applyOverrides(toyPreset(join(root, 'glm')), [
        'policy={kind: glm, path: /nonexistent/glm}',
        'data.sources=[{kind: dataset, path: x}]',
      ]),
    );
    await expect(buildPolicy(cfg, [])).rejects.toThrow(/\/nonexistent\/glm is not a model folder/);
  });
});

describe('glmv rl CLI', () => {
  async function cli(args: string[]): Promise<{ out: string; err: string; code: number | undefined }> {
    const program = new Command().exitOverride();
    register(program);
    let out = '';
    let err = '';
    const so = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
      out += String(c);
      return true;
    });
    const lo = vi.spyOn(console, 'log').mockImplementation((...a) => {
      out += `${a.join(' ')}\n`;
    });
    const se = vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
      err += String(c);
      return true;
    });
    process.exitCode = undefined;
    try {
      await program.parseAsync(['node', 'glmv', 'rl', ...args]);
    } finally {
      so.mockRestore();
      lo.mockRestore();
      se.mockRestore();
    }
    const code = process.exitCode as number | undefined;
    process.exitCode = undefined;
    return { out, err, code };
  }

  it('init writes a config the trainer accepts; inspect and curves read a run; bad input is one clear line', async () => {
    const file = join(root, 'init.yaml');
    await cli(['init', '--dir', join(root, 'from-init'), '--out', file]);
    const yamlText = readFileSync(file, 'utf8');
    expect(yamlText).toMatch(/kind: toy/);
    const { parse } = await import('yaml');
    expect(parseRlConfig(parse(yamlText)).run.dir).toBe(join(root, 'from-init'));

    const ins = await cli(['inspect', join(root, 'e2e'), '--step', '5', '--domain', 'text', '--limit', '1']);
    expect(ins.out).toMatch(/^step 5: \d+ rollouts/);
    expect(ins.out).toMatch(/== text/);
    const js = await cli(['inspect', join(root, 'e2e'), '--step', '5', '--only', 'correct', '--json']);
    const lines = js.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.every((l) => l.correct === true && l.step === 5)).toBe(true);
    const curves = await cli(['curves', join(root, 'e2e'), '--tiers']);
    expect(curves.out).toMatch(/too_easy/);

    const bad = await cli(['inspect', join(root, 'e2e'), '--step', 'x']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/glmv rl: error: --step: expected a step number or "last"/);
    const badCfg = join(root, 'bad.yaml');
    writeFileSync(badCfg, 'run: { dir: x }\n');
    const tr = await cli(['--config', badCfg]);
    expect(tr.code).toBe(1);
    expect(tr.err).toMatch(/rl config .*bad.yaml: .*run.steps/);
  });
});
