/**
 * Every verifier call under a hard deadline: the call runs in a worker thread (./verifier-worker.ts) that is killed
 * when it overruns, so no answer — a regex that backtracks, a value that explodes — can stall scoring. A call over
 * its deadline, or one that finds the pool's queue full, is answered `unjudged` with the reason, quickly.
 *
 * The judge and the CAS check keep running on the main thread (their clients and pools have their own limits);
 * the worker asks for them through a message port and the deadline pauses while it waits.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { VerifierType } from '../data/sample.js';
import type { CasPool } from './cas.js';
import { type DeadlineClock, DeadlinePool, workerModule } from './deadline-pool.js';
import type { JudgeClient } from './judge.js';
import type { Verdict, VerifyContext } from './types.js';
import type { PortReply, PortRequest, VerifyReply, VerifyTask } from './verifier-worker.js';

export interface VerifierPoolOptions {
  /** Worker threads (default: the cores). */
  threads?: number;
  /** Compute time one verifier call may take, judge and CAS waits excluded (default 10000 ms). */
  timeoutMs?: number;
  /** Calls waiting for a thread; more are answered `unjudged` at once (default 16384: whole RL batches queue). */
  maxQueue?: number;
  /** Longest wait for a thread before a call is answered `unjudged` (default 120000 ms). */
  maxWaitMs?: number;
  maxHeapMb?: number;
  /** Worker module (tests use their own). */
  filename?: string;
}

/** A verdict for a call that decided nothing because it ran out of time or found no worker. */
export function overBudget(reason: string, path = 'deadline'): Verdict {
  return { score: 0, correct: false, confident: false, status: 'unjudged', reason, path };
}

export class VerifierPool {
  private readonly pool: DeadlinePool;
  readonly stats: DeadlinePool['stats'];

  constructor(opts: VerifierPoolOptions = {}) {
    this.pool = new DeadlinePool({
      filename: opts.filename ?? workerModule(import.meta.url, 'verifier-worker'),
      threads: opts.threads,
      timeoutMs: opts.timeoutMs ?? 10_000,
      maxQueue: opts.maxQueue ?? 16_384,
      maxWaitMs: opts.maxWaitMs ?? 120_000,
      maxHeapMb: opts.maxHeapMb,
      label: 'verifier call',
    });
    this.stats = this.pool.stats;
  }

  get timeoutMs(): number {
    return this.pool.timeoutMs;
  }

  /**
   * Runs `verifier` on `ctx` in a worker. Resolves to the verdict; a deadline or a full queue gives an `unjudged`
   * verdict; an exception inside the verifier is rethrown here (the router reports it as an error result).
   */
  async verify(verifier: VerifierType, ctx: VerifyContext): Promise<Verdict> {
    await this.pool.warmup({ op: 'echo' });
    const { cas, judge, ...rest } = ctx;
    const channel = new MessageChannel();
    const task: VerifyTask = {
      verifier,
      ctx: rest,
      hasJudge: !!judge,
      hasCas: !!cas,
      port: channel.port2,
    };
    let clock: DeadlineClock | null = null;
    channel.port1.on('message', (m: PortRequest) => {
      void this.serve(m, judge, cas, channel.port1, clock);
    });
    try {
      const r = await this.pool.run<VerifyReply>(task, {
        transferList: [channel.port2 as never],
        onStart: (c) => {
          clock = c;
        },
      });
      if (r.status === 'done') {
        if ('error' in r.value) throw new Error(r.value.error);
        return r.value.verdict;
      }
      if (r.status === 'error') throw new Error(r.reason);
      return overBudget(
        r.status === 'timeout'
          ? `${verifier} verifier: exceeded its ${this.pool.timeoutMs} ms deadline and was stopped (answer of ${ctx.answer.length} characters)`
          : `${verifier} verifier: ${r.reason}`,
        r.status === 'timeout' ? 'deadline' : 'busy',
      );
    } finally {
      channel.port1.close();
    }
  }

  /** Answers one judge/CAS request of a running call, with its deadline paused meanwhile. */
  private async serve(
    m: PortRequest,
    judge: JudgeClient | null,
    cas: CasPool | null,
    port: MessagePort,
    clock: DeadlineClock | null,
  ): Promise<void> {
    clock?.pause();
    let reply: PortReply;
    try {
      if (m.kind === 'judge' && judge) reply = { id: m.id, ok: await judge.judge(m.arg as never) };
      else if (m.kind === 'cas' && cas) reply = { id: m.id, ok: await cas.check(m.arg as never) };
      else reply = { id: m.id, error: `no ${m.kind} on this route` };
    } catch (e) {
      reply = { id: m.id, error: (e as Error)?.message ?? String(e) };
    }
    clock?.resume();
    try {
      port.postMessage(reply);
    } catch {
      // The call already ended (deadline): nobody waits for this answer.
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/** One pool per distinct setting in a process, closed when its last user releases it. */
const shared = new Map<string, { pool: VerifierPool; users: number }>();

export function acquireVerifierPool(o: VerifierPoolOptions): { pool: VerifierPool; release: () => Promise<void> } {
  const key = JSON.stringify([
    o.threads ?? null,
    o.timeoutMs ?? null,
    o.maxQueue ?? null,
    o.maxWaitMs ?? null,
    o.filename ?? null,
  ]);
  let entry = shared.get(key);
  if (!entry) {
    entry = { pool: new VerifierPool(o), users: 0 };
    shared.set(key, entry);
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    pool: e.pool,
    release: async () => {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      if (shared.get(key) === e) shared.delete(key);
      await e.pool.close();
    },
  };
}
