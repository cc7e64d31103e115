/** The data order (mixture pools, epochs, cursor) and record sources (index, validation, formats). */
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPools, MixtureStream } from '../../src/train/mixture.js';
import { openRecords, type RecordSource, type TrainRecord } from '../../src/train/records.js';
import { isNothink } from '../../src/train/stage-data.js';
import { type Fixture, fixture } from './helpers.js';

function fakeSource(name: string, groups: Record<string, number>): RecordSource {
  const g: string[] = [];
  for (const [k, n] of Object.entries(groups)) for (let i = 0; i < n; i++) g.push(k);
  return {
    name,
    size: g.length,
    group: (i) => g[i]!,
    id: (i) => `${name}/${i}`,
    difficulty: () => undefined,
    hasVideo: () => false,
    get: (i) => ({ type: 'sample', sample: { id: `${name}/${i}` } }) as unknown as TrainRecord,
    close: () => {},
  };
}

describe('mixture', () => {
  const src = fakeSource('s', { a: 10, b: 5, c: 5 });

  it('weights groups exactly at every prefix and leaves out groups the mixture does not list', () => {
    const pools = buildPools([{ source: src, weight: 1, key: 's0' }], { a: 2, b: 1 });
    expect(pools.map((p) => [p.group, p.members.length, p.weight])).toEqual([
      ['a', 10, 2 / 3],
      ['b', 5, 1 / 3],
    ]);
    const m = new MixtureStream(pools, 0);
    const groups: string[] = [];
    for (let i = 0; i < 30; i++) {
      groups.push(src.group(m.peek().index));
      m.advance();
      const a = groups.filter((g) => g === 'a').length;
      expect(Math.abs(a - (2 / 3) * (i + 1))).toBeLessThanOrEqual(1);
    }
    expect(groups.filter((g) => g === 'a').length).toBe(20);
  });

  it('natural shares without a mixture; source weights scale their pools', () => {
    const other = fakeSource('t', { x: 4 });
    const pools = buildPools(
      [
        { source: src, weight: 1, key: 's0' },
        { source: other, weight: 3, key: 's1' },
      ],
      undefined,
    );
    expect(pools.map((p) => [p.group, p.weight])).toEqual([
      ['a', 0.5],
      ['b', 0.25],
      ['c', 0.25],
      ['x', 3],
    ]);
  });

  it('visits every record once per epoch, in a new order each epoch, and resumes from its state', () => {
    const pools = buildPools([{ source: src, weight: 1, key: 's0' }], { a: 1 });
    const m = new MixtureStream(pools, 7);
    const take = (s: MixtureStream, n: number) =>
      Array.from({ length: n }, () => {
        const r = s.peek();
        s.advance();
        return r.index;
      });
    const e0 = take(m, 10);
    const e1 = take(m, 10);
    expect([...e0].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...e1].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e1).not.toEqual(e0);
    // The same seed gives the same order; a stream restored from a cursor continues it.
    const again = new MixtureStream(pools, 7);
    take(again, 13);
    const restored = new MixtureStream(pools, 7, again.getState());
    const fresh = new MixtureStream(pools, 7);
    const all = take(fresh, 20);
    expect(take(restored, 7)).toEqual(all.slice(13, 20));
    expect(take(new MixtureStream(pools, 8), 10)).not.toEqual(all.slice(0, 10));
    // peekAhead looks without consuming.
    const p = new MixtureStream(pools, 7);
    expect(p.peekAhead(5).map((r) => r.index)).toEqual(all.slice(0, 5));
    expect(p.peek().index).toBe(all[0]);
  });

  it('explains a mixture that selects nothing and a cursor from other data', () => {
    expect(() => buildPools([{ source: src, weight: 1, key: 's0' }], { video_caption: 1 })).toThrow(
      /data\.mixture names "video_caption", but no source has records of that group; groups found: a, b, c/,
    );
    const pools = buildPools([{ source: src, weight: 1, key: 's0' }], undefined);
    expect(() => new MixtureStream(pools, 0, { drawn: 3, counts: [3] })).toThrow(
      /the checkpoint has 1 data pools, the config gives 3/,
    );
  });

  it('draws /nothink per sample and epoch at the configured share', () => {
    let n = 0;
    for (let i = 0; i < 2000; i++) if (isNothink(0, `s/${i}`, 0, 0.2)) n++;
    expect(n / 2000).toBeGreaterThan(0.17);
    expect(n / 2000).toBeLessThan(0.23);
    expect(isNothink(0, 'x', 0, 0)).toBe(false);
    expect(isNothink(0, 'x', 0, 1)).toBe(true);
    const flips = Array.from({ length: 50 }, (_, e) => isNothink(0, 's/1', e, 0.5));
    expect(new Set(flips).size).toBe(2);
  });
});

describe('record sources', () => {
  let f: Fixture;
  let tmp: string;
  beforeAll(async () => {
    f = await fixture();
    tmp = mkdtempSync(join(tmpdir(), 'glmv-records-'));
  });

  it('index glmv datasets: kinds and domains as groups, absolute media paths, records re-read on demand', async () => {
    const docs = await openRecords(f.docs);
    expect(docs.size).toBe(42);
    expect(new Set(Array.from({ length: docs.size }, (_, i) => docs.group(i)))).toEqual(
      new Set(['caption', 'ocr', 'grounding', 'instruction', 'text', 'interleaved', 'video_caption']),
    );
    // Video documents are flagged in the index (data.video: false leaves them out).
    for (let i = 0; i < docs.size; i++) if (docs.group(i) === 'video_caption') expect(docs.hasVideo(i)).toBe(true);
    expect(docs.hasVideo(0)).toBe(docs.group(0) === 'video_caption');
    const r = docs.get(0);
    expect(r.type).toBe('doc');
    if (r.type === 'doc') for (const p of r.doc.images) expect(isAbsolute(p)).toBe(true);
    docs.close();
    const samples = await openRecords(f.samples, { limit: 5 });
    expect(samples.size).toBe(5);
    expect(samples.get(4).type).toBe('sample');
    samples.close();
  });

  it('name the file and row of a malformed record', async () => {
    const dir = join(tmp, 'bad');
    mkdirSync(dir);
    const shard = join(f.samples, readdirSync(f.samples).find((n) => n.startsWith('shard-'))!, 'samples.jsonl');
    copyFileSync(shard, join(dir, 'samples.jsonl'));
    appendFileSync(join(dir, 'samples.jsonl'), '{"id": "x", "domain": "vqa"}\n');
    await expect(openRecords(join(dir, 'samples.jsonl'))).rejects.toThrow(/samples\.jsonl: row 25: field "source"/);
    writeFileSync(join(dir, 'empty.jsonl'), '\n');
    await expect(openRecords(join(dir, 'empty.jsonl'))).rejects.toThrow(/no records found/);
    await expect(openRecords(join(dir, 'missing'))).rejects.toThrow(/no such file or folder/);
  });

  it('read other formats through the dataset loaders (generic JSONL with an image folder)', async () => {
    const dir = join(tmp, 'generic');
    mkdirSync(dir);
    const shard = join(f.samples, readdirSync(f.samples).find((n) => n.startsWith('shard-'))!);
    const png = readdirSync(join(shard, 'img'))[0]!;
    copyFileSync(join(shard, 'img', png), join(dir, 'a.png'));
    writeFileSync(
      join(dir, 'qa.jsonl'),
      `${JSON.stringify({ image: 'a.png', question: 'What is shown?', answer: 'shapes' })}\n`,
    );
    const src = await openRecords(join(dir, 'qa.jsonl'));
    expect(src.size).toBe(1);
    const r = src.get(0);
    expect(r.type === 'sample' && r.sample.answer).toBe('shapes');
  });
});
