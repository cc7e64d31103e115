import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'glmv-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const glmv = (...args: string[]) =>
  spawnSync('npx', ['tsx', 'src/cli/main.ts', 'data', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('glmv data CLI', () => {
  it('generates, validates and shows a dataset', () => {
    const out = join(root, 'd');
    const g = glmv('gen', '--domains', 'vqa,ocr', '--n', '6', '--size', '56', '--out', out, '--quiet');
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/wrote 6 samples in 1 shard/);
    expect(g.stdout).toMatch(/vqa\s+3 samples\s+[\d.]+ samples\/s/);
    const v = glmv('validate', out);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/6 samples \(dataset\): vqa 3, ocr 3/);
    const s = glmv('show', out);
    expect(s.stdout).toMatch(/index.html \(6 samples\)/);
  });

  it('explains bad input and shows examples in --help', () => {
    const bad = glmv('gen', '--domains', 'vqa,nope', '--out', join(root, 'x'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/unknown generator "nope"; expected one of vqa, stem/);
    const help = execFileSync('npx', ['tsx', 'src/cli/main.ts', 'data', 'gen', '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/Examples:\n {2}glmv data gen/);
  });
});
