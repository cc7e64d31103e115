/**
 * The tokenizer: loading Hugging Face `tokenizer.json` + `tokenizer_config.json` (through `@huggingface/tokenizers`,
 * Hugging Face's JavaScript implementation), special tokens by name, encode/decode, saving. Training a tokenizer of
 * our own lives in `bpe-trainer.ts`.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** GLM-4's pre-tokenizer pattern (the cl100k-style split, digits in groups of up to three). */
export const GLM_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * The added tokens of our own GLM-style tokenizers, in GLM's relative order (each one id, never split). Those in
 * `GLM_TEXT_TOKENS` are flagged `special: false`, the rest `special: true`.
 */
export const GLM_SPECIAL_TOKENS: readonly string[] = Object.freeze([
  '<|endoftext|>',
  '[gMASK]',
  '<sop>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|observation|>',
  '<|begin_of_image|>',
  '<|end_of_image|>',
  '<|begin_of_video|>',
  '<|end_of_video|>',
  '<|image|>',
  '<|video|>',
  '<think>',
  '</think>',
  '<answer>',
  '</answer>',
  '<|begin_of_box|>',
  '<|end_of_box|>',
  '/nothink',
]);

/**
 * Added tokens that belong to the model's written answer rather than to the chat frame. The published GLM-4.1V-9B-Thinking
 * and GLM-4.5V tokenizers add them as single tokens but flag them `special: false`, so decoding with
 * `skip_special_tokens` (the Hugging Face option, vLLM's default) keeps them: vLLM's `glm45` reasoning parser splits
 * the decoded text on `</think>`, and the box markers reach the client, which extracts the answer from them. Role,
 * frame and media tokens (`<|user|>`, `[gMASK]`, `<|image|>`, …) stay special and are dropped. `/nothink` is text the
 * template writes into user turns, flagged the same way.
 */
export const GLM_TEXT_TOKENS: readonly string[] = Object.freeze([
  '<think>',
  '</think>',
  '<answer>',
  '</answer>',
  '<|begin_of_box|>',
  '<|end_of_box|>',
  '/nothink',
]);

/** Tokens that end a GLM assistant turn (the released generation configs stop on these). */
export const GLM_STOP_TOKENS: readonly string[] = Object.freeze(['<|endoftext|>', '<|user|>', '<|observation|>']);

type Json = Record<string, unknown>;

/** The parts of a `tokenizer.json` this module reads or writes. */
export interface TokenizerJson {
  version?: string;
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type: string; vocab?: Record<string, number> | unknown; merges?: unknown; [k: string]: unknown };
  [k: string]: unknown;
}

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Byte-level alphabet (GPT-2's bytes-to-unicode table)
// ---------------------------------------------------------------------------------------------------------------

/** Byte value → printable character used by byte-level BPE, and its inverse. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const isPrintable = new Set(printable);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = isPrintable.has(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  }
  return Object.freeze(out);
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

// ---------------------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------------------

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (e.g. a template adding `[gMASK]<sop>`). Default false: chat templates
   * already write every special token. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /**
   * Drop the added tokens flagged `special` (`<|user|>`, `<|endoftext|>`, `<|image|>`, …) from the text, as Hugging Face
   * `skip_special_tokens` does; added tokens flagged `special: false` (GLM's `<think>`, `<answer>`, box markers) are
   * kept. Default false.
   */
  skipSpecialTokens?: boolean;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`${what} ${path}: file not found or unreadable`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} ${path}: invalid JSON (${(e as Error).message})`);
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function validateTokenizerJson(json: unknown, label: string): TokenizerJson {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(
      `${label}: expected a tokenizer.json object, found ${Array.isArray(json) ? 'an array' : typeof json}`,
    );
  }
  const o = json as Json;
  const model = o.model as Json | undefined;
  if (!model || typeof model !== 'object' || typeof model.type !== 'string') {
    throw new Error(
      `${label}: expected "model" with a "type" (BPE, WordPiece, Unigram…), found ${JSON.stringify(model)?.slice(0, 80)}`,
    );
  }
  if (model.type === 'BPE' && (typeof model.vocab !== 'object' || model.vocab === null)) {
    throw new Error(`${label}: a BPE model needs a "vocab" object`);
  }
  if (o.added_tokens !== undefined && !Array.isArray(o.added_tokens)) {
    throw new Error(`${label}: expected "added_tokens" to be an array`);
  }
  const added = (o.added_tokens as unknown[] | undefined) ?? [];
  for (const t of added) {
    const tt = t as Json;
    if (!tt || typeof tt.content !== 'string' || typeof tt.id !== 'number') {
      throw new Error(
        `${label}: each added token needs "id" (number) and "content" (string), found ${JSON.stringify(t)}`,
      );
    }
  }
  return {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...o,
    added_tokens: added,
  } as TokenizerJson;
}

/** A loaded tokenizer with GLM conveniences. Immutable after construction. */
export class GlmTokenizer {
  readonly tokenizerJson: TokenizerJson;
  readonly config: Json;
  readonly chatTemplate: string | null;
  /** Every added token flagged `special`, by content (added tokens flagged `special: false` are not here). */
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly vocabSize: number;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  private readonly tok: Tokenizer;
  private readonly specialIds: ReadonlySet<number>;
  private readonly addedIds: ReadonlySet<number>;
  private readonly byteLevel: boolean;
  private readonly idToTokenMap: Map<number, string>;

  constructor(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    opts: { chatTemplate?: string | null; label?: string } = {},
  ) {
    const label = opts.label ?? 'tokenizer';
    this.tokenizerJson = validateTokenizerJson(tokenizerJson, label);
    if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null || Array.isArray(tokenizerConfig)) {
      throw new Error(`${label}: expected tokenizer_config to be a JSON object, found ${typeof tokenizerConfig}`);
    }
    // GLM sets clean_up_tokenization_spaces false; the library would default it to true.
    this.config = { clean_up_tokenization_spaces: false, ...(tokenizerConfig as Json) };
    try {
      this.tok = new Tokenizer(this.tokenizerJson, this.config);
    } catch (e) {
      throw new Error(`${label}: the tokenizer library rejected it (${(e as Error).message})`);
    }
    const template = opts.chatTemplate ?? this.config.chat_template;
    this.chatTemplate = typeof template === 'string' ? template : chatTemplateFromList(template);
    const specials = new Map<string, number>();
    for (const t of this.tokenizerJson.added_tokens) if (t.special) specials.set(t.content, t.id);
    this.specialTokens = specials;
    this.specialIds = new Set(specials.values());
    this.addedIds = new Set(this.tokenizerJson.added_tokens.map((t) => t.id));
    const vocab = this.tok.get_vocab(true);
    this.idToTokenMap = new Map<number, string>();
    let maxId = -1;
    for (const [t, id] of vocab) {
      this.idToTokenMap.set(id, t);
      if (id > maxId) maxId = id;
    }
    this.vocabSize = maxId + 1;
    this.byteLevel = usesByteLevel(this.tokenizerJson.decoder) || usesByteLevel(this.tokenizerJson.pre_tokenizer);
    const eos = tokenString(this.config.eos_token);
    this.eosTokenId = eos !== undefined ? this.tokenToId(eos) : undefined;
    const pad = tokenString(this.config.pad_token);
    this.padTokenId = pad !== undefined ? this.tokenToId(pad) : this.eosTokenId;
  }

  /** Reads `tokenizer.json`, `tokenizer_config.json` (optional) and `chat_template.jinja` (optional) from a folder. */
  static async fromPretrained(dir: string): Promise<GlmTokenizer> {
    const tjPath = join(dir, 'tokenizer.json');
    if (!(await fileExists(tjPath))) throw new Error(`tokenizer ${dir}: no tokenizer.json in this folder`);
    const tj = await readJson(tjPath, 'tokenizer.json');
    const cfgPath = join(dir, 'tokenizer_config.json');
    const cfg = (await fileExists(cfgPath)) ? await readJson(cfgPath, 'tokenizer_config.json') : {};
    const tplPath = join(dir, 'chat_template.jinja');
    let chatTemplate: string | null = null;
    if (await fileExists(tplPath)) chatTemplate = await readFile(tplPath, 'utf8');
    else {
      const jsonTpl = join(dir, 'chat_template.json');
      if (await fileExists(jsonTpl)) {
        const t = (await readJson(jsonTpl, 'chat_template.json')) as Json;
        if (typeof t.chat_template === 'string') chatTemplate = t.chat_template;
      }
    }
    return new GlmTokenizer(tj, cfg, { chatTemplate: chatTemplate ?? undefined, label: `tokenizer ${dir}` });
  }

  /** Text to ids. Added-token strings in the text (`<|user|>`, `<think>`, …) become their single ids. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new Error(`tokenizer.encode: expected a string, found ${typeof text}`);
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  /** Text to token strings (byte-level tokens show their mapped characters, e.g. "Ġword"). */
  tokenize(text: string): string[] {
    return this.tok.tokenize(text);
  }

  /** Ids to text. Ids outside the vocabulary are an error (a model emitting them is a bug worth seeing). */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const arr = Array.from(ids);
    for (const id of arr) {
      if (!Number.isInteger(id) || id < 0 || !this.idToTokenMap.has(id)) {
        throw new Error(`tokenizer.decode: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      }
    }
    if (arr.length === 0) return ''; // the library refuses an empty list
    return this.tok.decode(arr, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /**
   * The raw bytes of a token sequence (byte-level tokenizers only; special tokens as their UTF-8 text). Streaming
   * decoders use this to emit text only at complete UTF-8 characters.
   */
  decodeBytes(ids: ArrayLike<number>, opts: DecodeOptions = {}): Uint8Array {
    if (!this.byteLevel) throw new Error('tokenizer.decodeBytes: only byte-level BPE tokenizers map tokens to bytes');
    const out: number[] = [];
    const enc = new TextEncoder();
    for (const id of Array.from(ids)) {
      const t = this.idToTokenMap.get(id);
      if (t === undefined)
        throw new Error(`tokenizer.decodeBytes: id ${id} is not in the vocabulary (size ${this.vocabSize})`);
      if (this.isAddedToken(id)) {
        if (opts.skipSpecialTokens && this.specialIds.has(id)) continue;
        out.push(...enc.encode(t));
        continue;
      }
      for (const ch of t) {
        const b = CHAR_TO_BYTE.get(ch);
        if (b === undefined) out.push(...enc.encode(ch));
        else out.push(b);
      }
    }
    return Uint8Array.from(out);
  }

  private isAddedToken(id: number): boolean {
    return this.addedIds.has(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenMap.get(id);
  }

  /** Id of a token that must exist (special tokens by name: `tok.id('<|image|>')`). */
  id(token: string): number {
    const id = this.tokenToId(token);
    if (id === undefined) throw new Error(`tokenizer: token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Ids of the GLM turn-ending tokens present in this vocabulary (plus the configured eos). */
  stopTokenIds(): number[] {
    const ids = new Set<number>();
    if (this.eosTokenId !== undefined) ids.add(this.eosTokenId);
    for (const t of GLM_STOP_TOKENS) {
      const id = this.tokenToId(t);
      if (id !== undefined) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  }

  /** Writes `tokenizer.json` and `tokenizer_config.json` (and `chat_template.jinja` if any) into `dir`. */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tokenizer.json'), `${JSON.stringify(this.tokenizerJson, null, 2)}\n`);
    const { chat_template: _t, ...cfg } = this.config;
    await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
    if (this.chatTemplate !== null) await writeFile(join(dir, 'chat_template.jinja'), this.chatTemplate);
  }
}

function usesByteLevel(component: unknown): boolean {
  if (!component || typeof component !== 'object') return false;
  const c = component as Json;
  if (c.type === 'ByteLevel') return true;
  const children = (c.pretokenizers ?? c.decoders ?? c.processors) as unknown[] | undefined;
  return Array.isArray(children) && children.some(usesByteLevel);
}

/** HF allows `chat_template` as a list of `{name, template}`; the one named "default" is the chat template. */
function chatTemplateFromList(v: unknown): string | null {
  if (!Array.isArray(v)) return null;
  const named = v.find((x) => x && typeof x === 'object' && (x as Json).name === 'default') as Json | undefined;
  return typeof named?.template === 'string' ? named.template : null;
}
