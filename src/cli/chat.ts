/**
 * `glmv chat`: ask a model a question about images / a video. Thinking streams dimmed, the answer plainly;
 * `--json` prints one machine-readable object instead.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ChatModel } from '../io/chat.js';
import type { ChatMessage, ContentPart } from '../io/template.js';

interface ChatCliOptions {
  model?: string;
  image: string[];
  video?: string;
  system?: string;
  think: boolean;
  thinkBudget?: string;
  maxTokens: string;
  temperature: string;
  topP: string;
  seed: string;
  json?: boolean;
  minPixels?: string;
  maxPixels?: string;
  fps?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command('chat')
    .description('answer a question about images or a video with a GLM-V model (default: the embedded model)')
    .argument('<question...>', 'the question')
    .option(
      '--model <dir>',
      'model folder (config.json, model.safetensors, tokenizer.json, …); default: the embedded model',
    )
    .option('--image <path>', 'an image (PNG, JPEG, WebP, GIF); repeat for several', collect, [])
    .option('--video <path>', 'a video file (decoded with ffmpeg)')
    .option('--system <text>', 'a system message')
    .option('--no-think', 'answer without thinking (/nothink)')
    .option('--think-budget <n>', 'force an answer after n thinking tokens')
    .option('--max-tokens <n>', 'maximum new tokens', '1024')
    .option('--temperature <t>', '0 = greedy', '0')
    .option('--top-p <p>', 'nucleus sampling mass', '1')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--min-pixels <n>', 'resize images to at least this many pixels (default: the model preprocessor config)')
    .option('--max-pixels <n>', 'resize images to at most this many pixels (fewer image tokens)')
    .option('--fps <n>', 'video frames sampled per second (default: the model video config, 2)')
    .option('--json', 'print one JSON object (reasoning, answer, box, usage) instead of streaming text')
    .addHelpText(
      'after',
      `
Examples:
  glmv chat --image examples/shapes.png "How many red circles are there?"
  glmv chat --model runs/small/final --image chart.png --think-budget 64 "What is the value for 2019?"
  glmv chat --video clip.mp4 --no-think "Which direction does the ball move?"
  glmv chat --video clip.mp4 --fps 1 --max-pixels 200704 "What happens?"
  glmv chat --json --image a.png "Where is the blue square?" | jq .box`,
    )
    .action(async (question: string[], o: ChatCliOptions) => runChat(question.join(' '), o));
}

function num(v: string, name: string, int = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < 0)
    throw new Error(`--${name} must be a non-negative ${int ? 'integer' : 'number'}, got '${v}'`);
  return n;
}

async function runChat(question: string, o: ChatCliOptions): Promise<void> {
  if (!question.trim()) throw new Error('chat: the question is empty');
  const maxNewTokens = num(o.maxTokens, 'max-tokens', true);
  if (maxNewTokens < 1) throw new Error('--max-tokens must be at least 1');
  const thinkingBudget = o.thinkBudget !== undefined ? num(o.thinkBudget, 'think-budget', true) : null;
  const loaded = await ChatModel.load(o.model);
  if (loaded.loadSummary) process.stderr.write(`glmv chat: ${loaded.loadSummary}\n`);
  // The same per-request processor settings as `glmv serve`'s mm_processor_kwargs.
  const resize = {
    minPixels: o.minPixels !== undefined ? num(o.minPixels, 'min-pixels', true) : null,
    maxPixels: o.maxPixels !== undefined ? num(o.maxPixels, 'max-pixels', true) : null,
    fps: o.fps !== undefined ? num(o.fps, 'fps') : null,
  };
  const chat =
    resize.minPixels !== null || resize.maxPixels !== null || resize.fps !== null
      ? new ChatModel(loaded.model, loaded.tokenizer, loaded.processor.withOptions(resize), loaded.dir)
      : loaded;
  const parts: ContentPart[] = [];
  for (const img of o.image) parts.push({ type: 'image', image: img });
  if (o.video) parts.push({ type: 'video', video: o.video });
  parts.push({ type: 'text', text: question });
  const messages: ChatMessage[] = [
    ...(o.system ? [{ role: 'system' as const, content: o.system }] : []),
    { role: 'user', content: parts },
  ];
  const tty = process.stdout.isTTY;
  const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[22m` : s);
  let printedReasoning = false;
  let printedContent = false;
  const result = await chat.chat(messages, {
    thinking: o.think,
    thinkingBudget,
    maxNewTokens,
    temperature: num(o.temperature, 'temperature'),
    topP: num(o.topP, 'top-p'),
    seed: num(o.seed, 'seed', true),
    onToken: o.json
      ? undefined
      : (e) => {
          if (e.reasoning) {
            if (!printedReasoning && !tty) process.stdout.write('[thinking]\n');
            printedReasoning = true;
            process.stdout.write(dim(e.reasoning));
          }
          if (e.content) {
            if (!printedContent) process.stdout.write(printedReasoning ? (tty ? '\n\n' : '\n[answer]\n') : '');
            printedContent = true;
            process.stdout.write(e.content);
          }
        },
  });
  if (o.json) {
    const out = {
      model: chat.dir,
      reasoning: result.reasoning,
      answer: result.content,
      box: result.box.ok ? result.box.value : null,
      box_error: result.box.ok ? null : result.box.failure,
      finish_reason: result.finishReason,
      forced_answer: result.forced,
      usage: {
        prompt_tokens: result.promptTokens,
        completion_tokens: result.completionTokens,
        thinking_tokens: result.thinkingTokens,
      },
      tokens_per_second: Number(result.stats.tokensPerSecond.toFixed(1)),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  process.stdout.write('\n');
  const notes: string[] = [];
  if (result.forced) notes.push('answer forced after the thinking budget');
  if (result.finishReason === 'length') notes.push(`stopped at --max-tokens ${maxNewTokens}`);
  notes.push(`${result.completionTokens} tokens, ${result.stats.tokensPerSecond.toFixed(1)} tok/s`);
  notes.push(`peak RSS ${(peakRss() / 1e9).toFixed(2)} GB`);
  process.stderr.write(dim(`(${notes.join('; ')})\n`));
}

/** The process's peak resident set (VmHWM; the current RSS where /proc is missing), for the closing line. */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.memoryUsage().rss;
}
