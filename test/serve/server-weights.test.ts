/**
 * Weight updates on a running `glmv serve` (--weight-updates): only with the API key; from a checkpoint folder or a
 * safetensors body; requests in flight finish with the weights they started with; every response reports the
 * `policy_version` it was sampled with; bad weights change nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveSafetensors, type Tensor } from '../../src/engine/index.js';
import { ChatModel } from '../../src/io/chat.js';
import { createServer } from '../../src/serve/server.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';
import { type Served, serve, until, user } from './server-harness.js';

// biome-ignore lint/suspicious/noExplicitAny: response bodies of the protocol under test, read field by field
type Json = Record<string, any>;

const KEY = 'k-weights';
let s: Served;
let client: OpenAI;
const tmp = mkdtempSync(join(tmpdir(), 'glmv-weights-test-'));

beforeAll(async () => {
  // A model of its own (the harness shares one between files): these tests change its weights.
  s = await serve({ apiKey: KEY, weightUpdates: true });
  s.chat = await ChatModel.load(s.dir);
  await s.server.close(0);
  const server = await createServer({ chat: s.chat, modelName: 'tiny', apiKey: KEY, weightUpdates: true });
  s = { ...s, server, url: await server.listen(0, '127.0.0.1') };
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await s.server.close(0);
  rmSync(tmp, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${KEY}` };
const greedy = async (max = 8) => {
  const r = (await client.chat.completions.create({
    model: 'tiny',
    messages: user('Describe the weather.'),
    max_tokens: max,
    temperature: 0,
    return_token_ids: true,
  } as never)) as unknown as Json;
  return { ids: r.choices[0].token_ids as number[], version: r.policy_version as number, choice: r.choices[0] };
};
function safetensorsBody(tensors: Map<string, Tensor>): Buffer {
  const path = join(tmp, `body-${Math.random()}.safetensors`);
  saveSafetensors(path, tensors);
  return readFileSync(path);
}
const pushTensors = (body: Buffer, query = '', key = KEY) =>
  fetch(`${s.url}/update_weights_from_tensor${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
    body,
  });

describe('weight updates', () => {
  it('need an API key: refused at start without one, 401 without the right one, absent when not enabled', async () => {
    await expect(createServer({ chat: s.chat, weightUpdates: true })).rejects.toThrow(/needs an API key/);
    const r = await fetch(`${s.url}/get_policy_version`);
    expect(r.status).toBe(401);
    expect(((await r.json()) as Json).error.code).toBe('invalid_api_key');
    const off = await serve({ apiKey: KEY });
    try {
      const g = await fetch(`${off.url}/update_weights_from_disk`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ model_path: s.dir }),
      });
      expect(g.status).toBe(404);
    } finally {
      await off.server.close(0);
    }
  });

  it('named tensors: the answer changes, the version moves, in-flight requests keep their weights', async () => {
    const before = await greedy(6);
    expect(before.version).toBe(0);
    expect(before.choice.policy_version).toBe(0);
    // A long request in flight while the update arrives: it finishes with the weights it started with.
    const long = greedy(40);
    await until(() => s.server.batcher.stats().running > 0);
    const lm = s.chat.model.namedParameters().find(([n]) => n === 'lm_head.weight')![1];
    const changed = lm.detach().mul(-1);
    const res = await pushTensors(safetensorsBody(new Map([['lm_head.weight', changed]])), '?policy_version=5');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, policy_version: 5, tensors: 1 });
    const inflight = await long;
    expect(inflight.version).toBe(0);
    expect(inflight.ids.slice(0, 6)).toEqual(before.ids);
    const after = await greedy(6);
    expect(after.version).toBe(5);
    expect(after.ids).not.toEqual(before.ids);
    const health = (await (await fetch(`${s.url}/health`)).json()) as Json;
    expect(health.policy_version).toBe(5);
    const v = (await (await fetch(`${s.url}/get_policy_version`, { headers: auth })).json()) as Json;
    expect(v.policy_version).toBe(5);
    // Back to the original weights: the original answer again, the version one more.
    const back = await pushTensors(safetensorsBody(new Map([['lm_head.weight', changed.mul(-1)]])));
    expect(((await back.json()) as Json).policy_version).toBe(6);
    const again = await greedy(6);
    expect(again.ids).toEqual(before.ids);
    expect(again.version).toBe(6);
  });

  it('bad bodies change nothing: unknown names, wrong shapes, not safetensors, wrong key', async () => {
    const v0 = s.server.batcher.policyVersion;
    const lm = s.chat.model.namedParameters().find(([n]) => n === 'lm_head.weight')![1];
    const unknown = await pushTensors(safetensorsBody(new Map([['lm_head.nope', lm.detach()]])));
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as Json).error.message).toMatch(/not parameters of the served model.*lm_head\.nope/);
    const shape = await pushTensors(safetensorsBody(new Map([['lm_head.weight', lm.detach().slice(0, 0, 3)]])));
    expect(shape.status).toBe(400);
    expect(((await shape.json()) as Json).error.message).toMatch(/shape mismatch/);
    const junk = await pushTensors(Buffer.from('not a safetensors file at all'));
    expect(junk.status).toBe(400);
    const wrong = await pushTensors(safetensorsBody(new Map([['lm_head.weight', lm.detach()]])), '', 'nope');
    expect(wrong.status).toBe(401);
    expect(s.server.batcher.policyVersion).toBe(v0);
    // The OpenAI routes still take JSON only.
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.from('{}'),
    });
    expect(r.status).toBe(415);
  });

  it('a checkpoint folder: answers become that checkpoint’s; another architecture is refused', async () => {
    const other = tinyModelDir({ seed: 99 });
    const ref = await ChatModel.load(other);
    const want = await ref.chat(user('Describe the weather.'), { maxNewTokens: 6, temperature: 0 });
    const res = await fetch(`${s.url}/update_weights_from_disk`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model_path: other, policy_version: 42 }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).policy_version).toBe(42);
    const got = await greedy(6);
    expect(got.ids).toEqual(want.tokens);
    expect(got.version).toBe(42);
    const small = tinyModelDir({ seed: 1, layers: 1 });
    const bad = await fetch(`${s.url}/update_weights_from_disk`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model_path: small }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).error.message).toMatch(/missing/);
    const none = await fetch(`${s.url}/update_weights_from_disk`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model_path: join(tmp, 'nope') }),
    });
    expect(none.status).toBe(400);
    expect(s.server.batcher.policyVersion).toBe(42);
  });
});
