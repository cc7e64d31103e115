/** Streamed chat completions, normalised as they arrive: the same result as a non-streamed response (./normalize.ts). */
import { ThinkStreamSplitter } from '../../io/answer/stream.js';
import {
  asText,
  type NormalizedOutput,
  type NormalizeOptions,
  normalizeMessage,
  parseUsage,
  type ReasoningSource,
  type Usage,
} from './normalize.js';

export interface StreamDelta {
  reasoning: string;
  content: string;
}

/**
 * Accumulates streamed chat chunks (`data:` payloads of an SSE stream) into the same normalised result as a
 * non-streamed response, and yields display deltas in which reasoning and content are already separated, whether
 * the server sends reasoning fields or raw `<think>` tags (split tags across chunks are held back, never leaked).
 */
export class StreamNormalizer {
  private fieldReasoning = '';
  private fieldSource: ReasoningSource = 'none';
  private content = '';
  private finish: string | null = null;
  private splitter: ThinkStreamSplitter;
  id: string | null = null;
  model = '';
  usage?: Usage;

  constructor(private readonly opts: NormalizeOptions = {}) {
    this.splitter = new ThinkStreamSplitter({ startInReasoning: !!opts.prefilledThink, stripAnswerTags: true });
  }

  /** Feeds one chunk object; returns what it adds for display. */
  push(chunk: unknown): StreamDelta {
    const out: StreamDelta = { reasoning: '', content: '' };
    if (!chunk || typeof chunk !== 'object') return out;
    const c = chunk as Record<string, unknown>;
    if (typeof c.id === 'string') this.id ??= c.id;
    if (typeof c.model === 'string' && !this.model) this.model = c.model;
    const u = parseUsage(c.usage);
    if (u) this.usage = u;
    const choices = Array.isArray(c.choices) ? c.choices : [];
    const choice = choices.find((x) => (x as { index?: number })?.index === 0 || choices.length === 1) as
      | Record<string, unknown>
      | undefined;
    if (!choice) return out;
    if (typeof choice.finish_reason === 'string') this.finish = choice.finish_reason;
    const d = (choice.delta ?? {}) as Record<string, unknown>;
    const rc = asText(d.reasoning_content);
    const r = asText(d.reasoning);
    const rdelta = rc !== null && rc !== '' ? rc : r !== null && r !== '' ? r : '';
    if (rdelta) {
      if (this.fieldSource === 'none') this.fieldSource = rc ? 'reasoning_content' : 'reasoning';
      this.fieldReasoning += rdelta;
      out.reasoning += rdelta;
    }
    const cdelta = asText(d.content) ?? '';
    if (cdelta) {
      this.content += cdelta;
      if (this.fieldSource !== 'none') out.content += cdelta;
      else {
        const s = this.splitter.push(cdelta);
        out.reasoning += s.reasoning;
        out.content += s.content;
      }
    }
    return out;
  }

  /** Flushes held-back text at the end of the stream. */
  flush(): StreamDelta {
    return this.fieldSource === 'none' ? this.splitter.end() : { reasoning: '', content: '' };
  }

  result(): NormalizedOutput {
    const msg: Record<string, unknown> = { content: this.content };
    if (this.fieldSource !== 'none') msg[this.fieldSource] = this.fieldReasoning;
    return normalizeMessage(msg, this.finish, this.opts);
  }
}
