/**
 * Verifier worker (piscina): runs one verifier call off the main thread, so the pool can kill it at its deadline
 * (./verifier-pool.ts). The judge and the CAS check stay on the main thread (network clients, their own pool and
 * limits): the worker asks for them through the task's message port and the deadline pauses while it waits.
 */
import type { MessagePort } from 'node:worker_threads';
import type { VerifierType } from '../data/sample.js';
import type { CasOutcome, CasPool } from './cas.js';
import type { CasTask } from './cas-worker.js';
import type { JudgeClient } from './judge.js';
import type { JudgeMode, Verdict, VerifyContext } from './types.js';
import { VERIFIERS } from './verifiers/index.js';

export interface VerifyTask {
  op?: 'echo';
  verifier: VerifierType;
  ctx: Omit<VerifyContext, 'cas' | 'judge' | 'judgeMode'> & { judgeMode: JudgeMode };
  /** Which main-thread services the call may use through `port`. */
  hasJudge: boolean;
  hasCas: boolean;
  port?: MessagePort;
}

export type VerifyReply = { verdict: Verdict } | { error: string };

/** A request to the main thread and its answer. */
export type PortRequest = { id: number; kind: 'judge' | 'cas'; arg: unknown };
export type PortReply = { id: number; ok?: unknown; error?: string };

function remote(port: MessagePort): (kind: PortRequest['kind'], arg: unknown) => Promise<unknown> {
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  port.on('message', (m: PortReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.ok);
  });
  return (kind, arg) =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      port.postMessage({ id, kind, arg } satisfies PortRequest);
    });
}

export default async function verify(task: VerifyTask): Promise<VerifyReply | { ok: true }> {
  if (task.op === 'echo') return { ok: true };
  const verifier = VERIFIERS[task.verifier];
  if (!verifier) return { error: `verifier "${task.verifier}" is unknown` };
  const call = task.port ? remote(task.port) : null;
  const judge =
    task.hasJudge && call ? ({ judge: (req: unknown) => call('judge', req) } as unknown as JudgeClient) : null;
  const cas =
    task.hasCas && call
      ? ({ check: (t: CasTask) => call('cas', t) as Promise<CasOutcome> } as unknown as CasPool)
      : null;
  try {
    const verdict = await verifier.verify({ ...task.ctx, cas, judge });
    return { verdict };
  } catch (e) {
    return { error: (e as Error)?.message ?? String(e) };
  } finally {
    task.port?.close();
  }
}
