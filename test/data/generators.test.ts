import { afterAll, describe, expect, it } from 'vitest';
import { generateOne } from '../../src/data/generate.js';
import { GENERATORS } from '../../src/data/generators/index.js';
import { VERIFIER_TYPES } from '../../src/data/sample.js';
import { parseSample } from '../../src/data/schema.js';
import { sftTarget } from '../../src/data/sft.js';
import { extractBox } from '../../src/io/answer/extract.js';
import { checkFormat } from '../../src/io/answer/format.js';
import { parseBoxes } from '../../src/io/answer/geometry.js';
import { parseGuiAction } from '../../src/io/answer/gui-action.js';
import { RewardRouter } from '../../src/reward/index.js';
import { decodePng, lumaStd } from './helpers.js';

const router = new RewardRouter({}, { judge: null });
afterAll(() => router.close());

/** A clearly wrong answer of the same kind as the reference. */
function corrupt(answer: string, type: string): string {
  if (type === 'gui')
    return answer.replace(
      /"action_type":"(\w+)"/,
      (_m, t) => `"action_type":"${t === 'click' ? 'long_press' : 'click'}"`,
    );
  if (type === 'grounding')
    return answer.replace(/\d+/g, (d) => String(Math.min(999, Number(d) > 500 ? Number(d) - 400 : Number(d) + 400)));
  const n = /^(-?\d+(?:\.\d+)?)(.*)$/.exec(answer);
  if (n) return `${Math.round(Number(n[1]) * 1.5 + 7)}${n[2]}`;
  if (/^\d+:\d\d$/.test(answer)) return answer === '1:00' ? '2:00' : '1:00';
  if (/^[A-F]$/.test(answer)) return answer === 'A' ? 'B' : 'A';
  if (answer === 'yes' || answer === 'no') return answer === 'yes' ? 'no' : 'yes';
  return `${answer.split('').reverse().join('')}qqq`;
}

for (const [name, gen] of Object.entries(GENERATORS)) {
  describe(`generator ${name}`, () => {
    const size = Math.max(112, gen.minSize);
    const samples = [1, 2, 3, 4, 5].flatMap((d) =>
      [0, 1, 2, 3].map((i) =>
        generateOne(gen, { seed: 11, index: i, split: i % 2 ? 'heldout' : 'train', difficulty: d, size }),
      ),
    );

    it('emits valid samples with a verifier, a rationale and media of the requested size', async () => {
      for (const { sample, media } of samples) {
        expect(parseSample(JSON.parse(JSON.stringify(sample)), 'mem', 1)).toBeTruthy();
        expect(sample.domain).toBe(gen.domain);
        expect(VERIFIER_TYPES).toContain(sample.verifier.type);
        expect(sample.answer.trim()).not.toBe('');
        expect(sample.rationale!.length).toBeGreaterThan(10);
        const paths = [...sample.images, ...(sample.video?.frames ?? [])];
        expect(paths).toEqual(media.map((m) => m.path));
        if (gen.domain === 'text') expect(media).toHaveLength(0);
        else expect(media.length).toBeGreaterThan(0);
        for (const m of media) {
          const img = await decodePng(m.png);
          expect(Math.max(img.width, img.height)).toBe(size);
          expect(img.width % 28).toBe(0);
          expect(img.height % 28).toBe(0);
          // Not blank: every image carries visible content (video frames may be momentarily empty).
          if (!sample.video) expect(lumaStd(img)).toBeGreaterThan(3);
        }
        if (sample.video) {
          const stds = await Promise.all(media.map(async (m) => lumaStd(await decodePng(m.png))));
          expect(Math.max(...stds)).toBeGreaterThan(3);
          expect(sample.video.fps).toBe(2);
          expect(sample.video.frames!.length).toBeGreaterThanOrEqual(4);
        }
        if (sample.options) {
          expect(sample.verifier.type).toBe('multiple_choice');
          expect(sample.answer).toMatch(/^[A-F]$/);
          expect(sample.answer.charCodeAt(0) - 65).toBeLessThan(sample.options.length);
          expect(new Set(sample.options).size).toBe(sample.options.length);
        }
      }
    });

    it('answers parse with the shared answer parser (boxes in range, GUI actions valid)', () => {
      for (const { sample } of samples) {
        const target = sftTarget(sample);
        expect(checkFormat(target).ok).toBe(true);
        const box = extractBox(target);
        expect(box.ok && box.value).toBe(sample.answer);
        if (sample.verifier.type === 'grounding') {
          const system = sample.verifier.params?.system === 'gui' ? 'gui' : 'grounding';
          const boxes = parseBoxes(sample.answer, { system });
          expect(boxes.length).toBeGreaterThan(0);
          for (const b of boxes) expect(b.problem).toBeUndefined();
        }
        if (sample.verifier.type === 'gui') {
          const a = parseGuiAction(sample.answer);
          expect(a.ok).toBe(true);
          if (a.ok) for (const v of a.action.box ?? []) expect(v).toBeLessThanOrEqual(999);
        }
      }
    });

    it('every answer passes its own verifier, and a corrupted answer fails it', async () => {
      for (const { sample } of samples) {
        const ok = await router.score(sample, sftTarget(sample));
        expect(ok.correct, `${sample.id}: ${ok.reason}`).toBe(true);
        const wrong = corrupt(sample.answer, sample.verifier.type);
        const bad = await router.score(
          sample,
          `<think>x</think><answer><|begin_of_box|>${wrong}<|end_of_box|></answer>`,
        );
        expect(bad.correct, `${sample.id}: "${wrong}" vs "${sample.answer}" was accepted`).toBe(false);
      }
    });
  });
}
