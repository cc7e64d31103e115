/**
 * The request side of the OpenAI protocol: `/v1/chat/completions` and `/v1/completions` bodies checked and turned
 * into generation parameters. Unknown fields are ignored (as OpenAI does); known fields of the wrong type or out of
 * range are 400s naming the field; known features this server cannot honour (tool calling other than
 * `tool_choice: "none"`, logit_bias, penalties other than repetition_penalty) are 400s too, never silently dropped.
 *
 * Extensions (vLLM / SGLang spellings where they exist): `chat_template_kwargs.enable_thinking`, `thinking_budget`
 * (ours: force the answer after that many thinking tokens), `top_k`, `repetition_penalty`, `stop_token_ids`,
 * `include_stop_str_in_output`, `continue_final_message` + `add_generation_prompt`, `include_reasoning`,
 * `add_special_tokens` (completions), `skip_special_tokens` (default true, as vLLM), `return_token_ids`,
 * `mm_processor_kwargs` (`min_pixels`, `max_pixels`, `fps`).
 */
import { z } from 'zod';
import { ApiError, badParam, describe } from './errors.js';
import { checkToolChoice, parseTools, renderToolCalls, type ToolDef } from './tools.js';

export interface SamplingParams {
  /** null: the server default (generation_config.json or 1.0). */
  temperature: number | null;
  topP: number | null;
  topK: number | null;
  repetitionPenalty: number | null;
  seed: number | null;
  /** Most tokens to generate; null: the server default, capped by the context left. */
  maxTokens: number | null;
  stop: string[];
  /** Keep the matched stop string at the end of the output (vLLM's include_stop_str_in_output). */
  includeStop: boolean;
  stopTokenIds: number[];
  n: number;
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
  /** Most likely alternatives reported per token (0–20; chat `top_logprobs`, completions `logprobs`). */
  topLogprobs: number;
  /** Leave special tokens (`<|user|>`, `<|endoftext|>`, …) out of the text; vLLM's default true. */
  skipSpecialTokens: boolean;
  /** Return `prompt_token_ids` and each choice's `token_ids` (vLLM's `return_token_ids`). */
  returnTokenIds: boolean;
}

/** Per-request processor settings (vLLM's `mm_processor_kwargs`); null fields keep the model's own. */
export interface MmProcessorKwargs {
  /** Image pixel bounds of the resize (`min_pixels` / `max_pixels` of the GLM image processor). */
  minPixels: number | null;
  maxPixels: number | null;
  /** Video frames sampled per second. */
  fps: number | null;
}

export interface ChatParams extends SamplingParams {
  model: string | null;
  messages: RawMessage[];
  /** `chat_template_kwargs.enable_thinking`; null: the model's default (on). */
  enableThinking: boolean | null;
  /** Force the answer after this many thinking tokens (paper's force answering); null: no budget. */
  thinkingBudget: number | null;
  continueFinalMessage: boolean;
  includeReasoning: boolean;
  mmProcessorKwargs: MmProcessorKwargs | null;
  /** Functions offered (written into the prompt); calls are parsed into tool_calls when `toolChoice` is auto. */
  tools: ToolDef[] | null;
  toolChoice: 'none' | 'auto';
}

export interface CompletionParams extends SamplingParams {
  model: string | null;
  prompt: string | number[];
  addSpecialTokens: boolean;
}

/** A checked message, still with media URLs (resolved later, under the media policy). */
export interface RawMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  parts: RawPart[];
  /** Content was a plain string (kept as a string for the template). */
  plain: boolean;
  reasoning: string | null;
  /** An assistant message's past `tool_calls`, written as the model writes calls. */
  toolCalls: string | null;
}

export type RawPart =
  | { type: 'text'; text: string }
  | { type: 'image'; url: string; param: string }
  | { type: 'video'; url: string; param: string };

const nullish = <T extends z.ZodType>(t: T) => t.nullish();

/** Scalars shared by both endpoints. */
const Common = z.looseObject({
  model: nullish(z.string()),
  stream: nullish(z.boolean()),
  stream_options: nullish(z.looseObject({ include_usage: nullish(z.boolean()) })),
  max_tokens: nullish(z.number().int().min(1)),
  max_completion_tokens: nullish(z.number().int().min(1)),
  temperature: nullish(z.number().min(0).max(2)),
  top_p: nullish(z.number().gt(0).max(1)),
  top_k: nullish(z.number().int().min(-1)),
  repetition_penalty: nullish(z.number().gt(0)),
  presence_penalty: nullish(z.number().min(-2).max(2)),
  frequency_penalty: nullish(z.number().min(-2).max(2)),
  seed: nullish(
    z
      .number()
      .int()
      .min(-(2 ** 63))
      .max(2 ** 64),
  ),
  n: nullish(z.number().int().min(1)),
  stop: nullish(z.union([z.string(), z.array(z.string())])),
  stop_token_ids: nullish(z.array(z.number().int().min(0))),
  include_stop_str_in_output: nullish(z.boolean()),
  skip_special_tokens: nullish(z.boolean()),
  return_token_ids: nullish(z.boolean()),
  logit_bias: nullish(z.record(z.string(), z.number())),
  user: nullish(z.string()),
});

const ChatScalars = Common.extend({
  logprobs: nullish(z.boolean()),
  top_logprobs: nullish(z.number().int().min(0).max(20)),
  chat_template_kwargs: nullish(z.looseObject({ enable_thinking: nullish(z.boolean()) })),
  thinking_budget: nullish(z.number().int().min(0)),
  continue_final_message: nullish(z.boolean()),
  add_generation_prompt: nullish(z.boolean()),
  include_reasoning: nullish(z.boolean()),
  // Only the settings this server applies; another key is a 400, not silently ignored.
  mm_processor_kwargs: nullish(
    z.strictObject({
      min_pixels: nullish(z.number().int().min(1)),
      max_pixels: nullish(z.number().int().min(1)),
      fps: nullish(z.number().gt(0).max(60)),
    }),
  ),
  tools: nullish(z.array(z.unknown())),
  tool_choice: nullish(z.unknown()),
  response_format: nullish(z.looseObject({ type: z.string() })),
});

const CompletionScalars = Common.extend({
  prompt: z.union([z.string(), z.array(z.string()), z.array(z.number().int().min(0))]),
  logprobs: nullish(z.number().int().min(0).max(20)),
  echo: nullish(z.boolean()),
  suffix: nullish(z.string()),
  best_of: nullish(z.number().int().min(1)),
  add_special_tokens: nullish(z.boolean()),
});

function checkScalars<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(400, `request body: expected a JSON object, found ${describe(body)}`, null, 'invalid_body');
  const r = schema.safeParse(body, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${String(p)}` : String(p))).join('');
  const found = 'input' in issue ? issue.input : undefined;
  throw new ApiError(
    400,
    `${param}: ${issue.message.replace(/^Invalid input: /, '')}; found ${describe(found)}`,
    param,
    'invalid_value',
  );
}

function unsupported(param: string, what: string): ApiError {
  return new ApiError(400, `${param}: ${what} is not supported by this server`, param, 'unsupported_parameter');
}

function sampling(b: z.infer<typeof Common>, maxN: number, logprobs: { on: boolean; top: number }): SamplingParams {
  if (b.presence_penalty) throw unsupported('presence_penalty', 'a non-zero presence_penalty (use repetition_penalty)');
  if (b.frequency_penalty)
    throw unsupported('frequency_penalty', 'a non-zero frequency_penalty (use repetition_penalty)');
  if (b.logit_bias && Object.keys(b.logit_bias).length) throw unsupported('logit_bias', 'logit_bias');
  const stop = b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop;
  if (stop.length > 16) throw badParam('stop', 'at most 16 stop sequences', stop);
  stop.forEach((s, i) => {
    if (s.length === 0) throw badParam(`stop[${i}]`, 'a non-empty string', s);
  });
  const n = b.n ?? 1;
  if (n > maxN) throw badParam('n', `at most ${maxN} choices`, n);
  const seed = b.seed ?? null;
  return {
    temperature: b.temperature ?? null,
    topP: b.top_p ?? null,
    topK: b.top_k == null || b.top_k === -1 ? null : b.top_k,
    repetitionPenalty: b.repetition_penalty ?? null,
    seed: seed === null ? null : Number(BigInt.asUintN(32, BigInt(Math.trunc(seed)))),
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? null,
    stop: [...new Set(stop)],
    includeStop: b.include_stop_str_in_output ?? false,
    stopTokenIds: b.stop_token_ids ?? [],
    n,
    stream: b.stream ?? false,
    includeUsage: !!b.stream_options?.include_usage,
    logprobs: logprobs.on,
    topLogprobs: logprobs.top,
    skipSpecialTokens: b.skip_special_tokens ?? true,
    returnTokenIds: b.return_token_ids ?? false,
  };
}

/** Checks a `/v1/chat/completions` body. */
export function parseChatRequest(body: unknown, opts: { maxN: number }): ChatParams {
  const b = checkScalars(ChatScalars, body);
  // As vLLM: the tools are written into the prompt whatever tool_choice says; "auto" (the default with tools) parses
  // the model's calls into tool_calls, "none" leaves its text alone. Required or named calls need guided decoding.
  const tools = b.tools?.length ? parseTools(b.tools) : null;
  const toolChoice = checkToolChoice(b.tool_choice, tools !== null);
  if (b.response_format && b.response_format.type !== 'text')
    throw unsupported('response_format', `response_format ${JSON.stringify(b.response_format.type)}`);
  if (b.top_logprobs && !b.logprobs)
    throw new ApiError(400, 'top_logprobs: needs logprobs: true', 'top_logprobs', 'invalid_value');
  const mm = b.mm_processor_kwargs;
  if (mm?.min_pixels != null && mm.max_pixels != null && mm.min_pixels > mm.max_pixels)
    throw badParam('mm_processor_kwargs.min_pixels', `at most max_pixels (${mm.max_pixels})`, mm.min_pixels);
  const messages = parseMessages((body as Record<string, unknown>).messages);
  const cont = b.continue_final_message ?? false;
  if (cont && b.add_generation_prompt === true)
    throw new ApiError(
      400,
      'continue_final_message and add_generation_prompt cannot both be true',
      'continue_final_message',
      'invalid_value',
    );
  if (b.add_generation_prompt === false && !cont)
    throw unsupported('add_generation_prompt', 'add_generation_prompt: false without continue_final_message: true');
  if (cont && messages[messages.length - 1]!.role !== 'assistant')
    throw new ApiError(
      400,
      `continue_final_message: the last message must be an assistant message to continue, found ${messages[messages.length - 1]!.role}`,
      'messages',
      'invalid_value',
    );
  return {
    ...sampling(b, opts.maxN, { on: b.logprobs ?? false, top: b.top_logprobs ?? 0 }),
    model: b.model ?? null,
    messages,
    enableThinking: b.chat_template_kwargs?.enable_thinking ?? null,
    thinkingBudget: b.thinking_budget ?? null,
    continueFinalMessage: cont,
    includeReasoning: b.include_reasoning ?? true,
    mmProcessorKwargs: mm
      ? { minPixels: mm.min_pixels ?? null, maxPixels: mm.max_pixels ?? null, fps: mm.fps ?? null }
      : null,
    tools,
    toolChoice: tools ? toolChoice : 'none',
  };
}

/** Checks a `/v1/completions` body. */
export function parseCompletionRequest(body: unknown, opts: { maxN: number }): CompletionParams {
  const b = checkScalars(CompletionScalars, body);
  if (b.echo) throw unsupported('echo', 'echo');
  if (b.suffix) throw unsupported('suffix', 'suffix');
  if (b.best_of != null && b.best_of !== (b.n ?? 1)) throw unsupported('best_of', 'best_of different from n');
  let prompt: string | number[];
  if (typeof b.prompt === 'string') prompt = b.prompt;
  else if (b.prompt.length > 0 && typeof b.prompt[0] === 'number') prompt = b.prompt as number[];
  else {
    const list = b.prompt as string[];
    if (list.length !== 1) throw unsupported('prompt', `a list of ${list.length} prompts (send one per request)`);
    prompt = list[0]!;
  }
  if (prompt.length === 0) throw badParam('prompt', 'a non-empty prompt', prompt);
  return {
    // The legacy endpoint's `logprobs` is the number of alternatives (0: the chosen tokens only).
    ...sampling(b, opts.maxN, { on: b.logprobs != null, top: b.logprobs ?? 0 }),
    // The legacy endpoint's documented default.
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? 16,
    model: b.model ?? null,
    prompt,
    addSpecialTokens: b.add_special_tokens ?? true,
  };
}

const ROLES: Record<string, RawMessage['role']> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
  tool: 'tool',
};

/** Checks the messages array (precise paths in every error) without touching the media yet. */
export function parseMessages(messages: unknown): RawMessage[] {
  if (!Array.isArray(messages)) throw badParam('messages', 'an array of messages', messages, 'missing_messages');
  if (messages.length === 0) throw badParam('messages', 'at least one message', messages);
  return messages.map((m, i) => {
    const at = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badParam(at, 'a message object', m);
    const msg = m as Record<string, unknown>;
    const role = typeof msg.role === 'string' ? ROLES[msg.role] : undefined;
    if (!role)
      throw badParam(`${at}.role`, 'one of system, developer, user, assistant, tool', msg.role, 'invalid_role');
    const toolCalls =
      role === 'assistant' && msg.tool_calls != null && !(Array.isArray(msg.tool_calls) && !msg.tool_calls.length)
        ? renderToolCalls(msg.tool_calls, `${at}.tool_calls`)
        : null;
    let reasoning: string | null = null;
    for (const k of ['reasoning_content', 'reasoning'] as const) {
      const v = msg[k];
      if (v == null) continue;
      if (role !== 'assistant') throw badParam(`${at}.${k}`, 'no reasoning on a non-assistant message', v);
      if (typeof v !== 'string') throw badParam(`${at}.${k}`, 'a string', v);
      reasoning ??= v;
    }
    const c = msg.content;
    if (typeof c === 'string') return { role, parts: [{ type: 'text', text: c }], plain: true, reasoning, toolCalls };
    if (c == null) {
      if (role === 'assistant') return { role, parts: [{ type: 'text', text: '' }], plain: true, reasoning, toolCalls };
      throw badParam(`${at}.content`, 'a string or an array of content parts', c);
    }
    if (!Array.isArray(c)) throw badParam(`${at}.content`, 'a string or an array of content parts', c);
    const parts = c.map((p, j): RawPart => {
      const pat = `${at}.content[${j}]`;
      if (typeof p !== 'object' || p === null) throw badParam(pat, 'a content part object', p);
      const part = p as Record<string, unknown>;
      if (part.type === 'text') {
        if (typeof part.text !== 'string') throw badParam(`${pat}.text`, 'a string', part.text);
        return { type: 'text', text: part.text };
      }
      if (part.type === 'image_url' || part.type === 'video_url') {
        const key = part.type;
        const kind = key === 'image_url' ? 'image' : 'video';
        if (role !== 'user') throw badParam(pat, `text only (${kind}s are allowed in user messages)`, part.type);
        const v = part[key];
        const url = typeof v === 'string' ? v : (v as { url?: unknown } | null)?.url;
        const param = typeof v === 'string' ? `${pat}.${key}` : `${pat}.${key}.url`;
        if (typeof url !== 'string') throw badParam(param, 'a URL string', url);
        return { type: kind, url, param };
      }
      if (part.type === 'refusal' && role === 'assistant') {
        if (typeof part.refusal !== 'string') throw badParam(`${pat}.refusal`, 'a string', part.refusal);
        return { type: 'text', text: part.refusal };
      }
      throw badParam(`${pat}.type`, 'text, image_url or video_url', part.type, 'unsupported_content');
    });
    return { role, parts, plain: false, reasoning, toolCalls };
  });
}
