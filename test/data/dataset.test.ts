import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDataset, parseDifficulty, parseSizes } from '../../src/data/dataset.js';
import { mixtureSlots, parseMix } from '../../src/data/mixture.js';
import {
  generatePretrain,
  makePretrainDoc,
  PRETRAIN_KINDS,
  pretrainDocSchema,
  readPretrain,
} from '../../src/data/pretrain.js';
import { contactSheet } from '../../src/data/show.js';
import { readSamples } from '../../src/data/store.js';

const root = mkdtempSync(join(tmpdir(), 'glmv-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec = {
  domains: 'vqa,chart:2,text',
  n: 25,
  split: 'train' as const,
  seed: 1,
  difficulty: '1-5',
  size: '112',
  shardSize: 10,
};

describe('mixture', () => {
  it('gives exact proportions at every prefix and per-domain indices that count up', () => {
    const mix = parseMix('vqa:1,chart:2,ocr:1', ['vqa', 'chart', 'ocr']);
    const slots = [...mixtureSlots(mix, 0, 400)];
    const count = (name: string, upto: number) =>
      slots.slice(0, upto).filter((s) => s.gen.name === `synth/${name}`).length;
    for (const upto of [4, 40, 400]) {
      expect(count('chart', upto)).toBe(upto / 2);
      expect(count('vqa', upto)).toBe(upto / 4);
    }
    const chart = slots.filter((s) => s.gen.name === 'synth/chart').map((s) => s.local);
    expect(chart).toEqual(chart.map((_, i) => i));
    // A slice starting later is the same as the tail of the full run (resume).
    expect([...mixtureSlots(mix, 150, 200)].map((s) => [s.gen.name, s.local])).toEqual(
      slots.slice(150, 200).map((s) => [s.gen.name, s.local]),
    );
  });

  it('rejects bad specs with clear messages', () => {
    expect(() => parseMix('vqa,nope', [])).toThrow(/unknown generator "nope"/);
    expect(() => parseMix('vqa:-1', [])).toThrow(/weight of vqa must be a positive number/);
    expect(() => parseMix('vqa,vqa', [])).toThrow(/listed twice/);
    expect(() => parseDifficulty('7')).toThrow(/level 1-5/);
    expect(() => parseDifficulty('4-2')).toThrow(/inverted/);
    expect(parseDifficulty('2-4')).toEqual([2, 4]);
    expect(() => parseSizes('100', parseMix('vqa', []))).toThrow(/multiples of 28/);
    expect(() => parseSizes('56', parseMix('chart', []))).toThrow(/chart needs at least 112 px/);
    expect(parseSizes('56,chart=112', parseMix('vqa,chart', []))).toEqual({ vqa: 56, chart: 112 });
  });
});

describe('dataset folders', () => {
  it('writes shards that stream back as the same samples, with files in place', async () => {
    const out = join(root, 'full');
    const r = await generateDataset(spec, { out, quiet: true });
    expect(r.info.count).toBe(25);
    expect(r.info.shards.map((s) => s.count)).toEqual([10, 10, 5]);
    expect(r.info.byDomain).toEqual({ vqa: 6, chart: 13, text: 6 });
    expect(Object.keys(r.rate).sort()).toEqual(['chart', 'text', 'vqa']);
    const samples = [];
    for await (const s of readSamples(out)) samples.push(s);
    expect(samples).toHaveLength(25);
    for (const s of samples) for (const p of s.images) expect(existsSync(p)).toBe(true);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).toContain('"event":"done"');
    await expect(generateDataset(spec, { out, quiet: true })).rejects.toThrow(/not empty; pass --resume/);
  });

  it('resumes a killed run to exactly the uninterrupted result', async () => {
    const out = join(root, 'resumed');
    await generateDataset(spec, { out, quiet: true });
    // Simulate a kill during shard 2: its folder is still partial and there is no dataset.json.
    renameSync(join(out, 'shard-00002'), join(out, 'shard-00002.partial'));
    rmSync(join(out, 'dataset.json'));
    const r = await generateDataset(spec, { out, resume: true, quiet: true });
    expect(r.info.count).toBe(25);
    expect(readdirSync(out).filter((n) => n.endsWith('.partial'))).toEqual([]);
    for (const shard of ['shard-00000', 'shard-00001', 'shard-00002']) {
      expect(readFileSync(join(out, shard, 'samples.jsonl'), 'utf8')).toBe(
        readFileSync(join(root, 'full', shard, 'samples.jsonl'), 'utf8'),
      );
    }
    const img = readdirSync(join(out, 'shard-00002', 'img'))[0]!;
    expect(
      readFileSync(join(out, 'shard-00002', 'img', img)).equals(
        readFileSync(join(root, 'full', 'shard-00002', 'img', img)),
      ),
    ).toBe(true);
  });

  it('converts multiple choice to fill-in-the-blank on request', async () => {
    const out = join(root, 'blank');
    await generateDataset({ ...spec, domains: 'vqa', tasks: ['choice'], n: 8, mcq: 'blank' }, { out, quiet: true });
    for await (const s of readSamples(out)) {
      expect(s.options).toBeUndefined();
      expect(s.id).toMatch(/#blank$/);
      expect(['vqa', 'counting', 'math']).toContain(s.verifier.type);
      expect(s.answer).not.toMatch(/^[A-D]$/);
    }
  });

  it('writes an HTML contact sheet with images, answers and rationales', async () => {
    const html = join(root, 'full', 'index.html');
    const n = await contactSheet(join(root, 'full'), { out: html, perDomain: 2 });
    expect(n).toBe(6);
    const text = readFileSync(html, 'utf8');
    expect(text.match(/<img src="shard-0000\d\/img\//g)?.length).toBeGreaterThanOrEqual(4);
    expect(text).toContain('rationale');
    expect(text).toContain('Answer:');
  });
});

describe('pre-training mixtures', () => {
  it('every kind builds a valid, deterministic document', () => {
    for (const kind of PRETRAIN_KINDS) {
      const ctx = { seed: 0, split: 'train' as const, difficulty: 3, size: 112 };
      const a = makePretrainDoc(kind, ctx, 2);
      const b = makePretrainDoc(kind, ctx, 2);
      expect(JSON.stringify(a.doc)).toBe(JSON.stringify(b.doc));
      expect(pretrainDocSchema.safeParse(a.doc).success).toBe(true);
      const text = a.doc.content
        .filter((p) => p.type === 'text')
        .map((p) => (p as { text: string }).text)
        .join(' ');
      expect(text.length).toBeGreaterThan(5);
      expect(a.media.length).toBe(a.doc.images.length + (a.doc.video?.frames?.length ?? 0));
      if (kind === 'grounding') expect(text).toMatch(/\[\d+,\d+,\d+,\d+\]/);
      if (kind === 'text') expect(a.media).toHaveLength(0);
      if (kind === 'video_caption') expect(a.doc.video?.frames?.length).toBeGreaterThanOrEqual(4);
    }
  });

  it('writes and streams back a mixture in the requested proportions', async () => {
    const out = join(root, 'pt');
    const info = await generatePretrain(
      { kinds: 'caption:2,grounding,text', n: 8, split: 'train', seed: 0, difficulty: '1-3', size: 56 },
      out,
      true,
    );
    expect(info.byDomain).toEqual({ caption: 4, grounding: 2, text: 2 });
    let n = 0;
    for await (const d of readPretrain(out)) {
      n++;
      for (const p of d.images) expect(existsSync(p)).toBe(true);
    }
    expect(n).toBe(8);
  });
});
