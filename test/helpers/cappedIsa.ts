/**
 * Runs a snippet of ESM TypeScript in a child process whose CPU is capped with ONEDNN_MAX_CPU_ISA (the native backend
 * and oneDNN then choose what such a CPU has), with `arg` as process.argv[1], and parses the last line it prints as
 * JSON.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function runCappedIsa<T>(isa: string, code: string, arg: unknown): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, JSON.stringify(arg)], {
    cwd: ROOT,
    env: { ...process.env, ONEDNN_MAX_CPU_ISA: isa, GLMV_BACKEND: 'native' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0)
    throw new Error(`child (${isa}) failed (${r.signal ?? `exit ${r.status}`}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}
