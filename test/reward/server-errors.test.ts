/**
 * Issue #20 item 8: every error of the reward server has its one shape, `{"error": "<message>"}` — route errors,
 * fastify's (invalid JSON, empty body, body too large, wrong content type, unknown route) and Node's (malformed
 * HTTP, oversized headers).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RewardRouter } from '../../src/reward/router.js';
import { buildRewardServer } from '../../src/reward/server.js';

let url: string;
let close: () => Promise<void>;
beforeAll(async () => {
  const router = new RewardRouter({}, { verifierPool: null });
  const app = buildRewardServer(router, { bodyLimit: 1024 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  close = async () => {
    await app.close();
    await router.close();
  };
});
afterAll(async () => close?.());

async function post(path: string, body: string, type = 'application/json') {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  const text = await r.text();
  return { status: r.status, type: r.headers.get('content-type'), json: JSON.parse(text) as Record<string, unknown> };
}

function raw(bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString()));
    sock.on('close', () => resolve(out));
    sock.on('error', (e) => (out ? resolve(out) : reject(e)));
    sock.write(bytes);
  });
}

const shape = (j: Record<string, unknown>) => expect(Object.keys(j)).toEqual(['error']);

describe('reward server errors', () => {
  it('invalid JSON, an empty body, a wrong content type, a body over the limit', async () => {
    const bad = await post('/get_reward', '{"query": [');
    expect(bad.status).toBe(400);
    shape(bad.json);
    expect(bad.json.error).toMatch(/^request body: not valid JSON/);
    const empty = await post('/verl/compute_score', '');
    expect(empty.status).toBe(400);
    expect(empty.json.error).toMatch(/empty body/);
    const xml = await post('/score', '<a/>', 'application/xml');
    expect(xml.status).toBe(415);
    shape(xml.json);
    expect(xml.json.error).toMatch(/expected Content-Type: application\/json/);
    const big = await post('/score', JSON.stringify({ response: 'x'.repeat(5000) }));
    expect(big.status).toBe(413);
    expect(big.json.error).toMatch(/larger than the limit of 1024 bytes/);
  });

  it('an unknown route and a route validation error', async () => {
    const r = await fetch(`${url}/nope`);
    expect(r.status).toBe(404);
    shape((await r.json()) as Record<string, unknown>);
    const v = await post('/get_reward', '{"query": 3}');
    expect(v.status).toBe(400);
    shape(v.json);
  });

  it('malformed HTTP and oversized headers, answered below the routes', async () => {
    const g = await raw('GARBAGE / HTTP/1.1\r\n\r\n');
    expect(g).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(g.slice(g.indexOf('\r\n\r\n') + 4))).toEqual({ error: expect.stringMatching(/malformed HTTP/) });
    const h = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`);
    expect(h).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(h.slice(h.indexOf('\r\n\r\n') + 4))).toEqual({ error: expect.stringMatching(/headers/) });
  });
});
