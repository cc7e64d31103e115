/** The streaming think/answer splitter of generation and serving (reasoning and content deltas as text arrives). */
import { ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN } from './tags.js';

export interface StreamDelta {
  reasoning: string;
  content: string;
}

export interface StreamSplitterOptions {
  /**
   * True when the prompt already opened `<think>` (templates that pre-fill it): text is reasoning until `</think>`.
   * Default false: text is content unless the model's first non-space output is `<think>`.
   */
  startInReasoning?: boolean;
  /** Drop `<answer>`/`</answer>` from content (serving clients); default false keeps the raw text. */
  stripAnswerTags?: boolean;
}

/**
 * Incremental reasoning/content splitter for generation and streaming clients. Feed text deltas with `push`; each
 * call returns the reasoning and content text that is now certain. A tag split across chunks (`<thi` + `nk>`) is
 * held back until it can be decided, so no tag fragment ever leaks into either stream. Call `end()` at the end.
 */
export class ThinkStreamSplitter {
  private state: 'start' | 'reasoning' | 'content';
  private buf = '';
  private sawThinkOpen = false;
  private sawThinkClose = false;
  private readonly stripAnswer: boolean;

  constructor(opts: StreamSplitterOptions = {}) {
    this.state = opts.startInReasoning ? 'reasoning' : 'start';
    this.sawThinkOpen = !!opts.startInReasoning;
    this.stripAnswer = !!opts.stripAnswerTags;
  }

  /** Whether `</think>` has been seen (the reasoning phase is over). */
  get reasoningDone(): boolean {
    return this.sawThinkClose;
  }

  /** True when the stream opened thinking and `end()` came before `</think>`. */
  get unclosedThink(): boolean {
    return this.sawThinkOpen && !this.sawThinkClose;
  }

  push(delta: string): StreamDelta {
    this.buf += delta;
    return this.drain(false);
  }

  end(): StreamDelta {
    return this.drain(true);
  }

  private drain(final: boolean): StreamDelta {
    const out: StreamDelta = { reasoning: '', content: '' };
    while (this.buf.length > 0) {
      if (this.state === 'start') {
        const lead = this.buf.length - this.buf.trimStart().length;
        const rest = this.buf.slice(lead);
        if (rest.length === 0) {
          if (final) {
            out.content += this.buf;
            this.buf = '';
          }
          break;
        }
        if (startsWithCI(rest, THINK_OPEN)) {
          this.buf = rest.slice(THINK_OPEN.length);
          this.state = 'reasoning';
          this.sawThinkOpen = true;
          continue;
        }
        if (!final && isPrefixCI(rest, THINK_OPEN)) break; // could still become `<think>`
        this.state = 'content';
        continue;
      }
      if (this.state === 'reasoning') {
        const idx = indexOfCI(this.buf, THINK_CLOSE);
        if (idx >= 0) {
          out.reasoning += this.buf.slice(0, idx);
          this.buf = this.buf.slice(idx + THINK_CLOSE.length);
          this.state = 'content';
          this.sawThinkClose = true;
          continue;
        }
        const hold = final ? 0 : partialSuffix(this.buf, [THINK_CLOSE]);
        out.reasoning += this.buf.slice(0, this.buf.length - hold);
        this.buf = this.buf.slice(this.buf.length - hold);
        break;
      }
      // content
      if (!this.stripAnswer) {
        out.content += this.buf;
        this.buf = '';
        break;
      }
      const o = indexOfCI(this.buf, ANSWER_OPEN);
      const c = indexOfCI(this.buf, ANSWER_CLOSE);
      const next = o < 0 ? c : c < 0 ? o : Math.min(o, c);
      if (next >= 0) {
        out.content += this.buf.slice(0, next);
        this.buf = this.buf.slice(next + (next === o ? ANSWER_OPEN.length : ANSWER_CLOSE.length));
        continue;
      }
      const hold = final ? 0 : partialSuffix(this.buf, [ANSWER_OPEN, ANSWER_CLOSE]);
      out.content += this.buf.slice(0, this.buf.length - hold);
      this.buf = this.buf.slice(this.buf.length - hold);
      break;
    }
    return out;
  }
}

function startsWithCI(s: string, tag: string): boolean {
  return s.length >= tag.length && s.slice(0, tag.length).toLowerCase() === tag;
}

function isPrefixCI(s: string, tag: string): boolean {
  return s.length < tag.length && tag.startsWith(s.toLowerCase());
}

function indexOfCI(s: string, tag: string): number {
  // Tags are ASCII; lower-casing only the candidate windows keeps indexes aligned with `s`.
  const first = tag[0]!;
  for (let i = s.indexOf(first); i >= 0 && i <= s.length - tag.length; i = s.indexOf(first, i + 1)) {
    if (s.slice(i, i + tag.length).toLowerCase() === tag) return i;
  }
  return -1;
}

/** Length of the longest suffix of `s` that is a proper prefix of one of `tags` (case-insensitive). */
function partialSuffix(s: string, tags: string[]): number {
  let best = 0;
  for (const tag of tags) {
    const max = Math.min(tag.length - 1, s.length);
    for (let k = max; k > best; k--) {
      if (tag.startsWith(s.slice(s.length - k).toLowerCase())) {
        best = k;
        break;
      }
    }
  }
  return best;
}
