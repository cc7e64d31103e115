/**
 * `glmv serve` as a process: --help with examples, flag errors, the URL on stdout, a real request, and a clean exit
 * on SIGTERM. Plus a GLM-4.5V-style model (MoE decoder, `enable_thinking` template) served in process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../../src/cli/serve.js';
import { ChatModel } from '../../src/io/chat.js';
import { GLM45V_CHAT_TEMPLATE } from '../../src/io/template.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { tinyConfig } from '../../src/model/presets.js';
import { createServer, type GlmvServer } from '../../src/serve/server.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';
import { post, user } from './server-harness.js';

/** `glmv serve …` parsed in this process (help text and flag errors, before any model loads). */
async function cliIn(args: string[]): Promise<{ out: string; error: string }> {
  const program = new Command().exitOverride();
  register(program);
  let out = '';
  const cmd = program.commands.find((c) => c.name() === 'serve')!;
  const write = (t: string) => {
    out += t;
  };
  cmd.exitOverride().configureOutput({ writeOut: write, writeErr: write });
  try {
    await program.parseAsync(['node', 'glmv', 'serve', ...args]);
    return { out, error: '' };
  } catch (e) {
    return { out, error: (e as Error).message };
  }
}

describe('glmv serve (process)', () => {
  it('--help lists the endpoints, extensions and examples; bad flags are clear errors', async () => {
    const h = await cliIn(['--help']);
    expect(h.out).toMatch(/--max-batch/);
    expect(h.out).toMatch(/thinking_budget/);
    expect(h.out).toMatch(/Examples:\n\s+glmv serve/);
    expect((await cliIn(['--port', 'eighty'])).error).toMatch(/--port: expected an integer >= 0, found 'eighty'/);
    expect((await cliIn(['--reasoning-field', 'thoughts'])).error).toMatch(
      /--reasoning-field: expected reasoning_content, reasoning or both, found 'thoughts'/,
    );
    expect((await cliIn(['--max-batch', '0'])).error).toMatch(/--max-batch: expected an integer >= 1, found '0'/);
  });

  it('prints its URL, answers, and exits 0 on SIGTERM', async () => {
    const dir = tinyModelDir();
    const proc: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', dir, '--port', '0', '--served-model-name', 'm'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GLMV_QUIET: '1' } },
    );
    let stderr = '';
    proc.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: proc.stdout! }).once('line', resolve);
      proc.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    expect(line).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const base = line.replace(/\/v1$/, '');
    const r = await post(base, { model: 'm', messages: user('hi'), max_tokens: 3, temperature: 0 });
    expect(r.status).toBe(200);
    expect((r.json.usage as { completion_tokens: number }).completion_tokens).toBe(3);
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM — no new requests/);
    expect(stderr).toMatch(/stopped/);
  }, 60_000);
});

describe('a GLM-4.5V-style model (MoE, enable_thinking template)', () => {
  let server: GlmvServer;
  let url = '';
  let chat: ChatModel;

  beforeAll(async () => {
    const dir = tinyModelDir();
    const cfg = tinyConfig('glm4v_moe', { layers: 2 });
    Object.assign(cfg, {
      imageStartTokenId: 499,
      imageEndTokenId: 500,
      videoStartTokenId: 501,
      videoEndTokenId: 502,
      imageTokenId: 503,
      videoTokenId: 504,
      eosTokenId: [492, 496],
    });
    Glm4vForConditionalGeneration.random(cfg, { seed: 4 }).save(dir);
    writeFileSync(join(dir, 'chat_template.jinja'), GLM45V_CHAT_TEMPLATE);
    chat = await ChatModel.load(dir);
    server = await createServer({ chat, modelName: 'v45' });
    url = await server.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    await server.close(0);
  });

  it('thinking off primes <think></think>; answers match the model run directly', async () => {
    expect(chat.style).toBe('glm45v');
    for (const thinking of [true, false]) {
      const r = await post(url, {
        messages: user('Name a colour.'),
        max_tokens: 8,
        temperature: 0,
        chat_template_kwargs: { enable_thinking: thinking },
      });
      const ref = await chat.chat(user('Name a colour.'), { thinking, maxNewTokens: 8, temperature: 0 });
      const m = (r.json.choices as Array<{ message: { content: string; reasoning_content: string | null } }>)[0]!
        .message;
      expect(m.content).toBe(ref.content);
      expect(m.reasoning_content ?? '').toBe(ref.reasoning);
      expect((r.json.usage as { prompt_tokens: number }).prompt_tokens).toBe(ref.promptTokens);
    }
    const off = await chat.prepare(user('x'), false);
    expect(chat.tokenizer.decode(off.inputIds, { skipSpecialTokens: false })).toMatch(/<think><\/think>$/);
  });

  it('force answering after the thinking budget: reasoning, then `</think>` and the answer as content', async () => {
    const r = await post(url, {
      messages: [...user('Think.'), { role: 'assistant', content: '<think>First,' }],
      continue_final_message: true,
      max_tokens: 7,
      temperature: 0,
      thinking_budget: 2,
    });
    const m = (r.json.choices as Array<{ message: { content: string; reasoning_content: string } }>)[0]!.message;
    expect(m.reasoning_content.length).toBeGreaterThan(0);
    const usage = r.json.usage as {
      completion_tokens: number;
      completion_tokens_details: { reasoning_tokens: number };
    };
    expect(usage.completion_tokens_details.reasoning_tokens).toBe(2);
    expect(usage.completion_tokens).toBe(7);
    expect(m.content).not.toMatch(/<answer>/); // GLM-4.5V style: `</think>` only
  });
});
