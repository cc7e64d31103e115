import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateOne, isHeldoutKey, planOne } from '../../src/data/generate.js';
import type { GroundingPlan } from '../../src/data/generators/grounding.js';
import { GENERATORS } from '../../src/data/generators/index.js';
import type { OcrPlan } from '../../src/data/generators/ocr.js';
import { objBox } from '../../src/data/generators/scene.js';
import { POOL_NAMES, pool } from '../../src/data/words.js';
import { decodePng } from './helpers.js';

const digest = (g: ReturnType<typeof generateOne>) =>
  createHash('sha256')
    .update(JSON.stringify(g.sample))
    .update(Buffer.concat(g.media.map((m) => m.png)))
    .digest('hex');

describe('determinism', () => {
  for (const [name, gen] of Object.entries(GENERATORS)) {
    it(`${name}: same seed and index → byte-identical JSON and PNGs; other seeds differ`, () => {
      const size = Math.max(112, gen.minSize);
      const o = { seed: 3, index: 5, split: 'train' as const, difficulty: 4, size };
      const a = generateOne(gen, o);
      const b = generateOne(gen, o);
      expect(JSON.stringify(a.sample)).toBe(JSON.stringify(b.sample));
      expect(a.media.map((m) => m.png.equals(b.media[a.media.indexOf(m)]!.png))).not.toContain(false);
      expect(digest(a)).toBe(digest(b));
      expect(digest(generateOne(gen, { ...o, seed: 4 }))).not.toBe(digest(a));
      expect(digest(generateOne(gen, { ...o, index: 6 }))).not.toBe(digest(a));
    });
  }

  it('a sample does not depend on what was generated before it', () => {
    const gen = GENERATORS.vqa!;
    const first = generateOne(gen, { seed: 1, index: 9, split: 'train', difficulty: [1, 5], size: 56 });
    for (let i = 0; i < 5; i++) generateOne(gen, { seed: 1, index: i, split: 'train', difficulty: [1, 5], size: 56 });
    expect(digest(generateOne(gen, { seed: 1, index: 9, split: 'train', difficulty: [1, 5], size: 56 }))).toBe(
      digest(first),
    );
  });
});

describe('train / held-out split', () => {
  for (const [name, gen] of Object.entries(GENERATORS)) {
    it(`${name}: held-out semantic keys never occur in train`, () => {
      const keys = (split: 'train' | 'heldout', n: number) => {
        const out = new Set<string>();
        for (let i = 0; i < n; i++) {
          for (const d of [1, 3, 5]) {
            const { plan } = planOne(gen, {
              seed: 0,
              index: i,
              split,
              difficulty: d,
              size: Math.max(112, gen.minSize),
            });
            const key = gen.key ? gen.key(plan) : JSON.stringify(plan);
            expect(isHeldoutKey(gen.name, key)).toBe(split === 'heldout');
            out.add(key);
          }
        }
        return out;
      };
      const train = keys('train', 60);
      const held = keys('heldout', 20);
      for (const k of held) expect(train.has(k)).toBe(false);
      // Both splits are varied, not one sample repeated.
      expect(train.size).toBeGreaterThan(60);
      expect(held.size).toBeGreaterThan(20);
    });
  }

  it('word pools of the two splits are disjoint (where a pool is large enough to split)', () => {
    for (const p of POOL_NAMES) {
      const t = new Set(pool(p, 'train'));
      const h = pool(p, 'heldout');
      if (t.size + h.length >= 64 && h.length !== t.size) for (const w of h) expect(t.has(w)).toBe(false);
    }
    expect(pool('noun', 'heldout').length).toBeGreaterThan(50);
  });

  it('OCR held-out words come only from the held-out pools', () => {
    const trainWords = new Set(
      [...pool('noun', 'train'), ...pool('adjective', 'train'), ...pool('verb', 'train')].map((w) => w.toLowerCase()),
    );
    for (let i = 0; i < 40; i++) {
      const { plan } = planOne(GENERATORS.ocr!, { seed: 2, index: i, split: 'heldout', difficulty: 1, size: 224 });
      for (const w of (plan as OcrPlan).lines.join(' ').split(' ')) {
        if (pool('noun', 'heldout').includes(w)) expect(trainWords.has(w.toLowerCase())).toBe(false);
      }
    }
  });
});

describe('image sanity', () => {
  it('OCR text stays inside the image: the border is pure background at clean levels', async () => {
    for (let i = 0; i < 12; i++) {
      const d = 1 + (i % 3);
      const g = generateOne(GENERATORS.ocr!, { seed: 5, index: i, split: 'train', difficulty: d, size: 112 });
      const plan = g.sample.meta!.scene as OcrPlan;
      const img = await decodePng(g.media[0]!.png);
      const bg = [
        Number.parseInt(plan.bg.slice(1, 3), 16),
        Number.parseInt(plan.bg.slice(3, 5), 16),
        Number.parseInt(plan.bg.slice(5, 7), 16),
      ];
      const off: number[] = [];
      for (let y = 0; y < img.height; y++) {
        for (let x = 0; x < img.width; x++) {
          if (x > 1 && y > 1 && x < img.width - 2 && y < img.height - 2) continue;
          const k = (y * img.width + x) * 4;
          off.push(
            Math.abs(img.data[k]! - bg[0]!) + Math.abs(img.data[k + 1]! - bg[1]!) + Math.abs(img.data[k + 2]! - bg[2]!),
          );
        }
      }
      expect(Math.max(...off)).toBeLessThanOrEqual(3);
    }
  });

  it('grounding targets lie inside the image and cover drawn pixels', async () => {
    for (let i = 0; i < 10; i++) {
      const g = generateOne(GENERATORS.grounding!, { seed: 8, index: i, split: 'train', difficulty: 2, size: 112 });
      const plan = g.sample.meta!.scene as GroundingPlan;
      const img = await decodePng(g.media[0]!.png);
      const boxes = plan.scene
        ? plan.targets.map((t) => objBox(plan.scene!.objects[t]!, 112))
        : plan.targets.map((t) => plan.words![t]!.box);
      for (const b of boxes) {
        expect(b.x1).toBeGreaterThanOrEqual(0);
        expect(b.y1).toBeGreaterThanOrEqual(0);
        expect(b.x2).toBeLessThanOrEqual(112);
        expect(b.y2).toBeLessThanOrEqual(112);
        // The box centre region has non-background pixels (the target is really drawn there).
        let ink = 0;
        for (let y = Math.floor(b.y1); y < Math.ceil(b.y2); y++) {
          for (let x = Math.floor(b.x1); x < Math.ceil(b.x2); x++) {
            const k = (y * img.width + x) * 4;
            if (img.data[k]! + img.data[k + 1]! + img.data[k + 2]! < 600) ink++;
          }
        }
        expect(ink).toBeGreaterThan(4);
      }
    }
  });
});
