/**
 * Keeps one client's big request from stalling everyone else's: request bodies over `inlineBytes` are parsed in a
 * worker thread, prompts are tokenized in one, and prompt text is measured against a character limit before any
 * tokenizing — a prompt with more characters than `maxModelLen` tokens can hold is refused without being read.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { GlmTokenizer } from '../io/tokenizer.js';
import { ApiError } from './errors.js';
import type { OffloadTask, ParseReply } from './offload-worker.js';

function workerFile(): { filename: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('./offload-worker.js', import.meta.url));
  if (existsSync(js)) return { filename: js, execArgv: [] };
  return { filename: fileURLToPath(new URL('./offload-worker.ts', import.meta.url)), execArgv: ['--import', 'tsx'] };
}

/**
 * Most prompt characters that can still fit in `maxModelLen` tokens: no token decodes to more characters than the
 * longest vocabulary entry (byte-level entries: one character per byte), times 4 when a normalizer may shrink
 * text (composition) before tokenizing.
 */
export function maxPromptCharsFor(tokenizer: GlmTokenizer, maxModelLen: number): number {
  const tj = tokenizer.tokenizerJson as { model?: { vocab?: unknown }; added_tokens?: Array<{ content: string }> };
  let longest = 1;
  const vocab = tj.model?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab))
    for (const k of Object.keys(vocab)) if (k.length > longest) longest = k.length;
  for (const t of tj.added_tokens ?? []) if (t.content.length > longest) longest = t.content.length;
  const normalizes = (tokenizer.tokenizerJson as { normalizer?: unknown }).normalizer != null;
  return maxModelLen * longest * (normalizes ? 4 : 1);
}

export interface OffloadOptions {
  /** Folder the tokenizer is loaded from in the worker (the model folder). */
  dir: string;
  /** The in-process tokenizer: used when `dir` has no tokenizer.json. */
  tokenizer: GlmTokenizer;
  maxPromptChars: number;
  /** Bodies up to this many bytes are parsed on the event loop (default 256 KiB: well under a millisecond). */
  inlineBytes?: number;
  threads?: number;
}

export class RequestOffload {
  private readonly pool: Piscina;
  readonly maxPromptChars: number;
  readonly inlineBytes: number;
  private readonly workerTokenizes: boolean;

  constructor(private readonly o: OffloadOptions) {
    const { filename, execArgv } = workerFile();
    const threads = Math.max(1, Math.min(4, o.threads ?? availableParallelism() - 1));
    this.pool = new Piscina({ filename, execArgv, minThreads: 1, maxThreads: threads, idleTimeout: 60_000 });
    this.maxPromptChars = o.maxPromptChars;
    this.inlineBytes = o.inlineBytes ?? 256 * 1024;
    this.workerTokenizes = existsSync(join(o.dir, 'tokenizer.json'));
  }

  /** Loads the worker and its tokenizer now, so the first request does not wait for them. */
  async warmup(): Promise<void> {
    await this.pool.run({ op: 'echo' } satisfies OffloadTask);
    if (this.workerTokenizes) await this.encode('warm up', false);
  }

  /** A 400 for prompt text over the character limit. */
  tooLong(chars: number, param = 'messages'): ApiError {
    return new ApiError(
      400,
      `${param}: the prompt has ${chars > this.maxPromptChars ? `more than ${this.maxPromptChars}` : chars} characters, more than this server's ${this.o.maxPromptChars} (no prompt that long fits its context); shorten it`,
      param,
      'context_length_exceeded',
    );
  }

  /** The JSON of a request body: parsed inline when small, else in the worker (prompts over the limit refused there). */
  async parseJson(body: Buffer): Promise<unknown> {
    if (body.length === 0)
      throw new ApiError(400, 'request body: expected a JSON object, found an empty body', null, 'invalid_json');
    let r: ParseReply;
    if (body.length <= this.inlineBytes) {
      try {
        r = { value: JSON.parse(body.toString('utf8')) };
      } catch (e) {
        r = { error: (e as Error).message };
      }
    } else {
      // Hand the bytes over without copying when the buffer owns its memory.
      const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
      const bytes = own ? new Uint8Array(body.buffer) : new Uint8Array(body);
      r = (await this.pool.run({ op: 'parse', body: bytes, maxTextChars: this.maxPromptChars } satisfies OffloadTask, {
        transferList: [bytes.buffer] as never,
      })) as ParseReply;
    }
    if ('error' in r) throw new ApiError(400, `request body: not valid JSON (${r.error})`, null, 'invalid_json');
    if ('textChars' in r) throw this.tooLong(r.textChars);
    return r.value;
  }

  /**
   * Reads a request body into one buffer, copying each chunk as it arrives (a preallocated buffer when the length
   * is declared): a 60 MB body never costs one long copy on the event loop, as collecting chunks and concatenating
   * them at the end would.
   */
  readBody(payload: NodeJS.ReadableStream, declared: number | undefined, limit: number): Promise<Buffer> {
    const tooLarge = () =>
      new ApiError(413, `request body: larger than the limit of ${limit} bytes`, null, 'body_too_large');
    if (declared !== undefined && declared > limit) return Promise.reject(tooLarge());
    return new Promise((resolve, reject) => {
      let buf = Buffer.allocUnsafe(declared ?? 64 * 1024);
      let n = 0;
      const onData = (chunk: Buffer) => {
        if (n + chunk.length > limit) {
          payload.removeListener('data', onData);
          payload.resume();
          return reject(tooLarge());
        }
        if (n + chunk.length > buf.length) {
          const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(buf.length * 2, n + chunk.length)));
          buf.copy(grown, 0, 0, n);
          buf = grown;
        }
        chunk.copy(buf, n);
        n += chunk.length;
      };
      payload.on('data', onData);
      payload.once('error', reject);
      payload.once('end', () => resolve(n === buf.length ? buf : buf.subarray(0, n)));
    });
  }

  /** Token ids of `text`, computed off the event loop. */
  async encode(text: string, addSpecialTokens = false): Promise<number[]> {
    if (!this.workerTokenizes) return this.o.tokenizer.encode(text, { addSpecialTokens });
    return (await this.pool.run({
      op: 'encode',
      dir: this.o.dir,
      text,
      addSpecialTokens,
    } satisfies OffloadTask)) as number[];
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
