/**
 * Concurrency: requests decoded together match their solo answers; a client that disconnects frees its slot at
 * once (stream and non-stream); a full queue answers 429 with Retry-After; shutdown drains requests in flight.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { errorOf, post, serve, until, user } from './server-harness.js';

/** Starts a streamed request and resolves once its first chunk arrived; `abort` then disconnects. */
async function openStream(url: string, body: Record<string, unknown>) {
  const ac = new AbortController();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
    signal: ac.signal,
  });
  const reader = r.body!.getReader();
  const first = await reader.read();
  return {
    status: r.status,
    first: new TextDecoder().decode(first.value),
    abort: () => {
      ac.abort();
      reader.cancel().catch(() => {});
    },
  };
}

describe('concurrency', () => {
  it('concurrent requests are decoded together and each gets its solo answer', async () => {
    const s = await serve({ maxBatch: 8 });
    try {
      const qs = ['one', 'two two', 'three three three', 'four', 'five five', 'six'];
      const lens = [5, 17, 9, 12, 3, 20];
      const rs = await Promise.all(
        qs.map((q, i) => post(s.url, { messages: user(q), max_tokens: lens[i], temperature: 0, stream: i % 2 === 1 })),
      );
      for (const [i, q] of qs.entries()) {
        const ref = await s.chat.chat(user(q), { maxNewTokens: lens[i]!, temperature: 0 });
        let content: string;
        if (i % 2 === 1) {
          content = rs[i]!.text.split('\n\n')
            .filter((l) => l.startsWith('data: {'))
            .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '')
            .join('');
        } else content = (rs[i]!.json.choices as Array<{ message: { content: string } }>)[0]!.message.content;
        expect(content, `request ${i}`).toBe(ref.content);
      }
      expect(s.server.batcher.stats().peakBatch).toBeGreaterThan(1);
    } finally {
      await s.server.close(0);
    }
  });

  it('a streaming client that disconnects frees its slot for the next request', async () => {
    const s = await serve({ maxBatch: 1, maxQueue: 4 });
    try {
      const st = await openStream(s.url, { messages: user('go on forever'), max_tokens: 4000, temperature: 0 });
      expect(st.status).toBe(200);
      expect(st.first).toMatch(/^data: /);
      // A second request waits for the only slot.
      const next = post(s.url, { messages: user('me next'), max_tokens: 4, temperature: 0 });
      await until(() => s.server.batcher.stats().queued === 1);
      st.abort();
      const r = await next;
      expect(r.status).toBe(200);
      const stats = s.server.batcher.stats();
      expect(stats.finished.abort).toBe(1);
      expect(stats.generatedTokens).toBeLessThan(2000); // the aborted one stopped early
      expect(stats.running + stats.queued).toBe(0);
      const m = await (await fetch(`${s.url}/metrics`)).text();
      expect(m).toMatch(/glmv_request_success_total\{finish_reason="abort",endpoint="chat"\} 1/);
    } finally {
      await s.server.close(0);
    }
  });

  it('a non-streaming client that disconnects frees its slot too', async () => {
    const s = await serve({ maxBatch: 1 });
    try {
      const ac = new AbortController();
      const p = post(s.url, { messages: user('long'), max_tokens: 4000, temperature: 0 }, { signal: ac.signal });
      await until(() => s.server.batcher.stats().running === 1);
      ac.abort();
      await expect(p).rejects.toThrow();
      await until(() => s.server.batcher.stats().finished.abort === 1);
      expect(s.server.batcher.stats().running).toBe(0);
      expect(s.server.batcher.stats().generatedTokens).toBeLessThan(2000);
    } finally {
      await s.server.close(0);
    }
  });

  it('a full queue answers 429 with Retry-After (raw and through the openai client)', async () => {
    const s = await serve({ maxBatch: 1, maxQueue: 1 });
    try {
      const running = await openStream(s.url, { messages: user('a'), max_tokens: 4000, temperature: 0 });
      const queuedAc = new AbortController();
      const queued = post(s.url, { messages: user('b'), max_tokens: 4 }, { signal: queuedAc.signal }).catch(() => null);
      await until(() => s.server.batcher.stats().queued === 1);
      const r = await post(s.url, { messages: user('c'), max_tokens: 4 });
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const e = errorOf(r.json);
      expect(e.type).toBe('rate_limit_error');
      expect(e.code).toBe('queue_full');
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
      await expect(client.chat.completions.create({ model: 'tiny', messages: user('d') })).rejects.toMatchObject({
        status: 429,
      });
      running.abort();
      queuedAc.abort();
      await queued;
      await until(() => s.server.batcher.stats().running + s.server.batcher.stats().queued === 0);
      const m = await (await fetch(`${s.url}/metrics`)).text();
      expect(m).toMatch(/glmv_requests_rejected_total\{reason="queue_full"\} 2/);
    } finally {
      await s.server.close(0);
    }
  });

  it('shutdown lets requests in flight finish and refuses new ones with 503', async () => {
    const s = await serve({ maxBatch: 2 });
    const p = post(s.url, { messages: user('finish me'), max_tokens: 300, temperature: 0 });
    await until(() => s.server.batcher.stats().running === 1);
    const closing = s.server.close(20_000);
    const h = await fetch(`${s.url}/health`).catch(() => null);
    if (h) expect(h.status).toBe(503);
    const late = await post(s.url, { messages: user('too late'), max_tokens: 2 }).catch(() => null);
    if (late) expect(late.status).toBe(503);
    const r = await p;
    expect(r.status).toBe(200);
    expect((r.json.usage as { completion_tokens: number }).completion_tokens).toBe(300);
    await closing;
  });
});
