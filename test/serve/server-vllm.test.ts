/**
 * The vLLM fields users rely on, replayed through the official `openai` client against `glmv serve`, stream and
 * non-stream: top_logprobs (chat) and logprobs N (completions) against a full forward of the model, stop_reason,
 * return_token_ids, skip_special_tokens, reasoning with thinking off and thinking cut by the length limit,
 * mm_processor_kwargs, tools with tool_choice "none".
 *
 * Exact outputs (a response that closes thinking, writes box tags, a special token mid-text, the EOS token) come from
 * a scripted decoder: the real row machinery of io/generate (`stepRow`) fed logits that pick a given token list, in
 * place of the model, so the server's text handling is checked on known tokens.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noGrad, scope } from '../../src/engine/index.js';
import {
  type GenerateOptions,
  type GenerationInput,
  newRowState,
  type RowState,
  rowOutput,
  stepRow,
} from '../../src/io/generate.js';
import type { JobOptions, JobResult } from '../../src/serve/batcher.js';
import { post, type Served, serve, user } from './server-harness.js';

let s: Served;
let client: OpenAI;
let png = '';

beforeAll(async () => {
  s = await serve({ maxBatch: 8 });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  png = `data:image/png;base64,${(
    await sharp({ create: { width: 56, height: 84, channels: 3, background: '#a37' } })
      .png()
      .toBuffer()
  ).toString('base64')}`;
});
afterAll(async () => {
  await s.server.close(0);
});

// biome-ignore lint/suspicious/noExplicitAny: response bodies of the protocol under test, read field by field
type Any = Record<string, any>;

/** log softmax of the model over prompt + generated ids (one forward, no cache): row t predicts generated[t]. */
function referenceLogprobs(prompt: number[], generated: number[]): Float64Array[] {
  const all = [...prompt, ...generated];
  const { data, V } = noGrad(() =>
    scope(() => {
      const l = s.chat.model.forward({ inputIds: [all] }).logits;
      return { data: l.toFloat32(), V: l.shape[2]! };
    }),
  );
  return generated.map((_, t) => {
    const row = data.subarray((prompt.length - 1 + t) * V, (prompt.length + t) * V);
    let mx = Number.NEGATIVE_INFINITY;
    for (const v of row) mx = Math.max(mx, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    return Float64Array.from(row, (v) => v - mx - Math.log(z));
  });
}

/** The k best ids of a log-prob row, by a full sort (the reference for the server's top-k). */
const topK = (lp: Float64Array, k: number) =>
  Array.from(lp.keys())
    .sort((a, b) => lp[b]! - lp[a]! || a - b)
    .slice(0, k);

describe('logprobs', () => {
  it('chat top_logprobs (non-stream and stream) equal a full forward of the model', async () => {
    const body = {
      model: 'tiny',
      messages: user('Name three colours.'),
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
      top_logprobs: 5,
      return_token_ids: true,
    };
    const r = (await client.chat.completions.create(body as never)) as unknown as Any;
    const ch = r.choices[0];
    const ids: number[] = ch.token_ids;
    const prompt: number[] = r.prompt_token_ids;
    expect(prompt).toEqual([...(await s.chat.prepare(user('Name three colours.'))).inputIds]);
    expect(ids).toHaveLength(r.usage.completion_tokens);
    const lp = ch.logprobs.content as Array<Any>;
    expect(lp).toHaveLength(ids.length);
    const ref = referenceLogprobs(prompt, ids);
    const tok = s.chat.tokenizer;
    lp.forEach((e, t) => {
      expect(e.token).toBe(tok.decode([ids[t]!], { skipSpecialTokens: false }));
      expect(e.logprob).toBeCloseTo(ref[t]![ids[t]!]!, 4);
      const best = topK(ref[t]!, 5);
      expect(e.top_logprobs.map((x: Any) => x.token)).toEqual(
        best.map((id) => tok.decode([id], { skipSpecialTokens: false })),
      );
      for (const [k, x] of (e.top_logprobs as Any[]).entries()) expect(x.logprob).toBeCloseTo(ref[t]![best[k]!]!, 4);
      // Greedy: the chosen token is the most likely one.
      expect(e.top_logprobs[0].token).toBe(e.token);
    });
    // Streamed: the same entries, token ids in order across chunks, prompt ids on the first chunk only.
    const st = await client.chat.completions.create({ ...body, stream: true } as never);
    const streamed: Any[] = [];
    const sids: number[] = [];
    const chunks: Any[] = [];
    for await (const c of st as unknown as AsyncIterable<Any>) {
      chunks.push(c);
      const x = c.choices[0];
      if (!x) continue;
      streamed.push(...(x.logprobs?.content ?? []));
      sids.push(...(x.token_ids ?? []));
    }
    expect(chunks[0].prompt_token_ids).toEqual(prompt);
    expect(chunks.slice(1).every((c) => c.prompt_token_ids === undefined)).toBe(true);
    expect(sids).toEqual(ids);
    expect(streamed.map((e) => [e.token, e.logprob.toFixed(5), e.top_logprobs.length])).toEqual(
      lp.map((e) => [e.token, e.logprob.toFixed(5), 5]),
    );
  });

  it('top_logprobs needs logprobs and is at most 20', async () => {
    const a = await post(s.url, { messages: user('x'), top_logprobs: 3 });
    expect(a.status).toBe(400);
    expect((a.json.error as Any).param).toBe('top_logprobs');
    const b = await post(s.url, { messages: user('x'), logprobs: true, top_logprobs: 21 });
    expect(b.status).toBe(400);
  });

  it('completions logprobs N: tokens, token_logprobs, top_logprobs maps holding the chosen token, text offsets', async () => {
    const body = { model: 'tiny', prompt: 'The sky is', max_tokens: 6, temperature: 0, logprobs: 3 };
    const r = (await client.completions.create({ ...body, return_token_ids: true } as never)) as unknown as Any;
    const ch = r.choices[0];
    const ids: number[] = ch.token_ids;
    const prompt: number[] = ch.prompt_token_ids;
    expect(prompt).toEqual(s.chat.tokenizer.encode('The sky is', { addSpecialTokens: true }));
    const lp = ch.logprobs;
    const ref = referenceLogprobs(prompt, ids);
    expect(lp.tokens).toHaveLength(ids.length);
    let offset = 0;
    ids.forEach((id, t) => {
      expect(lp.token_logprobs[t]).toBeCloseTo(ref[t]![id]!, 4);
      const keys = Object.keys(lp.top_logprobs[t]);
      expect(keys.length).toBeLessThanOrEqual(4);
      expect(keys).toContain(lp.tokens[t]);
      for (const k of topK(ref[t]!, 3))
        expect(keys).toContain(s.chat.tokenizer.decode([k], { skipSpecialTokens: false }));
      expect(lp.text_offset[t]).toBe(offset);
      offset += lp.tokens[t].length;
    });
    // Streamed: the same tokens and offsets, chunk by chunk.
    const st = await client.completions.create({ ...body, stream: true } as never);
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const c of st as unknown as AsyncIterable<Any>) {
      const x = c.choices[0];
      tokens.push(...(x?.logprobs?.tokens ?? []));
      offsets.push(...(x?.logprobs?.text_offset ?? []));
    }
    expect(tokens).toEqual(lp.tokens);
    expect(offsets).toEqual(lp.text_offset);
  });
});

describe('stop_reason and token ids', () => {
  it('the matched stop string, the stop token id, or null at the length limit (stream and non-stream)', async () => {
    const body = {
      model: 'tiny',
      messages: user('Count to ten.'),
      max_tokens: 20,
      temperature: 0,
      return_token_ids: true,
    };
    const full = (await client.chat.completions.create(body as never)) as unknown as Any;
    expect(full.choices[0].finish_reason).toBe('length');
    expect(full.choices[0].stop_reason).toBeNull();
    const ids: number[] = full.choices[0].token_ids;
    // A token id first seen at position k ≥ 2: stopping on it ends the answer there, the stop token included.
    const k = ids.findIndex((id, i) => i >= 2 && !ids.slice(0, i).includes(id));
    const stopId = ids[k]!;
    const r = (await client.chat.completions.create({ ...body, stop_token_ids: [stopId] } as never)) as unknown as Any;
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].stop_reason).toBe(stopId);
    expect(r.choices[0].token_ids).toEqual(ids.slice(0, k + 1));
    const st = await client.chat.completions.create({ ...body, stop_token_ids: [stopId], stream: true } as never);
    let last: Any | null = null;
    const sids: number[] = [];
    for await (const c of st as unknown as AsyncIterable<Any>) {
      if (c.choices[0]?.finish_reason) last = c.choices[0];
      sids.push(...(c.choices[0]?.token_ids ?? []));
    }
    expect(last?.stop_reason).toBe(stopId);
    expect(sids).toEqual(ids.slice(0, k + 1));
    // A stop string from the middle of the text.
    const text: string = full.choices[0].message.content;
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    const rs = (await client.chat.completions.create({
      ...body,
      stop: ['zzz-never', stop],
    } as never)) as unknown as Any;
    expect(rs.choices[0].stop_reason).toBe(stop);
    expect(rs.choices[0].finish_reason).toBe('stop');
    // Completions report it the same way.
    const c = (await client.completions.create({
      model: 'tiny',
      prompt: 'one two',
      max_tokens: 5,
      temperature: 0,
      stop_token_ids: [],
    } as never)) as unknown as Any;
    expect(c.choices[0].stop_reason).toBeNull();
    expect(c.choices[0].policy_version).toBe(0);
  });
});

describe('mm_processor_kwargs and tools', () => {
  it('max_pixels shrinks the image (hand-computed token counts), min_pixels > max_pixels is a 400', async () => {
    const ask = (kw?: Any) =>
      client.chat.completions.create({
        model: 'tiny',
        max_tokens: 1,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: png } },
              { type: 'text', text: 'Hi' },
            ],
          },
        ],
        ...(kw ? { mm_processor_kwargs: kw } : {}),
      } as never);
    const base = (await ask()).usage!.prompt_tokens;
    // GLM's smart_resize counts the image as 2 frames (the temporal patch): 56×84 is 2·4704 = 9408 pixels.
    // Default min_pixels 12544 → β = √(12544/9408) → 112×84 → 8×6 patches → 12 merged tokens.
    // max_pixels 3136 (min follows it down) → β = √3 → 28×28 → 2×2 patches → 1 token.
    expect(base - (await ask({ max_pixels: 3136 })).usage!.prompt_tokens).toBe(11);
    // min_pixels 50176 → β = √(50176/9408) → 196×140 → 14×10 patches → 35 tokens.
    expect((await ask({ min_pixels: 50176 })).usage!.prompt_tokens - base).toBe(23);
    const bad = await post(s.url, {
      messages: user('x'),
      mm_processor_kwargs: { min_pixels: 5000, max_pixels: 4000 },
    });
    expect(bad.status).toBe(400);
    expect((bad.json.error as Any).param).toBe('mm_processor_kwargs.min_pixels');
    // Settings this server does not apply are refused, not ignored.
    const other = await post(s.url, { messages: user('x'), mm_processor_kwargs: { do_resize: false } });
    expect(other.status).toBe(400);
    expect((other.json.error as Any).message).toMatch(/do_resize/);
  });

  it('fps: a 2 s clip sampled at 1 fps instead of 2 gives one temporal group instead of two (hand-computed)', async () => {
    const clip = join(mkdtempSync(join(tmpdir(), 'glmv-fps-')), 'clip.mp4');
    execFileSync(
      'ffmpeg',
      ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=56x56:rate=4', '-t', '2'].concat([
        '-pix_fmt',
        'yuv420p',
        clip,
      ]),
    );
    const url = `data:video/mp4;base64,${readFileSync(clip).toString('base64')}`;
    const messages = [
      {
        role: 'user',
        content: [
          { type: 'video_url', video_url: { url } },
          { type: 'text', text: 'What happens?' },
        ],
      },
    ];
    const ask = async (kw?: Any) =>
      (
        (await client.chat.completions.create({
          model: 'tiny',
          messages,
          max_tokens: 1,
          return_token_ids: true,
          ...(kw ? { mm_processor_kwargs: kw } : {}),
        } as never)) as unknown as Any
      ).prompt_token_ids as number[];
    const videoTokens = (ids: number[]) => ids.filter((id) => id === s.chat.tokenizer.id('<|image|>')).length;
    const two = await ask();
    const one = await ask({ fps: 1 });
    // fps 2: 4 frames of 56×56; 4·56·56 = 12544 is the video min_pixels, so no resize: 4×4 patches → 2×2 = 4 merged
    // tokens per temporal group of 2 frames, 2 groups → 8. fps 1: 2 frames, 2·56·56 = 6272 < 12544 → β = √2 →
    // 84×84 → 6×6 patches → 9 tokens, 1 group → 9.
    expect(videoTokens(two)).toBe(2 * 4);
    expect(videoTokens(one)).toBe(9);
  });

  it('tools: listed in the prompt as GLM templates do, past calls written back; required / named choices are 400s', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
      },
    ];
    const ok = (await client.chat.completions.create({
      model: 'tiny',
      messages: [
        ...user('Weather in Paris?'),
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Rome", "days": 2}' } },
          ],
        },
        ...user('And in Paris?'),
      ],
      max_tokens: 3,
      tools,
      tool_choice: 'none',
      return_token_ids: true,
    } as never)) as unknown as Any;
    expect(ok.choices[0].message.tool_calls).toEqual([]);
    const prompt = s.chat.tokenizer.decode(ok.prompt_token_ids, { skipSpecialTokens: false });
    expect(prompt).toContain(`<|system|>\n# Tools`);
    expect(prompt).toContain(`<tools>\n${JSON.stringify(tools[0])}\n</tools>`);
    expect(prompt).toContain(
      '<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Rome</arg_value>\n<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>',
    );
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }]) {
      const r = await post(s.url, { messages: user('x'), tools, tool_choice });
      expect(r.status).toBe(400);
      expect((r.json.error as Any).code).toBe('unsupported_parameter');
    }
    const bad = await post(s.url, { messages: user('x'), tools: [{ type: 'function' }] });
    expect((bad.json.error as Any).param).toBe('tools[0]');
    const badArgs = await post(s.url, {
      messages: [
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: '{oops' } }] },
        ...user('x'),
      ],
    });
    expect((badArgs.json.error as Any).param).toBe('messages[0].tool_calls[0].function.arguments');
  });
});

/** A batcher stand-in that decodes a fixed token list per request with the real row machinery (no model). */
class ScriptedBatcher {
  policyVersion = 4;
  script: number[] = [];
  submit(input: GenerationInput, opts: JobOptions) {
    const V = s.chat.model.config.text.vocabSize;
    const gen = opts as unknown as GenerateOptions;
    const job = {
      row: null as RowState | null,
      ended: false,
      end() {
        job.ended = true;
      },
      result: null as unknown as Promise<JobResult>,
    };
    const script = [...this.script];
    const version = this.policyVersion;
    job.result = (async () => {
      await new Promise((r) => setImmediate(r));
      const row = newRowState(input.inputIds, gen, 0);
      job.row = row;
      const stop = new Set(gen.stopTokenIds);
      for (const id of script) {
        const logits = new Float32Array(V).fill(-20);
        logits[id] = 20;
        if (stepRow(row, 0, { logits, probs: null, logprobs: null }, gen, stop, job.ended) === null) break;
      }
      const out = rowOutput(row, input.inputIds.length, gen);
      return { ...out, finishReason: row.done ?? 'length', queueMs: 0, ttftMs: 0, totalMs: 0, policyVersion: version };
    })();
    return job;
  }
}

describe('text handling on known outputs (scripted decoder)', () => {
  let sc: Served;
  let sclient: OpenAI;
  const scripted = new ScriptedBatcher();
  const ids = (...pieces: string[]) => pieces.flatMap((p) => s.chat.tokenizer.encode(p));

  beforeAll(async () => {
    sc = await serve();
    (sc.server.service as unknown as { batcher: unknown }).batcher = scripted;
    sclient = new OpenAI({ baseURL: `${sc.url}/v1`, apiKey: 'x', maxRetries: 0 });
  });
  afterAll(async () => {
    await sc.server.close(0);
  });

  /** Non-stream and stream of one request; both must agree. */
  async function both(body: Any): Promise<{ msg: Any; choice: Any; usage: Any; streamed: Any }> {
    const r = (await sclient.chat.completions.create({
      model: 'tiny',
      messages: user('q'),
      ...body,
    } as never)) as unknown as Any;
    const st = await sclient.chat.completions.create({
      model: 'tiny',
      messages: user('q'),
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    } as never);
    const streamed: Any = { reasoning: null, content: '', finish: null, stop_reason: undefined, usage: null };
    for await (const c of st as unknown as AsyncIterable<Any>) {
      if (c.usage) streamed.usage = c.usage;
      const x = c.choices[0];
      if (!x) continue;
      if (x.delta.reasoning_content != null)
        streamed.reasoning = (streamed.reasoning ?? '') + x.delta.reasoning_content;
      streamed.content += x.delta.content ?? '';
      if (x.delta.tool_calls) streamed.tool_calls = x.delta.tool_calls;
      if (x.finish_reason) {
        streamed.finish = x.finish_reason;
        streamed.stop_reason = x.stop_reason;
        streamed.policy_version = x.policy_version;
      }
    }
    return { msg: r.choices[0].message, choice: r.choices[0], usage: r.usage, streamed };
  }

  it('skip_special_tokens (default true) keeps think / answer / box tags and drops other special tokens', async () => {
    scripted.script = ids(
      '<think>',
      'add',
      '</think>',
      '<answer>',
      'The sum is ',
      '<|begin_of_box|>',
      '4',
      '<|end_of_box|>',
      '<|assistant|>',
      '</answer>',
      '<|user|>',
    );
    const on = await both({ max_tokens: 40 });
    expect(on.msg.reasoning_content).toBe('add');
    expect(on.msg.content).toBe('<answer>The sum is <|begin_of_box|>4<|end_of_box|></answer>');
    expect(on.streamed.content).toBe(on.msg.content);
    expect(on.streamed.reasoning).toBe('add');
    // <|user|> ended the turn: a stop token that is not the EOS, so stop_reason is its id (vLLM).
    expect(on.choice.finish_reason).toBe('stop');
    expect(on.choice.stop_reason).toBe(s.chat.tokenizer.id('<|user|>'));
    expect(on.streamed.stop_reason).toBe(on.choice.stop_reason);
    expect(on.choice.policy_version).toBe(4);
    expect(on.streamed.policy_version).toBe(4);
    const off = await both({ max_tokens: 40, skip_special_tokens: false });
    expect(off.msg.content).toBe('<answer>The sum is <|begin_of_box|>4<|end_of_box|><|assistant|></answer>');
    expect(off.streamed.content).toBe(off.msg.content);
  });

  it('tool_choice auto: GLM <tool_call> blocks become tool_calls (non-stream and stream), finish_reason tool_calls', async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } },
        },
      },
    ];
    const call =
      '<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>42</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>';
    scripted.script = ids('<think>', 'need data', '</think>', 'Checking.', call, '<|observation|>');
    const r = await both({ max_tokens: scripted.script.length + 4, tools });
    expect(r.choice.finish_reason).toBe('tool_calls');
    expect(r.msg.content).toBe('Checking.');
    expect(r.msg.reasoning_content).toBe('need data');
    const calls = r.msg.tool_calls as Any[];
    expect(calls).toHaveLength(1);
    expect(calls[0].type).toBe('function');
    expect(calls[0].id).toMatch(/^call_/);
    // "city" is a string parameter (kept as text), "days" an integer (parsed).
    expect(JSON.parse(calls[0].function.arguments)).toEqual({ city: '42', days: 3 });
    expect(calls[0].function.name).toBe('get_weather');
    expect(r.streamed.content).toBe('Checking.');
    expect(r.streamed.finish).toBe('tool_calls');
    expect(r.streamed.tool_calls.map((c: Any) => [c.index, c.function.name, c.function.arguments])).toEqual([
      [0, 'get_weather', calls[0].function.arguments],
    ]);
    // tool_choice none: the model's text is left alone.
    const none = await both({ max_tokens: scripted.script.length + 4, tools, tool_choice: 'none' });
    expect(none.msg.tool_calls).toEqual([]);
    expect(none.msg.content).toBe(`Checking.${call}`);
    expect(none.choice.finish_reason).toBe('stop');
  });

  it('the EOS token gives stop_reason null', async () => {
    scripted.script = ids('<think>', 'x', '</think>', 'y', '<|endoftext|>');
    const r = await both({ max_tokens: 10 });
    expect(r.choice.finish_reason).toBe('stop');
    expect(r.choice.stop_reason).toBeNull();
    expect(r.streamed.stop_reason).toBeNull();
  });

  it('thinking off: the empty <think></think> is no reasoning (null, 0 reasoning tokens)', async () => {
    scripted.script = ids('<think>', '</think>', '<answer>', 'hi', '</answer>', '<|endoftext|>');
    const off = await both({ max_tokens: 10, chat_template_kwargs: { enable_thinking: false } });
    expect(off.msg.reasoning_content).toBeNull();
    expect(off.msg.reasoning).toBeNull();
    expect(off.msg.content).toBe('<answer>hi</answer>');
    expect(off.usage.completion_tokens_details.reasoning_tokens).toBe(0);
    expect(off.streamed.reasoning).toBeNull();
    expect(off.streamed.content).toBe('<answer>hi</answer>');
    // Thinking on, the same output: an (empty) thought was written, counted up to </think>.
    const on = await both({ max_tokens: 10 });
    expect(on.msg.reasoning_content).toBe('');
    expect(on.usage.completion_tokens_details.reasoning_tokens).toBe(1);
  });

  it('thinking cut by the length limit stays reasoning, content empty (stream and non-stream)', async () => {
    scripted.script = ids('<think>', 'Let me count the circles');
    const n = scripted.script.length;
    const r = await both({ max_tokens: n });
    expect(r.choice.finish_reason).toBe('length');
    expect(r.choice.stop_reason).toBeNull();
    expect(r.msg.reasoning_content).toBe('Let me count the circles');
    expect(r.msg.content).toBe('');
    expect(r.streamed.reasoning).toBe('Let me count the circles');
    expect(r.streamed.content).toBe('');
    expect(r.usage.completion_tokens_details.reasoning_tokens).toBe(n);
  });
});
