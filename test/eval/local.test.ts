/**
 * The local model under test: answers equal the model run directly, think/no-think, one-pass thinking budget,
 * visual token caps in the processor, concurrent prompts decoded as one batch, cancellation, checkpoint identity.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalPrompt } from '../../src/eval/data.js';
import { checkpointId, LocalModel } from '../../src/eval/local.js';
import type { GenerationParams } from '../../src/eval/model.js';
import { ChatModel } from '../../src/io/chat.js';
import { imageTargetSize } from '../../src/io/processor/image.js';
import { normalizeText } from '../../src/serve/client.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';

let dir = '';
let img = '';
let m: LocalModel;
const params: GenerationParams = { thinking: true, maxTokens: 10, temperature: 0 };

beforeAll(async () => {
  dir = tinyModelDir();
  img = join(dir, 'photo.png');
  writeFileSync(
    img,
    await sharp({ create: { width: 280, height: 196, channels: 3, background: '#c33' } })
      .png()
      .toBuffer(),
  );
  m = await LocalModel.open({ dir, maxBatch: 4 });
});
afterAll(async () => {
  await m.close();
});

const prompt = (text: string, images: string[] = []): EvalPrompt => ({ text, images });

describe('LocalModel', () => {
  it('answers as ChatModel does, thinking on and off, normalised like endpoint answers', async () => {
    const chat = await ChatModel.load(dir);
    for (const thinking of [true, false]) {
      const g = await m.generate(prompt('What colour is it?', [img]), { ...params, thinking });
      const ref = await chat.chat(
        [
          {
            role: 'user',
            content: [
              { type: 'image', image: img },
              { type: 'text', text: 'What colour is it?' },
            ],
          },
        ],
        { thinking, maxNewTokens: 10, temperature: 0 },
      );
      const norm = normalizeText(ref.text, ref.finishReason);
      expect(g.text).toBe(norm.text);
      expect(g.content).toBe(norm.content);
      expect(g.usage).toMatchObject({ promptTokens: ref.promptTokens, completionTokens: ref.completionTokens });
      expect(g.finishReason).toBe(ref.finishReason);
      expect(g.phases).toBe(1);
    }
    const on = await m.generate(prompt('x'), params);
    const off = await m.generate(prompt('x'), { ...params, thinking: false });
    expect(off.usage!.promptTokens).toBeGreaterThan(on.usage!.promptTokens); // `/nothink` appended
  });

  it('thinking budget: the answer is forced after the budget, with answerTokens more', async () => {
    const g = await m.generate(prompt('Think hard.'), { ...params, thinkingBudget: 3, answerTokens: 4 });
    expect(g.forcedAnswer).toBe(true);
    expect(g.usage!.completionTokens).toBeGreaterThan(3);
    expect(g.usage!.completionTokens).toBeLessThanOrEqual(3 + 2 + 4);
    expect(g.text).toContain('</think><answer>'); // GLM-4.1V force answering
    // No budget without thinking.
    const off = await m.generate(prompt('Think hard.'), { ...params, thinking: false, thinkingBudget: 3 });
    expect(off.forcedAnswer).toBe(false);
  });

  it('visual token caps go into the processor', async () => {
    const small = await LocalModel.open({ dir, caps: { imageTokens: 4 } });
    try {
      const capped = await small.generate(prompt('x', [img]), params);
      const full = await m.generate(prompt('x', [img]), params);
      const cfg = m.chat.processor.imageConfig;
      const tokens = (h: number, w: number, cap?: number) => {
        const s = imageTargetSize(h, w, cfg, cap);
        return (s.height / 28) * (s.width / 28);
      };
      expect(full.usage!.promptTokens - capped.usage!.promptTokens).toBe(tokens(196, 280) - tokens(196, 280, 4));
      expect(tokens(196, 280, 4)).toBeLessThanOrEqual(4);
      expect(small.describe()).toMatchObject({ kind: 'local', caps: { imageTokens: 4 } });
    } finally {
      await small.close();
    }
  });

  it('prompts arriving together are decoded as one batch, each with its solo answer', async () => {
    const texts = ['a', 'bb bb', 'ccc ccc ccc', 'dddd'];
    const solo = [];
    for (const t of texts) solo.push((await m.generate(prompt(t), params)).text);
    const before = m.batcher.stats().peakBatch;
    const together = await Promise.all(texts.map((t) => m.generate(prompt(t), params)));
    expect(together.map((g) => g.text)).toEqual(solo);
    expect(Math.max(before, m.batcher.stats().peakBatch)).toBeGreaterThan(1);
  });

  it('an aborted request rejects; the model keeps working', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(m.generate(prompt('x'), params, ac.signal)).rejects.toThrow(/aborted/);
    expect((await m.generate(prompt('x'), params)).usage!.completionTokens).toBeGreaterThan(0);
  });

  it('id: a content hash of the checkpoint (same files, same id; other weights, another id)', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'glmv-copy-'));
    cpSync(dir, copy, { recursive: true });
    expect(await checkpointId(copy)).toBe(m.id.replace('local:', ''));
    expect(await checkpointId(tinyModelDir({ seed: 99 }))).not.toBe(await checkpointId(dir));
    await expect(checkpointId(tmpdir())).rejects.toThrow(/no config\.json/);
    await expect(LocalModel.open({ dir, caps: { imageTokens: 0 } })).rejects.toThrow(/imageTokens/);
  });
});
