import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/eval.js';
import { chatJson, lastUserText, type MockServer, startMockOpenAI } from './mock-openai.js';

const ROOT = join(import.meta.dirname, '../..');

/** Runs `glmv eval …` in this process, capturing its output and exit code. */
async function glmvIn(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command().exitOverride();
  register(program);
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((d) => {
    stdout += String(d);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((d) => {
    stderr += String(d);
    return true;
  });
  const prev = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'glmv', 'eval', ...args]);
  } catch (err) {
    stderr += (err as Error).message;
    process.exitCode = 1;
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = prev;
  return { code, stdout, stderr };
}

/** Runs the CLI without blocking this process's event loop (the mock server lives here). */
function glmv(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn('npx', ['tsx', 'src/cli/main.ts', 'eval', ...args], {
      cwd: ROOT,
      env: { ...process.env, GLMV_EVAL_DATA: '' },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('glmv eval CLI', () => {
  let server: MockServer;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glmv-cli-'));
    cpSync(join(ROOT, 'test/fixtures/eval'), join(dir, 'data'), { recursive: true });
    const answers: Record<string, string> = {
      'What is the title?': 'Annual Report',
      'What is the date?': '12 May',
      'Who signed?': 'Jane',
    };
    server = await startMockOpenAI((body) => {
      const q = lastUserText(body).split('\n')[0]!;
      return {
        json: chatJson({ reasoning_content: 'r', content: `<|begin_of_box|>${answers[q] ?? '?'}<|end_of_box|>` }),
      };
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a built-in benchmark on a user data file and prints the scores', async () => {
    const out = join(dir, 'out');
    const r = await glmv([
      '--endpoint',
      server.url,
      '--bench',
      'docvqa',
      '--data',
      `docvqa=${join(dir, 'data', 'docvqa.tsv')}`,
      '--modes',
      'think,nothink',
      '--out',
      out,
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // ANLS (1 + 1 + 0) / 3 in both modes.
    expect(r.stdout).toMatch(/docvqa\s+think\s+anls\s+66\.67/);
    expect(r.stdout).toMatch(/docvqa\s+nothink\s+anls\s+66\.67/);
    expect(r.stdout).toMatch(/docvqa\s+think−nothink \+0\.00/);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
    expect(readFileSync(join(out, 'docvqa', 'data_errors.jsonl'), 'utf8')).toContain('"row":4');
  }, 60_000);

  it('clear errors: not a model folder, unknown benchmark, missing data, bad flags', async () => {
    const notModel = await glmvIn(['--model', 'ckpt/', '--bench', 'mmstar', '--out', join(dir, 'x')]);
    expect(notModel.code).toBe(1);
    expect(notModel.stderr).toMatch(/ckpt\/ is not a model folder \(no config\.json\)/);
    const unknown = await glmvIn(['--endpoint', server.url, '--bench', 'nosuch', '--out', join(dir, 'x')]);
    expect(unknown.stderr).toMatch(/unknown benchmark "nosuch"/);
    const missing = await glmvIn([
      '--endpoint',
      server.url,
      '--bench',
      'mmstar',
      '--data-dir',
      dir,
      '--out',
      join(dir, 'x'),
      '--quiet',
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/benchmark mmstar: tsv file MMStar\.tsv not found/);
    const bad = await glmvIn(['--endpoint', server.url, '--bench', 'mmstar', '--out', join(dir, 'x'), '--limit', '0']);
    expect(bad.stderr).toMatch(/--limit: expected an integer ≥ 1/);
    const modes = await glmvIn([
      '--endpoint',
      server.url,
      '--bench',
      'docvqa',
      '--out',
      join(dir, 'x'),
      '--modes',
      'think,maybe',
    ]);
    expect(modes.stderr).toMatch(/--modes: expected think and\/or nothink, got maybe/);
  });

  it('--list shows every built-in with its metric and data', async () => {
    const r = await glmvIn(['--list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mmbench\s+mcq\s+tsv MMBench_DEV_EN_V11\.tsv/m);
    expect(r.stdout).toMatch(/^synth_chart\s+reward\s+synthetic chart/m);
  });

  it('an in-process run against the mock gives the same scores', async () => {
    const r = await glmvIn([
      '--endpoint',
      server.url,
      '--bench',
      'docvqa',
      '--data',
      `docvqa=${join(dir, 'data', 'docvqa.tsv')}`,
      '--out',
      join(dir, 'in'),
      '--quiet',
      '--limit',
      '2',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/docvqa\s+think\s+anls\s+100\.00\s+\[100\.00, 100\.00\]\s+n=2/);
  });
});
