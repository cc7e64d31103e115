/**
 * Running the trainers' own client code paths against our servers: a reward server on a real port, and Python
 * replay scripts (standard library only, so CI runs them with the system python3) fed JSON on stdin.
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PYTHON = process.env.PYTHON ?? 'python3';

/** Listens on a free local port; returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/**
 * Runs a Python script with `input` as JSON on stdin and parses its stdout as JSON. Asynchronous, so a server in
 * this process keeps answering while the script calls it.
 */
export function runPython<T>(script: string, input: unknown, env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    // No __pycache__ folders in the checkout from the adapters the scripts import.
    const child = spawn(PYTHON, [script], { cwd: ROOT, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => reject(new Error(`${PYTHON} ${script}: cannot start (${e.message})`)));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${PYTHON} ${script} exited with ${code}:\n${err.slice(-3000)}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`${PYTHON} ${script}: stdout is not JSON: ${out.slice(0, 500)}\n${err.slice(-2000)}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}
