/** Generation: KV-cache decoding equals full recomputation, batching with left padding, sampling, force answering. */
import { describe, expect, it } from 'vitest';
import { noGrad, randn, scope } from '../../src/engine/index.js';
import { generate } from '../../src/io/generate.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { tinyConfig } from '../../src/model/presets.js';

const cfg = tinyConfig('glm4v', { layers: 2 });
const model = Glm4vForConditionalGeneration.random(cfg, { seed: 1 });
model.eval();

/** Greedy decoding by recomputing the whole sequence every step (no cache). */
function greedyNoCache(
  prompt: number[],
  n: number,
  visual: { pixelValues?: Float32Array; imageGridThw?: number[][] } = {},
): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const next = noGrad(() =>
      scope(() => {
        const logits = model.forward({
          inputIds: [seq],
          pixelValues: visual.pixelValues,
          imageGridThw: visual.imageGridThw,
          logitsToKeep: 1,
        }).logits;
        return logits.argmax(-1).toArray()[0]!;
      }),
    );
    seq.push(next);
    out.push(next);
  }
  return out;
}

const prompt = [3, 17, 250, 9, 41, 7, 199];

describe('generate', () => {
  it('KV-cache greedy decoding equals recomputing the full sequence', async () => {
    const { outputs } = await generate(model, [{ inputIds: prompt }], {
      maxNewTokens: 10,
      stopTokenIds: [] as number[],
    });
    expect(outputs[0]!.tokens).toEqual(greedyNoCache(prompt, 10));
    expect(outputs[0]!.finishReason).toBe('length');
  });

  it('with an image: cached decoding equals recomputation', async () => {
    const special = cfg.imageTokenId;
    const p = [
      3,
      17,
      cfg.imageStartTokenId,
      special,
      special,
      special,
      special,
      special,
      special,
      cfg.imageEndTokenId,
      88,
    ];
    const pix = randn([24, 1176]).toFloat32();
    const grid = [[1, 4, 6]];
    const { outputs } = await generate(model, [{ inputIds: p, pixelValues: pix, imageGridThw: grid }], {
      maxNewTokens: 6,
      stopTokenIds: [],
    });
    expect(outputs[0]!.tokens).toEqual(greedyNoCache(p, 6, { pixelValues: pix, imageGridThw: grid }));
  });

  it('a left-padded batch gives each row what it gets alone', async () => {
    const a = prompt;
    const b = [5, 6, 7];
    const both = await generate(model, [{ inputIds: a }, { inputIds: b }], { maxNewTokens: 8, stopTokenIds: [] });
    const alone = await generate(model, [{ inputIds: b }], { maxNewTokens: 8, stopTokenIds: [] });
    expect(both.outputs[1]!.tokens).toEqual(alone.outputs[0]!.tokens);
    expect(both.outputs[0]!.tokens).toEqual(greedyNoCache(a, 8));
  });

  it('rows that stop early leave the batch: the same outputs as decoding every row to the end, fewer row-steps', async () => {
    // Sampled rows with many stop ids end at different steps; shouldStop ends row 3 at its fourth step.
    const stops = Array.from({ length: 30 }, (_, i) => 11 + 9 * i);
    const inputs = [prompt, [5, 6, 7], [9, 9, 9, 9, 30], [1, 2], [250, 251, 252, 4]].map((inputIds) => ({ inputIds }));
    let calls = 0;
    const o = {
      maxNewTokens: 16,
      stopTokenIds: stops,
      temperature: 1,
      seed: 3,
      returnLogprobs: true,
      shouldStop: (r: number) => r === 3 && ++calls > 3,
    };
    const kept = await generate(model, inputs, { ...o, compactShare: 1 });
    calls = 0;
    const dropped = await generate(model, inputs, { ...o, compactShare: 0.01 });
    expect(new Set(kept.outputs.map((x) => x.tokens.length)).size).toBeGreaterThan(2);
    expect(kept.stats.rowSteps).toBe(kept.stats.decodeSteps * inputs.length);
    expect(dropped.stats.rowSteps).toBeLessThan(dropped.stats.decodeSteps * inputs.length);
    expect(dropped.outputs[3]!.finishReason).toBe('abort');
    for (const [r, x] of dropped.outputs.entries()) {
      expect(x.tokens, `row ${r}`).toEqual(kept.outputs[r]!.tokens);
      expect(x.finishReason).toBe(kept.outputs[r]!.finishReason);
      for (const [t, lp] of x.logprobs!.entries()) expect(lp).toBeCloseTo(kept.outputs[r]!.logprobs![t]!, 4);
    }
  });

  it('stops at a stop token, and aborts on the signal', async () => {
    const first = greedyNoCache(prompt, 1)[0]!;
    const r = await generate(model, [{ inputIds: prompt }], { maxNewTokens: 10, stopTokenIds: [first] });
    expect(r.outputs[0]!.tokens).toEqual([first]);
    expect(r.outputs[0]!.finishReason).toBe('stop');
    const ac = new AbortController();
    ac.abort();
    const ab = await generate(model, [{ inputIds: prompt }], { maxNewTokens: 10, stopTokenIds: [], signal: ac.signal });
    expect(ab.outputs[0]!.finishReason).toBe('abort');
  });

  it('seeded sampling is reproducible and differs across seeds', async () => {
    const o = { maxNewTokens: 12, stopTokenIds: [] as number[], temperature: 1.5 };
    const a = await generate(model, [{ inputIds: prompt }], { ...o, seed: 7 });
    const b = await generate(model, [{ inputIds: prompt }], { ...o, seed: 7 });
    const c = await generate(model, [{ inputIds: prompt }], { ...o, seed: 8 });
    expect(a.outputs[0]!.tokens).toEqual(b.outputs[0]!.tokens);
    expect(a.outputs[0]!.tokens).not.toEqual(c.outputs[0]!.tokens);
  });

  it('force answering inserts the closing tokens once the thinking budget is spent', async () => {
    const THINK_CLOSE = 506;
    const ANSWER = 507;
    const r = await generate(model, [{ inputIds: prompt }], {
      maxNewTokens: 10,
      stopTokenIds: [],
      thinkingBudget: 4,
      thinkCloseId: THINK_CLOSE,
      forceAnswerIds: [THINK_CLOSE, ANSWER],
      returnLogprobs: true,
    });
    const out = r.outputs[0]!;
    const natural = out.tokens.indexOf(THINK_CLOSE);
    if (natural >= 0 && natural < 4) {
      expect(out.forced).toBe(false);
    } else {
      expect(out.forced).toBe(true);
      expect(out.tokens.slice(4, 6)).toEqual([THINK_CLOSE, ANSWER]);
      expect(out.thinkingTokens).toBe(4);
    }
    expect(out.logprobs).toHaveLength(out.tokens.length);
    for (const lp of out.logprobs!) expect(lp).toBeLessThanOrEqual(0);
  });

  it('streams text deltas that add up to the final text, split into reasoning and content', async () => {
    const tok = await GlmTokenizer.fromPretrained('test/fixtures/tokenizer');
    const THINK_OPEN = tok.id('<think>');
    const THINK_CLOSE = tok.id('</think>');
    const events: Array<{ text: string; reasoning: string; content: string }> = [];
    const r = await generate(model, [{ inputIds: [...prompt, THINK_OPEN] }], {
      maxNewTokens: 9,
      stopTokenIds: [],
      thinkingBudget: 3,
      thinkCloseId: THINK_CLOSE,
      forceAnswerIds: [THINK_CLOSE],
      decoder: tok,
      startInReasoning: true,
      onToken: (e) => events.push(e),
    });
    const out = r.outputs[0]!;
    expect(events.map((e) => e.text).join('')).toBe(out.text);
    expect(events.map((e) => e.reasoning).join('')).toBe(out.reasoning);
    expect(events.map((e) => e.content).join('')).toBe(out.content);
    expect(out.text).toBe(tok.decode(out.tokens, { skipSpecialTokens: false }));
    if (out.forced) {
      const [before, after] = out.text.split('</think>');
      expect(out.reasoning).toBe(before);
      expect(out.content).toBe(after);
    }
  });

  it('rejects bad options and out-of-vocabulary tokens', async () => {
    await expect(generate(model, [{ inputIds: [1, 99999] }], { maxNewTokens: 2, stopTokenIds: [] })).rejects.toThrow(
      /token 99999 outside the vocabulary/,
    );
    await expect(generate(model, [{ inputIds: [1] }], { maxNewTokens: 0, stopTokenIds: [] })).rejects.toThrow(
      /maxNewTokens/,
    );
    await expect(generate(model, [{ inputIds: [1] }], { maxNewTokens: 2, stopTokenIds: [], topP: 0 })).rejects.toThrow(
      /topP/,
    );
    await expect(
      generate(model, [{ inputIds: [1] }], { maxNewTokens: 2, stopTokenIds: [], thinkingBudget: 3 }),
    ).rejects.toThrow(/thinkCloseId/);
  });
});
