/** glmv train: help and examples, the dry run, errors, and Ctrl-C writing a checkpoint in a real process. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { register } from '../../src/cli/train.js';
import { baseConfig, type Fixture, fixture } from './helpers.js';

let f: Fixture;
let tmp: string;
beforeAll(async () => {
  f = await fixture();
  tmp = mkdtempSync(join(tmpdir(), 'glmv-train-cli-'));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

function program(): Command {
  const p = new Command();
  p.exitOverride();
  register(p);
  return p;
}

async function runCli(args: string[]): Promise<{ out: string; err: string; code: number | undefined }> {
  let out = '';
  let err = '';
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((t: string | Uint8Array) => {
    err += String(t);
    return true;
  });
  await program().parseAsync(['node', 'glmv', 'train', ...args]);
  const code = process.exitCode as number | undefined;
  vi.restoreAllMocks();
  return { out, err, code };
}

describe('glmv train', () => {
  it('has the four stages, each with options and examples in --help', () => {
    const train = program().commands.find((c) => c.name() === 'train')!;
    expect(train.commands.map((c) => c.name())).toEqual(['tokenizer', 'pretrain', 'longctx', 'sft']);
    for (const cmd of train.commands) {
      let help = '';
      cmd.configureOutput({
        writeOut: (t) => {
          help += t;
        },
      });
      cmd.outputHelp();
      expect(help, cmd.name()).toMatch(/Examples:\n {2}glmv train /);
      expect(help).toMatch(/--config <file>/);
      expect(help).toMatch(/--dry-run/);
      if (cmd.name() !== 'tokenizer') expect(help).toMatch(/--resume <dir>/);
    }
  });

  it('--dry-run prints the resolved config, size, tokens per step and a measured step estimate, and trains nothing', async () => {
    const file = join(tmp, 'pre.yaml');
    const dir = join(tmp, 'dry');
    writeFileSync(file, toYaml(baseConfig(f, dir)));
    const r = await runCli([
      'pretrain',
      '--config',
      file,
      '--dry-run',
      '--set',
      'batch.rows=4',
      '--set',
      'batch.microRows=2',
    ]);
    expect(r.code).toBeUndefined();
    expect(r.out).toMatch(/seqLen: 256/);
    expect(r.out).toMatch(/model: glm4v, [\d.]+k parameters \(vision [\d.]+k, text [\d.]+k, lm head [\d.]+k\)/);
    expect(r.out).toMatch(/batch: 4 sequences × 256 tokens = 1\.0k tokens per step; 2 per micro-batch, accumulation 2/);
    expect(r.out).toMatch(/caption +\d+ records/);
    expect(r.out).toMatch(/first step: \d+ examples, .* packing efficiency \d+\.\d%/);
    expect(r.out).toMatch(/estimated step time: [\d.]+ s compute/);
    expect(existsSync(dir)).toBe(false);
  });

  it('reports a bad config as an error naming the field, with exit code 1', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, toYaml({ ...baseConfig(f, join(tmp, 'bad')), pack: { seqLen: 'long' } }));
    const r = await runCli(['pretrain', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /glmv train pretrain: error: train config .*bad\.yaml: pack\.seqLen: .*number.*\(found "long"\)/,
    );
  });

  it('Ctrl-C finishes the step, writes a checkpoint and says how to resume', async () => {
    const dir = join(tmp, 'sigint');
    const file = join(tmp, 'sigint.yaml');
    writeFileSync(file, toYaml(baseConfig(f, dir, { run: { dir, steps: 10_000, checkpointEvery: 0 } })));
    const child = spawn(
      'node',
      ['--import', 'tsx', 'src/cli/main.ts', 'train', 'pretrain', '--config', file, '--quiet'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // Interrupt once training has started (a metrics line exists).
    const metrics = join(dir, 'metrics.jsonl');
    for (let i = 0; i < 600 && !(existsSync(metrics) && readFileSync(metrics, 'utf8').includes('"train"')); i++)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(err).toMatch(/interrupt — finishing this step and writing a checkpoint/);
    expect(code).toBe(0);
    expect(out).toMatch(/pretrain: \d+ steps \(interrupted\)/);
    expect(out).toMatch(/continue with: --resume /);
    const state = JSON.parse(
      readFileSync(
        join(dir, 'checkpoints', readFileSync(join(dir, 'checkpoints', 'latest'), 'utf8').trim(), 'trainer_state.json'),
        'utf8',
      ),
    );
    expect(state.step).toBeGreaterThan(0);
    expect(state.step).toBeLessThan(10_000);
  });
});
