import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBenchmark } from '../../src/eval/benchmark.js';
import type { EvalItem } from '../../src/eval/data.js';
import { capVideoFile, encodeImage, framesToVideo } from '../../src/eval/media.js';
import { EndpointModel } from '../../src/eval/model.js';
import { Scorer } from '../../src/eval/score.js';
import { parseResponse } from '../../src/io/answer/response.js';
import { imageTokenCount } from '../../src/io/processor/image.js';
import { probeVideo } from '../../src/io/video.js';
import { chatJson, type MockServer, startMockOpenAI } from './mock-openai.js';

let dir: string;
const png = (w: number, h: number, color = { r: 10, g: 120, b: 200 }) =>
  sharp({ create: { width: w, height: h, channels: 3, background: color } })
    .png()
    .toBuffer();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'glmv-media-'));
  await sharp(await png(600, 400)).toFile(join(dir, 'big.png'));
  await sharp(await png(56, 56))
    .jpeg()
    .toFile(join(dir, 'small.jpg'));
  for (let i = 0; i < 4; i++) await sharp(await png(100, 60, { r: 60 * i, g: 0, b: 0 })).toFile(join(dir, `f${i}.png`));
  // A 1 s 448×448 video at 8 fps: 2 sampled frames at 2 fps → one temporal group of 256 tokens.
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc=s=448x448:d=1:r=8',
    '-pix_fmt',
    'yuv420p',
    join(dir, 'v.mp4'),
  ]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('visual token caps', () => {
  it('an image within the cap is sent as is; over the cap it is resized to the processor size under the cap', async () => {
    const small = await encodeImage(join(dir, 'small.jpg'), 6144);
    expect(small).toMatchObject({ resized: false, tokens: imageTokenCount(56, 56) });
    expect(small.url).toBe(`data:image/jpeg;base64,${readFileSync(join(dir, 'small.jpg')).toString('base64')}`);

    expect(imageTokenCount(400, 600)).toBeGreaterThan(64);
    const big = await encodeImage(join(dir, 'big.png'), 64);
    expect(big.resized).toBe(true);
    expect(big.tokens).toBeLessThanOrEqual(64);
    expect(big.width % 28).toBe(0);
    expect(big.height % 28).toBe(0);
    const meta = await sharp(Buffer.from(big.url.split(',')[1]!, 'base64')).metadata();
    expect([meta.width, meta.height]).toEqual([big.width, big.height]);
    // What is sent is already at the processor's size: the server's smart_resize keeps it.
    expect(imageTokenCount(big.height, big.width)).toBe(big.tokens);
    await expect(encodeImage(join(dir, 'nope.png'), 10)).rejects.toThrow(/nope\.png: cannot read/);
  });

  it('frame lists become an MP4 at their frame rate under the video cap (cached by content)', async () => {
    const frames = [0, 1, 2, 3].map((i) => join(dir, `f${i}.png`));
    const mp4 = await framesToVideo(frames, 2, 48_000, join(dir, 'media'));
    const meta = await probeVideo(mp4);
    expect(meta.totalNumFrames).toBe(4);
    expect(meta.fps).toBe(2);
    expect(await framesToVideo(frames, 2, 48_000, join(dir, 'media'))).toBe(mp4);
    const tiny = await framesToVideo(frames, 2, 4, join(dir, 'media'));
    expect(tiny).not.toBe(mp4);
    expect((await probeVideo(tiny)).width).toBeLessThanOrEqual(56);
    await expect(framesToVideo([], 2, 10, join(dir, 'media'))).rejects.toThrow(/empty/);
  });

  it('video files are transcoded only when the sampled clip exceeds the cap', async () => {
    const ok = await capVideoFile(join(dir, 'v.mp4'), 48_000, join(dir, 'media'));
    expect(ok).toMatchObject({ path: join(dir, 'v.mp4'), resized: false, tokens: 256 });
    const capped = await capVideoFile(join(dir, 'v.mp4'), 64, join(dir, 'media'));
    expect(capped.resized).toBe(true);
    expect(capped.tokens).toBeLessThanOrEqual(64);
    const m = await probeVideo(capped.path);
    expect(m.width! * m.height!).toBeLessThan(448 * 448);
  });
});

describe('EndpointModel', () => {
  let server: MockServer;
  beforeAll(async () => {
    server = await startMockOpenAI((body) => {
      const msgs = body.messages as Array<{ role: string }>;
      if (msgs.at(-1)!.role === 'assistant') return { json: chatJson({ content: '<|begin_of_box|>7<|end_of_box|>' }) };
      if (body.max_tokens === 16)
        return { json: chatJson({ reasoning_content: 'still thinking', content: null }, 'length') };
      return { json: chatJson({ reasoning_content: 'ok', content: '<|begin_of_box|>7<|end_of_box|>' }) };
    });
  });
  afterAll(() => server.close());

  it('puts the system message first and media before the text; identity includes the served model', async () => {
    const m = await EndpointModel.open({ baseURL: server.url });
    expect(m.id).toBe(`endpoint:${server.url}#mock-glm`);
    const msgs = await m.messages({
      system: 'Be brief.',
      text: 'What?',
      images: [join(dir, 'small.jpg')],
      video: { frames: [join(dir, 'f0.png'), join(dir, 'f1.png')], fps: 2 },
    });
    expect(msgs[0]).toEqual({ role: 'system', content: 'Be brief.' });
    const parts = msgs[1]!.content as Array<{ type: string; video_url?: { url: string } }>;
    expect(parts.map((p) => p.type)).toEqual(['image_url', 'video_url', 'text']);
    expect(parts[1]!.video_url!.url).toMatch(/^data:video\/mp4;base64,/);
    const asImages = await EndpointModel.open({ baseURL: server.url, videoFrames: 'images' });
    const p2 = (
      await asImages.messages({ text: 'x', images: [], video: { frames: [join(dir, 'f0.png'), join(dir, 'f1.png')] } })
    )[0]!.content as Array<{ type: string }>;
    expect(p2.map((p) => p.type)).toEqual(['image_url', 'image_url', 'text']);
  });

  it('with a thinking budget, an unfinished thought is closed and the answer forced', async () => {
    const m = await EndpointModel.open({ baseURL: server.url });
    const g = await m.generate(
      { text: 'q', images: [] },
      { thinking: true, maxTokens: 64, thinkingBudget: 16, temperature: 0 },
    );
    expect(g).toMatchObject({ forcedAnswer: true, truncatedThinking: true, phases: 2, thinkClosed: true });
    expect(g.text).toBe('<think>still thinking</think>\n<|begin_of_box|>7<|end_of_box|>');
    expect(server.requests.at(-1)!.body.max_tokens).toBe(48);
  });
});

describe('Scorer on the standard metrics', () => {
  const sample = (over: Record<string, unknown>) =>
    ({
      id: 'x',
      domain: 'vqa',
      source: 's',
      split: 'test',
      images: [],
      question: 'q',
      answer: 'a',
      verifier: { type: 'vqa' },
      ...over,
    }) as EvalItem['sample'];
  const item = (over: Partial<EvalItem>): EvalItem => ({
    id: 'x',
    group: 'x',
    row: 1,
    sample: sample({}),
    prompt: { text: 'q', images: [] },
    answers: ['a'],
    ...over,
  });
  const B = (s: string) => `<think>t</think><|begin_of_box|>${s}<|end_of_box|>`;

  it('point in box: normalised points, a box centre, GUI call syntax; xywh with the inclusive edge', async () => {
    const b = parseBenchmark(
      {
        name: 'ss',
        data: { path: 'x' },
        metric: { name: 'point_in_box', pred: 'norm1000', gt: 'pixel', gtFormat: 'xywh', inclusive: true },
      },
      't',
    );
    const s = new Scorer(b, { judge: null });
    // 600×400 image; target box x 60..119, y 40..79 (xywh 60,40,60,40 inclusive).
    const it = item({ sample: sample({ images: [join(dir, 'big.png')] }), refBox: [60, 40, 60, 40] });
    expect((await s.score(it, B('[150, 150]'))).score).toBe(1); // (90, 60)
    expect((await s.score(it, B('[199, 199]'))).score).toBe(0); // (119.4, 79.6): just outside the inclusive edge
    expect((await s.score(it, B("left_click(start_box='[110,110]')"))).score).toBe(1);
    expect((await s.score(it, B('[100,100,200,200]'))).detail).toMatchObject({ point: [90, 60] });
    expect((await s.score(it, B('somewhere'))).status).toBe('no_answer');
  });

  it('relaxed accuracy, VQA score, OCRBench and exact match read the extracted answer', async () => {
    const mk = (metric: Record<string, unknown>, extraction = 'lenient') =>
      new Scorer(parseBenchmark({ name: 'm', data: { path: 'x' }, metric, extraction }, 't'), { judge: null });
    expect((await mk({ name: 'relaxed_accuracy' }).score(item({ answers: ['40'] }), B('41.9'))).score).toBe(1);
    const ten = ['two', 'two', '2', 'two', 'three', 'three', 'three', 'three', 'three', 'three'];
    expect((await mk({ name: 'vqa_score' }).score(item({ answers: ten }), B('Two'))).score).toBe(1);
    expect((await mk({ name: 'ocrbench' }).score(item({ answers: ['STOP'] }), B('The sign reads stop.'))).score).toBe(
      1,
    );
    expect(
      (await mk({ name: 'exact_match' }).score(item({ answers: ['Paris'] }), 'The capital is Paris.\nAnswer: paris'))
        .score,
    ).toBe(1);
    // strict extraction needs exactly one box
    const strict = await mk({ name: 'exact_match' }, 'strict').score(item({ answers: ['Paris'] }), 'Answer: Paris');
    expect(strict).toMatchObject({ status: 'no_answer', score: 0 });
  });

  it('reward metric: the sample verifier through the router, lenient or strict extraction', async () => {
    const mk = (extraction: string) =>
      new Scorer(
        parseBenchmark({ name: 'r', data: { path: 'x' }, metric: { name: 'reward' }, extraction, judge: 'never' }, 't'),
        {
          judge: null,
        },
      );
    const it = item({ sample: sample({ answer: '12', verifier: { type: 'counting' } }) });
    const lenient = await mk('lenient').score(it, 'I count them.\nThe answer is 12.');
    expect(lenient).toMatchObject({ score: 1, correct: true, extracted: '12', status: 'scored' });
    const strict = await mk('strict').score(it, 'I count them.\nThe answer is 12.');
    expect(strict).toMatchObject({ score: 0, status: 'no_answer' });
    expect((await mk('strict').score(it, B('13'))).correct).toBe(false);
  });

  it('extraction is exactly the shared parser, on both scoring paths', async () => {
    const texts = [
      '<think>maybe <|begin_of_box|>1<|end_of_box|></think><answer><|begin_of_box|>2<|end_of_box|></answer>',
      '<think>r</think>first <|begin_of_box|>a<|end_of_box|> then <|begin_of_box|>b<|end_of_box|>',
      'no tags at all\nFinal answer: 42',
      '<think>cut off while thinking \\boxed{7}',
      'So \\boxed{\\frac{1}{2}} and \\boxed{3}',
    ];
    for (const mode of ['strict', 'lenient'] as const) {
      const exact = new Scorer(
        parseBenchmark({ name: 'e', data: { path: 'x' }, metric: { name: 'exact_match' }, extraction: mode }, 't'),
        {
          judge: null,
        },
      );
      const reward = new Scorer(
        parseBenchmark(
          { name: 'r', data: { path: 'x' }, metric: { name: 'reward' }, extraction: mode, judge: 'never' },
          't',
        ),
        { judge: null },
      );
      for (const t of texts) {
        const want = parseResponse(t, { mode }).answer;
        expect((await exact.score(item({}), t)).extracted, `${mode}: ${t}`).toBe(want);
        expect((await reward.score(item({}), t)).extracted, `${mode} via router: ${t}`).toBe(want);
      }
      await reward.close();
    }
  });

  it('judge "always" without a judge is refused up front', () => {
    const b = parseBenchmark({ name: 'j', data: { path: 'x' }, metric: { name: 'reward' }, judge: 'always' }, 't');
    expect(() => new Scorer(b, { judge: null })).toThrow(/judge "always" needs a judge endpoint/);
  });
});
