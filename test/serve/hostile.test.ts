/**
 * `glmv serve` against hostile input (issue #20): playlists as videos, a 4K clip over the decode budget, image
 * placeholder ids in raw prompts, malformed HTTP and oversized headers — each answered with an OpenAI-shaped 4xx.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxPromptCharsFor } from '../../src/serve/offload.js';
import { errorOf, post, type Served, serve } from './server-harness.js';

let s: Served;
const dir = mkdtempSync(join(tmpdir(), 'glmv-hostile-'));
beforeAll(async () => {
  s = await serve();
}, 120_000);
afterAll(async () => {
  await s?.server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args]);
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.error?.message ?? r.stderr.toString()}`);
}

const videoMessage = (url: string) => [
  {
    role: 'user',
    content: [
      { type: 'video_url', video_url: { url } },
      { type: 'text', text: 'What happens?' },
    ],
  },
];

/** Sends raw bytes and returns the raw response (status line, headers, body). */
function raw(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname);
    let out = '';
    sock.on('data', (d) => (out += d.toString()));
    sock.on('close', () => resolve(out));
    sock.on('error', (e) => (out ? resolve(out) : reject(e)));
    sock.write(bytes);
  });
}

const bodyOf = (response: string) => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));

describe('videos (items 1 and 4)', () => {
  it('an HLS playlist naming a local file is a 400 (no media root set)', async () => {
    const clip = join(dir, 'local.mkv');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=4', '-t', '1', '-c:v', 'ffv1', clip]);
    const playlist = Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n${clip}\n#EXT-X-ENDLIST\n`);
    const r = await post(s.url, {
      messages: videoMessage(`data:video/mp4;base64,${playlist.toString('base64')}`),
      max_tokens: 2,
    });
    expect(r.status).toBe(400);
    expect(errorOf(r.json).message).toMatch(/cannot read as a video: the first bytes "#EXTM3U.*not a known container/);
  });

  it('a 26 KB 3840x2160 4-second clip is a 413 from the probe, before decoding', async () => {
    const p = join(dir, 'uhd.mp4');
    ffmpeg(
      ['-f', 'lavfi', '-i', 'color=c=gray:size=3840x2160:rate=30', '-t', '4'].concat([
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        p,
      ]),
    );
    const bytes = readFileSync(p);
    const r = await post(s.url, { messages: videoMessage(`data:video/mp4;base64,${bytes.toString('base64')}`) });
    expect(r.status).toBe(413);
    const e = errorOf(r.json);
    expect(e.code).toBe('video_too_large');
    expect(e.message).toMatch(/3840x2160 × 106 frames = 879206400 pixels, more than the limit of 536870912/);
  }, 60_000);
});

describe('a client that goes away (item 4)', () => {
  it('has its ffprobe/ffmpeg killed: no decoder of this process outlives the aborted request', async () => {
    const big = await serve({ media: { maxVideoPixels: 2 ** 40 } });
    try {
      const p = join(dir, 'long.mp4');
      ffmpeg(
        ['-f', 'lavfi', '-i', 'testsrc=size=1280x720:rate=30', '-t', '40'].concat([
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          p,
        ]),
      );
      const url = `data:video/mp4;base64,${readFileSync(p).toString('base64')}`;
      const decoders = () =>
        spawnSync('pgrep', ['-P', String(process.pid), '-f', 'ff(mpeg|probe)'])
          .stdout.toString()
          .trim()
          .split('\n')
          .filter(Boolean);
      const ac = new AbortController();
      const req = post(big.url, { messages: videoMessage(url), max_tokens: 1 }, { signal: ac.signal }).catch(
        (e: Error) => e,
      );
      // Abort once a decoder runs (a generous guard, not a timing target).
      for (let i = 0; i < 600 && decoders().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(decoders().length).toBeGreaterThan(0);
      ac.abort();
      expect(await req).toBeInstanceOf(Error);
      let left = decoders();
      for (let i = 0; i < 60 && left.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        left = decoders();
      }
      expect(left).toEqual([]);
    } finally {
      await big.server.close(0);
    }
  }, 120_000);
});

describe('raw prompts with image placeholders (item 6)', () => {
  const imageId = () => s.chat.model.config.imageTokenId;

  it('is a 400 naming the prompt, not a 500', async () => {
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: [5, imageId(), imageId(), 7], max_tokens: 2 }),
    });
    expect(r.status).toBe(400);
    const e = errorOf((await r.json()) as Record<string, unknown>);
    expect(e.param).toBe('prompt');
    expect(e.message).toMatch(/holds 2 image\/video placeholder token\(s\) \(token 503 at position 1\)/);
  });

  it('streamed, it is the same 400 before any event is sent; the placeholder as text too', async () => {
    for (const prompt of [[imageId(), 9], 'look: <|image|>']) {
      const r = await fetch(`${s.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt, max_tokens: 2, stream: true }),
      });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      expect(errorOf((await r.json()) as Record<string, unknown>).message).toMatch(/placeholder token/);
    }
  });
});

describe('errors below the routes have the OpenAI shape (item 8)', () => {
  it('malformed HTTP → 400 with an OpenAI error body', async () => {
    const res = await raw(s.url, 'GARBAGE / HTTP/1.1\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    const e = errorOf(bodyOf(res));
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toMatch(/malformed HTTP/);
  });

  it('oversized headers → 431 with an OpenAI error body', async () => {
    const res = await raw(s.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 431 /);
    const e = errorOf(bodyOf(res));
    expect(e.code).toBe('headers_too_large');
  });
});

/** Polls /health until `until` settles; returns each poll's latency in ms. */
async function pollHealth(url: string, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const lat: number[] = [];
  while (!done) {
    const t0 = performance.now();
    const r = await fetch(`${url}/health`);
    expect(r.status).toBe(200);
    await r.json();
    lat.push(performance.now() - t0);
    await new Promise((res) => setTimeout(res, 10));
  }
  return lat;
}

describe('one big request does not stall the server (item 3)', () => {
  it('a 60 MB prompt is refused by its length while /health keeps answering', async () => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(12_000_000) }], max_tokens: 1 });
    expect(body.length).toBeGreaterThan(60_000_000);
    // Encoded up front: the client shares this process's event loop with the server.
    const big = post(s.url, Buffer.from(body), { raw: true });
    const lat = await pollHealth(s.url, big);
    const r = await big;
    expect(r.status).toBe(400);
    const e = errorOf(r.json);
    expect(e.code).toBe('context_length_exceeded');
    expect(e.message).toMatch(/the prompt has more than \d+ characters/);
    expect(lat.length).toBeGreaterThan(0);
    // A hang guard, not a speed target (bench/serve-hostile.ts measures): before, /health got nothing for 60 s.
    expect(Math.max(...lat)).toBeLessThan(5000);
  }, 120_000);

  it('a prompt under the character limit is tokenized off the event loop and refused by its token count', async () => {
    const limit = maxPromptCharsFor(s.chat.tokenizer, s.chat.model.config.text.maxPositionEmbeddings);
    const text = 'ab '.repeat(Math.floor((limit - 10) / 3));
    const big = post(s.url, { messages: [{ role: 'user', content: text }], max_tokens: 1 });
    const lat = await pollHealth(s.url, big);
    const r = await big;
    expect(r.status).toBe(400);
    expect(errorOf(r.json).message).toMatch(/maximum context length is \d+ tokens. However, your prompt is \d+ tokens/);
    expect(Math.max(...lat)).toBeLessThan(5000);
  }, 120_000);

  it('the same limit holds for raw prompts', async () => {
    const limit = maxPromptCharsFor(s.chat.tokenizer, s.chat.model.config.text.maxPositionEmbeddings);
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x'.repeat(limit + 1), max_tokens: 1 }),
    });
    expect(r.status).toBe(400);
    const e = errorOf((await r.json()) as Record<string, unknown>);
    expect([e.param, e.code]).toEqual(['prompt', 'context_length_exceeded']);
  });
});
