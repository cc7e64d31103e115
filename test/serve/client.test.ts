import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChat } from '../../src/io/template.js';
import {
  answerBoxes,
  answerBoxesPixels,
  GlmvClient,
  normalizeMessage,
  normalizeText,
  StreamNormalizer,
} from '../../src/serve/client.js';
import { chatJson, type MockServer, startMockOpenAI } from '../eval/mock-openai.js';

const FIX = join(import.meta.dirname, '../fixtures/serve');
const json = (name: string) => JSON.parse(readFileSync(join(FIX, name), 'utf8'));
const sseText = (name: string) => readFileSync(join(FIX, name), 'utf8');

/** Expected normalised view of each recorded shape. */
const EXPECTED: Record<
  string,
  {
    reasoning: string | null;
    content: string;
    answer: string | null;
    thinkClosed: boolean;
    finishReason: string;
    source: string;
    usage?: { promptTokens: number; completionTokens: number; reasoningTokens?: number };
  }
> = {
  'vllm-0.10-reasoning_content.json': {
    reasoning: 'The chart shows 2019 at 42 and 2020 at 35.\nSo the drop is 7.',
    content: 'The value decreased by <|begin_of_box|>7<|end_of_box|>.',
    answer: '7',
    thinkClosed: true,
    finishReason: 'stop',
    source: 'reasoning_content',
    usage: { promptTokens: 1032, completionTokens: 69 },
  },
  'vllm-0.17-reasoning.json': {
    reasoning: 'The red mug sits on the left side of the desk.',
    content: '<|begin_of_box|>[120,45,380,290]<|end_of_box|>',
    answer: '[120,45,380,290]',
    thinkClosed: true,
    finishReason: 'stop',
    source: 'reasoning',
  },
  'vllm-0.12-both-fields.json': {
    reasoning: 'Option B matches the diagram.',
    content: '<|begin_of_box|>B<|end_of_box|>',
    answer: 'B',
    thinkClosed: true,
    finishReason: 'stop',
    source: 'reasoning_content',
  },
  'sglang-reasoning_content.json': {
    reasoning: 'Three of the four slices are shaded.',
    content: 'The answer is <|begin_of_box|>\\frac{3}{4}<|end_of_box|>',
    answer: '\\frac{3}{4}',
    thinkClosed: true,
    finishReason: 'stop',
    source: 'reasoning_content',
    // reasoning_tokens 0 at the top level means "not counted" in SGLang: not reported.
    usage: { promptTokens: 640, completionTokens: 60 },
  },
  'sglang-37645-skipped-think.json': {
    reasoning: 'There are <|begin_of_box|>5<|end_of_box|> apples.',
    content: '',
    answer: '5',
    thinkClosed: false,
    finishReason: 'stop',
    source: 'reasoning_content',
    usage: { promptTokens: 300, completionTokens: 12, reasoningTokens: 12 },
  },
  'vllm-glm45-nothink.json': {
    reasoning: null,
    content: '<|begin_of_box|>Paris<|end_of_box|>',
    answer: 'Paris',
    thinkClosed: true,
    finishReason: 'stop',
    source: 'none',
  },
  'vllm-no-parser-glm41v.json': {
    reasoning: 'Count the triangles: 3 large, 1 small.',
    content: 'There are <|begin_of_box|>4<|end_of_box|> triangles.',
    answer: '4',
    thinkClosed: true,
    finishReason: 'stop',
    source: 'tags',
  },
  'vllm-truncated-thinking.json': {
    reasoning: 'First, compute the area of the triangle: base 6, height',
    content: '',
    answer: 'First, compute the area of the triangle: base 6, height',
    thinkClosed: false,
    finishReason: 'length',
    source: 'reasoning_content',
  },
};

const STREAMS: Record<string, string> = {
  'stream-vllm-0.10-reasoning_content.sse': 'reasoning_content',
  'stream-vllm-0.17-reasoning.sse': 'reasoning',
  'stream-sglang-reasoning_content.sse': 'reasoning_content',
  'stream-no-parser-split-tags.sse': 'tags',
  'stream-vllm-truncated.sse': 'reasoning_content',
};

describe('normalizeMessage on recorded non-stream shapes', () => {
  for (const [file, exp] of Object.entries(EXPECTED)) {
    it(file, () => {
      const resp = json(file);
      const n = normalizeMessage(resp.choices[0].message, resp.choices[0].finish_reason);
      expect(n.reasoning).toBe(exp.reasoning);
      expect(n.content).toBe(exp.content);
      expect(n.answer).toBe(exp.answer);
      expect(n.thinkClosed).toBe(exp.thinkClosed);
      expect(n.finishReason).toBe(exp.finishReason);
      expect(n.reasoningSource).toBe(exp.source);
      expect(n.truncatedThinking).toBe(exp.finishReason === 'length' && !exp.thinkClosed);
    });
  }

  it('strict extraction refuses a box that only sits in the reasoning (SGLang #37645)', () => {
    const resp = json('sglang-37645-skipped-think.json');
    const strict = normalizeMessage(resp.choices[0].message, 'stop', { mode: 'strict' });
    expect(strict.answer).toBeNull();
    expect(strict.parsed.box).toMatchObject({ ok: false });
  });

  it('a template that pre-opens <think>: raw content without the opening tag', () => {
    const n = normalizeMessage(
      { content: 'Look at the left side.</think>\n<|begin_of_box|>left<|end_of_box|>' },
      'stop',
      {
        prefilledThink: true,
      },
    );
    expect(n.reasoning).toBe('Look at the left side.');
    expect(n.answer).toBe('left');
    expect(n.text.startsWith('<think>')).toBe(true);
  });

  it('content as an array of text parts, odd shapes never throw', () => {
    expect(
      normalizeMessage({
        content: [
          { type: 'text', text: 'a ' },
          { type: 'text', text: 'b' },
        ],
      }).content,
    ).toBe('a b');
    expect(normalizeMessage(null).content).toBe('');
    expect(normalizeMessage({ content: 42 }).content).toBe('');
  });

  it('normalizeText reconstructs the same view from raw text', () => {
    const n = normalizeText('<think>r</think><answer><|begin_of_box|>x<|end_of_box|></answer>', 'stop');
    expect(n).toMatchObject({ reasoning: 'r', answer: 'x', reasoningSource: 'tags', thinkClosed: true });
  });

  it('grounding helpers read boxes from the answer and convert to pixels', () => {
    const resp = json('vllm-0.17-reasoning.json');
    const n = normalizeMessage(resp.choices[0].message, 'stop');
    expect(answerBoxes(n).map((b) => b.box)).toEqual([[120, 45, 380, 290]]);
    expect(answerBoxesPixels(n, { width: 1000, height: 500 })).toEqual([[120, 22.5, 380, 145]]);
  });
});

function parseSse(text: string): unknown[] {
  return text
    .split('\n\n')
    .map((b) => b.trim())
    .filter((b) => b.startsWith('data: ') && b !== 'data: [DONE]')
    .map((b) => JSON.parse(b.slice(6)));
}

describe('StreamNormalizer on recorded SSE shapes', () => {
  for (const [file, source] of Object.entries(STREAMS)) {
    it(`${file} gives the same result as the non-stream shape`, () => {
      const acc = new StreamNormalizer();
      let shownR = '';
      let shownC = '';
      for (const c of parseSse(sseText(file))) {
        const d = acc.push(c);
        shownR += d.reasoning;
        shownC += d.content;
      }
      const tail = acc.flush();
      shownR += tail.reasoning;
      shownC += tail.content;
      const r = acc.result();
      expect(r.reasoningSource).toBe(source);
      // Display deltas never leak tag fragments.
      expect(shownR + shownC).not.toMatch(/<\/?th|<\/?ans/);
      expect(shownR.trim()).toBe(r.reasoning ?? '');
      if (file.includes('truncated')) {
        expect(r).toMatchObject({ thinkClosed: false, truncatedThinking: true, finishReason: 'length' });
        expect(r.reasoning).toBe('First, compute the area of the triangle: base 6, height');
      } else {
        expect(r.thinkClosed).toBe(true);
        expect(r.finishReason).toBe('stop');
        expect(shownC.trim()).toBe(r.content);
      }
    });
  }

  it('exact values of the vLLM 0.10 stream', () => {
    const acc = new StreamNormalizer();
    for (const c of parseSse(sseText('stream-vllm-0.10-reasoning_content.sse'))) acc.push(c);
    const r = acc.result();
    expect(r.reasoning).toBe('The bar for March is tallest.');
    expect(r.answer).toBe('March');
    expect(acc.usage).toEqual({ promptTokens: 420, completionTokens: 17 });
  });

  it('exact values of the raw-tag stream (tags split across chunks)', () => {
    const acc = new StreamNormalizer();
    for (const c of parseSse(sseText('stream-no-parser-split-tags.sse'))) acc.push(c);
    const r = acc.result();
    expect(r.reasoning).toBe('Count: 3 large, 1 small.');
    expect(r.content).toBe('There are <|begin_of_box|>4<|end_of_box|> triangles.');
    expect(r.answer).toBe('4');
  });
});

describe('GlmvClient against a mock server', () => {
  let server: MockServer;
  let client: GlmvClient;
  beforeAll(async () => {
    server = await startMockOpenAI(
      (body) => {
        const model = String(body.model);
        if (model.startsWith('fixture:')) {
          const name = model.slice(8);
          return body.stream ? { sse: sseText(name) } : { json: json(name) };
        }
        return { json: chatJson({ content: 'ok' }) };
      },
      ['first-model', 'second'],
    );
    client = new GlmvClient({ baseURL: server.url, maxRetries: 0 });
  });
  afterAll(() => server.close());

  it('non-stream requests through the openai SDK give the recorded expectations', async () => {
    for (const [file, exp] of Object.entries(EXPECTED)) {
      const r = await client.chat({ model: `fixture:${file}`, messages: [{ role: 'user', content: 'q' }] });
      expect(r.answer, file).toBe(exp.answer);
      expect(r.reasoning, file).toBe(exp.reasoning);
      expect(r.reasoningSource, file).toBe(exp.source);
      if (exp.usage) expect(r.usage, file).toEqual(exp.usage);
    }
  });

  it('streamed requests equal the non-stream parse of the same answer', async () => {
    const pairs: Array<[string, string]> = [
      ['stream-vllm-0.10-reasoning_content.sse', 'March'],
      ['stream-vllm-0.17-reasoning.sse', '[120,45,380,290]'],
      ['stream-sglang-reasoning_content.sse', '\\frac{3}{4}'],
      ['stream-no-parser-split-tags.sse', '4'],
    ];
    for (const [file, answer] of pairs) {
      const deltas: string[] = [];
      const r = await client.chatStream({ model: `fixture:${file}`, messages: [{ role: 'user', content: 'q' }] }, (d) =>
        deltas.push(d.reasoning + d.content),
      );
      expect(r.answer, file).toBe(answer);
      expect(deltas.length, file).toBeGreaterThan(1);
    }
    const last = server.requests.at(-1)!.body;
    expect(last.stream).toBe(true);
    expect(last.stream_options).toEqual({ include_usage: true });
  });

  it('sends enable_thinking as a top-level chat_template_kwargs field and resolves the model', async () => {
    await client.chat({
      messages: [{ role: 'user', content: 'hi' }],
      thinking: false,
      maxTokens: 7,
      seed: 3,
      extraBody: { top_k: 1 },
    });
    const body = server.requests.at(-1)!.body;
    expect(body.model).toBe('first-model');
    expect(body.chat_template_kwargs).toEqual({ enable_thinking: false });
    expect(body.max_tokens).toBe(7);
    expect(body.seed).toBe(3);
    expect(body.top_k).toBe(1);
    expect(body.extra_body).toBeUndefined();
  });

  it('bad input gets clear errors', async () => {
    expect(() => new GlmvClient({ baseURL: 'localhost:8000' })).toThrow(/expected an http\(s\) URL/);
    expect(() => new GlmvClient({ baseURL: 'http://x/v1', timeoutMs: -1 })).toThrow(/timeoutMs/);
    await expect(client.chat({ messages: [] })).rejects.toThrow(/non-empty messages/);
    await expect(client.chat({ messages: [{ role: 'user', content: 'x' }], maxTokens: 0 })).rejects.toThrow(
      /maxTokens/,
    );
  });
});

describe('retries and errors', () => {
  it('retries 503 and succeeds; a 400 fails at once with the status in the message', async () => {
    let calls = 0;
    const server = await startMockOpenAI((body) => {
      if (body.model === 'bad') return { status: 400, body: { error: { message: 'unknown field' } } };
      calls++;
      if (calls <= 2)
        return { status: 503, body: { error: { message: 'overloaded' } }, headers: { 'retry-after-ms': '1' } };
      return { json: chatJson({ content: '<|begin_of_box|>ok<|end_of_box|>' }) };
    });
    try {
      const client = new GlmvClient({ baseURL: server.url, model: 'm', maxRetries: 3 });
      const r = await client.chat({ messages: [{ role: 'user', content: 'x' }] });
      expect(r.answer).toBe('ok');
      expect(calls).toBe(3);
      const before = server.requests.length;
      await expect(client.chat({ model: 'bad', messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow(
        /HTTP 400/,
      );
      expect(server.requests.length - before).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('an unreachable server fails with a clear message', async () => {
    const client = new GlmvClient({ baseURL: 'http://127.0.0.1:9/v1', model: 'm', maxRetries: 0, timeoutMs: 2000 });
    await expect(client.chat({ messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow(
      /127\.0\.0\.1:9\/v1\/chat\/completions/,
    );
  });
});

describe('two-phase thinking budget', () => {
  const messages = [{ role: 'user' as const, content: 'What is 6*7?' }];

  it('phase 1 closes thinking within the budget: a single call', async () => {
    const server = await startMockOpenAI(() => ({
      json: chatJson({ reasoning_content: 'six sevens', content: '<|begin_of_box|>42<|end_of_box|>' }),
    }));
    try {
      const client = new GlmvClient({ baseURL: server.url, model: 'm' });
      const r = await client.chatWithBudget({ messages, thinkingBudget: 64 });
      expect(r.answer).toBe('42');
      expect(r.forcedAnswer).toBe(false);
      expect(r.phases).toHaveLength(1);
      expect(server.requests[0]!.body.max_tokens).toBe(64);
    } finally {
      await server.close();
    }
  });

  it('chat continuation: appends </think> and continues the assistant turn', async () => {
    const server = await startMockOpenAI((body) => {
      const msgs = body.messages as Array<{ role: string; content: string }>;
      if (msgs.at(-1)!.role === 'assistant')
        // A reasoning parser files the continuation under reasoning: the client must still use it.
        return {
          json: chatJson({ reasoning_content: '<|begin_of_box|>42', content: '<|end_of_box|>' }, 'stop', {
            prompt_tokens: 30,
            completion_tokens: 4,
            total_tokens: 34,
          }),
        };
      return {
        json: chatJson({ reasoning_content: 'six times seven is', content: null }, 'length', {
          prompt_tokens: 20,
          completion_tokens: 8,
          total_tokens: 28,
        }),
      };
    });
    try {
      const client = new GlmvClient({ baseURL: server.url, model: 'm' });
      const r = await client.chatWithBudget({ messages, thinkingBudget: 8, answerTokens: 16, thinking: true });
      expect(server.requests).toHaveLength(2);
      const second = server.requests[1]!.body;
      expect(second.continue_final_message).toBe(true);
      expect(second.add_generation_prompt).toBe(false);
      expect(second.max_tokens).toBe(16);
      expect(second.chat_template_kwargs).toEqual({ enable_thinking: true });
      expect((second.messages as Array<{ content: string }>).at(-1)).toEqual({
        role: 'assistant',
        content: '<think>six times seven is</think>\n',
      });
      expect(r).toMatchObject({ answer: '42', forcedAnswer: true, truncatedThinking: true, thinkClosed: true });
      expect(r.text).toBe('<think>six times seven is</think>\n<|begin_of_box|>42<|end_of_box|>');
      expect(r.usage).toEqual({ promptTokens: 50, completionTokens: 12 });
      expect(r.phases.map((p) => p.kind)).toEqual(['chat', 'chat_continue']);
    } finally {
      await server.close();
    }
  });

  it('completions continuation: the rendered GLM-4.1V prompt plus the forced prefix', async () => {
    const server = await startMockOpenAI((_body, path) => {
      if (path === '/v1/completions')
        return {
          json: {
            id: 'c',
            object: 'text_completion',
            model: 'm',
            choices: [{ index: 0, text: '<|begin_of_box|>42<|end_of_box|></answer>', finish_reason: 'stop' }],
          },
        };
      return { json: chatJson({ content: '<think>six times seven' }, 'length') };
    });
    try {
      const client = new GlmvClient({ baseURL: server.url, model: 'm' });
      const r = await client.chatWithBudget({
        messages,
        thinkingBudget: 8,
        continuation: 'completions',
        style: 'glm41v',
        template: 'glm41v',
      });
      const body = server.requests[1]!.body;
      expect(server.requests[1]!.path).toBe('/v1/completions');
      expect(body.prompt).toBe(`${renderChat('glm41v', messages)}<think>six times seven</think><answer>`);
      expect(body.add_special_tokens).toBe(false);
      expect(r.answer).toBe('42');
      expect(r.parsed.format.ok).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('completions continuation refuses image prompts before spending a request', async () => {
    const client = new GlmvClient({ baseURL: 'http://127.0.0.1:9/v1', model: 'm', maxRetries: 0 });
    await expect(
      client.chatWithBudget({
        thinkingBudget: 8,
        continuation: 'completions',
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
        ],
      }),
    ).rejects.toThrow(/text only.*continuation "chat"/);
  });

  it('thinking off: one call with the whole budget', async () => {
    const server = await startMockOpenAI(() => ({ json: chatJson({ content: '<|begin_of_box|>42<|end_of_box|>' }) }));
    try {
      const client = new GlmvClient({ baseURL: server.url, model: 'm' });
      const r = await client.chatWithBudget({ messages, thinkingBudget: 8, answerTokens: 4, thinking: false });
      expect(r.answer).toBe('42');
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0]!.body.max_tokens).toBe(12);
    } finally {
      await server.close();
    }
  });
});
