/** `glmv chat` end to end on a tiny random model folder: JSON output, thinking off, force answering, errors. */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatModel } from '../../src/io/chat.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';

let dir = '';
let image = '';

beforeAll(async () => {
  dir = tinyModelDir();
  image = join(dir, 'red.png');
  writeFileSync(
    image,
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#d00' } })
      .png()
      .toBuffer(),
  );
});

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'chat', ...args], {
    encoding: 'utf8',
    env: { ...process.env, GLMV_QUIET: '1' },
  });
}

describe('ChatModel', () => {
  it('answers with an image, thinking on and off, and forces an answer after the budget', async () => {
    const chat = await ChatModel.load(dir);
    expect(chat.style).toBe('glm41v');
    const msgs = [
      {
        role: 'user' as const,
        content: [
          { type: 'image' as const, image },
          { type: 'text' as const, text: 'what colour?' },
        ],
      },
    ];
    const on = await chat.chat(msgs, { maxNewTokens: 6 });
    expect(on.promptTokens).toBeGreaterThan(10);
    expect(on.completionTokens).toBeGreaterThan(0);
    const off = await chat.prepare(msgs, false);
    const onIds = await chat.prepare(msgs, true);
    expect(chat.tokenizer.decode(off.inputIds, { skipSpecialTokens: false })).toContain('/nothink');
    expect(chat.tokenizer.decode(onIds.inputIds, { skipSpecialTokens: false })).not.toContain('/nothink');
    const forced = await chat.chat(msgs, { maxNewTokens: 8, thinkingBudget: 2 });
    // Greedy decoding of the seeded random model neither stops nor closes thinking in its first two tokens, so the
    // budget of 2 must force `</think><answer>` in as tokens 3 and 4.
    expect(forced.forced, forced.text).toBe(true);
    expect(forced.thinkingTokens).toBe(2);
    expect(forced.tokens.slice(2, 4)).toEqual(chat.generateOptions({}).forceAnswerIds);
    expect(forced.text).toContain('</think><answer>');
  });
});

describe('glmv chat', () => {
  it('prints one JSON object with --json', () => {
    const r = cli(['--model', dir, '--image', image, '--max-tokens', '5', '--json', 'what', 'is', 'this?']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.usage.completion_tokens).toBeGreaterThan(0);
    expect(out.usage.completion_tokens).toBeLessThanOrEqual(5);
    expect(['stop', 'length']).toContain(out.finish_reason);
  });

  it('uses the embedded default model without --model: the README main command answers in the trained format', () => {
    const r = cli(['--image', 'examples/shapes.png', '--json', 'How many triangles are there?']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.model).toMatch(/glmv-small/);
    // Trained through SFT + RL: non-empty reasoning, then exactly one box inside <answer>.
    expect(out.reasoning.length).toBeGreaterThan(10);
    expect(out.answer).toMatch(/^<answer><\|begin_of_box\|>[^<]+<\|end_of_box\|><\/answer>$/);
    expect(out.finish_reason).toBe('stop');
  });

  it('runs through the installed bin exactly as the README calls it (npx glmv chat …)', () => {
    // npm ci builds dist/; `npx glmv` executes package.json's bin directly, so it must be executable.
    const r = spawnSync(
      'npx',
      ['--no-install', 'glmv', 'chat', '--image', 'examples/shapes.png', '--json', 'How many triangles are there?'],
      { encoding: 'utf8', env: { ...process.env, GLMV_QUIET: '1' } },
    );
    expect(r.status, `${r.stderr} (npm run build makes dist/)`).toBe(0);
    expect(JSON.parse(r.stdout).answer).toMatch(/^<answer><\|begin_of_box\|>[^<]+<\|end_of_box\|><\/answer>$/);
  });

  it('--max-pixels shrinks the image like mm_processor_kwargs (hand-computed token counts)', () => {
    const run = (extra: string[]) => {
      const r = cli(['--model', dir, '--image', image, '--max-tokens', '1', '--json', ...extra, 'hi']);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout).usage.prompt_tokens as number;
    };
    // 64×48 counted as 2 frames: min_pixels 12544 → 112×84 → 8×6 patches → 12 tokens; --max-pixels 3136 (min
    // follows it down) → 28×28 → 1 token.
    expect(run([]) - run(['--max-pixels', '3136'])).toBe(11);
    const bad = cli(['--model', dir, '--max-pixels', '-4', 'hi']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--max-pixels must be/);
  });

  it('explains bad input with a non-zero exit', () => {
    const badTok = cli(['--model', dir, '--max-tokens', 'x', 'hi']);
    expect(badTok.status).not.toBe(0);
    expect(badTok.stderr).toMatch(/--max-tokens must be/);
  });

  it('has --help with examples', () => {
    const help = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'chat', '--help'], {
      encoding: 'utf8',
    });
    expect(help).toMatch(/Examples:/);
    expect(help).toMatch(/--think-budget/);
  });
});

describe('ChatModel errors', () => {
  it('names a missing model folder and an unreadable image', async () => {
    await expect(ChatModel.load(join(dir, 'nope'))).rejects.toThrow(/is not a model folder/);
    const chat = await ChatModel.load(dir);
    const msgs = [
      {
        role: 'user' as const,
        content: [
          { type: 'image' as const, image: join(dir, 'config.json') },
          { type: 'text' as const, text: 'hi' },
        ],
      },
    ];
    await expect(chat.chat(msgs, { maxNewTokens: 2 })).rejects.toThrow(/image/i);
  });
});
