/**
 * What a kept group's statistics are made of (issue 23): rollouts without token ids stay in the baseline that group
 * selection judged, and the thinking-length control shapes the reward of forced / overlong responses before any group
 * statistic. References are hand-computed GRPO advantages ((r − mean) / (unbiased std + 1e-6)).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyOverrides, parseRlConfig, toyPreset } from '../../src/rl/config.js';
import { cutAtVisionToken } from '../../src/rl/glm.js';
import { readRollouts } from '../../src/rl/inspect.js';
import { ServerRolloutEngine } from '../../src/rl/rollout/openai.js';
import { buildEngine, buildPolicy, loadPrompts } from '../../src/rl/setup.js';
import type { StepRecord } from '../../src/rl/step-log.js';
import { RlTrainer } from '../../src/rl/trainer.js';
import type { Rollout, RolloutEngine, SamplingParams } from '../../src/rl/types.js';
import type { ChatResult, GlmvClient } from '../../src/serve/client.js';
import { stubRouter } from '../helpers/stubRouter.js';

const root = mkdtempSync(join(tmpdir(), 'rl-groups-'));

/** Reward 1 for a response containing "R1", else 0 (stands in for the verifier: the texts are set by the test). */
const markerRouter = stubRouter((response) => (response.includes('R1') ? 1 : 0), {
  verifier: 'counting',
  reason: 'marker',
  route: 't',
  path: 'marker',
});

/**
 * One step of the toy trainer with `edit` rewriting the rollouts of each group (the toy engine samples the real
 * token ids; the test sets texts, flags and lengths). Returns the step record and the rollout log.
 */
async function oneStep(
  name: string,
  sets: string[],
  edit: (group: number, rollouts: Rollout[], params: SamplingParams) => Rollout[],
) {
  const cfg = parseRlConfig(
    applyOverrides(toyPreset(join(root, name)), [
      'data.sources=[{kind: toy, task: name, max: 9}]',
      'curriculum.mix={}',
      'curriculum.offlinePassK.k=0',
      'policy.coldStart.steps=0',
      'expansion.enabled=false',
      'run.steps=1',
      'rollout.groupSize=4',
      ...sets,
    ]),
  );
  const prompts = await loadPrompts(cfg);
  const policy = await buildPolicy(cfg, prompts, { quiet: true });
  const inner = buildEngine(cfg, policy);
  const engine: RolloutEngine = {
    name: 'edited',
    generate: async (p, g, sp) => (await inner.generate(p, g, sp)).map((grp, i) => edit(i, grp, sp)),
  };
  const trainer = new RlTrainer(cfg, {
    policy,
    engine,
    router: markerRouter,
    samples: prompts,
    quiet: true,
    log: () => {},
  });
  await trainer.start({ resume: false });
  const [rec] = await trainer.run();
  const rows = readRollouts(cfg.run.dir, 0).rows.sort((a, b) => a.group - b.group || a.k - b.k);
  return { rec: rec as StepRecord, rows, cfg };
}

const withText = (r: Rollout, text: string): Rollout => ({ ...r, text });

describe('rollouts without token ids', () => {
  it('stay in the baseline selection judged: server rollouts without ids and GLM responses cut at token 0', async () => {
    // A server rollout as ServerRolloutEngine maps it when the engine has no tokenizer: text, no ids.
    const server = new ServerRolloutEngine({ client: {} as GlmvClient });
    const serverResult = {
      text: '<think>x</think><answer>R1</answer>',
      reasoning: 'x',
      content: 'R1',
      finishReason: 'stop',
      forcedAnswer: false,
      phases: [],
      model: 'm',
      id: null,
      latencyMs: 1,
    } as unknown as ChatResult;
    // A GLM response whose first sampled token is a vision placeholder (503): cut at token 0, mapped as glm.ts does.
    const cut = cutAtVisionToken(
      {
        tokens: [503, 7, 8],
        text: '<|image|>..',
        reasoning: '',
        content: '',
        finishReason: 'stop',
        forced: false,
        thinkingTokens: 3,
        logprobs: [-1, -2, -3],
        promptTokens: 4,
      },
      new Set([503]),
      () => '',
    );
    const glmCut: Rollout = {
      tokenIds: Int32Array.from(cut.tokens),
      lossMask: new Uint8Array(cut.tokens.length).fill(1),
      text: cut.text,
      logprobs: cut.logprobs ? Float32Array.from(cut.logprobs) : null,
      finishReason: 'length',
      forced: cut.forced,
      thinkingTokens: cut.thinkingTokens,
      answerTokens: 0,
      ...(cut.note ? { note: cut.note } : {}),
    };
    const { rec, rows } = await oneStep('empty-ids', ['batch.prompts=2'], (group, rs, sp) => {
      if (group === 0) {
        const srv = server.toRollout(serverResult, sp);
        expect(srv.tokenIds.length).toBe(0);
        expect(glmCut.tokenIds.length).toBe(0);
        // rewards [1, 1, 0, 1]: judged valid only thanks to the two rollouts without ids
        return [withText(rs[0]!, 'R1'), srv, glmCut, withText(rs[3]!, 'R1')];
      }
      return rs.map((r, k) => withText(r, k === 0 ? 'R1' : 'R0')); // [1, 0, 0, 0]
    });
    expect(rec.groups_kept).toBe(2);
    expect(rec.skipped_update).toBe(false);
    // mean 0.75, unbiased std 0.5 → +0.5 for each correct response, −1.5 for the cut one (logged, not trained)
    const g0 = rows.filter((r) => r.group === 0);
    expect(g0.map((r) => r.tokens)).toEqual([expect.any(Number), 0, 0, expect.any(Number)]);
    const want0 = [0.5, 0.5, -1.5, 0.5];
    for (const [k, r] of g0.entries()) expect(r.advantage!).toBeCloseTo(want0[k]!, 5);
    expect(g0[2]!.note).toMatch(/cut at token 0/);
    // mean 0.25, std 0.5 → 1.5, −0.5 ×3
    const want1 = [1.5, -0.5, -0.5, -0.5];
    for (const [k, r] of rows.filter((r) => r.group === 1).entries()) expect(r.advantage!).toBeCloseTo(want1[k]!, 5);
  });
});

describe('thinking-length control', () => {
  // The toy preset's budget: maxThinkingTokens 6.
  const forcedGroup = (rs: Rollout[], sp: SamplingParams) =>
    rs.map((r, k) => ({
      ...withText(r, 'R1'),
      forced: k < 2,
      thinkingTokens: k < 2 ? sp.maxThinkingTokens : 1,
    }));

  it('off: an all-correct group with forced answers carries no gradient (reaching the budget is free)', async () => {
    const { rec, rows } = await oneStep('lc-off', ['batch.prompts=1'], (_g, rs, sp) => forcedGroup(rs, sp));
    expect(rec.groups_kept).toBe(0);
    expect(rec.skipped_update).toBe(true);
    expect(rows.every((r) => r.advantage === null && r.length_penalty === 0)).toBe(true);
    expect(rec.forced_rate).toBe(0.5);
    expect(rec.forced_pass_rate).toBe(1);
    expect(rec.unforced_pass_rate).toBe(1);
  });

  it('forcedPenalty: forced responses lose p before the group statistics, so they get the negative advantage', async () => {
    const { rec, rows } = await oneStep(
      'lc-forced',
      ['batch.prompts=1', 'lengthControl.forcedPenalty=0.3'],
      (_g, rs, sp) => forcedGroup(rs, sp),
    );
    expect(rec.groups_kept).toBe(1);
    expect(rec.skipped_update).toBe(false);
    // shaped rewards [0.7, 0.7, 1, 1]: mean 0.85, unbiased std √(4·0.15²/3) = 0.173205
    const a = 0.15 / (Math.sqrt((4 * 0.15 ** 2) / 3) + 1e-6);
    expect(rows.map((r) => r.advantage!)).toEqual([-a, -a, a, a].map((x) => expect.closeTo(x, 5)));
    // The log keeps the scored reward and shows the penalty next to it.
    expect(rows.map((r) => r.reward)).toEqual([1, 1, 1, 1]);
    expect(rows.map((r) => r.length_penalty)).toEqual([0.3, 0.3, 0, 0]);
    expect(rec.length_penalty_mean).toBeCloseTo(0.15, 12);
    expect(rec.length_penalized_rate).toBe(0.5);
  });

  it("overlong buffer: DAPO's linear penalty over the last tokens of the thinking budget", async () => {
    // budget 6, buffer 3, factor 0.2: thinking 6 → 0.2, 5 → (5 − 3)/3·0.2, 4 → 0.2/3, 3 → 0
    const think = [6, 5, 4, 3];
    const { rows } = await oneStep(
      'lc-overlong',
      ['batch.prompts=1', 'lengthControl.overlongBuffer=3', 'lengthControl.overlongFactor=0.2'],
      (_g, rs) => rs.map((r, k) => ({ ...withText(r, 'R1'), forced: false, thinkingTokens: think[k]! })),
    );
    const pen = think.map((t) => Math.max(0, ((t - 3) / 3) * 0.2));
    expect(rows.map((r) => r.length_penalty!)).toEqual(pen.map((p) => expect.closeTo(p, 12)));
    const shaped = pen.map((p) => 1 - p);
    const m = shaped.reduce((x, y) => x + y, 0) / 4;
    const sd = Math.sqrt(shaped.reduce((x, y) => x + (y - m) ** 2, 0) / 3);
    expect(rows.map((r) => r.advantage!)).toEqual(shaped.map((r) => expect.closeTo((r - m) / (sd + 1e-6), 5)));
  });
});
