import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { itemFromLine, register } from '../../src/cli/reward.js';
import { B, R41, sample } from './helpers.js';

describe('reward CLI', () => {
  it('reads both input line shapes and names bad lines', () => {
    const s = sample();
    expect(itemFromLine(JSON.stringify({ sample: s, response: 'r', meta: { tokens: 3 } }), 1)).toMatchObject({
      sample: { id: s.id },
      response: 'r',
      meta: { tokens: 3 },
    });
    const flat = itemFromLine(JSON.stringify({ ...s, response: 'r', finish_reason: 'length' }), 2);
    expect(flat).toMatchObject({ response: 'r', meta: { finishReason: 'length' } });
    expect((flat as unknown as { sample: Record<string, unknown> }).sample.response).toBeUndefined();
    expect(itemFromLine('{', 3)).toMatch(/line 3: invalid JSON/);
    expect(itemFromLine('{"sample": {}}', 4)).toMatch(/line 4: missing string field "response"/);
  });

  it('registers score, serve and validate with help text and examples', () => {
    const program = new Command();
    register(program);
    const reward = program.commands.find((c) => c.name() === 'reward')!;
    expect(reward.commands.map((c) => c.name())).toEqual(['score', 'serve', 'validate']);
    const help = (name: string) => {
      const cmd = reward.commands.find((c) => c.name() === name)!;
      let out = '';
      cmd.configureOutput({
        writeOut: (t) => {
          out += t;
        },
      });
      cmd.outputHelp();
      return out;
    };
    expect(help('serve')).toMatch(/get_reward/);
    expect(help('score')).toMatch(/Examples:/);
    expect(help('validate')).toMatch(/glmv reward validate/);
  });

  it('glmv reward score writes results in order, a summary table and metrics', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reward-cli-'));
    const input = join(dir, 'in.jsonl');
    const lines = [
      { sample: sample({ id: 'a', answer: '2' }), response: R41('one plus one', B('2')) },
      { sample: sample({ id: 'b', answer: '2' }), response: R41('one plus one', B('3')) },
    ];
    writeFileSync(input, `${lines.map((l) => JSON.stringify(l)).join('\n')}\nnot json\n`);
    const routes = join(dir, 'routes.yaml');
    writeFileSync(routes, 'routes:\n  - { name: all, match: {}, params: { tolerance: 1e-6 } }\n');
    const out = join(dir, 'out.jsonl');
    const metrics = join(dir, 'm.jsonl');
    const r = spawnSync(
      'npx',
      [
        'tsx',
        'src/cli/main.ts',
        'reward',
        'score',
        '--in',
        input,
        '--out',
        out,
        '--config',
        routes,
        '--metrics',
        metrics,
        '--quiet',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(1); // one unreadable line
    expect(r.stderr).toMatch(/line 3: invalid JSON/);
    expect(r.stdout).toMatch(/ALL\s+2\s+0\.500/);
    const results = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((x) => [x.id, x.reward])).toEqual([
      ['a', 1],
      ['b', 0],
      ['line 3', undefined],
    ]);
    expect(readFileSync(metrics, 'utf8')).toMatch(/"event":"domain_stats"/);
  });
});
