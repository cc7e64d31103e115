/**
 * The RL run folder: refusing to start a run over another, refusing to resume under a different config, and dropping
 * the logs of steps a resumed run replays.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latestCheckpoint } from './checkpoint.js';

/** Throws when `dir` already holds a run (a fresh start would mix two runs' logs). */
export function assertFreshRunDir(dir: string): void {
  const metrics = join(dir, 'metrics.jsonl');
  if (latestCheckpoint(dir) || (existsSync(metrics) && readFileSync(metrics, 'utf8').trim()))
    throw new Error(`${dir} already holds a run; pass --resume to continue it or choose another run.dir`);
}

/** Paths where two configs differ, ignoring run.steps (a resumed run may be extended). */
export function configDiff(a: unknown, b: unknown, path = ''): string[] {
  if (path === 'run.steps') return [];
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null))
    return [`${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
  if (a && typeof a === 'object') {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) =>
      configDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
    );
  }
  return a === b ? [] : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}

/** Drops metrics and rollout logs of steps at or after `from` (they are replayed after a resume). */
export function truncateRunLogs(runDir: string, from: number): void {
  const mp = join(runDir, 'metrics.jsonl');
  if (existsSync(mp)) {
    const lines = readFileSync(mp, 'utf8').split('\n').filter(Boolean);
    const keep = lines.filter((l) => {
      try {
        const r = JSON.parse(l) as { step?: number };
        return typeof r.step !== 'number' || r.step < from;
      } catch {
        return false;
      }
    });
    writeFileSync(mp, keep.length ? `${keep.join('\n')}\n` : '');
  }
  const rd = join(runDir, 'rollouts');
  if (existsSync(rd))
    for (const f of readdirSync(rd)) {
      const m = /^step-(\d+)\.jsonl$/.exec(f);
      if (m && Number(m[1]) >= from) rmSync(join(rd, f));
    }
}
