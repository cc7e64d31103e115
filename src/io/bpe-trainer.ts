/**
 * Training a byte-level BPE tokenizer for our own small models, saved in the Hugging Face `tokenizer.json` format so
 * `GlmTokenizer` reads it back.
 *
 * The trainer follows the semantics of the Rust `tokenizers` BpeTrainer (its Node binding exposes no trainer
 * settings, so it cannot set a vocabulary size, the byte alphabet or special tokens): the same pre-tokenization as
 * encoding, an alphabet sorted by code point, then repeatedly the most frequent adjacent pair, ties broken by the
 * smaller pair of ids, until the vocabulary is full or no pair reaches `minFrequency`.
 */
import { readFileSync, statSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { type MetricsWriter, Progress } from '../util/progress.js';
import {
  type AddedTokenJson,
  BYTE_TO_CHAR,
  GLM_SPECIAL_TOKENS,
  GLM_SPLIT_PATTERN,
  GLM_TEXT_TOKENS,
  GlmTokenizer,
  type TokenizerJson,
} from './tokenizer.js';

type Json = Record<string, unknown>;

/**
 * GLM-4's split pattern with every digit its own pre-token, as LLaMA and DeepSeek split numbers: with GLM-4's runs of
 * up to three digits a small vocabulary turns every number below ~300 into one token, and arithmetic into a lookup
 * table a small model cannot learn; with single digits it works digit by digit.
 */
export const SINGLE_DIGIT_PATTERN = GLM_SPLIT_PATTERN.replace('\\p{N}{1,3}', '\\p{N}');
if (SINGLE_DIGIT_PATTERN === GLM_SPLIT_PATTERN) throw new Error('bpe-trainer: GLM split pattern has no digit run');

export interface BpeTrainOptions {
  /** Final vocabulary size, special tokens included. */
  vocabSize: number;
  /** A pair must occur at least this often to be merged. Default 2. */
  minFrequency?: number;
  /** Added tokens, after the learned vocabulary, in order. Default `GLM_SPECIAL_TOKENS`. */
  specialTokens?: readonly string[];
  /**
   * Which of `specialTokens` are flagged `special: false` (kept by `skipSpecialTokens` decoding), as the published GLM
   * tokenizers flag their think / answer / box tags. Default `GLM_TEXT_TOKENS`.
   */
  textTokens?: readonly string[];
  /** Pre-tokenizer split pattern (Oniguruma syntax, as in tokenizer.json). Default GLM-4's. */
  pattern?: string;
  /** Start from all 256 byte symbols (default true), so any text can be encoded; false: only characters seen. */
  byteAlphabet?: boolean;
  /** Chat template stored with the tokenizer. */
  chatTemplate?: string;
  /** Extra tokenizer_config.json fields. */
  config?: Json;
  /** Show a progress bar (default false). */
  progress?: boolean;
  /** Receives one JSONL record at the end (counts and timing). */
  metrics?: MetricsWriter;
}

export interface TrainedTokenizer {
  tokenizer: GlmTokenizer;
  /** Merges learned (vocabulary size minus alphabet and special tokens, or fewer if pairs ran out). */
  numMerges: number;
  alphabetSize: number;
  /** Number of distinct pre-tokenized words counted. */
  numWords: number;
}

/**
 * The lines of text files, each with its newline, in order: how the Rust trainer reads training files, so a corpus
 * gives the same tokenizer whichever way it is fed.
 */
export function* readCorpusFiles(paths: readonly string[]): Generator<string> {
  if (paths.length === 0) throw new Error('BPE training: expected at least one corpus file, found none');
  for (const path of paths) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path);
    } catch {
      throw new Error(`corpus file ${path}: file not found`);
    }
    if (!st.isFile()) throw new Error(`corpus file ${path}: expected a file, found a directory or special file`);
    const text = readFileSync(path, 'utf8');
    let start = 0;
    while (start < text.length) {
      const nl = text.indexOf('\n', start);
      const end = nl === -1 ? text.length : nl + 1;
      yield text.slice(start, end);
      start = end;
    }
  }
}

/** tokenizer.json skeleton of a GLM-style byte-level BPE tokenizer. */
function skeleton(pattern: string): TokenizerJson {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: {},
      merges: [],
    },
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Max-heap entry: a candidate pair, its count when pushed, and the words it was seen in. */
interface HeapEntry {
  a: number;
  b: number;
  count: number;
  pos: Set<number>;
}

/** True when x should pop before y: higher count, then the smaller (a, b). */
function before(x: HeapEntry, y: HeapEntry): boolean {
  if (x.count !== y.count) return x.count > y.count;
  if (x.a !== y.a) return x.a < y.a;
  return x.b < y.b;
}

class PairHeap {
  private items: HeapEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  push(e: HeapEntry): void {
    const h = this.items;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): HeapEntry | undefined {
    const h = this.items;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

function addPosition(map: Map<number, Set<number>>, key: number, word: number): void {
  const set = map.get(key);
  if (set) set.add(word);
  else map.set(key, new Set([word]));
}

const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number) => a * PAIR_SHIFT + b;

/**
 * Trains a byte-level BPE tokenizer on `texts` (strings, or an iterable of them) and returns it loaded.
 * Special-token strings inside the corpus are cut out before counting, as the reference trainer does.
 */
export function trainBpeTokenizer(texts: Iterable<string>, opts: BpeTrainOptions): TrainedTokenizer {
  const specials = [...(opts.specialTokens ?? GLM_SPECIAL_TOKENS)];
  const textTokens = new Set(opts.textTokens ?? GLM_TEXT_TOKENS);
  const minFrequency = opts.minFrequency ?? 2;
  const pattern = opts.pattern ?? GLM_SPLIT_PATTERN;
  const byteAlphabet = opts.byteAlphabet ?? true;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize <= 0) {
    throw new Error(`BPE training: expected vocabSize to be a positive integer, found ${opts.vocabSize}`);
  }
  if (new Set(specials).size !== specials.length) throw new Error('BPE training: special tokens contain duplicates');
  if (specials.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new Error('BPE training: special tokens must be non-empty strings');
  }
  const minVocab = (byteAlphabet ? 256 : 0) + specials.length;
  if (opts.vocabSize < minVocab) {
    throw new Error(
      `BPE training: vocabSize ${opts.vocabSize} is smaller than the byte alphabet plus special tokens (${minVocab})`,
    );
  }

  const started = Date.now();
  const json = skeleton(pattern);
  const pre = new Tokenizer(json, {}).pre_tokenizer;
  if (!pre) throw new Error('BPE training: the pre-tokenizer could not be built');
  const specialSplit = specials.length
    ? new RegExp(
        [...specials]
          .sort((x, y) => y.length - x.length)
          .map(escapeRegex)
          .join('|'),
        'g',
      )
    : null;

  // 1. Count pre-tokenized words (already mapped to byte-level characters).
  const wordCounts = new Map<string, number>();
  let docs = 0;
  for (const text of texts) {
    if (typeof text !== 'string')
      throw new Error(`BPE training: expected corpus items to be strings, found ${typeof text}`);
    docs++;
    const pieces = specialSplit ? text.split(specialSplit) : [text];
    for (const piece of pieces) {
      if (!piece) continue;
      for (const w of pre.pre_tokenize_text(piece)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
    }
  }
  if (docs === 0 || wordCounts.size === 0) throw new Error('BPE training: the corpus is empty');

  // 2. Alphabet sorted by code point.
  const chars = new Set<string>(byteAlphabet ? BYTE_TO_CHAR : []);
  for (const w of wordCounts.keys()) for (const ch of w) chars.add(ch);
  const alphabet = [...chars].sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
  const idToWord: string[] = [...alphabet];
  const wordToId = new Map<string, number>(alphabet.map((c, i) => [c, i]));
  const targetVocab = opts.vocabSize - specials.filter((s) => !wordToId.has(s)).length;

  // 3. Words as symbol-id arrays; pair counts and where each pair occurs.
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push(Array.from(w, (ch) => wordToId.get(ch)!));
    counts.push(c);
  }
  const pairCounts = new Map<number, number>();
  const pairOf = new Map<number, [number, number]>();
  let whereToUpdate = new Map<number, Set<number>>();
  for (let i = 0; i < words.length; i++) {
    const s = words[i];
    for (let j = 0; j + 1 < s.length; j++) {
      const k = pairKey(s[j], s[j + 1]);
      pairCounts.set(k, (pairCounts.get(k) ?? 0) + counts[i]);
      if (!pairOf.has(k)) pairOf.set(k, [s[j], s[j + 1]]);
      addPosition(whereToUpdate, k, i);
    }
  }
  const heap = new PairHeap();
  for (const [k, pos] of whereToUpdate) {
    const count = pairCounts.get(k)!;
    if (count > 0) {
      const [a, b] = pairOf.get(k)!;
      heap.push({ a, b, count, pos });
    }
  }
  whereToUpdate = new Map();

  // 4. Merge loop.
  const merges: Array<[string, string]> = [];
  const progress = new Progress({
    label: 'BPE merges',
    total: Math.max(1, targetVocab - idToWord.length),
    quiet: !opts.progress,
  });
  while (wordToId.size < targetVocab && heap.size > 0) {
    const top = heap.pop()!;
    const k = pairKey(top.a, top.b);
    const current = pairCounts.get(k) ?? 0;
    if (top.count !== current) {
      top.count = current;
      heap.push(top);
      continue;
    }
    if (top.count < 1 || top.count < minFrequency) break;
    const newToken = idToWord[top.a] + idToWord[top.b];
    let newId = wordToId.get(newToken);
    if (newId === undefined) {
      newId = idToWord.length;
      idToWord.push(newToken);
      wordToId.set(newToken, newId);
    }
    merges.push([idToWord[top.a], idToWord[top.b]]);
    // Apply the merge in every word that had the pair, collecting pair-count changes.
    for (const wi of top.pos) {
      const s = words[wi];
      const c = counts[wi];
      const change = (x: number, y: number, delta: number) => {
        const key = pairKey(x, y);
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta * c);
        if (delta > 0) {
          if (!pairOf.has(key)) pairOf.set(key, [x, y]);
          addPosition(whereToUpdate, key, wi);
        }
      };
      let i = 0;
      while (i < s.length) {
        if (s[i] === top.a && i + 1 < s.length && s[i + 1] === top.b) {
          if (i > 0) {
            change(s[i - 1], top.a, -1);
            change(s[i - 1], newId, 1);
          }
          s.splice(i, 2, newId);
          if (i < s.length - 1) {
            change(top.b, s[i + 1], -1);
            change(newId, s[i + 1], 1);
          }
        }
        i++;
      }
    }
    for (const [key, pos] of whereToUpdate) {
      const count = pairCounts.get(key)!;
      if (count > 0) {
        const [a, b] = pairOf.get(key)!;
        heap.push({ a, b, count, pos });
      }
    }
    whereToUpdate = new Map();
    progress.update(wordToId.size - alphabet.length);
  }
  progress.stop();
  opts.metrics?.write({
    event: 'bpe_train',
    documents: docs,
    words: wordCounts.size,
    alphabet: alphabet.length,
    merges: merges.length,
    vocab_size: idToWord.length + specials.filter((s) => !wordToId.has(s)).length,
    seconds: (Date.now() - started) / 1000,
  });

  // 5. Assemble tokenizer.json: learned vocabulary, then the special tokens.
  const vocab: Record<string, number> = {};
  idToWord.forEach((t, i) => {
    vocab[t] = i;
  });
  const added: AddedTokenJson[] = [];
  let next = idToWord.length;
  for (const s of specials) {
    const id = wordToId.get(s) ?? next++;
    const special = !textTokens.has(s);
    added.push({ id, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  }
  json.model.vocab = vocab;
  json.model.merges = merges;
  json.added_tokens = added;

  const eos = specials.includes('<|endoftext|>') ? '<|endoftext|>' : specials[0];
  const addedDecoder: Record<string, Omit<AddedTokenJson, 'id'>> = {};
  for (const { id, ...rest } of added) addedDecoder[String(id)] = rest;
  const config: Json = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    clean_up_tokenization_spaces: false,
    do_lower_case: false,
    remove_space: false,
    padding_side: 'left',
    model_max_length: 65536,
    ...(eos !== undefined ? { eos_token: eos, pad_token: eos } : {}),
    added_tokens_decoder: addedDecoder,
    additional_special_tokens: specials.filter((s) => s !== eos && !textTokens.has(s)),
    ...(opts.config ?? {}),
  };
  const tokenizer = new GlmTokenizer(json, config, { chatTemplate: opts.chatTemplate, label: 'trained tokenizer' });
  return { tokenizer, numMerges: merges.length, alphabetSize: alphabet.length, numWords: wordCounts.size };
}
