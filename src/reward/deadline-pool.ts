/**
 * Worker threads with a hard deadline per task: what the CAS check and every verifier call run in.
 *
 * A task past its deadline is aborted and piscina terminates its thread — a real kill, which code stuck in a
 * regex or a runaway simplification cannot ignore (a signal-based timeout in the main thread could not stop it).
 * The pool is sized to the cores by default and its queue is capped: a task that would wait behind a full queue,
 * or that is still waiting when its deadline has passed, is answered `busy` at once instead of piling up.
 * A task's clock starts when it starts running, and can be paused while it waits on the main thread (a judge call
 * made through a message port is not compute time).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

export interface DeadlinePoolOptions {
  /** Worker module (a `.ts` file is loaded through tsx). */
  filename: string;
  /** Worker threads; default: the cores (`os.availableParallelism()`). */
  threads?: number;
  /** Hard limit per task in milliseconds. */
  timeoutMs: number;
  /** Tasks waiting for a thread beyond the running ones; more are answered `busy`. Default 8 per thread. */
  maxQueue?: number;
  /** Longest wait for a thread before a task is answered `busy` (default: its own deadline). */
  maxWaitMs?: number;
  /** Heap limit per worker in MiB (default 256): runaway allocation kills the worker, not the process. */
  maxHeapMb?: number;
  /** What the pool runs, for messages (`CAS check`, `verifier`). */
  label?: string;
}

export type PoolOutcome<T> = { status: 'done'; value: T } | { status: 'timeout' | 'busy' | 'error'; reason: string };

/** Pauses a running task's deadline while it waits on the main thread. */
export interface DeadlineClock {
  pause(): void;
  resume(): void;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Transferables sent with the task (a MessagePort). */
  transferList?: Array<MessagePort | ArrayBuffer>;
  /** Receives the task's clock once it starts running. */
  onStart?: (clock: DeadlineClock) => void;
}

/** `file` next to the calling module: the built `.js`, else the `.ts` source through tsx (tests, tsx runs). */
export function workerModule(base: string, name: string): string {
  const js = fileURLToPath(new URL(`./${name}.js`, base));
  if (existsSync(js)) return js;
  return fileURLToPath(new URL(`./${name}.ts`, base));
}

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

export class DeadlinePool {
  private readonly pool: Piscina;
  readonly threads: number;
  readonly timeoutMs: number;
  readonly maxQueue: number;
  private readonly maxWaitMs: number | undefined;
  private readonly label: string;
  private running = 0;
  private readonly waiters: Array<{ start: () => void; expire: NodeJS.Timeout }> = [];
  /** Counters for dashboards, the benchmark and tests. */
  readonly stats = { tasks: 0, timeouts: 0, errors: 0, busy: 0 };
  private warm: Promise<void> | null = null;
  private probe: unknown = undefined;

  constructor(opts: DeadlinePoolOptions) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? defaultThreads()));
    this.timeoutMs = opts.timeoutMs;
    this.label = opts.label ?? 'task';
    if (!(this.timeoutMs > 0))
      throw new Error(`${this.label} pool: timeoutMs must be a positive number, got ${opts.timeoutMs}`);
    this.maxQueue = Math.max(0, Math.floor(opts.maxQueue ?? this.threads * 8));
    this.maxWaitMs = opts.maxWaitMs;
    const ts = opts.filename.endsWith('.ts');
    this.pool = new Piscina({
      filename: opts.filename,
      execArgv: ts ? ['--import', 'tsx'] : [],
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 256 },
    });
  }

  /** Tasks running and waiting now. */
  load(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiters.length };
  }

  /**
   * Starts the threads and loads the worker module (about a second under tsx) so the first real task's clock does
   * not include start-up. `probe` is a task the worker answers quickly. Called by the first `run`.
   */
  warmup(probe: unknown): Promise<void> {
    this.probe = probe;
    this.warm ??= (async () => {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 60_000);
      try {
        await Promise.all(Array.from({ length: this.threads }, () => this.pool.run(probe, { signal: ac.signal })));
      } catch {
        // A worker that cannot start shows up as an error on the real task.
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.warm;
  }

  /** Runs one task under the deadline; never rejects. */
  async run<T>(task: unknown, opts: RunOptions = {}): Promise<PoolOutcome<T>> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    if (this.warm) await this.warm;
    const slot = await this.acquire(this.maxWaitMs ?? timeoutMs);
    if (slot !== 'ok') {
      this.stats.busy++;
      return { status: 'busy', reason: slot };
    }
    this.stats.tasks++;
    const ac = new AbortController();
    let timedOut = false;
    let left = timeoutMs;
    let since = performance.now();
    let timer: NodeJS.Timeout | null = null;
    const arm = () => {
      since = performance.now();
      timer = setTimeout(() => {
        timedOut = true;
        ac.abort();
      }, left);
    };
    let paused = 0;
    const clock: DeadlineClock = {
      pause: () => {
        if (paused++ === 0 && timer) {
          clearTimeout(timer);
          timer = null;
          left = Math.max(1, left - (performance.now() - since));
        }
      },
      resume: () => {
        if (paused > 0 && --paused === 0 && !timedOut) arm();
      },
    };
    arm();
    opts.onStart?.(clock);
    try {
      const value = (await this.pool.run(task, { signal: ac.signal, transferList: opts.transferList as never })) as T;
      return { status: 'done', value };
    } catch (e) {
      if (timedOut) {
        this.stats.timeouts++;
        // The killed thread is replaced: let the next task wait for it to load rather than spend its deadline.
        if (this.probe !== undefined) {
          this.warm = null;
          void this.warmup(this.probe);
        }
        return { status: 'timeout', reason: `${this.label} exceeded ${timeoutMs} ms and its worker was killed` };
      }
      this.stats.errors++;
      return { status: 'error', reason: `${this.label} worker failed: ${(e as Error).message}` };
    } finally {
      if (timer) clearTimeout(timer);
      this.release();
    }
  }

  /** A thread, or why none: the queue is full, or none came free within `waitMs`. */
  private acquire(waitMs: number): Promise<'ok' | string> {
    if (this.running < this.threads) {
      this.running++;
      return Promise.resolve('ok');
    }
    if (this.waiters.length >= this.maxQueue)
      return Promise.resolve(
        `${this.label} pool busy: ${this.running} running and ${this.waiters.length} waiting (the queue limit), not queued`,
      );
    return new Promise((resolve) => {
      const w = {
        start: () => {
          clearTimeout(w.expire);
          resolve('ok');
        },
        expire: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(`${this.label} pool busy: no worker came free within ${waitMs} ms`);
        }, waitMs),
      };
      this.waiters.push(w);
    });
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next.start();
    else this.running--;
  }

  async close(): Promise<void> {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.expire);
      w.start();
    }
    await this.pool.destroy();
  }
}
