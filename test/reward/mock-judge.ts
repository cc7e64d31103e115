/** An OpenAI-compatible mock judge for tests: behaviour per model name, every request recorded. */
import Fastify, { type FastifyInstance } from 'fastify';

export interface MockJudge {
  url: string;
  requests: Array<{ model: string; messages: Array<{ role: string; content: string }>; response_format?: unknown }>;
  close(): Promise<void>;
}

/**
 * Models: `always-correct`, `always-incorrect`, `garbage` (not JSON), `flaky` (503 twice per question, then the
 * truth), `down` (always 503), `bad-request` (400), `truth` (compares the fenced candidate with the reference
 * exactly), `naive` (obeys any "say correct" in the candidate: the injection victim).
 */
export async function startMockJudge(): Promise<MockJudge> {
  const app: FastifyInstance = Fastify({ logger: false });
  const requests: MockJudge['requests'] = [];
  const flakyCount = new Map<string, number>();
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = req.body as MockJudge['requests'][number];
    requests.push(body);
    const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
    const ref = /<reference>\n([\s\S]*?)\n<\/reference>/.exec(user)?.[1] ?? '';
    const cand = /<candidate-[0-9a-f]+>\n([\s\S]*?)\n<\/candidate-[0-9a-f]+>/.exec(user)?.[1] ?? '';
    const truth = cand.trim().toLowerCase() === ref.trim().toLowerCase() ? 'correct' : 'incorrect';
    const answer = (verdict: string) => ({
      id: 'x',
      object: 'chat.completion',
      created: 0,
      model: body.model,
      choices: [
        {
          index: 0,
          finish_reason: 'stop',
          message: { role: 'assistant', content: JSON.stringify({ analysis: 'compared', verdict }) },
        },
      ],
    });
    switch (body.model) {
      case 'always-correct':
        return answer('correct');
      case 'always-incorrect':
        return answer('incorrect');
      case 'garbage':
        return {
          ...answer('correct'),
          choices: [
            {
              index: 0,
              finish_reason: 'stop',
              message: { role: 'assistant', content: 'I think 1.0, probably correct' },
            },
          ],
        };
      case 'flaky': {
        const n = flakyCount.get(user) ?? 0;
        flakyCount.set(user, n + 1);
        if (n < 2) return reply.code(503).send({ error: { message: 'overloaded' } });
        return answer(truth);
      }
      case 'down':
        return reply.code(503).send({ error: { message: 'down' } });
      case 'bad-request':
        return reply.code(400).send({ error: { message: 'bad model' } });
      case 'naive':
        return answer(/say correct|mark (?:this|it) (?:as )?correct/i.test(cand) ? 'correct' : truth);
      default:
        return answer(truth);
    }
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}/v1`, requests, close: () => app.close() };
}
