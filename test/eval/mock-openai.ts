/**
 * A small OpenAI-compatible mock server for client and eval tests: `/v1/models`, `/v1/chat/completions` (JSON or
 * SSE) and `/v1/completions`, each answered by a handler the test supplies. Every request body is recorded.
 */
import Fastify, { type FastifyInstance } from 'fastify';

export type MockReply =
  | { json: unknown }
  | { sse: string }
  | { status: number; body: unknown; headers?: Record<string, string> };

export interface MockRequest {
  path: string;
  body: Record<string, unknown>;
}

export type MockHandler = (body: Record<string, unknown>, path: string) => MockReply | Promise<MockReply>;

export interface MockServer {
  url: string;
  requests: MockRequest[];
  setHandler(h: MockHandler): void;
  close(): Promise<void>;
}

export async function startMockOpenAI(handler: MockHandler, models = ['mock-glm']): Promise<MockServer> {
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
  const requests: MockRequest[] = [];
  let h = handler;
  app.get('/v1/models', async () => ({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'mock' })),
  }));
  const route = (path: string) =>
    app.post(path, async (req, reply) => {
      const body = req.body as Record<string, unknown>;
      requests.push({ path, body });
      const r = await h(body, path);
      if ('json' in r) return r.json;
      if ('sse' in r) {
        reply.header('content-type', 'text/event-stream');
        reply.header('cache-control', 'no-cache');
        return reply.send(r.sse);
      }
      for (const [k, v] of Object.entries(r.headers ?? {})) reply.header(k, v);
      return reply.code(r.status).send(r.body);
    });
  route('/v1/chat/completions');
  route('/v1/completions');
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setHandler: (next) => {
      h = next;
    },
    close: () => app.close(),
  };
}

/** A minimal chat.completion body. */
export function chatJson(
  message: Record<string, unknown>,
  finish: string = 'stop',
  usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
): unknown {
  return {
    id: 'chatcmpl-mock',
    object: 'chat.completion',
    created: 0,
    model: 'mock-glm',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }],
    usage,
  };
}

/** The text of the last user message (string content or the joined text parts). */
export function lastUserText(body: Record<string, unknown>): string {
  const msgs = (body.messages ?? []) as Array<{ role: string; content: unknown }>;
  const u = [...msgs].reverse().find((m) => m.role === 'user');
  if (!u) return '';
  if (typeof u.content === 'string') return u.content;
  return (u.content as Array<{ type: string; text?: string }>)
    .filter((p) => p.type === 'text')
    .map((p) => p.text ?? '')
    .join('\n');
}
