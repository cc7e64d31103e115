/**
 * The bench scripts' command lines (bench/cli.ts): `--help` prints the usage with examples and exits 0 before
 * anything is measured (the output is the help text alone); an unknown option or a bad value exits 2 with one error
 * line and prints nothing on stdout (no run started with the defaults). Each example names an npm script of
 * package.json that runs that bench.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;
const BENCHES = ['engine', 'rl', 'train', 'reward', 'fuzz', 'serve', 'serve-hostile'];

function bench(name: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join('bench', `${name}.ts`), ...args],
      { cwd: ROOT, encoding: 'utf8', timeout: 90_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err.code as number | undefined) ?? null) : 0, stdout, stderr }),
    );
  });
}

describe.concurrent('bench command lines', () => {
  for (const name of BENCHES) {
    it(`bench:${name} --help prints usage and examples, runs nothing`, async () => {
      const r = await bench(name, ['--help']);
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`Usage: bench:${name} [options]`)).toBe(true);
      const examples = r.stdout.split('\nExamples:\n')[1]?.split('\n\n')[0]?.split('\n').filter(Boolean) ?? [];
      expect(examples.length).toBeGreaterThanOrEqual(2);
      for (const line of examples) {
        const script = /npm run (bench:[\w-]+)/.exec(line)?.[1];
        expect(script, line).toBe(`bench:${name}`);
        expect(scripts[script!]).toBe(`tsx bench/${name}.ts`);
      }
    });

    it(`bench:${name} rejects an unknown option with exit 2`, async () => {
      const r = await bench(name, ['--bogus']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')[0]).toBe("error: unknown option '--bogus'");
      expect(r.stdout).toBe('');
    });
  }

  it('a bad option value exits 2 naming the option', async () => {
    const [runs, seconds] = await Promise.all([bench('fuzz', ['--runs', '0']), bench('reward', ['--seconds', 'x'])]);
    expect(runs.code).toBe(2);
    expect(runs.stderr).toMatch(/--runs <n>' argument '0' is invalid\. expected a positive integer/);
    expect(seconds.code).toBe(2);
    expect(seconds.stderr).toMatch(/--seconds <n>' argument 'x' is invalid\. expected a positive number/);
    expect(runs.stdout + seconds.stdout).toBe('');
  });
});
