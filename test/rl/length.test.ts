import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/rl.js';
import { parseRlConfig, toyPreset } from '../../src/rl/config.js';
import { formatCompare, type MetricsRow } from '../../src/rl/inspect.js';
import {
  LENGTH_CONTROL_OFF,
  lengthControlEnabled,
  lengthMetrics,
  lengthPenalty,
  validateLengthControl,
} from '../../src/rl/length.js';

const ids = (n: number) => new Int32Array(n);

describe('lengthPenalty', () => {
  it("matches DAPO's soft overlong formula on thinking tokens (verl: min(−(len − (L − b))/b·f, 0))", () => {
    const c = { forcedPenalty: 0, overlongBuffer: 4, overlongFactor: 0.5 };
    const dapo = (len: number) => -Math.min(-((len - (10 - 4)) / 4) * 0.5, 0);
    for (const t of [0, 5, 6, 7, 8, 9, 10])
      expect(lengthPenalty({ forced: false, thinkingTokens: t }, c, 10).overlong).toBeCloseTo(dapo(t), 12);
    // capped at the factor when a re-encoded count passes the budget
    expect(lengthPenalty({ forced: true, thinkingTokens: 12 }, c, 10).overlong).toBe(0.5);
  });

  it('adds the forced penalty to forced responses only', () => {
    const c = { forcedPenalty: 0.25, overlongBuffer: 2, overlongFactor: 0.1 };
    expect(lengthPenalty({ forced: true, thinkingTokens: 8 }, c, 8)).toEqual({
      forced: 0.25,
      overlong: 0.1,
      total: 0.35,
    });
    expect(lengthPenalty({ forced: false, thinkingTokens: 3 }, c, 8)).toEqual({ forced: 0, overlong: 0, total: 0 });
  });

  it('is off by default and says which field is wrong', () => {
    expect(lengthControlEnabled(LENGTH_CONTROL_OFF)).toBe(false);
    expect(lengthPenalty({ forced: true, thinkingTokens: 8 }, LENGTH_CONTROL_OFF, 8).total).toBe(0);
    expect(parseRlConfig(toyPreset('/tmp/unused')).lengthControl).toEqual(LENGTH_CONTROL_OFF);
    expect(() => validateLengthControl({ ...LENGTH_CONTROL_OFF, overlongBuffer: 6 }, 6)).toThrow(
      /lengthControl\.overlongBuffer 6 must be smaller than rollout\.maxThinkingTokens 6/,
    );
    expect(() => validateLengthControl({ ...LENGTH_CONTROL_OFF, forcedPenalty: -1 }, 6)).toThrow(
      /forcedPenalty: expected a number >= 0, got -1/,
    );
    const base = toyPreset('/tmp/unused');
    expect(() => parseRlConfig({ ...base, lengthControl: { overlongBuffer: 9 } })).toThrow(
      /lengthControl\.overlongBuffer 9 must be smaller/,
    );
    expect(() => parseRlConfig({ ...base, lengthControl: { forcedPenality: 1 } })).toThrow(/lengthControl/);
  });
});

describe('lengthMetrics', () => {
  it('forced share, pass rate with and without forcing, length quantiles and penalty paid', () => {
    const r = (forced: boolean, think: number, n: number) => ({
      forced,
      thinkingTokens: think,
      answerTokens: n - think,
      tokenIds: ids(n),
    });
    const m = lengthMetrics([
      { rollout: r(true, 6, 10), correct: true, penalty: 0.1 },
      { rollout: r(true, 6, 9), correct: false, penalty: 0.1 },
      { rollout: r(false, 2, 5), correct: true, penalty: 0 },
      { rollout: r(false, 3, 7), correct: null, penalty: 0 }, // unusable: out of the pass rates
    ]);
    expect(m).toEqual({
      forced_rate: 0.5,
      forced_pass_rate: 0.5,
      unforced_pass_rate: 1,
      thinking_tokens_p50: 6,
      thinking_tokens_p90: 6,
      response_tokens_max: 10,
      length_penalty_mean: 0.05,
      length_penalized_rate: 0.5,
    });
    expect(lengthMetrics([])).toMatchObject({ forced_rate: 0, forced_pass_rate: null, response_tokens_max: 0 });
  });
});

describe('formatCompare (glmv rl curves RUN --compare RUN2)', () => {
  const rows = (forced: number[]): MetricsRow[] =>
    forced.map((f, step) => ({
      step,
      forced_rate: f,
      thinking_tokens_mean: 6 * f,
      response_tokens_mean: 10,
      pass_rate: 0.5,
      domains: { text: { reward: 0.5, pass: 0.5, format_fail: 0, forced: f, response_tokens: 10, n: 8 } },
    }));

  it('puts the forced share of the runs side by side, with first → last window means', () => {
    const out = formatCompare(
      [
        { name: 'off', rows: rows([0.2, 0.5, 0.9, 0.9]) },
        { name: 'on', rows: rows([0.2, 0.1, 0, 0]) },
      ],
      { window: 2 },
    );
    const lines = out.split('\n');
    expect(lines[1]).toMatch(/step\s+forced off\s+think off\s+pass off\s+forced on\s+think on\s+pass on/);
    expect(lines[4]).toMatch(/^\s*2\s+90\.0%\s+5\.4\s+50\.0%\s+0\.0%\s+0\.0\s+50\.0%$/);
    expect(out).toMatch(/off\s+4\s+35\.0% → 90\.0%/);
    expect(out).toMatch(/on\s+4\s+15\.0% → 0\.0%/);
    // one domain: its thinking tokens are unknown in these rows
    expect(
      formatCompare(
        [
          { name: 'a', rows: rows([0.3]) },
          { name: 'b', rows: rows([0.1]) },
        ],
        { domain: 'text' },
      ),
    ).toMatch(/0\s+30\.0%\s+-\s+50\.0%\s+10\.0%/);
    expect(() => formatCompare([{ name: 'a', rows: [] }])).toThrow(/at least two runs/);
  });
});

describe('glmv rl curves --compare', () => {
  it('prints the runs side by side, named by folder; --tiers with --compare is one clear error', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rl-compare-'));
    const write = (name: string, forced: number[]) => {
      mkdirSync(join(root, name));
      const lines = forced.map((f, step) =>
        JSON.stringify({ step, forced_rate: f, thinking_tokens_mean: 5, response_tokens_mean: 9, pass_rate: 0.5 }),
      );
      writeFileSync(join(root, name, 'metrics.jsonl'), `${lines.join('\n')}\n`);
      return join(root, name);
    };
    const off = write('off', [0.2, 0.9]);
    const on = write('on', [0.2, 0.0]);
    const run = async (args: string[]) => {
      const program = new Command().exitOverride();
      register(program);
      let out = '';
      let err = '';
      const lo = vi.spyOn(console, 'log').mockImplementation((...a) => {
        out += `${a.join(' ')}\n`;
      });
      const se = vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
        err += String(c);
        return true;
      });
      process.exitCode = undefined;
      try {
        await program.parseAsync(['node', 'glmv', 'rl', ...args]);
      } finally {
        lo.mockRestore();
        se.mockRestore();
      }
      const code = process.exitCode as number | undefined;
      process.exitCode = undefined;
      return { out, err, code };
    };
    const r = await run(['curves', off, '--compare', on]);
    expect(r.code).toBeUndefined();
    expect(r.out).toMatch(/forced off\s+think off\s+pass off\s+forced on/);
    expect(r.out).toMatch(/^\s*1\s+90\.0%\s+5\.0\s+50\.0%\s+0\.0%/m);
    const bad = await run(['curves', off, '--compare', on, '--tiers']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--tiers and --compare cannot be combined/);
    const missing = await run(['curves', off, '--compare', join(root, 'nope')]);
    expect(missing.err).toMatch(/nope: no such folder/);
  });
});
