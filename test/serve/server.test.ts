/**
 * Protocol conformance of `glmv serve` with the official `openai` client and the glmv client: non-stream and
 * stream, thinking on and off, reasoning fields, usage, n, stop, logprobs, images; every answer is checked against
 * the same model run directly (ChatModel / generate), so the server adds no drift.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../src/io/generate.js';
import { GlmvClient } from '../../src/serve/client.js';
import { post, type Served, serve, user } from './server-harness.js';

let s: Served;
let client: OpenAI;
let png = '';

beforeAll(async () => {
  s = await serve({ maxBatch: 8 });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const bytes = await sharp({ create: { width: 56, height: 84, channels: 3, background: '#3a7' } })
    .png()
    .toBuffer();
  png = `data:image/png;base64,${bytes.toString('base64')}`;
});
afterAll(async () => {
  await s.server.close(0);
});

type Msg = Record<string, unknown> & { content: string | null };

describe('chat completions (openai client)', () => {
  it('non-stream, thinking on and off: the same answer and token counts as the model run directly', async () => {
    for (const thinking of [true, false]) {
      const r = await client.chat.completions.create({
        model: 'tiny',
        messages: user('What is in the picture?'),
        max_tokens: 12,
        temperature: 0,
        // @ts-expect-error vLLM-style extension field
        chat_template_kwargs: { enable_thinking: thinking },
      });
      const ref = await s.chat.chat(user('What is in the picture?'), { thinking, maxNewTokens: 12, temperature: 0 });
      expect(r.object).toBe('chat.completion');
      expect(r.id).toMatch(/^chatcmpl-/);
      expect(r.model).toBe('tiny');
      const m = r.choices[0]!.message as unknown as Msg;
      expect(m.role).toBe('assistant');
      expect(m.content).toBe(ref.content);
      expect('reasoning_content' in m && 'reasoning' in m).toBe(true);
      expect(m.reasoning_content ?? '').toBe(ref.reasoning);
      expect(r.choices[0]!.finish_reason).toBe(ref.finishReason);
      expect(r.usage).toMatchObject({
        prompt_tokens: ref.promptTokens,
        completion_tokens: ref.completionTokens,
        total_tokens: ref.promptTokens + ref.completionTokens,
      });
    }
    // Thinking off really changed the prompt (GLM-4.1V: `/nothink` appended).
    const on = await s.chat.prepare(user('x'), true);
    const off = await s.chat.prepare(user('x'), false);
    expect(off.inputIds.length).toBeGreaterThan(on.inputIds.length);
  });

  it('stream: chunks add up to the non-stream answer, with role first, finish reason and a usage chunk last', async () => {
    const body = { model: 'tiny', messages: user('Describe it.'), max_tokens: 16, temperature: 0 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let role = '';
    let finish: string | null = null;
    const ids = new Set<string>();
    let usage: unknown = null;
    let n = 0;
    for await (const c of stream) {
      n++;
      ids.add(c.id);
      expect(c.object).toBe('chat.completion.chunk');
      if (c.usage) usage = c.usage;
      const ch = c.choices[0];
      if (!ch) continue;
      if (ch.delta.role) role = ch.delta.role;
      content += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    expect(n).toBeGreaterThan(3);
    expect(ids.size).toBe(1);
    expect(role).toBe('assistant');
    expect(content).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toMatchObject({ prompt_tokens: whole.usage!.prompt_tokens, completion_tokens: 16 });
  });

  it('SSE on the wire: data: lines of JSON chunks ending with data: [DONE]', async () => {
    const r = await post(s.url, { messages: user('hi'), max_tokens: 5, temperature: 0, stream: true });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(r.text.endsWith('data: [DONE]\n\n')).toBe(true);
    const events: string[] = [];
    const parser = createParser({ onEvent: (e) => events.push(e.data) });
    parser.feed(r.text);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
    // No usage chunk unless asked for.
    expect(chunks.every((c) => c.usage === undefined)).toBe(true);
  });

  it('reasoning: a continued thought comes back as reasoning_content, the forced answer as content', async () => {
    const messages = [...user('Add 2 and 3.'), { role: 'assistant' as const, content: '<think>I will add' }];
    const body = {
      model: 'tiny',
      messages,
      max_tokens: 8,
      temperature: 0,
      thinking_budget: 3,
      continue_final_message: true,
      add_generation_prompt: false,
    };
    const r = (await post(s.url, body)).json as {
      choices: Array<{ message: Msg; finish_reason: string }>;
      usage: { completion_tokens: number; completion_tokens_details: { reasoning_tokens: number } };
    };
    // Reference: the same prompt through generate, starting inside the thought.
    const base = await s.chat.prepare(user('Add 2 and 3.'), true);
    const ids = [...base.inputIds, ...s.chat.tokenizer.encode('<think>I will add')];
    const { outputs } = await generate(s.chat.model, [{ inputIds: ids }], {
      ...s.chat.generateOptions({ maxNewTokens: 8, thinkingBudget: 3, temperature: 0 }),
      startInReasoning: true,
    });
    const ref = outputs[0]!;
    expect(ref.forced).toBe(true);
    const m = r.choices[0]!.message;
    expect(m.reasoning_content).toBe(ref.reasoning);
    expect(m.reasoning).toBe(ref.reasoning);
    expect((m.reasoning_content as string).length).toBeGreaterThan(0);
    expect(m.content).toBe(ref.content);
    expect(m.content).toMatch(/^<answer>/); // GLM-4.1V force answering: `</think><answer>`
    expect(r.usage.completion_tokens_details.reasoning_tokens).toBe(3);
    // Streamed: the same split.
    const st = await client.chat.completions.create({ ...body, stream: true } as never);
    let reasoning = '';
    let content = '';
    for await (const c of st as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) {
      const d = c.choices[0]?.delta as Record<string, string> | undefined;
      reasoning += d?.reasoning_content ?? '';
      content += d?.content ?? '';
    }
    expect(reasoning).toBe(ref.reasoning);
    expect(content).toBe(ref.content);
  });

  it('n choices with a seed are reproducible, and differ from each other', async () => {
    const body = { model: 'tiny', messages: user('Pick a word.'), max_tokens: 10, temperature: 1.2, seed: 11, n: 2 };
    const a = await client.chat.completions.create(body);
    const b = await client.chat.completions.create(body);
    expect(a.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(a.choices.map((c) => c.message.content)).toEqual(b.choices.map((c) => c.message.content));
    expect(a.choices[0]!.message.content).not.toBe(a.choices[1]!.message.content);
    expect(a.usage!.completion_tokens).toBe(20);
    const c = await client.chat.completions.create({ ...body, seed: 12 });
    expect(c.choices[0]!.message.content).not.toBe(a.choices[0]!.message.content);
  });

  it('stop sequences cut the answer before them (non-stream and stream agree)', async () => {
    const body = { model: 'tiny', messages: user('Count.'), max_tokens: 24, temperature: 0 };
    const full = (await client.chat.completions.create(body)).choices[0]!.message.content!;
    // A stop sequence from the middle of the greedy answer.
    const at = Math.floor(full.length / 2);
    const stop = full.slice(at, at + 3);
    const expected = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...body, stop: [stop, 'never-appears-xyz'] });
    expect(r.choices[0]!.message.content).toBe(expected);
    expect(r.choices[0]!.finish_reason).toBe('stop');
    const st = await client.chat.completions.create({ ...body, stop, stream: true });
    let content = '';
    let finish = '';
    for await (const c of st) {
      content += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(content).toBe(expected);
    expect(finish).toBe('stop');
    const kept = await client.chat.completions.create({
      ...body,
      stop,
      // @ts-expect-error vLLM extension
      include_stop_str_in_output: true,
    });
    expect(kept.choices[0]!.message.content).toBe(expected + stop);
  });

  it('logprobs: one entry per generated token, equal to the model’s own', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: user('Hello'),
      max_tokens: 6,
      temperature: 0,
      logprobs: true,
    });
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp).toHaveLength(6);
    const ref = await s.chat.chat(user('Hello'), { maxNewTokens: 6, temperature: 0, returnLogprobs: true });
    expect(lp.map((x) => x.logprob.toFixed(4))).toEqual(ref.logprobs!.map((x) => x.toFixed(4)));
    for (const x of lp) {
      expect(x.logprob).toBeLessThanOrEqual(0);
      expect(Array.isArray(x.bytes)).toBe(true);
    }
  });

  it('an image as a data URL: same prompt tokens and answer as the model run directly', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      max_tokens: 8,
      temperature: 0,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: png } },
            { type: 'text', text: 'What colour?' },
          ],
        },
      ],
    });
    const ref = await s.chat.chat(
      [
        {
          role: 'user',
          content: [
            { type: 'image', image: png },
            { type: 'text', text: 'What colour?' },
          ],
        },
      ],
      { maxNewTokens: 8, temperature: 0 },
    );
    expect(r.usage!.prompt_tokens).toBe(ref.promptTokens);
    expect(ref.promptTokens).toBeGreaterThan(6); // the image tokens are counted
    expect(r.choices[0]!.message.content).toBe(ref.content);
  });

  it('a video as a data URL (video_url): the same prompt tokens and answer as the model run directly', async () => {
    const clip = join(mkdtempSync(join(tmpdir(), 'glmv-clip-')), 'clip.mp4');
    execFileSync(
      'ffmpeg',
      ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=56x56:rate=4', '-t', '1'].concat([
        '-pix_fmt',
        'yuv420p',
        clip,
      ]),
    );
    const bytes = readFileSync(clip);
    const url = `data:video/mp4;base64,${bytes.toString('base64')}`;
    const r = await post(s.url, {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'video_url', video_url: { url } },
            { type: 'text', text: 'What happens?' },
          ],
        },
      ],
      max_tokens: 4,
      temperature: 0,
    });
    const ref = await s.chat.chat(
      [
        {
          role: 'user',
          content: [
            { type: 'video', video: bytes },
            { type: 'text', text: 'What happens?' },
          ],
        },
      ],
      { maxNewTokens: 4, temperature: 0 },
    );
    expect(r.status).toBe(200);
    expect((r.json.usage as { prompt_tokens: number }).prompt_tokens).toBe(ref.promptTokens);
    expect(ref.promptTokens).toBeGreaterThan(12); // the video's tokens are counted
    expect((r.json.choices as Array<{ message: { content: string } }>)[0]!.message.content).toBe(ref.content);
    const bad = await post(s.url, {
      messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: 'data:video/mp4;base64,AAAA' } }] }],
    });
    expect(bad.status).toBe(400);
    expect((bad.json.error as { message: string }).message).toMatch(/cannot read as a video/);
  });

  it('models, health and metrics', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
    const h = await (await fetch(`${s.url}/health`)).json();
    expect(h).toMatchObject({ status: 'ok', model: 'tiny' });
    const m = await (await fetch(`${s.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(m)?.[1]);
    expect(value('glmv_time_to_first_token_seconds_count')).toBeGreaterThan(5);
    expect(value('glmv_generation_tokens_total')).toBeGreaterThan(50);
    expect(value('glmv_num_requests_waiting')).toBe(0);
    expect(value('glmv_num_requests_running')).toBe(0);
    expect(m).toMatch(/glmv_request_success_total\{finish_reason="length",endpoint="chat"\} \d+/);
    expect(m).toMatch(/glmv_e2e_request_latency_seconds_bucket/);
  });
});

describe('/v1/completions', () => {
  it('a raw prompt (text or token ids), stream and not, equals generate on the same tokens', async () => {
    const prompt = '[gMASK]<sop><|user|>\nhello<|assistant|>\n<think>';
    const ids = s.chat.tokenizer.encode(prompt, { addSpecialTokens: false });
    const { outputs } = await generate(s.chat.model, [{ inputIds: ids }], {
      ...s.chat.generateOptions({ maxNewTokens: 6, temperature: 0 }),
      startInReasoning: true,
    });
    const ref = outputs[0]!;
    const r = await client.completions.create({
      model: 'tiny',
      prompt,
      max_tokens: 6,
      temperature: 0,
      // @ts-expect-error vLLM extension
      add_special_tokens: false,
    });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]!.text).toBe(ref.text);
    expect(r.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: ref.tokens.length });
    const byIds = await client.completions.create({ model: 'tiny', prompt: ids, max_tokens: 6, temperature: 0 });
    expect(byIds.choices[0]!.text).toBe(ref.text);
    const st = await client.completions.create({
      model: 'tiny',
      prompt: ids,
      max_tokens: 6,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let finish = '';
    for await (const c of st) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(ref.text);
    expect(finish).toBe(ref.finishReason);
    // The legacy default max_tokens is 16; errors name the field.
    const d = await client.completions.create({ model: 'tiny', prompt: ids, temperature: 0 });
    expect(d.usage!.completion_tokens).toBeLessThanOrEqual(16);
    const bad = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: [1, 2, 10 ** 7] }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('prompt[2]');
  });
});

describe('the glmv client against glmv serve', () => {
  it('chat, and the two-phase thinking budget through chat continuation and /v1/completions', async () => {
    const c = new GlmvClient({ baseURL: `${s.url}/v1`, maxRetries: 0 });
    expect(await c.resolveModel()).toBe('tiny');
    const one = await c.chat({ messages: user('Hi'), maxTokens: 6, temperature: 0 });
    expect(one.usage).toMatchObject({ completionTokens: 6 });
    for (const continuation of ['chat', 'completions'] as const) {
      const r = await c.chatWithBudget({
        messages: user('Hi'),
        thinkingBudget: 4,
        answerTokens: 5,
        temperature: 0,
        continuation,
        style: 'glm41v',
        template: 'glm41v',
      });
      expect(r.phases[0]!.usage?.completionTokens).toBe(4);
      // A random model rarely opens <think>; phase 2 runs only when it did and did not close it.
      if (r.phases.length === 2) {
        expect(r.forcedAnswer || r.phases[0]!.finishReason === 'length').toBe(true);
        expect(r.phases[1]!.kind).toBe(continuation === 'chat' ? 'chat_continue' : 'completions');
        expect(r.phases[1]!.usage?.completionTokens).toBeGreaterThan(0);
      }
    }
  });

  it('a server with reasoningField "reasoning" sends only that field', async () => {
    const t = await serve({ reasoningField: 'reasoning' });
    try {
      const body = {
        messages: [...user('Q'), { role: 'assistant', content: '<think>hmm' }],
        max_tokens: 3,
        temperature: 0,
        continue_final_message: true,
      };
      const m = ((await post(t.url, body)).json.choices as Array<{ message: Msg }>)[0]!.message;
      expect(typeof m.reasoning).toBe('string');
      expect('reasoning_content' in m).toBe(false);
    } finally {
      await t.server.close(0);
    }
  });
});
