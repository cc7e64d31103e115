import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, describe, expect, it } from 'vitest';
import {
  openDataset,
  openJsonl,
  openLlava,
  openParquet,
  openTsv,
  parseListLiteral,
  RowError,
} from '../../src/data/formats/index.js';
import { generateOne } from '../../src/data/generate.js';
import { GENERATORS } from '../../src/data/generators/index.js';

const root = mkdtempSync(join(tmpdir(), 'glmv-formats-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const png = (i: number) =>
  generateOne(GENERATORS.vqa!, { seed: 0, index: i, split: 'train', difficulty: 1, size: 56 }).media[0]!.png;
const PNG0 = png(0);
const PNG1 = png(1);

async function errorOf(p: Promise<unknown>): Promise<RowError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RowError);
    return e as RowError;
  }
  throw new Error('expected a RowError');
}

describe('VLMEvalKit TSV', () => {
  const b64 = (b: Buffer) => b.toString('base64');
  const header = 'index\timage\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory';
  const rows = [
    `0\t${b64(PNG0)}\tWhat color is it?\tnan\tred\tblue\tgreen\tyellow\tB\tcolor`,
    // A quoted field with a tab and a newline inside, as pandas writes it.
    `1\t${b64(PNG1)}\t"Which shape?\tLook\nclosely."\tIt is small.\tcircle\tsquare\t\t\tA\tshape`,
    // A circular copy that refers to row 0's image by index.
    `2\t0\tWhat color is it?\tnan\tblue\tred\tgreen\tyellow\tred\tcolor`,
  ];
  const file = join(root, 'bench.tsv');
  writeFileSync(file, `${header}\n${rows.join('\n')}\n`);

  it('reads rows into samples: base64 images cached once, options, hints, references, answers as letters', async () => {
    const s = await openTsv(file).toArray();
    expect(s).toHaveLength(3);
    expect(s[0]!.id).toBe('bench/0');
    expect(s[0]!.options).toEqual(['red', 'blue', 'green', 'yellow']);
    expect(s[0]!.answer).toBe('B');
    expect(s[0]!.verifier.type).toBe('multiple_choice');
    expect(readFileSync(s[0]!.images[0]!).equals(PNG0)).toBe(true);
    expect(s[1]!.question).toBe('Hint: It is small.\nWhich shape?\tLook\nclosely.');
    expect(s[1]!.options).toEqual(['circle', 'square']);
    expect(s[2]!.images).toEqual(s[0]!.images);
    expect(s[2]!.answer).toBe('B'); // option text "red" → its letter
    expect(s[0]!.meta?.category).toBe('color');
  });

  it('reports malformed rows with row number and field; skips them only on request', async () => {
    const bad = join(root, 'bad.tsv');
    writeFileSync(
      bad,
      `${header}\n${rows[0]}\n3\t${'A'.repeat(300)}\tQ?\tnan\tx\ty\t\t\tA\tc\n4\t${b64(PNG1)}\tQ?\tnan\tx\ty\t\t\tF\tc\n5\t99\tQ?\tnan\tx\ty\t\t\tA\tc\n`,
    );
    const e = await errorOf(openTsv(bad).toArray());
    expect(e.row).toBe(2);
    expect(e.field).toBe('image');
    expect(e.message).toMatch(/row 2: field "image": expected image bytes/);
    const stream = openTsv(bad, { onError: 'skip' });
    const ok = await stream.toArray();
    expect(ok).toHaveLength(1);
    expect(stream.report).toMatchObject({ rows: 4, samples: 1, skipped: 3 });
    expect(stream.report.errors.map((x) => [x.row, x.field])).toEqual([
      [2, 'image'],
      [3, 'answer'],
      [4, 'image'],
    ]);
    expect(stream.report.errors[2]!.message).toMatch(/index "99", which no earlier row has/);
  });
});

describe('HF / lmms parquet', () => {
  const file = join(root, 'test.parquet');
  writeFileSync(
    file,
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'question_id', data: ['q1', 'q2', 'q3'], type: 'STRING' },
          { name: 'question', data: ['How many shapes?', 'Which one?', 'Read it'], type: 'STRING' },
          { name: 'answer', data: ['3', '1', 'hello'], type: 'STRING' },
          { name: 'options', data: ['', "['left', 'right']", ''], type: 'STRING' },
          { name: 'image', data: [{ bytes: PNG0, path: 'a.png' }, { bytes: PNG1, path: 'b.png' }, null] },
        ],
      }),
    ),
  );

  it('reads rows with HF image structs and list-literal options', async () => {
    const stream = openParquet(file, { domain: 'chart', verifier: { type: 'chart' }, onError: 'skip' });
    const s = await stream.toArray();
    expect(s.map((x) => x.id)).toEqual(['test/q1', 'test/q2', 'test/q3']);
    expect(readFileSync(s[0]!.images[0]!).equals(PNG0)).toBe(true);
    expect(s[0]!.verifier).toEqual({ type: 'chart' });
    expect(s[0]!.domain).toBe('chart');
    expect(s[1]!.options).toEqual(['left', 'right']);
    expect(s[1]!.answer).toBe('B'); // index 1 → B
    expect(s[2]!.images).toEqual([]);
    expect(stream.report.skipped).toBe(0);
  });

  it('keeps raw binary image columns intact and decodes text columns', async () => {
    const flat = join(root, 'flat.parquet');
    writeFileSync(
      flat,
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: 'image', data: [PNG1], type: 'BYTE_ARRAY' },
            { name: 'query', data: ['Q?'], type: 'STRING' },
            { name: 'label', data: ['x'], type: 'STRING' },
          ],
        }),
      ),
    );
    const [s] = await openParquet(flat).toArray();
    expect(readFileSync(s!.images[0]!).equals(PNG1)).toBe(true);
    expect(s!.question).toBe('Q?');
  });

  it('names the file when it is not parquet', async () => {
    const notPq = join(root, 'fake.parquet');
    writeFileSync(notPq, 'hello world, not parquet at all');
    await expect(openParquet(notPq).toArray()).rejects.toThrow(/fake.parquet: not a readable parquet file/);
  });
});

describe('LLaVA conversations', () => {
  mkdirSync(join(root, 'imgs'), { recursive: true });
  writeFileSync(join(root, 'imgs', 'a.png'), PNG0);
  const conv = [
    {
      id: 'c1',
      image: 'imgs/a.png',
      conversations: [
        { from: 'human', value: '<image>\nWhat is shown?' },
        { from: 'gpt', value: 'Shapes.' },
        { from: 'human', value: 'How many?' },
        { from: 'gpt', value: 'Three.' },
      ],
    },
    {
      id: 'c2',
      conversations: [
        { from: 'human', value: 'Say hi' },
        { from: 'gpt', value: 'hi' },
      ],
    },
  ];

  it('streams a JSON array into one sample per turn with history', async () => {
    const file = join(root, 'llava.json');
    writeFileSync(file, JSON.stringify(conv, null, 1));
    const s = await openLlava(file).toArray();
    expect(s.map((x) => x.id)).toEqual(['llava/c1#0', 'llava/c1#1', 'llava/c2']);
    expect(s[0]!.question).toBe('What is shown?');
    expect(s[0]!.images[0]).toBe(join(root, 'imgs', 'a.png'));
    expect(s[1]!.meta?.history).toEqual([
      { role: 'user', content: 'What is shown?' },
      { role: 'assistant', content: 'Shapes.' },
    ]);
    expect(s[2]!.domain).toBe('text');
  });

  it('reports a broken turn with its row and field, and missing images', async () => {
    const file = join(root, 'broken.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify(conv[0])}\n${JSON.stringify({ id: 'x', conversations: [{ from: 'human', value: 'Q' }] })}\n${JSON.stringify({ id: 'y', image: 'nope.png', conversations: conv[1]!.conversations })}\n`,
    );
    const e = await errorOf(openLlava(file).toArray());
    expect([e.row, e.field]).toEqual([2, 'conversations.1']);
    const stream = openLlava(file, { onError: 'skip' });
    expect(await stream.toArray()).toHaveLength(2);
    expect(stream.report.errors.map((x) => [x.row, x.field])).toEqual([
      [2, 'conversations.1'],
      [3, 'image.0'],
    ]);
  });

  it('reports truncated JSON', async () => {
    const file = join(root, 'trunc.json');
    writeFileSync(file, JSON.stringify(conv).slice(0, -20));
    await expect(openLlava(file).toArray()).rejects.toThrow(/truncated JSON|invalid JSON/);
  });
});

describe('JSONL + image folder', () => {
  it('round-trips our own manifests and generic records', async () => {
    const g = generateOne(GENERATORS.vqa!, { seed: 0, index: 3, split: 'train', difficulty: 2, size: 56 });
    mkdirSync(join(root, 'j', 'img'), { recursive: true });
    writeFileSync(join(root, 'j', g.media[0]!.path), g.media[0]!.png);
    writeFileSync(join(root, 'j', 'samples.jsonl'), `${JSON.stringify(g.sample)}\n\n`);
    const [s] = await openJsonl(join(root, 'j', 'samples.jsonl')).toArray();
    expect({ ...s, images: [] }).toEqual({ ...g.sample, images: [] });
    expect(s!.images[0]).toBe(join(root, 'j', g.media[0]!.path));

    writeFileSync(
      join(root, 'j', 'generic.jsonl'),
      `${JSON.stringify({ image: g.media[0]!.path, prompt: 'Q?', label: 7, choices: [] })}\n`,
    );
    const [t] = await openJsonl(join(root, 'j', 'generic.jsonl'), { verifier: { type: 'counting' } }).toArray();
    expect(t).toMatchObject({ question: 'Q?', answer: '7', verifier: { type: 'counting' }, split: 'test' });
  });

  it('reports bad JSON, bad fields and missing files by line', async () => {
    const file = join(root, 'j', 'bad.jsonl');
    writeFileSync(
      file,
      [
        '{"question": "ok", "answer": "1"}',
        '{"question": "broken"',
        '{"answer": "no question"}',
        '{"question": "q", "answer": "a", "image": "missing.png"}',
        '[1, 2]',
      ].join('\n'),
    );
    const stream = openJsonl(file, { onError: 'skip' });
    expect(await stream.toArray()).toHaveLength(1);
    expect(stream.report.errors.map((e) => [e.row, e.field])).toEqual([
      [2, '(line)'],
      [3, 'question'],
      [4, 'image'],
      [5, '(record)'],
    ]);
    const sampleFile = join(root, 'j', 'badsample.jsonl');
    writeFileSync(
      sampleFile,
      `${JSON.stringify({ id: 'a', domain: 'vqa', source: 's', split: 'train', images: [], question: 'q', answer: 3, verifier: { type: 'vqa' } })}\n`,
    );
    const e = await errorOf(openJsonl(sampleFile).toArray());
    expect([e.row, e.field]).toEqual([1, 'answer']);
    expect(e.message).toMatch(/found 3/);
  });
});

describe('openDataset', () => {
  it('detects formats from the path and applies limits', async () => {
    const src = await openDataset(join(root, 'bench.tsv'), { limit: 2 });
    expect(src.format).toBe('tsv');
    let n = 0;
    for await (const _ of src) n++;
    expect(n).toBe(2);
    expect((await openDataset(join(root, 'llava.json'))).format).toBe('llava');
    await expect(openDataset(join(root, 'nothing.tsv'))).rejects.toThrow(/no such file/);
    writeFileSync(join(root, 'x.csv'), 'a,b');
    await expect(openDataset(join(root, 'x.csv'))).rejects.toThrow(/cannot tell the format/);
  });

  it('parses Python list literals as pandas writes them', () => {
    expect(parseListLiteral(`['a', "b's", 'c\\'d']`)).toEqual(['a', "b's", "c'd"]);
    expect(parseListLiteral('["x", 2]')).toEqual(['x', '2']);
    expect(parseListLiteral('[]')).toEqual([]);
    expect(parseListLiteral('not a list')).toBeNull();
    expect(parseListLiteral("['unterminated]")).toBeNull();
  });
});
