/** A served tiny random model for the server tests, plus raw HTTP helpers. */
import { ChatModel } from '../../src/io/chat.js';
import { createServer, type GlmvServer, type ServerOptions } from '../../src/serve/server.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';

export interface Served {
  server: GlmvServer;
  url: string;
  chat: ChatModel;
  dir: string;
}

let shared: { dir: string; chat: ChatModel } | null = null;

/** One tiny model folder and ChatModel per test file; a server per call with its own options. */
export async function serve(opts: Partial<Omit<ServerOptions, 'chat'>> = {}): Promise<Served> {
  if (!shared) {
    const dir = tinyModelDir();
    shared = { dir, chat: await ChatModel.load(dir) };
  }
  const server = await createServer({ chat: shared.chat, modelName: 'tiny', ...opts });
  const url = await server.listen(0, '127.0.0.1');
  return { server, url, ...shared };
}

export async function post(
  url: string,
  body: unknown,
  init: { raw?: boolean; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown>; text: string }> {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
    body: init.raw ? (body as string) : JSON.stringify(body),
    signal: init.signal,
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // SSE or empty: the caller reads `text`.
  }
  return { status: r.status, headers: r.headers, json, text };
}

/** The OpenAI error object of a response (asserting its shape). */
export function errorOf(json: Record<string, unknown>): {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
} {
  const e = json.error as { message: string; type: string; param: string | null; code: string | null };
  if (!e || typeof e.message !== 'string' || typeof e.type !== 'string')
    throw new Error(`not an OpenAI error body: ${JSON.stringify(json)}`);
  return e;
}

export const user = (text: string) => [{ role: 'user' as const, content: text }];

/** Waits until `cond` holds (polling every few ms), failing after `ms`. */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 5));
  }
}
