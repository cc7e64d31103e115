import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { loadBenchmarkFile, parseBenchmark, resolveDataPath } from '../../src/eval/benchmark.js';
import { BUILTIN_BENCHMARKS, expandBenchNames } from '../../src/eval/benchmarks/index.js';
import { answersOf, buildPrompt, parseRefBox, prepareBenchmark } from '../../src/eval/data.js';

const FIX = join(import.meta.dirname, '../fixtures/eval');

describe('benchmark definitions', () => {
  it('every built-in parses; the families of the paper and one synthetic set per domain are there', () => {
    for (const n of [
      'mmbench',
      'mmstar',
      'mmmu',
      'mathvista',
      'mathverse',
      'chartqa',
      'docvqa',
      'infovqa',
      'textvqa',
      'ocrbench',
      'refcoco',
      'screenspot',
      'videomme',
      'mvbench',
    ])
      expect(BUILTIN_BENCHMARKS.has(n), n).toBe(true);
    const synth = [...BUILTIN_BENCHMARKS.values()].filter((b) => b.data.format === 'synthetic');
    expect(synth.map((b) => b.data.generator).sort()).toEqual(
      [
        'chart',
        'grounding',
        'gui',
        'long_doc',
        'multi_image',
        'ocr',
        'spatial',
        'stem',
        'text',
        'video',
        'vqa',
        'lab_arith',
        'lab_bars',
        'lab_clock',
        'lab_colors',
      ].sort(),
    );
    expect(BUILTIN_BENCHMARKS.get('chartqa')!.metric).toEqual({ name: 'relaxed_accuracy', maxRelativeChange: 0.05 });
    expect(BUILTIN_BENCHMARKS.get('mmbench')!.metric).toMatchObject({ name: 'mcq', circular: 'data' });
  });

  it('bench name lists expand aliases and keep order without duplicates', () => {
    expect(expandBenchNames('mmstar, synthetic ,mmstar')[0]).toBe('mmstar');
    expect(expandBenchNames('synthetic')).toHaveLength(11);
    expect(expandBenchNames('lab')).toEqual([
      'synth_lab_arith',
      'synth_lab_bars',
      'synth_lab_clock',
      'synth_lab_colors',
    ]);
    expect(expandBenchNames('paper')).toContain('videomme');
  });

  it('invalid definitions name the field and the problem', () => {
    expect(() => parseBenchmark({ name: 'x', data: { format: 'tsv' }, metric: { name: 'anls' } }, 'def')).toThrow(
      /def: invalid benchmark definition: data\.path: expected the data file/,
    );
    expect(() =>
      parseBenchmark(
        { name: 'x', data: { path: 'a.tsv' }, prompt: { template: '{question} {hint}' }, metric: { name: 'anls' } },
        'def',
      ),
    ).toThrow(/prompt\.template: unknown placeholder \{hint\}/);
    expect(() => parseBenchmark({ name: 'x', data: { path: 'a.tsv' }, metric: { name: 'bleu' } }, 'def')).toThrow(
      /metric/,
    );
    expect(() => parseBenchmark({ name: 'a b', data: { path: 'a.tsv' }, metric: { name: 'anls' } }, 'def')).toThrow(
      /name/,
    );
    expect(() =>
      parseBenchmark({ name: 'x', data: { format: 'synthetic' }, metric: { name: 'reward' } }, 'def'),
    ).toThrow(/generator/);
    expect(() =>
      parseBenchmark({ name: 'x', data: { path: 'a.tsv' }, metric: { name: 'anls', threshold: 2 } }, 'def'),
    ).toThrow(/metric\.threshold/);
  });

  describe('files', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'glmv-bench-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('loads YAML and JSON; bad syntax and missing files are clear errors', () => {
      writeFileSync(join(dir, 'ok.yaml'), 'name: ok\ndata: { path: d.tsv }\nmetric: { name: vqa_score }\n');
      const b = loadBenchmarkFile(join(dir, 'ok.yaml'))[0]!;
      expect(b).toMatchObject({ name: 'ok', extraction: 'lenient', judge: 'fallback', baseDir: dir });
      writeFileSync(join(dir, 'bad.yaml'), 'name: [unclosed\n');
      expect(() => loadBenchmarkFile(join(dir, 'bad.yaml'))).toThrow(/not valid YAML/);
      writeFileSync(join(dir, 'bad.json'), '{"name":');
      expect(() => loadBenchmarkFile(join(dir, 'bad.json'))).toThrow(/not valid JSON/);
      expect(() => loadBenchmarkFile(join(dir, 'none.yaml'))).toThrow(/cannot read/);
    });

    it('a file may hold a list of benchmarks; an empty list or a bad entry names its position', () => {
      writeFileSync(
        join(dir, 'list.yaml'),
        '- name: a\n  data: { path: a.tsv }\n  metric: { name: vqa_score }\n' +
          '- name: b\n  data: { format: synthetic, generator: counting, mcq: blank }\n  metric: { name: reward }\n',
      );
      const list = loadBenchmarkFile(join(dir, 'list.yaml'));
      expect(list.map((b) => b.name)).toEqual(['a', 'b']);
      expect(list[1]!.data).toMatchObject({ generator: 'counting', mcq: 'blank' });
      writeFileSync(join(dir, 'empty.yaml'), '[]\n');
      expect(() => loadBenchmarkFile(join(dir, 'empty.yaml'))).toThrow(/list of benchmarks is empty/);
      writeFileSync(
        join(dir, 'badentry.yaml'),
        '- name: a\n  data: { path: a.tsv }\n  metric: { name: vqa_score }\n- name: b\n',
      );
      expect(() => loadBenchmarkFile(join(dir, 'badentry.yaml'))).toThrow(/entry 2/);
    });

    it('data paths resolve against the definition folder, then the data folders; a miss says where it looked', () => {
      const b = loadBenchmarkFile(join(dir, 'ok.yaml'))[0]!;
      mkdirSync(join(dir, 'data'), { recursive: true });
      writeFileSync(join(dir, 'data', 'd.tsv'), 'x');
      expect(resolveDataPath(b, [join(dir, 'data')])).toBe(join(dir, 'data', 'd.tsv'));
      writeFileSync(join(dir, 'd.tsv'), 'y');
      expect(resolveDataPath(b, [join(dir, 'data')])).toBe(join(dir, 'd.tsv'));
      const mm = BUILTIN_BENCHMARKS.get('mmbench')!;
      expect(() => resolveDataPath(mm, ['/nonexistent'])).toThrow(
        /benchmark mmbench: tsv file MMBench_DEV_EN_V11\.tsv not found \(looked in \/nonexistent\/MMBench_DEV_EN_V11\.tsv\).*--data mmbench=PATH/,
      );
    });
  });
});

describe('items', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'glmv-items-'));
    cpSync(FIX, dir, { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const opts = () => ({ dataDirs: [dir], syntheticDir: join(dir, 'synth'), imageCacheDir: join(dir, 'imgcache') });

  it('prompts follow the template and option format', () => {
    const b = parseBenchmark(
      {
        name: 'p',
        data: { path: 'x' },
        prompt: { template: 'Q: {question}{options}\nAnswer:', option: ' ({letter}) {text}', system: 'S' },
        metric: { name: 'mcq' },
      },
      't',
    );
    const p = buildPrompt(b, {
      id: 'a',
      domain: 'vqa',
      source: 's',
      split: 'test',
      images: ['/i.png'],
      question: ' Why? ',
      answer: 'B',
      options: ['x', 'y'],
      verifier: { type: 'multiple_choice' },
    });
    expect(p).toEqual({ system: 'S', text: 'Q: Why? (A) x (B) y\nAnswer:', images: ['/i.png'] });
  });

  it('answer lists and reference boxes', () => {
    const s: Omit<Sample, 'answer'> = {
      id: 'a',
      domain: 'vqa',
      source: 's',
      split: 'test',
      images: [],
      question: 'q',
      verifier: { type: 'vqa' },
    };
    expect(answersOf({ ...s, answer: "['a', \"b's\"]" })).toEqual(['a', "b's"]);
    expect(answersOf({ ...s, answer: 'plain' })).toEqual(['plain']);
    expect(answersOf({ ...s, answer: 'x', meta: { answers: ['x', 'y'] } })).toEqual(['x', 'y']);
    expect(parseRefBox('[1, 2, 3, 4]', 'xyxy')).toEqual([1, 2, 3, 4]);
    expect(parseRefBox('1 2 0 4', 'xywh')).toMatch(/non-empty xywh box/);
    expect(parseRefBox('[5,5,1,9]', 'xyxy')).toMatch(/non-empty xyxy box/);
  });

  it('circular "generate" makes every rotation; --limit counts questions', async () => {
    const b = parseBenchmark(
      { name: 'g', data: { format: 'tsv', path: 'mcq_circular.tsv' }, metric: { name: 'mcq', circular: 'generate' } },
      't',
    );
    const p = await prepareBenchmark(b, { ...opts(), limit: 2 });
    // The first two questions, 4 rotations each (the file's own copies count as questions here).
    expect(p.items).toHaveLength(8);
    expect(p.items.slice(0, 4).map((i) => i.sample.answer)).toEqual(['B', 'A', 'D', 'C']);
    expect(new Set(p.items.slice(0, 4).map((i) => i.group))).toEqual(new Set(['g/0']));
    expect(p.items[1]!.prompt.text).toBe('Which animal is shown?\nA. dog\nB. bird\nC. fish\nD. cat');
  });

  it('circular "data" with --limit keeps whole groups', async () => {
    const b = parseBenchmark(
      { name: 'd', data: { format: 'tsv', path: 'mcq_circular.tsv' }, metric: { name: 'mcq', circular: 'data' } },
      't',
    );
    const p = await prepareBenchmark(b, { ...opts(), limit: 1 });
    expect(p.items.map((i) => i.id)).toEqual(['d/0', 'd/1000000']);
  });

  it('plain --limit takes the first usable rows and still reports the bad ones read', async () => {
    const b = parseBenchmark(
      { name: 'doc', data: { format: 'tsv', path: 'docvqa.tsv' }, metric: { name: 'anls' } },
      't',
    );
    const p = await prepareBenchmark(b, { ...opts(), limit: 2 });
    expect(p.items.map((i) => i.id)).toEqual(['doc/10', 'doc/11']);
  });

  it('video columns become video paths; missing videos are row errors; option letters are stripped', async () => {
    const vdir = join(dir, 'vid');
    mkdirSync(join(vdir, 'video'), { recursive: true });
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'color=c=red:s=64x48:d=1:r=4',
      '-pix_fmt',
      'yuv420p',
      join(vdir, 'video', 'v1.mp4'),
    ]);
    writeFileSync(
      join(vdir, 'vmme.tsv'),
      "index\tvideoID\tquestion\tcandidates\tanswer\tduration\n1\tv1\tWhat colour?\t['A. red', 'B. blue']\tA\tshort\n2\tv2\tWhat shape?\t['A. box', 'B. ball']\tB\tshort\n",
    );
    const base = BUILTIN_BENCHMARKS.get('videomme')!;
    const p = await prepareBenchmark(
      { ...base, data: { ...base.data, path: 'vmme.tsv' } },
      { ...opts(), dataDirs: [vdir] },
    );
    expect(p.items).toHaveLength(1);
    expect(p.items[0]!.sample.video).toEqual({ path: join(vdir, 'video', 'v1.mp4') });
    expect(p.items[0]!.sample.options).toEqual(['red', 'blue']);
    expect(p.items[0]!.prompt.text).toBe(
      "What colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices.",
    );
    expect(p.errors).toEqual([
      expect.objectContaining({
        row: 2,
        field: 'videoID',
        detail: expect.stringMatching(/video file not found: .*v2\.mp4/),
      }),
    ]);
  });
});
