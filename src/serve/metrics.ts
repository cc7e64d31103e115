/**
 * Prometheus metrics of the server (`GET /metrics`, text exposition format), through prom-client with a registry of
 * its own per server (several servers in one process, as in tests, never share counters). Names follow vLLM's where
 * there is one (`..._time_to_first_token_seconds`, `..._num_requests_waiting`), under the `glmv_` prefix.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ContinuousBatcher } from './batcher.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly finished: Counter<'finish_reason' | 'endpoint'>;
  readonly rejected: Counter<'reason'>;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly ttft: Histogram;
  readonly e2e: Histogram;
  readonly queueTime: Histogram;
  readonly timePerOutputToken: Histogram;
  readonly decodeStep: Histogram;
  readonly batchRows: Histogram;

  constructor(batcher: ContinuousBatcher, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.httpRequests = new Counter({
      name: 'glmv_http_requests_total',
      help: 'HTTP requests by route, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.finished = new Counter({
      name: 'glmv_request_success_total',
      help: 'Generation requests (choices) finished, by finish reason (stop, length, abort)',
      labelNames: ['finish_reason', 'endpoint'],
      registers,
    });
    this.rejected = new Counter({
      name: 'glmv_requests_rejected_total',
      help: 'Requests refused before generation, by reason (queue_full, invalid, too_large, shutting_down)',
      labelNames: ['reason'],
      registers,
    });
    this.promptTokens = new Counter({
      name: 'glmv_prompt_tokens_total',
      help: 'Prompt tokens processed (visual tokens included)',
      registers,
    });
    this.generationTokens = new Counter({
      name: 'glmv_generation_tokens_total',
      help: 'Tokens generated',
      registers,
    });
    this.ttft = new Histogram({
      name: 'glmv_time_to_first_token_seconds',
      help: 'Time from request arrival to the first generated token',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.e2e = new Histogram({
      name: 'glmv_e2e_request_latency_seconds',
      help: 'Time from request arrival to the last token',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueTime = new Histogram({
      name: 'glmv_request_queue_time_seconds',
      help: 'Time a request waited for a batch slot',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.timePerOutputToken = new Histogram({
      name: 'glmv_time_per_output_token_seconds',
      help: 'Mean time between generated tokens of a request (after the first)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.decodeStep = new Histogram({
      name: 'glmv_decode_step_seconds',
      help: 'Duration of one batched decode step',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.batchRows = new Histogram({
      name: 'glmv_decode_batch_size',
      help: 'Rows decoded together in one step',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    });
    new Gauge({
      name: 'glmv_num_requests_waiting',
      help: 'Requests in the queue waiting for a batch slot',
      registers,
      collect() {
        this.set(batcher.stats().queued);
      },
    });
    new Gauge({
      name: 'glmv_num_requests_running',
      help: 'Requests decoding in the running batch',
      registers,
      collect() {
        this.set(batcher.stats().running);
      },
    });
    new Gauge({
      name: 'glmv_batch_capacity',
      help: 'Most requests decoded together (--max-batch)',
      registers,
      collect() {
        this.set(batcher.maxBatch);
      },
    });
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'glmv_' });
    batcher.onStep = (rows, ms) => {
      this.decodeStep.observe(ms / 1000);
      this.batchRows.observe(rows);
    };
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
