/**
 * Malformed and oversized requests: every one gets a 4xx with an OpenAI-shaped JSON error naming the field, and the
 * server keeps serving afterwards.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generationDefaults } from '../../src/serve/service.js';
import { errorOf, post, type Served, serve, user } from './server-harness.js';

let s: Served;
let root = '';
let outside = '';
let small = '';

const image = (url: string, text = 'what?') => [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url } },
      { type: 'text', text },
    ],
  },
];

beforeAll(async () => {
  const base = mkdtempSync(join(tmpdir(), 'glmv-serve-media-'));
  root = join(base, 'allowed');
  mkdirSync(root);
  const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#123' } })
    .png()
    .toBuffer();
  small = `data:image/png;base64,${png.toString('base64')}`;
  writeFileSync(join(root, 'ok.png'), png);
  outside = join(base, 'secret.png');
  writeFileSync(outside, png);
  symlinkSync(outside, join(root, 'link.png'));
  s = await serve({
    bodyLimit: 2 * 2 ** 20,
    media: { fileRoots: [root], maxImagePixels: 1_000_000 },
    maxModelLen: 512,
  });
});
afterAll(async () => {
  await s.server.close(0);
});

async function expectError(body: unknown, status: number, param: string | null, match: RegExp, raw = false) {
  const r = await post(s.url, body, { raw });
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/application\/json/);
  const e = errorOf(r.json);
  expect(e.param).toBe(param);
  expect(e.message).toMatch(match);
  expect(e.type).toBe(status === 404 ? 'not_found_error' : 'invalid_request_error');
  return e;
}

describe('malformed requests → 4xx JSON errors', () => {
  it('bad JSON, an empty body, a non-object body, a wrong content type', async () => {
    expect((await expectError('{"messages": [', 400, null, /not valid JSON/, true)).code).toBe('invalid_json');
    await expectError('[1, 2]', 400, null, /expected a JSON object, found an array/, true);
    await expectError('', 400, null, /empty body/, true);
    const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: 'messages=hi' });
    expect(r.status).toBe(415);
    expect(errorOf((await r.json()) as Record<string, unknown>).message).toMatch(/application\/json/);
  });

  it('wrong types and ranges name the field; negative max_tokens is refused', async () => {
    await expectError({ messages: user('hi'), max_tokens: -5 }, 400, 'max_tokens', />=1.*found number -5/);
    await expectError(
      { messages: user('hi'), max_completion_tokens: 1.5 },
      400,
      'max_completion_tokens',
      /expected int.*1\.5/,
    );
    await expectError({ messages: user('hi'), temperature: 'hot' }, 400, 'temperature', /number.*"hot"/);
    await expectError({ messages: user('hi'), top_p: 0 }, 400, 'top_p', /found number 0/);
    await expectError({ messages: user('hi'), stream: 'yes' }, 400, 'stream', /boolean/);
    await expectError({ messages: user('hi'), stop: [1] }, 400, 'stop', /found/);
    await expectError({ messages: user('hi'), n: 100 }, 400, 'n', /at most 8/);
    await expectError({ messages: user('hi'), thinking_budget: -1 }, 400, 'thinking_budget', />=0/);
    await expectError(
      { messages: user('hi'), chat_template_kwargs: { enable_thinking: 'no' } },
      400,
      'chat_template_kwargs.enable_thinking',
      /boolean/,
    );
    await expectError({ messages: 'hello' }, 400, 'messages', /an array of messages, found "hello"/);
    await expectError({}, 400, 'messages', /found nothing/);
    await expectError({ messages: [] }, 400, 'messages', /at least one/);
    await expectError({ messages: [{ role: 'robot', content: 'x' }] }, 400, 'messages[0].role', /"robot"/);
    await expectError({ messages: [{ role: 'user', content: 42 }] }, 400, 'messages[0].content', /number 42/);
    await expectError(
      { messages: [{ role: 'user', content: [{ type: 'audio', data: 'x' }] }] },
      400,
      'messages[0].content[0].type',
      /"audio"/,
    );
    await expectError(
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
      400,
      'messages[0].content[0].image_url.url',
      /URL string, found nothing/,
    );
  });

  it('features the server cannot honour are refused, not silently dropped', async () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    await expectError({ messages: user('hi'), tools, tool_choice: 'required' }, 400, 'tool_choice', /not supported/);
    await expectError(
      { messages: user('hi'), tools: [{ type: 'function' }], tool_choice: 'none' },
      400,
      'tools[0]',
      /name/,
    );
    await expectError({ messages: user('hi'), presence_penalty: 0.5 }, 400, 'presence_penalty', /not supported/);
    await expectError({ messages: user('hi'), logit_bias: { '1': 5 } }, 400, 'logit_bias', /not supported/);
    await expectError({ messages: user('hi'), top_logprobs: 3 }, 400, 'top_logprobs', /needs logprobs: true/);
    await expectError(
      { messages: user('hi'), response_format: { type: 'json_object' } },
      400,
      'response_format',
      /not supported/,
    );
    await expectError({ messages: user('hi'), continue_final_message: true }, 400, 'messages', /assistant/);
  });

  it('unknown fields are ignored, like OpenAI does', async () => {
    const r = await post(s.url, {
      messages: user('hi'),
      max_tokens: 2,
      temperature: 0,
      my_extension: { a: 1 },
      metadata: { x: 'y' },
      store: false,
    });
    expect(r.status).toBe(200);
    expect((r.json.choices as unknown[]).length).toBe(1);
  });

  it('a model the server does not serve → 404; an unknown route → 404', async () => {
    const e = await expectError({ model: 'gpt-9', messages: user('hi') }, 404, 'model', /gpt-9.*does not exist/);
    expect(e.code).toBe('model_not_found');
    const r = await fetch(`${s.url}/v1/embeddings`, { method: 'POST' });
    expect(r.status).toBe(404);
    expect(errorOf((await r.json()) as Record<string, unknown>).code).toBe('route_not_found');
  });

  it('token limits: a completion that does not fit the context, a prompt that fills it', async () => {
    const e = await expectError(
      { messages: user('hi'), max_tokens: 600 },
      400,
      'max_tokens',
      /maximum context length is 512/,
    );
    expect(e.code).toBe('context_length_exceeded');
    await expectError({ messages: user('word '.repeat(600)) }, 400, 'messages', /maximum context length is 512/);
    await expectError({ messages: user('hi'), stop_token_ids: [10 ** 6] }, 400, 'stop_token_ids[0]', /vocabulary/);
  });
});

describe('media', () => {
  it('a bad data URL, bytes that are not an image', async () => {
    const p = 'messages[0].content[0].image_url.url';
    const e = await expectError({ messages: image('data:image/png;base64,@@@not-base64@@@') }, 400, p, /base64/);
    expect(e.code).toBe('invalid_data_url');
    await expectError({ messages: image('data:image/png;base64,') }, 400, p, /no payload/);
    const notImage = `data:image/png;base64,${Buffer.from('hello, not an image').toString('base64')}`;
    expect((await expectError({ messages: image(notImage) }, 400, p, /cannot read the image/)).code).toBe(
      'invalid_image',
    );
  });

  it('a huge image is refused from its header (413), before decoding', async () => {
    const big = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    const r = await post(s.url, { messages: image(`data:image/png;base64,${big.toString('base64')}`) });
    expect(r.status).toBe(413);
    const e = errorOf(r.json);
    expect(e.code).toBe('image_too_large');
    expect(e.message).toMatch(/2000x1000 = 2000000 pixels, more than the limit of 1000000/);
  });

  it('a body over the limit → 413', async () => {
    const r = await post(s.url, { messages: user('x'.repeat(3 * 2 ** 20)) });
    expect(r.status).toBe(413);
    expect(errorOf(r.json).code).toBe('body_too_large');
  });

  it('remote URLs are refused by default; file URLs only inside the media roots (symlinks resolved)', async () => {
    const p = 'messages[0].content[0].image_url.url';
    const e = await expectError({ messages: image('https://example.com/cat.png') }, 400, p, /remote URLs/);
    expect(e.code).toBe('remote_media_disabled');
    await expectError({ messages: image('ftp://example.com/cat.png') }, 400, p, /data:, file:\/\/ or http/);
    const ok = await post(s.url, { messages: image(pathToFileURL(join(root, 'ok.png')).href), max_tokens: 2 });
    expect(ok.status).toBe(200);
    for (const path of [outside, join(root, 'link.png'), join(root, '..', 'secret.png')]) {
      const r = await post(s.url, { messages: image(pathToFileURL(path).href) });
      expect(r.status).toBe(403);
      expect(errorOf(r.json).message).toMatch(/outside the media roots/);
    }
    await expectError({ messages: image(pathToFileURL(join(root, 'missing.png')).href) }, 400, p, /no such file/);
  });

  it('file URLs are refused when no media root is configured', async () => {
    const t = await serve();
    try {
      const r = await post(t.url, { messages: image(pathToFileURL(join(root, 'ok.png')).href) });
      expect(r.status).toBe(400);
      expect(errorOf(r.json).message).toMatch(/--media-root/);
    } finally {
      await t.server.close(0);
    }
  });

  it('after all of that the server still answers, and /metrics counted the rejections', async () => {
    const r = await post(s.url, { messages: image(small), max_tokens: 3, temperature: 0 });
    expect(r.status).toBe(200);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    expect(Number(/glmv_requests_rejected_total\{reason="invalid"\} (\d+)/.exec(m)?.[1])).toBeGreaterThan(20);
    expect(Number(/glmv_requests_rejected_total\{reason="too_large"\} (\d+)/.exec(m)?.[1])).toBeGreaterThanOrEqual(2);
  });
});

describe('configuration', () => {
  it('an API key is required when configured (401 in OpenAI shape), and accepted as a bearer token', async () => {
    const t = await serve({ apiKey: 'sesame' });
    try {
      const no = await post(t.url, { messages: user('hi'), max_tokens: 1 });
      expect(no.status).toBe(401);
      expect(errorOf(no.json).code).toBe('invalid_api_key');
      const wrong = await post(
        t.url,
        { messages: user('hi'), max_tokens: 1 },
        { headers: { authorization: 'Bearer x' } },
      );
      expect(wrong.status).toBe(401);
      const ok = await post(
        t.url,
        { messages: user('hi'), max_tokens: 1 },
        { headers: { authorization: 'Bearer sesame' } },
      );
      expect(ok.status).toBe(200);
      expect((await fetch(`${t.url}/health`)).status).toBe(200); // health and metrics stay open
    } finally {
      await t.server.close(0);
    }
  });

  it('--request-log writes one JSON line per request', async () => {
    const log = join(mkdtempSync(join(tmpdir(), 'glmv-log-')), 'serve.jsonl');
    const t = await serve({ requestLog: log });
    try {
      await post(t.url, { messages: user('hi'), max_tokens: 3, temperature: 0 });
      await post(t.url, { messages: user('hi'), max_tokens: 2, temperature: 0, stream: true, n: 2 });
      const lines = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatchObject({ endpoint: 'chat', stream: false, n: 1, completion_tokens: 3 });
      expect(lines[1]).toMatchObject({
        stream: true,
        n: 2,
        completion_tokens: 4,
        finish_reasons: ['length', 'length'],
      });
      expect(lines[0].prompt_tokens).toBeGreaterThan(0);
      expect(lines[0].ttft_ms).toBeGreaterThanOrEqual(0);
      expect(lines[0].total_ms).toBeGreaterThanOrEqual(lines[0].ttft_ms);
    } finally {
      await t.server.close(0);
    }
  });

  it('sampling defaults come from generation_config.json', () => {
    const d = mkdtempSync(join(tmpdir(), 'glmv-gen-'));
    expect(generationDefaults(d)).toEqual({});
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ temperature: 0.6, top_p: 0.9, top_k: 2 }));
    expect(generationDefaults(d)).toEqual({ temperature: 0.6, topP: 0.9, topK: 2 });
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ do_sample: false, temperature: 0.6 }));
    expect(generationDefaults(d)).toEqual({ temperature: 0 });
    writeFileSync(join(d, 'generation_config.json'), '{oops');
    expect(() => generationDefaults(d)).toThrow(/generation_config\.json: not valid JSON/);
  });
});
