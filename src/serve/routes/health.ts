/** `GET /health` (liveness, load and the weights' version) and `GET /metrics` (Prometheus text). */
import type { FastifyInstance } from 'fastify';
import type { ContinuousBatcher } from '../batcher.js';
import type { ServerMetrics } from '../metrics.js';

export interface HealthRoutesOptions {
  batcher: ContinuousBatcher;
  metrics: ServerMetrics;
  modelName: string;
  /** True while the server shuts down (/health answers 503). */
  closing: () => boolean;
}

export function registerHealthRoutes(app: FastifyInstance, o: HealthRoutesOptions): void {
  const { batcher, metrics } = o;
  app.get('/health', async (_req, reply) => {
    const s = batcher.stats();
    const closing = o.closing();
    return reply.status(closing ? 503 : 200).send({
      status: closing ? 'shutting_down' : 'ok',
      model: o.modelName,
      running: s.running,
      queued: s.queued,
      policy_version: batcher.policyVersion,
    });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', metrics.contentType).send(await metrics.text()),
  );
}
