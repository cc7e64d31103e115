/**
 * The CAS worker pool: heavy math checks run in piscina worker threads with a hard time limit. A task that runs
 * past its limit is aborted and piscina terminates its thread (a real kill, unlike the signal-based timeouts of
 * the Python graders that crash off the main thread, anchors 3.1), so nothing can hang the caller.
 * Submissions are throttled to the thread count, so a task's clock starts when it actually starts running.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { CasTask } from './cas-worker.js';
import type { MathCheck } from './math/equivalence.js';

export interface CasPoolOptions {
  /** Worker threads (default 1: the reward path shares cores with training). */
  threads?: number;
  /** Hard limit per task in milliseconds (default 3000). */
  timeoutMs?: number;
  /** Heap limit per worker in MiB (default 256): runaway allocation kills the worker, not the process. */
  maxHeapMb?: number;
  /** Worker module (tests use their own); defaults to cas-worker next to this file. */
  filename?: string;
}

export type CasOutcome = (MathCheck & { status: 'done' }) | { status: 'timeout' | 'error'; reason: string };

function resolveWorker(explicit?: string): { filename: string; execArgv: string[] } {
  if (explicit) {
    const ts = explicit.endsWith('.ts');
    return { filename: explicit, execArgv: ts ? ['--import', 'tsx'] : [] };
  }
  const js = fileURLToPath(new URL('./cas-worker.js', import.meta.url));
  if (existsSync(js)) return { filename: js, execArgv: [] };
  // Running from source (tsx, vitest): load the TypeScript worker through tsx.
  const ts = fileURLToPath(new URL('./cas-worker.ts', import.meta.url));
  return { filename: ts, execArgv: ['--import', 'tsx'] };
}

export class CasPool {
  private readonly pool: Piscina;
  private readonly timeoutMs: number;
  private readonly threads: number;
  private running = 0;
  private readonly waiters: Array<() => void> = [];
  /** Counters for dashboards and the benchmark. */
  readonly stats = { tasks: 0, timeouts: 0, errors: 0 };

  constructor(opts: CasPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? 1));
    this.timeoutMs = opts.timeoutMs ?? 3000;
    if (!(this.timeoutMs > 0)) throw new Error(`CasPool: timeoutMs must be a positive number, got ${opts.timeoutMs}`);
    const { filename, execArgv } = resolveWorker(opts.filename);
    this.pool = new Piscina({
      filename,
      execArgv,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 256 },
    });
  }

  private warm: Promise<void> | null = null;

  /**
   * Starts the threads and loads the worker module (about a second under tsx) so that the first real task's clock
   * does not include start-up. Called automatically by the first `check`/`run`.
   */
  warmup(): Promise<void> {
    this.warm ??= (async () => {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 60_000);
      try {
        await Promise.all(
          Array.from({ length: this.threads }, () =>
            this.pool.run({ pred: '1', gold: '1', op: 'echo' }, { signal: ac.signal }),
          ),
        );
      } catch {
        // A worker that cannot start shows up as an error on the real task.
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.warm;
  }

  /** Runs one math check in a worker; never rejects. */
  async check(task: CasTask, timeoutMs = this.timeoutMs): Promise<CasOutcome> {
    return this.run<MathCheck>(task, timeoutMs).then((r) => (r.status === 'done' ? { ...r.value, status: 'done' } : r));
  }

  /** Runs any task of the worker module under the hard limit; never rejects. */
  async run<T>(
    task: unknown,
    timeoutMs = this.timeoutMs,
  ): Promise<{ status: 'done'; value: T } | { status: 'timeout' | 'error'; reason: string }> {
    await this.warmup();
    await this.acquire();
    this.stats.tasks++;
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    try {
      const value = (await this.pool.run(task, { signal: ac.signal })) as T;
      return { status: 'done', value };
    } catch (e) {
      if (timedOut) {
        this.stats.timeouts++;
        return { status: 'timeout', reason: `CAS check exceeded ${timeoutMs} ms and its worker was killed` };
      }
      this.stats.errors++;
      return { status: 'error', reason: `CAS worker failed: ${(e as Error).message}` };
    } finally {
      clearTimeout(timer);
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.running < this.threads) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.running--;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
