/**
 * The CAS worker pool: heavy math checks run in piscina worker threads with a hard time limit. A task that runs
 * past its limit is aborted and piscina terminates its thread (a real kill, unlike the signal-based timeouts of
 * the Python graders that crash off the main thread, anchors 3.1), so nothing can hang the caller.
 * The pool (./deadline-pool.ts) is sized to the cores and its queue capped: a check that cannot start in time is
 * answered `busy` at once, and the verifier reports it as undecided instead of queueing it.
 */
import type { CasTask } from './cas-worker.js';
import { DeadlinePool, type PoolOutcome, workerModule } from './deadline-pool.js';
import type { MathCheck } from './math/equivalence.js';

export interface CasPoolOptions {
  /** Worker threads (default: the cores). */
  threads?: number;
  /** Hard limit per task in milliseconds (default 3000). */
  timeoutMs?: number;
  /** Checks waiting for a thread; more are answered `busy` at once (default 8 per thread). */
  maxQueue?: number;
  /** Heap limit per worker in MiB (default 256): runaway allocation kills the worker, not the process. */
  maxHeapMb?: number;
  /** Worker module (tests use their own); defaults to cas-worker next to this file. */
  filename?: string;
}

export type CasOutcome = (MathCheck & { status: 'done' }) | { status: 'timeout' | 'busy' | 'error'; reason: string };

export class CasPool {
  private readonly pool: DeadlinePool;
  /** Counters for dashboards and the benchmark. */
  readonly stats: DeadlinePool['stats'];

  constructor(opts: CasPoolOptions = {}) {
    this.pool = new DeadlinePool({
      filename: opts.filename ?? workerModule(import.meta.url, 'cas-worker'),
      threads: opts.threads,
      timeoutMs: opts.timeoutMs ?? 3000,
      maxQueue: opts.maxQueue,
      maxHeapMb: opts.maxHeapMb,
      label: 'CAS check',
    });
    this.stats = this.pool.stats;
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** Starts the threads and loads the worker module; called automatically by the first `check`/`run`. */
  warmup(): Promise<void> {
    return this.pool.warmup({ pred: '1', gold: '1', op: 'echo' });
  }

  /** Runs one math check in a worker; never rejects. */
  async check(task: CasTask, timeoutMs?: number): Promise<CasOutcome> {
    return this.run<MathCheck>(task, timeoutMs).then((r) => (r.status === 'done' ? { ...r.value, status: 'done' } : r));
  }

  /** Runs any task of the worker module under the hard limit; never rejects. */
  async run<T>(task: unknown, timeoutMs?: number): Promise<PoolOutcome<T>> {
    await this.warmup();
    return this.pool.run<T>(task, { timeoutMs });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
