/**
 * End-to-end eval runs against a local OpenAI-compatible mock returning canned answers: exact scores, think vs
 * no-think, malformed rows reported with row numbers, interruption and resume through the content-addressed cache,
 * and the summary / CSV / HTML outputs.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBenchmarkFile } from '../../src/eval/benchmark.js';
import { BUILTIN_BENCHMARKS } from '../../src/eval/benchmarks/index.js';
import { prepareBenchmark } from '../../src/eval/data.js';
import { EvalInterrupted, type RunOptions, runEval } from '../../src/eval/harness.js';
import { EndpointModel } from '../../src/eval/model.js';
import { type EvalSummary, readSamples } from '../../src/eval/records.js';
import { chatJson, lastUserText, type MockServer, startMockOpenAI } from './mock-openai.js';

const FIX = join(import.meta.dirname, '../fixtures/eval');
const box = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

/** Canned answers keyed by the question line and the first option line (rotations differ there). */
const THINK: Record<string, string> = {
  'Which animal is shown?|A. cat': 'B',
  'Which animal is shown?|A. dog': 'A',
  'How many objects are there?|A. 1': 'C',
  'How many objects are there?|A. 2': 'C', // wrong: the copy's answer is B
  'What colour is the square?|A. red': 'red', // option text, accepted
  'What colour is the square?|A. green': 'D',
  'What is the title?': 'Annual Reprt',
  'What is the date?': '12 may',
  'Who signed?': 'Jane',
  'the red mug': '[100,200,500,600]', // → [20,20,100,60] px on 200×100: IoU 1
  'the lamp': '[600,100,900,900]', // → [120,10,180,90]: IoU 1
  'the book': '[500,500,900,900]', // no overlap
};

function keyOf(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('Hint:'))
    .slice(0, 2)
    .join('|');
}

function canned(body: Record<string, unknown>): string {
  const text = lastUserText(body);
  const k1 = keyOf(text);
  const k0 = text.split('\n')[0]!;
  const ans = THINK[k1] ?? THINK[k0];
  if (ans === undefined) throw new Error(`mock: no canned answer for ${JSON.stringify(text)}`);
  const thinking = (body.chat_template_kwargs as { enable_thinking?: boolean } | undefined)?.enable_thinking !== false;
  // No thinking: always the first option on multiple choice.
  return !thinking && k1.includes('|A. ') ? 'A' : ans;
}

function defs(dir: string): void {
  writeFileSync(
    join(dir, 'mcq.yaml'),
    'name: mcq\nfamily: General VQA\ndata: { format: tsv, path: mcq_circular.tsv }\nmetric: { name: mcq, circular: data }\njudge: never\ngroupBy: [category]\nreference: { GLM-4.5V: 88.2 }\n',
  );
  writeFileSync(join(dir, 'doc.yaml'), 'name: doc\ndata: { format: tsv, path: docvqa.tsv }\nmetric: { name: anls }\n');
  writeFileSync(
    join(dir, 'ref.json'),
    JSON.stringify({
      name: 'ref',
      data: { format: 'jsonl', path: 'refcoco.jsonl', domain: 'grounding' },
      metric: { name: 'iou' },
    }),
  );
}

describe('eval end to end against a mock endpoint', () => {
  let server: MockServer;
  let dir: string;
  let abortAt = 0;
  let controller = new AbortController();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glmv-eval-'));
    cpSync(FIX, join(dir, 'data'), { recursive: true });
    defs(join(dir, 'data'));
    server = await startMockOpenAI((body) => {
      if (abortAt > 0 && server.requests.length === abortAt) controller.abort();
      const thinking = (body.chat_template_kwargs as { enable_thinking?: boolean })?.enable_thinking !== false;
      const msg = thinking
        ? { reasoning_content: 'Looking at the image carefully.', content: box(canned(body)) }
        : { content: `\n${box(canned(body))}` };
      return { json: chatJson(msg, 'stop', { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 }) };
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(out: string, o: Partial<RunOptions> = {}): Promise<EvalSummary> {
    const model = await EndpointModel.open({ baseURL: server.url, maxRetries: 0 });
    return runEval({
      model,
      benchmarks: ['mcq.yaml', 'doc.yaml', 'ref.json'].flatMap((f) => loadBenchmarkFile(join(dir, 'data', f))),
      out,
      modes: ['think', 'nothink'],
      concurrency: 3,
      generation: { maxTokens: 256, temperature: 0 },
      caps: { imageTokens: 6144, videoTokens: 48000 },
      dataDirs: [],
      quiet: true,
      signal: controller.signal,
      ...o,
    });
  }

  function expectExactScores(s: EvalSummary): void {
    const get = (b: string, m: string) => s.results.find((r) => r.bench === b && r.mode === m)!;
    // Circular: groups 0 and 2 right in both copies, group 1 wrong in its copy.
    expect(get('mcq', 'think')).toMatchObject({ score: 66.6667, units: 3, counts: { items: 6, correct: 5 } });
    // No thinking answers A everywhere: every group has a wrong copy.
    expect(get('mcq', 'nothink')).toMatchObject({ score: 0, units: 3, counts: { correct: 2 } });
    // ANLS: (1 − 1/13) + 1 + 0 over 3.
    expect(get('doc', 'think').score).toBe(64.1026);
    expect(get('ref', 'think')).toMatchObject({ score: 66.6667, units: 3 });
    expect(get('mcq', 'think').breakdown.category).toEqual([
      { value: 'animals', score: 100, n: 1 },
      { value: 'colour', score: 100, n: 1 },
      { value: 'counting', score: 0, n: 1 },
    ]);
    const cmp = s.comparisons.find((c) => c.bench === 'mcq')!;
    expect(cmp).toMatchObject({ think: 66.6667, nothink: 0, diff: 66.6667, pairedUnits: 3 });
    expect(cmp.ci.low).toBeLessThanOrEqual(cmp.diff);
    expect(cmp.ci.high).toBeGreaterThanOrEqual(cmp.diff);
    expect(s.comparisons.find((c) => c.bench === 'doc')).toMatchObject({ diff: 0 });
  }

  it('scores exactly, reports malformed rows, and writes every output', async () => {
    const out = join(dir, 'run1');
    const before = server.requests.length;
    const s = await run(out);
    expect(server.requests.length - before).toBe(24);
    expectExactScores(s);

    // Malformed rows, with their row numbers.
    const mcqData = s.data.find((d) => d.bench === 'mcq')!;
    expect(mcqData).toMatchObject({ rows: 8, items: 6, errors: 2 });
    expect(mcqData.firstErrors.map((e) => [e.row, e.field])).toEqual([
      [4, 'answer'],
      [8, 'image'],
    ]);
    const refErrors = readFileSync(join(out, 'ref', 'data_errors.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(refErrors.map((e) => [e.row, e.field])).toEqual([
      [4, 'image'],
      [5, 'answer'],
    ]);
    expect(refErrors[1].detail).toMatch(/expected a box of 4 numbers, found 3/);

    // Per-sample records: prompt, raw output, reasoning, extraction, score.
    const doc = readSamples(out, 'doc', 'think');
    const title = doc.find((r) => r.id === 'doc/10')!;
    expect(title).toMatchObject({
      extracted: 'Annual Reprt',
      status: 'scored',
      reasoning: 'Looking at the image carefully.',
    });
    expect(title.score).toBeCloseTo(12 / 13, 10);
    expect(title.raw).toBe(`<think>Looking at the image carefully.</think>${box('Annual Reprt')}`);
    const ref = readSamples(out, 'ref', 'think').find((r) => r.id === 'ref/r1')!;
    expect(ref.detail).toMatchObject({ iou: 1, predBox: [20, 20, 100, 60] });
    const mcq = readSamples(out, 'mcq', 'think').find((r) => r.id === 'mcq/2')!;
    expect(mcq).toMatchObject({
      extracted: 'red',
      correct: true,
      path: 'multiple_choice:choice',
      groups: { category: 'colour' },
    });

    // Requests carried images as data URLs and the thinking switch as a top-level field.
    const req = server.requests.at(-1)!.body as {
      messages: Array<{ content: Array<{ type: string; image_url?: { url: string } }> }>;
    };
    expect(req.messages[0]!.content[0]!.image_url!.url).toMatch(/^data:image\/png;base64,/);
    expect(
      server.requests.some(
        (r) => (r.body.chat_template_kwargs as { enable_thinking: boolean }).enable_thinking === false,
      ),
    ).toBe(true);

    // Summary JSON, CSV, HTML.
    const json = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as EvalSummary;
    expect(json.results).toHaveLength(6);
    const csv = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
    expect(csv[0]!.startsWith('bench,family,domain,metric,mode,score,ci_low,ci_high')).toBe(true);
    expect(csv).toHaveLength(1 + 6 + 3);
    expect(csv.find((l) => l.startsWith('doc,') && l.includes(',think,'))).toContain(',64.1026,');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('Thinking minus no-thinking');
    expect(html).toContain('malformed rows skipped');
    // Self-contained: no scripts, stylesheets or media fetched from anywhere.
    expect(html).not.toMatch(/<script|<link|(?:src|href)\s*=\s*["']?https?:/i);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.event === 'item')).toHaveLength(24);
    expect(metrics.at(-1).event).toBe('done');
  });

  it('resumes an interrupted run from the cache without recomputing', async () => {
    const out = join(dir, 'run2');
    const start = server.requests.length;
    controller = new AbortController();
    abortAt = start + 10; // the 10th request of this run aborts; 9 answers are cached
    await expect(run(out, { concurrency: 1 })).rejects.toBeInstanceOf(EvalInterrupted);
    abortAt = 0;
    const cacheLines = readFileSync(join(out, 'cache', 'generations.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(cacheLines).toHaveLength(9);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).interrupted).toBe(true);

    controller = new AbortController();
    const before = server.requests.length;
    const s = await run(out);
    expect(server.requests.length - before).toBe(24 - 9);
    expectExactScores(s);
    expect(s.interrupted).toBe(false);
    expect(s.results.reduce((a, r) => a + r.counts.cached, 0)).toBe(9);

    // A third run recomputes nothing.
    const again = server.requests.length;
    const s3 = await run(out);
    expect(server.requests.length).toBe(again);
    expectExactScores(s3);
    expect(s3.results.every((r) => r.counts.cached === r.counts.items)).toBe(true);
  });

  it('a torn cache line is skipped and regenerated', async () => {
    const out = join(dir, 'run3');
    await run(out, { benchmarks: loadBenchmarkFile(join(dir, 'data', 'doc.yaml')), modes: ['think'] });
    const file = join(out, 'cache', 'generations.jsonl');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    writeFileSync(file, `${lines.slice(0, 2).join('\n')}\n${lines[2]!.slice(0, 40)}`); // killed mid-write
    const before = server.requests.length;
    const s = await run(out, { benchmarks: loadBenchmarkFile(join(dir, 'data', 'doc.yaml')), modes: ['think'] });
    expect(server.requests.length - before).toBe(1);
    expect(s.results[0]!.score).toBe(64.1026);
    const after = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(after.filter((l) => l.startsWith('{"key"') && l.endsWith('}'))).toHaveLength(3);
  });

  it('failed requests are counted, not cached, and retried by a rerun', async () => {
    const out = join(dir, 'run4');
    let fail = true;
    const failing = await startMockOpenAI((body) =>
      fail && lastUserText(body).startsWith('Who signed?')
        ? { status: 500, body: { error: { message: 'boom' } } }
        : { json: chatJson({ content: box(canned(body)) }) },
    );
    try {
      const model = await EndpointModel.open({ baseURL: failing.url, maxRetries: 1 });
      const opts: RunOptions = {
        model,
        benchmarks: loadBenchmarkFile(join(dir, 'data', 'doc.yaml')),
        out,
        modes: ['think'],
        concurrency: 2,
        generation: { maxTokens: 64, temperature: 0 },
        caps: { imageTokens: 6144, videoTokens: 48000 },
        dataDirs: [],
        quiet: true,
      };
      const s = await runEval(opts);
      expect(s.results[0]!.counts).toMatchObject({ failed: 1, items: 3 });
      expect(s.results[0]!.successRate).toBe(66.6667);
      const rec = readSamples(out, 'doc', 'think').find((r) => r.id === 'doc/12')!;
      expect(rec).toMatchObject({ status: 'failed', score: 0 });
      expect(rec.reason).toMatch(/request failed: .*HTTP 500/);
      fail = false;
      const s2 = await runEval(opts);
      expect(s2.results[0]!.counts).toMatchObject({ failed: 0, cached: 2 });
      expect(s2.results[0]!.score).toBe(64.1026);
    } finally {
      await failing.close();
    }
  });

  it('a synthetic held-out benchmark is rendered and scored by its own verifiers', async () => {
    const out = join(dir, 'run5');
    const bench = BUILTIN_BENCHMARKS.get('synth_vqa')!;
    const prepared = await prepareBenchmark(bench, {
      dataDirs: [],
      limit: 3,
      syntheticDir: join(out, 'cache', 'synthetic'),
      quiet: true,
    });
    expect(prepared.items).toHaveLength(3);
    expect(prepared.items.every((i) => i.sample.split === 'heldout' && existsSync(i.prompt.images[0]!))).toBe(true);
    const answers = new Map(prepared.items.map((it, i) => [it.prompt.text, i < 2 ? it.sample.answer : 'zzz-not-it']));
    const synthServer = await startMockOpenAI((body) => {
      const a = answers.get(lastUserText(body));
      if (a === undefined) throw new Error('unexpected prompt');
      return { json: chatJson({ reasoning_content: 'reasoning here', content: box(a) }) };
    });
    try {
      const model = await EndpointModel.open({ baseURL: synthServer.url, maxRetries: 0 });
      const s = await runEval({
        model,
        benchmarks: [bench],
        out,
        modes: ['think'],
        limit: 3,
        concurrency: 2,
        generation: { maxTokens: 64, temperature: 0 },
        caps: { imageTokens: 6144, videoTokens: 48000 },
        dataDirs: [],
        quiet: true,
      });
      expect(synthServer.requests).toHaveLength(3);
      expect(s.results[0]).toMatchObject({
        bench: 'synth_vqa',
        domain: 'vqa',
        score: 66.6667,
        family: 'Synthetic held-out',
      });
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('Synthetic held-out sets, per domain');
    } finally {
      await synthServer.close();
    }
  });
});

describe('LLM judge fallback through the reward verifiers', () => {
  it('records judge provenance per sample and reuses the judge cache on reruns', async () => {
    const { startMockJudge } = await import('../reward/mock-judge.js');
    const judge = await startMockJudge();
    const dir = mkdtempSync(join(tmpdir(), 'glmv-judge-'));
    writeFileSync(
      join(dir, 'qa.jsonl'),
      `${JSON.stringify({ id: 'q1', question: 'What is the grey thing?', answer: 'sofa' })}\n${JSON.stringify({ id: 'q2', question: 'How many cups?', answer: '3' })}\n`,
    );
    writeFileSync(
      join(dir, 'qa.yaml'),
      'name: qa\ndata: { format: jsonl, path: qa.jsonl, verifier: { type: vqa } }\nmetric: { name: reward }\n',
    );
    const model = await startMockOpenAI((body) => ({
      json: chatJson({ content: box(lastUserText(body).startsWith('What is the grey') ? 'couch' : '3') }),
    }));
    try {
      const opts: RunOptions = {
        model: await EndpointModel.open({ baseURL: model.url }),
        benchmarks: loadBenchmarkFile(join(dir, 'qa.yaml')),
        out: join(dir, 'out'),
        modes: ['think'],
        concurrency: 2,
        generation: { maxTokens: 64, temperature: 0 },
        caps: { imageTokens: 6144, videoTokens: 48000 },
        dataDirs: [],
        judge: {
          endpoints: [{ baseURL: judge.url, model: 'always-correct', votes: 1 }],
          temperature: 0,
          maxTokens: 64,
          timeoutMs: 5000,
          retries: 0,
          backoffMs: 0,
          concurrency: 2,
          structured: 'json_schema',
        },
        quiet: true,
      };
      const s = await runEval(opts);
      expect(s.results[0]!.score).toBe(100);
      const recs = readSamples(opts.out, 'qa', 'think');
      const q1 = recs.find((r) => r.id === 'qa/q1')!;
      expect(q1).toMatchObject({ path: 'judge', extracted: 'couch', correct: true });
      expect(q1.judge!.votes).toEqual([
        expect.objectContaining({ model: 'always-correct', verdict: 'correct', cached: false }),
      ]);
      expect(recs.find((r) => r.id === 'qa/q2')!.judge).toBeUndefined();
      expect(judge.requests).toHaveLength(1);
      expect(existsSync(join(opts.out, 'cache', 'judge.jsonl'))).toBe(true);

      const again = await runEval(opts);
      expect(again.results[0]!.score).toBe(100);
      expect(judge.requests).toHaveLength(1);
      expect(readSamples(opts.out, 'qa', 'think').find((r) => r.id === 'qa/q1')!.judge!.votes[0]!.cached).toBe(true);
    } finally {
      await model.close();
      await judge.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
