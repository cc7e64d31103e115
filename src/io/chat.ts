/**
 * A local chat model: a checkpoint folder (config.json, weights, tokenizer, preprocessor config, chat template)
 * loaded once, then messages in → thinking + answer out. One implementation shared by `glmv chat`, `glmv serve`,
 * local eval and local RL rollouts.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSummary } from '../model/compressed.js';
import { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import { type BoxExtraction, extractBox } from './answer/extract.js';
import type { ResponseStyle } from './answer/think.js';
import {
  type FinishReason,
  type GenerateOptions,
  type GenerationInput,
  type GenerationStats,
  generate,
  type StreamEvent,
} from './generate.js';
import { readGenerationConfig } from './generation-config.js';
import { Glm4vProcessor, type PrepareChatOptions, prepareChatInputs } from './processor/request.js';
import { type ChatMessage, NOTHINK } from './template.js';
import { GlmTokenizer } from './tokenizer.js';

/** Where the embedded default model ships inside the package. */
export function defaultModelDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/io or dist/io → package root
  return resolve(here, '..', '..', 'models', 'glmv-small');
}

export interface ChatOptions {
  /** Thinking on (default) or off (`/nothink`). */
  thinking?: boolean;
  /** Force an answer after this many thinking tokens (the paper's force answering). */
  thinkingBudget?: number | null;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  onToken?: GenerateOptions['onToken'];
  signal?: AbortSignal;
  shouldStop?: GenerateOptions['shouldStop'];
  returnLogprobs?: boolean;
  /** Extra stop ids beyond the model's own. */
  stopTokenIds?: number[];
}

export interface ChatResult {
  text: string;
  reasoning: string;
  /** The answer text (after `</think>`, answer tags kept as the model wrote them). */
  content: string;
  box: BoxExtraction;
  finishReason: FinishReason;
  forced: boolean;
  promptTokens: number;
  completionTokens: number;
  thinkingTokens: number;
  tokens: number[];
  logprobs?: number[];
  stats: GenerationStats;
}

/** GLM-4.1V-style models (answer tags) answer after `</think><answer>`; GLM-4.5V-style after `</think>`. */
function styleOf(model: Glm4vForConditionalGeneration): ResponseStyle {
  return model.config.modelType === 'glm4v_moe' ? 'glm45v' : 'glm41v';
}

export class ChatModel {
  readonly style: ResponseStyle;
  readonly stopIds: number[];
  private readonly thinkOpen: number;
  private readonly thinkClose: number;
  private readonly answerOpen: number | undefined;
  /** What `load` read (parameters, dtype, quantisation, mapping, RSS), for the commands to print. */
  loadSummary?: string;

  constructor(
    readonly model: Glm4vForConditionalGeneration,
    readonly tokenizer: GlmTokenizer,
    readonly processor: Glm4vProcessor,
    readonly dir: string,
  ) {
    this.style = styleOf(model);
    const need = (t: string) => {
      const id = tokenizer.tokenToId(t);
      if (id === undefined) throw new Error(`chat model ${dir}: the tokenizer has no ${t} token`);
      return id;
    };
    this.thinkOpen = need('<think>');
    this.thinkClose = need('</think>');
    this.answerOpen = tokenizer.tokenToId('<answer>');
    this.stopIds = [...new Set([...tokenizer.stopTokenIds(), ...model.config.eosTokenId])].filter(
      (id) => id < model.config.text.vocabSize,
    );
  }

  /** Loads a checkpoint folder; without `dir`, the embedded default model. */
  static async load(dir?: string): Promise<ChatModel> {
    const d = dir ?? defaultModelDir();
    if (!existsSync(join(d, 'config.json'))) {
      throw new Error(
        dir
          ? `chat: ${d} is not a model folder (no config.json)`
          : `chat: the embedded default model is missing (${d}); pass --model DIR or train one with \`glmv pipeline\``,
      );
    }
    // One rule for every command that loads a model: a broken generation_config.json is an error, never ignored.
    readGenerationConfig(d);
    const { model, report } = Glm4vForConditionalGeneration.fromPretrained(d);
    const tokenizer = await GlmTokenizer.fromPretrained(d);
    const processor = await Glm4vProcessor.fromPretrained(d);
    const chat = new ChatModel(model, tokenizer, processor, d);
    chat.loadSummary = loadSummary(model, report, d);
    return chat;
  }

  /** Token ids and visual inputs of a conversation, ready for `generate`. */
  async prepare(
    messages: ChatMessage[],
    thinking = true,
    opts: Pick<PrepareChatOptions, 'media' | 'encode'> = {},
  ): Promise<GenerationInput> {
    let msgs = messages;
    const tpl = this.style === 'glm45v' ? { enableThinking: thinking } : {};
    if (!thinking && this.style === 'glm41v') msgs = appendNothink(messages);
    const inputs = await prepareChatInputs(this.processor, this.tokenizer, msgs, { ...tpl, ...opts });
    return {
      inputIds: inputs.inputIds,
      pixelValues: inputs.pixelValues ?? null,
      imageGridThw: inputs.imageGridThw ?? null,
      pixelValuesVideos: inputs.pixelValuesVideos ?? null,
      videoGridThw: inputs.videoGridThw ?? null,
    };
  }

  /** Generation options for this model: stop ids, force-answer tokens, decoder. */
  generateOptions(o: ChatOptions): GenerateOptions {
    const force =
      this.style === 'glm41v' && this.answerOpen !== undefined ? [this.thinkClose, this.answerOpen] : [this.thinkClose];
    return {
      maxNewTokens: o.maxNewTokens ?? 1024,
      stopTokenIds: [...this.stopIds, ...(o.stopTokenIds ?? [])],
      temperature: o.temperature ?? 0,
      topP: o.topP ?? 1,
      topK: o.topK ?? 0,
      repetitionPenalty: o.repetitionPenalty ?? 1,
      seed: o.seed ?? 0,
      thinkingBudget: o.thinkingBudget ?? null,
      thinkCloseId: this.thinkClose,
      forceAnswerIds: force,
      decoder: this.tokenizer,
      onToken: o.onToken,
      signal: o.signal,
      shouldStop: o.shouldStop,
      returnLogprobs: o.returnLogprobs,
    };
  }

  /** Answers a batch of conversations together (one padded batch). */
  async chatBatch(conversations: ChatMessage[][], o: ChatOptions = {}): Promise<ChatResult[]> {
    const thinking = o.thinking ?? true;
    const inputs = await Promise.all(conversations.map((m) => this.prepare(m, thinking)));
    const { outputs, stats } = await generate(this.model, inputs, this.generateOptions(o));
    return outputs.map((out) => {
      return {
        text: out.text,
        reasoning: out.reasoning,
        content: out.content,
        box: extractBox(out.text, 'strict'),
        finishReason: out.finishReason,
        forced: out.forced,
        promptTokens: out.promptTokens,
        completionTokens: out.tokens.length,
        thinkingTokens: out.thinkingTokens,
        tokens: out.tokens,
        ...(out.logprobs ? { logprobs: out.logprobs } : {}),
        stats,
      };
    });
  }

  async chat(messages: ChatMessage[], o: ChatOptions = {}): Promise<ChatResult> {
    return (await this.chatBatch([messages], o))[0]!;
  }

  /** Whether the token is the `<think>` opener (streaming UIs dim the reasoning that follows it). */
  isThinkOpen(id: number): boolean {
    return id === this.thinkOpen;
  }
}

/** `/nothink` at the end of the last user message (GLM-4.1V-style templates have no thinking switch). */
function appendNothink(messages: ChatMessage[]): ChatMessage[] {
  const out = messages.map((m) => ({ ...m }));
  for (let i = out.length - 1; i >= 0; i--) {
    const m = out[i]!;
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') {
      if (!m.content.trimEnd().endsWith(NOTHINK)) m.content = `${m.content}${NOTHINK}`;
    } else {
      const parts = [...m.content];
      const lastText = [...parts.keys()].reverse().find((k) => parts[k]!.type === 'text');
      if (lastText === undefined) parts.push({ type: 'text', text: NOTHINK });
      else {
        const p = parts[lastText] as { type: 'text'; text: string };
        if (!p.text.trimEnd().endsWith(NOTHINK)) parts[lastText] = { ...p, text: `${p.text}${NOTHINK}` };
      }
      m.content = parts;
    }
    break;
  }
  return out;
}

export type { StreamEvent };
