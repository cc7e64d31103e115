/**
 * verl against `glmv reward serve`, through the shipped adapter integrations/verl/glmv_reward.py, with verl's own
 * call sequence replayed in Python (verl_replay.py): the naive and batch reward managers and the reward loop,
 * `reward_kwargs` merged as `get_custom_reward_fn` does. Responses reach the adapter the way verl decodes them:
 * right-padded response ids, cut at the attention mask, `decode(..., skip_special_tokens=True)` with the model's
 * tokenizer (GLM tokenizers keep <think>/<answer>/box tokens, drop end-of-turn tokens).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GlmTokenizer as Tok } from '../../src/io/tokenizer.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';
import { loadRewardConfig } from '../../src/reward/config.js';
import { RewardRouter } from '../../src/reward/router.js';
import { buildRewardServer } from '../../src/reward/server.js';
import { B, R41, sample } from '../reward/helpers.js';
import { listen, ROOT, runPython } from './helpers.js';

const ADAPTER = join(ROOT, 'integrations/verl/glmv_reward.py');
const router = new RewardRouter(loadRewardConfig(join(ROOT, 'integrations/verl/routes.yaml')), { cas: null });
const app = buildRewardServer(router);
let url = '';
const tokenizers: Record<string, Tok> = {};

beforeAll(async () => {
  url = await listen(app);
  // The shipped model's tokenizer and the test fixture (both flagged as the published GLM-4.1V/4.5V configs are).
  tokenizers.model = await GlmTokenizer.fromPretrained(join(ROOT, 'models/glmv-small'));
  tokenizers.fixture = await GlmTokenizer.fromPretrained(join(ROOT, 'test/fixtures/tokenizer'));
});
afterAll(async () => {
  await app.close();
  await router.close();
});

const RESPONSE_LEN = 160;

/** verl's decode of one rollout: response ids + EOS, right-padded, cut at the mask, special tokens skipped. */
function verlDecode(tok: Tok, text: string, eos = '<|user|>') {
  const ids = [...tok.encode(text), tok.id(eos)];
  if (ids.length > RESPONSE_LEN) throw new Error(`test response too long (${ids.length} tokens)`);
  const pad = tok.id('<|endoftext|>');
  const responses = [...ids, ...Array(RESPONSE_LEN - ids.length).fill(pad)];
  const mask: number[] = responses.map((_, i) => (i < ids.length ? 1 : 0));
  const valid = mask.reduce((a, b) => a + b, 0);
  return { solution_str: tok.decode(responses.slice(0, valid), { skipSpecialTokens: true }), valid };
}

interface ReplayOut {
  rewards: number[];
  reward_types: string[];
  extra: Record<string, number[]>;
  extra_types: Record<string, string[]>;
  reward_tensor: number[][];
}

const CASES = [
  // GLM format on a GLM data source (no route: strict GLM rules, stem by extra_info).
  { data_source: 'glmv/stem', text: R41('6 times 7', B('42')), gt: '42', extra: { domain: 'stem', index: 0 }, want: 1 },
  { data_source: 'glmv/stem', text: R41('6 times 7', B('41')), gt: '42', extra: { domain: 'stem', index: 1 }, want: 0 },
  // An empty box: a format (extraction) failure.
  { data_source: 'glmv/stem', text: R41('hmm', B('')), gt: '42', extra: { domain: 'stem', index: 2 }, want: 0 },
  // verl's stock geo3k rows: the prompt asks for \boxed{}; the shipped routes file grades it, GLM format or not.
  {
    data_source: 'hiyouga/geometry3k',
    text: '<think>The angle is half of 6.</think> The answer is \\boxed{3}',
    gt: '3',
    extra: { split: 'train', index: 7, answer: '3', question: 'Find x.' },
    want: 1,
  },
  {
    data_source: 'hiyouga/geometry3k',
    text: R41('half of 6', B('3')),
    gt: '3',
    extra: { split: 'train', index: 8, answer: '3', question: 'Find x.' },
    want: 1,
  },
  // A MATH-lighteval answer, equivalent but not equal.
  {
    data_source: 'DigitalLearningGmbH/MATH-lighteval',
    text: 'So the value is \\boxed{\\frac{1}{2}}.',
    gt: '0.5',
    extra: { index: 3 },
    want: 1,
  },
];

async function replay(tokName: string, manager: 'naive' | 'batch' | 'reward_loop', kwargs = {}) {
  const tok = tokenizers[tokName]!;
  const rows = CASES.map((c) => {
    const d = verlDecode(tok, c.text);
    return {
      data_source: c.data_source,
      solution_str: d.solution_str,
      ground_truth: c.gt,
      extra_info: c.extra,
      valid_response_length: d.valid,
      response_length: RESPONSE_LEN,
    };
  });
  const name = manager === 'batch' ? 'compute_score_batch' : 'compute_score';
  return runPython<ReplayOut>('test/integrations/verl_replay.py', {
    path: ADAPTER,
    name,
    manager,
    rows,
    reward_kwargs: { url, ...kwargs },
    manager_kwargs: manager === 'batch' ? { some_manager_kwarg: 1 } : {},
  });
}

describe('verl custom_reward_function → glmv reward server', () => {
  it('decoding with skip_special_tokens keeps the GLM tags and drops the end-of-turn token', () => {
    for (const tok of Object.values(tokenizers)) {
      const { solution_str } = verlDecode(tok, R41('x', B('42')));
      expect(solution_str).toBe(R41('x', B('42')));
    }
  });

  for (const tokName of ['model', 'fixture'])
    for (const manager of ['naive', 'batch', 'reward_loop'] as const)
      it(`${manager} reward manager, ${tokName} tokenizer: every row scored as a float at its last valid token`, async () => {
        const out = await replay(tokName, manager, manager === 'naive' ? { unrelated_reward_kwarg: 'x' } : {});
        expect(out.rewards).toEqual(CASES.map((c) => c.want));
        expect(out.reward_types.every((t) => t === 'float')).toBe(true);
        for (const [k, types] of Object.entries(out.extra_types)) expect(types, k).toEqual(['float']);
        expect(out.extra.format_fail).toEqual([0, 0, 1, 0, 0, 0]);
        expect(out.extra.acc).toEqual(CASES.map((c) => c.want));
        out.reward_tensor.forEach((line, i) => {
          expect(line.reduce((a, b) => a + b, 0)).toBe(CASES[i]!.want);
        });
      }, 120_000);

  it('/verl/* strips trailing end-of-turn tokens exactly as /get_reward does', async () => {
    const text = R41('6 times 7', B('42'));
    const prompt = '[gMASK]<sop><|user|>\nWhat is 6*7?<|assistant|>\n';
    for (const tail of ['<|endoftext|>', '<|user|>', '<|observation|><|endoftext|>\n', '']) {
      const verl = await app.inject({
        method: 'POST',
        url: '/verl/compute_score',
        payload: {
          data_source: 'glmv/stem',
          solution_str: `\n${text}${tail}`,
          ground_truth: '42',
          extra_info: { domain: 'stem' },
        },
      });
      const openrlhf = await app.inject({
        method: 'POST',
        url: '/get_reward',
        payload: {
          query: [`${prompt}${text}${tail}`],
          prompts: [prompt],
          labels: [JSON.stringify(sample({ answer: '42' }))],
        },
      });
      expect(verl.body).toContain('"score":1.0');
      expect(openrlhf.json().rewards).toEqual([verl.json().score]);
    }
  });
});
