/**
 * Continuous batching for serving (and local eval): requests join a running batch between decode steps and leave it
 * as soon as they finish, so one slow request never holds up the others and a new one never waits for a whole
 * batch to drain.
 *
 * How joining works with the engine's KV cache (one [B, T, Hkv, D] buffer per layer, left padding given by
 * `keyStart`, decode positions by per-row `ropeDeltas`): newcomers are prefilled together in a cache of their own,
 * their first token is sampled, and then one rebuild copies every surviving row (old and new) right-aligned into a
 * fresh cache of width T = the longest row, adjusting each row's `keyStart` and `ropeDelta` so its next position is
 * unchanged. Finished or cancelled rows are dropped at the same rebuild. The rebuild costs one copy of the cache,
 * about the memory traffic of one attention step, and happens only on steps where the batch membership changed.
 *
 * Decoding of each row (sampling, stop ids, thinking budget with force answering, streaming text) is the shared
 * row machinery of src/io/generate.ts, with each request's own options: a request decoded in a batch gives the
 * tokens it gets from `generate` alone with the same seed (up to float rounding of batched matmuls).
 */
import { noGrad, scope, type Tensor, zeros } from '../engine/index.js';
import {
  checkGenerateOptions,
  type GenerateOptions,
  type GenerationInput,
  type GenerationOutput,
  newRowState,
  prefill,
  type RowState,
  rowOutput,
  StepBuffers,
  type StepRow,
  samplerSeed,
  stepRow,
  stepRows,
} from '../io/generate.js';
import type { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import type { KVCache } from '../model/text.js';

export interface BatcherOptions {
  /** Most requests decoding together (rows of the batch). Default 16. */
  maxBatch?: number;
  /** Most requests waiting for a slot; more are refused with `QueueFullError`. Default 64. */
  maxQueue?: number;
  /** Prompt tokens prefilled in one admission round (at least one request is always admitted). Default 8192. */
  maxPrefillTokens?: number;
  /**
   * Decode steps between admission rounds while requests are running (default 4). Each join costs a cache rebuild,
   * so newcomers are gathered for a few steps; an idle batch, or a queue of a quarter of `maxBatch`, admits at once.
   */
  joinEvery?: number;
}

/** What one request asks for: the generation options of `generate` (one row), its seed and choice index. */
export interface JobOptions extends Omit<GenerateOptions, 'signal' | 'shouldStop' | 'seed'> {
  /** Sampling seed; the row's sampler is seeded like row `choice` of `generate` with this seed. */
  seed: number;
  /** Index of this choice among copies of the same prompt (n > 1). Default 0. */
  choice?: number;
  /** Aborting ends the request (removed from the queue, or its row dropped at the next step). */
  signal?: AbortSignal;
}

export type JobFinish = GenerationOutput['finishReason'];

export interface JobResult extends GenerationOutput {
  /** Milliseconds spent waiting for a slot. */
  queueMs: number;
  /** Milliseconds from submission to the first generated token (null when none came). */
  ttftMs: number | null;
  /** Milliseconds from submission to the end. */
  totalMs: number;
  /** The batcher's `policyVersion` when the row started: the weights every token was sampled with. */
  policyVersion: number;
}

/** The queue is full: the caller should answer 429 and retry after `retryAfterS`. */
export class QueueFullError extends Error {
  constructor(
    readonly queued: number,
    readonly retryAfterS: number,
  ) {
    super(`the request queue is full (${queued} waiting); retry after ${retryAfterS} s`);
    this.name = 'QueueFullError';
  }
}

export interface BatcherStats {
  queued: number;
  running: number;
  /** Requests finished, by finish reason. */
  finished: Record<JobFinish, number>;
  promptTokens: number;
  generatedTokens: number;
  decodeSteps: number;
  prefills: number;
  rebuilds: number;
  /** Largest number of rows decoded in one step. */
  peakBatch: number;
}

/** A submitted request. */
export class Job {
  readonly result: Promise<JobResult>;
  state: 'queued' | 'running' | 'done' = 'queued';
  row: RowState | null = null;
  /** The token to feed at the next decode step. */
  next = -1;
  readonly submittedAt = performance.now();
  startedAt = 0;
  firstTokenAt = 0;
  /** A finish reason requested from outside (`end`), applied when the row leaves. */
  endReason: JobFinish | null = null;
  /** The weights' version when the row was admitted. */
  policyVersion = 0;
  resolve!: (r: JobResult) => void;
  /** Removes the job's abort listener. */
  detach: () => void = () => {};
  reject!: (e: Error) => void;
  readonly stop: ReadonlySet<number>;
  readonly gen: GenerateOptions;

  constructor(
    readonly input: GenerationInput,
    readonly opts: JobOptions,
    private readonly wake: () => void,
  ) {
    this.result = new Promise<JobResult>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.stop = new Set(opts.stopTokenIds);
    const onToken = opts.onToken;
    this.gen = {
      ...opts,
      onToken: (e) => {
        if (!this.firstTokenAt) this.firstTokenAt = performance.now();
        onToken?.(e);
      },
    };
  }

  /** Ends the request at the next step with this finish reason (the server's stop strings use 'stop'). */
  end(reason: JobFinish): void {
    if (this.state === 'done' || this.endReason) return;
    this.endReason = reason;
    this.wake();
  }

  get cancelled(): boolean {
    return this.endReason !== null || !!this.opts.signal?.aborted;
  }
}

interface Running {
  job: Job;
  /** Row index in the current cache. */
  row: number;
}

/** Continuous batcher over one model. Submissions run as soon as a slot is free; `close` aborts everything. */
export class ContinuousBatcher {
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly maxPrefillTokens: number;
  readonly joinEvery: number;
  /** Decode steps since the batch last changed membership. */
  private sinceRebuild = 0;
  /**
   * Version of the model's weights (0 at load); `updateWeights` advances it. Every job reports the version it was
   * admitted under, and weights never change while a row decodes, so that is the version of all its tokens.
   */
  policyVersion = 0;
  /** Admission is stopped while weights are replaced (queued requests wait). */
  private paused = false;
  private readonly queue: Job[] = [];
  private running: Running[] = [];
  private cache: KVCache | null = null;
  private loop: Promise<void> | null = null;
  private closed = false;
  /** JS copies of step logits / probabilities, reused (each step consumes its rows before the next). */
  private readonly stepBuffers = new StepBuffers();
  /** Recent request durations (ms), for Retry-After estimates. */
  private readonly recent: number[] = [];
  private readonly counters: BatcherStats = {
    queued: 0,
    running: 0,
    finished: { stop: 0, length: 0, abort: 0 },
    promptTokens: 0,
    generatedTokens: 0,
    decodeSteps: 0,
    prefills: 0,
    rebuilds: 0,
    peakBatch: 0,
  };
  /** Called after every decode step with the number of rows decoded (metrics). */
  onStep?: (rows: number, ms: number) => void;

  constructor(
    readonly model: Glm4vForConditionalGeneration,
    opts: BatcherOptions = {},
  ) {
    this.maxBatch = positiveInt(opts.maxBatch ?? 16, 'maxBatch');
    this.maxQueue = nonNegativeInt(opts.maxQueue ?? 64, 'maxQueue');
    this.maxPrefillTokens = positiveInt(opts.maxPrefillTokens ?? 8192, 'maxPrefillTokens');
    this.joinEvery = positiveInt(opts.joinEvery ?? 4, 'joinEvery');
  }

  stats(): BatcherStats {
    return {
      ...this.counters,
      finished: { ...this.counters.finished },
      queued: this.queue.length,
      running: this.live,
    };
  }

  /** Whether a submission now would be refused. */
  get full(): boolean {
    return this.queue.length >= this.maxQueue + Math.max(0, this.maxBatch - this.live);
  }

  /** Seconds a refused client should wait: about one request's duration per batch slot ahead of it. */
  retryAfterSeconds(): number {
    const avg = this.recent.length ? this.recent.reduce((a, b) => a + b, 0) / this.recent.length : 1000;
    const ahead = Math.ceil((this.queue.length + 1) / this.maxBatch);
    return Math.max(1, Math.min(600, Math.ceil((avg * ahead) / 1000)));
  }

  /**
   * Queues a request. Throws `QueueFullError` when `maxQueue` requests already wait, and a plain `Error` for
   * invalid options (checked here, so a bad request never reaches the running batch).
   */
  submit(input: GenerationInput, opts: JobOptions): Job {
    if (this.closed) throw new Error('batcher: closed; no new requests are accepted');
    const vocab = this.model.config.text.vocabSize;
    checkGenerateOptions({ ...opts, seed: opts.seed }, 1, vocab);
    if (input.inputIds.length === 0) throw new Error('batcher: the prompt has no tokens');
    for (const id of input.inputIds)
      if (!(Number.isInteger(id) && id >= 0 && id < vocab))
        throw new Error(`batcher: prompt token ${id} is outside the vocabulary [0, ${vocab})`);
    if (!Number.isSafeInteger(opts.seed)) throw new Error(`batcher: seed must be an integer, got ${opts.seed}`);
    if (this.full) throw new QueueFullError(this.queue.length, this.retryAfterSeconds());
    const job = new Job(input, opts, () => this.wake());
    if (opts.signal) {
      if (opts.signal.aborted) {
        this.settle(job, 'abort');
        return job;
      }
      // Removed when the job ends: one signal may serve thousands of jobs (an eval run), listeners must not pile up.
      const onAbort = () => this.cancelQueued(job);
      opts.signal.addEventListener('abort', onAbort, { once: true });
      job.detach = () => opts.signal?.removeEventListener('abort', onAbort);
    }
    this.queue.push(job);
    this.counters.promptTokens += input.inputIds.length;
    this.wake();
    return job;
  }

  /** Aborts every request and waits for the loop to stop; the cache is freed. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of [...this.queue]) this.cancelQueued(job, true);
    for (const r of this.running) r.job.end('abort');
    this.wake();
    await this.loop;
  }

  /**
   * Replaces the model's weights between decode steps: admission stops (new requests queue), the running rows finish
   * with the old weights, then `load` runs on the idle model and the version becomes `version` (default: one more).
   * A failing `load` leaves the version unchanged and rethrows. Calls are serialised.
   */
  async updateWeights(load: () => void | Promise<void>, version?: number): Promise<number> {
    const prev = this.updating;
    let done!: () => void;
    this.updating = new Promise<void>((r) => (done = r));
    await prev;
    try {
      if (this.closed) throw new Error('batcher: closed; weights cannot be updated');
      this.paused = true;
      while (this.live > 0 || this.loop) await (this.loop ?? new Promise((r) => setImmediate(r)));
      await load();
      this.policyVersion = version ?? this.policyVersion + 1;
      return this.policyVersion;
    } finally {
      this.paused = false;
      done();
      this.wake();
    }
  }

  private updating: Promise<void> = Promise.resolve();

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private cancelQueued(job: Job, force = false): void {
    if (job.state !== 'queued') {
      if (force) job.end('abort');
      return;
    }
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    this.settle(job, 'abort');
  }

  private wake(): void {
    if (!this.loop && (this.queue.length || this.running.length) && !(this.paused && this.running.length === 0)) {
      // Start on the next turn of the event loop: submissions made together (the n choices of a request, a burst of
      // requests) are then prefilled together, and no callback runs before `submit` has returned its job.
      this.loop = new Promise<void>((res) => setImmediate(res))
        .then(() => this.run())
        .finally(() => {
          this.loop = null;
          if (this.queue.length && !this.closed) this.wake();
        });
    }
  }

  private fail(job: Job, e: Error): void {
    if (job.state === 'done') return;
    job.state = 'done';
    job.detach();
    job.reject(e);
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        this.compact(this.admissionDue() ? this.admit() : []);
        if (this.live === 0) {
          if (this.queue.length === 0 || this.closed || this.paused) break;
          continue;
        }
        this.decodeStep();
        // Let the server accept, stream and cancel between steps.
        await new Promise<void>((res) => setImmediate(res));
      }
    } catch (e) {
      // A failure inside the model (a bug, or memory): the requests in flight get the error, the server lives on.
      const err = new Error(`generation failed: ${(e as Error).message}`);
      for (const r of this.running) this.fail(r.job, err);
      this.running = [];
    } finally {
      this.cache?.dispose();
      this.cache = null;
      for (const r of this.running) this.settle(r.job, 'abort');
      this.running = [];
    }
  }

  /** Rows of the running batch that have not finished. */
  private get live(): number {
    let n = 0;
    for (const r of this.running) if (r.job.state === 'running') n++;
    return n;
  }

  /** Prefills waiting requests into free slots; returns the newcomers' caches (rows in job order). */
  private admit(): Array<{ cache: KVCache; jobs: Job[] }> {
    const free = this.maxBatch - this.live;
    if (free <= 0 || this.queue.length === 0 || this.closed || this.paused) return [];
    const jobs: Job[] = [];
    let tokens = 0;
    while (jobs.length < free && this.queue.length) {
      const j = this.queue[0]!;
      if (jobs.length > 0 && tokens + j.input.inputIds.length > this.maxPrefillTokens) break;
      this.queue.shift();
      tokens += j.input.inputIds.length;
      jobs.push(j);
    }
    const now = performance.now();
    for (const j of jobs) {
      j.state = 'running';
      j.startedAt = now;
      j.policyVersion = this.policyVersion;
      j.row = newRowState(j.input.inputIds, j.gen, samplerSeed(j.opts.seed, j.opts.choice ?? 0));
    }
    try {
      return [this.prefill(jobs)];
    } catch (e) {
      if (jobs.length === 1) {
        this.fail(jobs[0]!, new Error(`generation failed: ${(e as Error).message}`));
        return [];
      }
    }
    // The batched prefill failed: prefill one by one so that only the request at fault fails.
    const out: Array<{ cache: KVCache; jobs: Job[] }> = [];
    for (const j of jobs) {
      try {
        out.push(this.prefill([j]));
      } catch (e) {
        this.fail(j, new Error(`generation failed: ${(e as Error).message}`));
      }
    }
    return out;
  }

  /** One prefill forward over `jobs` (left-padded) in a cache of their own; samples each row's first token. */
  private prefill(jobs: Job[]): { cache: KVCache; jobs: Job[] } {
    const maxLen = Math.max(...jobs.map((j) => j.input.inputIds.length));
    const pad = jobs[0]!.opts.padTokenId ?? jobs[0]!.opts.stopTokenIds[0] ?? 0;
    const cache = this.model.newCache(maxLen + 16);
    let logits: StepRow[];
    try {
      logits = prefill(
        this.model,
        jobs.map((j) => j.input),
        pad,
        cache,
        (r) => jobs[r]!.gen,
        this.stepBuffers,
      );
    } catch (e) {
      cache.dispose();
      throw e;
    }
    this.counters.prefills++;
    for (const [r, j] of jobs.entries()) this.step(j, r, logits[r]!);
    return { cache, jobs };
  }

  /** Samples and records one token of a row from its logits. */
  private step(j: Job, r: number, logits: StepRow): void {
    const row = j.row!;
    const id = stepRow(row, r, logits, j.gen, j.stop, j.cancelled);
    if (id === null) this.settle(j, j.endReason ?? row.done ?? 'length');
    else j.next = id;
  }

  /** Whether to admit now: an idle batch at once, otherwise every `joinEvery` steps or when many wait. */
  private admissionDue(): boolean {
    if (this.queue.length === 0 || this.closed || this.paused || this.live >= this.maxBatch) return false;
    return this.live === 0 || this.sinceRebuild >= this.joinEvery || this.queue.length * 4 >= this.maxBatch;
  }

  /**
   * Rebuilds the cache when newcomers arrived, or when finished rows make up a quarter of the batch. Until then a
   * finished row stays in the batch, fed a dummy token and ignored: a rebuild costs more than a few idle rows.
   */
  private compact(fresh: Array<{ cache: KVCache; jobs: Job[] }>): void {
    const keepOld = this.running.filter((r) => r.job.state === 'running');
    const dead = this.running.length - keepOld.length;
    const mustDrop = dead > 0 && (keepOld.length === 0 || dead * 4 >= this.running.length);
    if (fresh.length === 0 && !mustDrop) return;
    const parts: Array<{ cache: KVCache; rows: Running[] }> = [];
    if (this.cache && keepOld.length) parts.push({ cache: this.cache, rows: keepOld });
    for (const f of fresh) {
      const rows = f.jobs.map((job, row) => ({ job, row })).filter((r) => r.job.state === 'running');
      if (rows.length) parts.push({ cache: f.cache, rows });
    }
    let rebuilt: KVCache | null = null;
    try {
      rebuilt = parts.length ? this.rebuild(parts) : null;
    } finally {
      for (const f of fresh) f.cache.dispose();
    }
    this.cache?.dispose();
    this.cache = rebuilt;
    this.running = parts.flatMap((p) => p.rows).map((r, i) => ({ job: r.job, row: i }));
    this.sinceRebuild = 0;
  }

  /** Copies the given rows of one or more caches, right-aligned, into one new cache. */
  private rebuild(parts: Array<{ cache: KVCache; rows: Running[] }>): KVCache {
    this.counters.rebuilds++;
    const lengths = parts.flatMap((p) => p.rows.map((r) => p.cache.length - (p.cache.keyStart?.[r.row] ?? 0)));
    const T = Math.max(...lengths);
    const B = lengths.length;
    const remaining = Math.max(...parts.flatMap((p) => p.rows.map((r) => r.job.opts.maxNewTokens)));
    const out = this.model.newCache(T + Math.min(remaining, 256));
    const keyStart = new Int32Array(B);
    const deltas: number[] = [];
    let b = 0;
    for (const p of parts) {
      for (const r of p.rows) {
        const n = p.cache.length - (p.cache.keyStart?.[r.row] ?? 0);
        keyStart[b] = T - n;
        // Next position stays length + delta.
        deltas.push((p.cache.ropeDeltas?.[r.row] ?? 0) + p.cache.length - T);
        b++;
      }
    }
    noGrad(() =>
      scope(() => {
        for (let layer = 0; layer < out.numLayers; layer++) {
          const first = parts[0]!.cache.stored(layer);
          if (!first) throw new Error(`batcher: cache layer ${layer} is empty`);
          const [, , H, D] = first.k.shape as [number, number, number, number];
          const { k, v } = out.update(layer, zeros([B, T, H, D]), zeros([B, T, H, D]));
          let dst = 0;
          for (const p of parts) {
            const src = p.cache.stored(layer)!;
            const L = p.cache.length;
            // Runs of consecutive source rows move in one copy each, over the run's longest row: the extra
            // positions of shorter rows land before their keyStart, where attention never looks.
            for (const run of runsOf(p.rows.map((r) => r.row))) {
              const m = Math.max(...run.rows.map((row) => L - (p.cache.keyStart?.[row] ?? 0)));
              const to = (t: Tensor) => t.slice(0, dst, dst + run.rows.length).slice(1, T - m, T);
              const from = (t: Tensor) => t.slice(0, run.start, run.start + run.rows.length).slice(1, L - m, L);
              to(k).copy_(from(src.k));
              to(v).copy_(from(src.v));
              dst += run.rows.length;
            }
          }
        }
      }),
    );
    out.advance(T, B);
    out.keyStart = keyStart;
    out.ropeDeltas = deltas;
    return out;
  }

  /** One decode step over every running row. */
  private decodeStep(): void {
    const t0 = performance.now();
    const rows = this.running;
    const B = rows.length;
    this.counters.peakBatch = Math.max(this.counters.peakBatch, this.live);
    const gens: GenerateOptions[] = [];
    for (const r of rows) gens[r.row] = r.job.gen;
    const logits = noGrad(() =>
      scope(() =>
        stepRows(
          this.model.forward({ inputIds: rows.map((r) => [r.job.next]), cache: this.cache, logitsToKeep: 1 }).logits,
          (b) => gens[b] ?? rows[0]!.job.gen,
          this.stepBuffers,
        ),
      ),
    );
    this.counters.decodeSteps++;
    this.sinceRebuild++;
    // Finished rows still in the batch decode their last token again; their output is ignored.
    for (const r of rows) if (r.job.state === 'running') this.step(r.job, r.row, logits[r.row]!);
    this.onStep?.(B, performance.now() - t0);
  }

  /** Resolves a job with its output. */
  private settle(job: Job, reason: JobFinish): void {
    if (job.state === 'done') return;
    job.state = 'done';
    job.detach();
    const now = performance.now();
    const row = job.row ?? newRowState(job.input.inputIds, job.gen, 0);
    const out = rowOutput(row, job.input.inputIds.length, job.gen);
    out.finishReason = job.endReason ?? reason;
    this.counters.finished[out.finishReason]++;
    this.counters.generatedTokens += out.tokens.length;
    if (job.startedAt) {
      this.recent.push(now - job.startedAt);
      if (this.recent.length > 32) this.recent.shift();
    }
    job.resolve({
      ...out,
      queueMs: (job.startedAt || now) - job.submittedAt,
      ttftMs: job.firstTokenAt ? job.firstTokenAt - job.submittedAt : null,
      totalMs: now - job.submittedAt,
      policyVersion: job.policyVersion,
    });
  }
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`batcher ${name}: expected a positive integer, found ${v}`);
  return v;
}

function nonNegativeInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 0) throw new Error(`batcher ${name}: expected a non-negative integer, found ${v}`);
  return v;
}

/** Consecutive runs of row indices (in order): [3,4,5,8,9] → {start 3, rows [3,4,5]}, {start 8, rows [8,9]}. */
function runsOf(rows: number[]): Array<{ start: number; rows: number[] }> {
  const out: Array<{ start: number; rows: number[] }> = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last && r === last.start + last.rows.length) last.rows.push(r);
    else out.push({ start: r, rows: [r] });
  }
  return out;
}
