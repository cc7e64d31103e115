import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The Rust `tokenizers` binding: the reference for BPE training and for encoding the same tokenizer.json.
import * as reference from 'tokenizers';
import { afterAll, describe, expect, it } from 'vitest';
import { readCorpusFiles, SINGLE_DIGIT_PATTERN, trainBpeTokenizer } from '../../src/io/bpe-trainer.js';
import { GLM41V_CHAT_TEMPLATE } from '../../src/io/template.js';
import {
  BYTE_TO_CHAR,
  GLM_SPECIAL_TOKENS,
  GLM_TEXT_TOKENS,
  GlmTokenizer,
  type TokenizerJson,
} from '../../src/io/tokenizer.js';
import { MetricsWriter } from '../../src/util/progress.js';
import { Rng } from '../../src/util/rng.js';

const FIX = join(import.meta.dirname, '../fixtures/tokenizer');
const dir = mkdtempSync(join(tmpdir(), 'glmv-tok-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The corpus as the Rust trainer reads a file: one sequence per line, newline kept. */
const lines = (text: string) => text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
const corpusText = readFileSync(join(FIX, 'corpus.txt'), 'utf8');

/** Trains the reference Rust BpeTrainer (default settings: no vocab limit, no min frequency) on a file. */
function referenceTrain(ours: TokenizerJson, path: string): TokenizerJson {
  const skeleton = structuredClone(ours);
  skeleton.model.vocab = {};
  skeleton.model.merges = [];
  skeleton.added_tokens = [];
  const t = reference.Tokenizer.fromString(JSON.stringify(skeleton));
  t.train([path]);
  const out = join(dir, 'reference.json');
  t.save(out, false);
  return JSON.parse(readFileSync(out, 'utf8'));
}

const TRICKY = [
  "Hello WORLD, it's 2024! DON'T you'll we'VE",
  'x = 1234567.89 + 3,141,592',
  '你好，世界！这是一个测试。答案是 42。',
  'emoji: 😀👍🏽 family: 👨‍👩‍👧 flags 🇫🇷',
  'tabs\tand\r\nCRLF\n\n\nblank   lines   \n  indented',
  'combining: é vs é, Ångström, naïve, ﬁ ligature, zero\u200bwidth',
  'control \u0000\u0001\u007f bytes and ¡¿ Latin-1',
  '<|user|>\n<|begin_of_image|><|image|><|end_of_image|>What?<|assistant|>\n<think>hmm</think><answer>A</answer>',
  '/nothink at the end/nothink',
  '',
];

describe('BPE trainer vs the Rust tokenizers BpeTrainer', () => {
  it('learns identical merges and ids on the fixture corpus', () => {
    const ours = trainBpeTokenizer(lines(corpusText), {
      vocabSize: 100000,
      minFrequency: 0,
      specialTokens: [],
      byteAlphabet: false,
    });
    const ref = referenceTrain(ours.tokenizer.tokenizerJson, join(FIX, 'corpus.txt'));
    expect(ours.numMerges).toBeGreaterThan(500);
    expect(ours.tokenizer.tokenizerJson.model.merges).toEqual(ref.model.merges);
    expect(ours.tokenizer.tokenizerJson.model.vocab).toEqual(ref.model.vocab);
  });

  it('learns identical merges on random corpora full of ties', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      const alphabet = 'aabbcd é你!1 '.split('');
      const text = Array.from({ length: 300 }, () =>
        Array.from({ length: rng.int(1, 25) }, () => rng.pick(alphabet)).join(''),
      ).join('\n');
      const path = join(dir, `random${seed}.txt`);
      writeFileSync(path, text);
      const ours = trainBpeTokenizer(lines(text), {
        vocabSize: 100000,
        minFrequency: 0,
        specialTokens: [],
        byteAlphabet: false,
      });
      const ref = referenceTrain(ours.tokenizer.tokenizerJson, path);
      expect(ours.tokenizer.tokenizerJson.model.merges).toEqual(ref.model.merges);
      expect(ours.tokenizer.tokenizerJson.model.vocab).toEqual(ref.model.vocab);
    }
  });

  it('a smaller vocabulary is a prefix of the same merge sequence', () => {
    const big = trainBpeTokenizer(lines(corpusText), { vocabSize: 900 });
    const small = trainBpeTokenizer(lines(corpusText), { vocabSize: 400 });
    const bm = big.tokenizer.tokenizerJson.model.merges as string[][];
    const sm = small.tokenizer.tokenizerJson.model.merges as string[][];
    expect(small.tokenizer.vocabSize).toBe(400);
    expect(sm.length).toBe(400 - 256 - GLM_SPECIAL_TOKENS.length);
    expect(bm.slice(0, sm.length)).toEqual(sm);
  });
});

describe('single-digit numbers (tokenizer digits: single)', () => {
  it('never merges digits, and encodes exactly like the Rust tokenizers library with the same pattern', async () => {
    const text = Array.from({ length: 400 }, (_, i) => `${(i * 37) % 997} + ${(i * 91) % 113} = ${i}. 12:45 x2\n`);
    const trained = trainBpeTokenizer(text, { vocabSize: 600, pattern: SINGLE_DIGIT_PATTERN }).tokenizer;
    const dir = mkdtempSync(join(tmpdir(), 'glmv-digits-'));
    try {
      await trained.save(dir);
      const tok = await GlmTokenizer.fromPretrained(dir);
      const ref = reference.Tokenizer.fromFile(join(dir, 'tokenizer.json'));
      const pieces = tok.encode('987 + 65 = 1052').map((id) => tok.decode([id]));
      expect(pieces.filter((p) => /\d/.test(p))).toEqual(['9', '8', '7', '6', '5', '1', '0', '5', '2']);
      for (const t of [...text.slice(0, 20), 'x = 12345678901234567890, y=0.5e10', '٣٤ ٥']) {
        const ids = (await ref.encode(t, null, { addSpecialTokens: false })).getIds();
        expect(tok.encode(t)).toEqual(ids);
      }
      // The grouped default keeps GLM-4's runs of up to three digits: the frequent "45" becomes one token.
      const grouped = trainBpeTokenizer(text, { vocabSize: 600 }).tokenizer;
      expect([grouped.encode('45').length, tok.encode('45').length]).toEqual([1, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the fixture tokenizer (test/fixtures/tokenizer)', () => {
  const trainFixture = () =>
    trainBpeTokenizer(lines(corpusText), { vocabSize: 512, minFrequency: 2, chatTemplate: GLM41V_CHAT_TEMPLATE });

  it('is exactly what the trainer produces from corpus.txt', async () => {
    const trained = trainFixture();
    if (process.env.GLMV_UPDATE_FIXTURES === '1') await trained.tokenizer.save(FIX);
    const onDisk = JSON.parse(readFileSync(join(FIX, 'tokenizer.json'), 'utf8'));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(trained.tokenizer.tokenizerJson)));
  });

  it('loads with its config and template, 512 ids, specials at the end', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    expect(tok.vocabSize).toBe(512);
    expect(tok.chatTemplate).toBe(GLM41V_CHAT_TEMPLATE);
    GLM_SPECIAL_TOKENS.forEach((s, i) => {
      expect(tok.id(s)).toBe(512 - GLM_SPECIAL_TOKENS.length + i);
    });
    expect(tok.eosTokenId).toBe(tok.id('<|endoftext|>'));
    expect(tok.padTokenId).toBe(tok.eosTokenId);
    expect(tok.stopTokenIds()).toEqual([tok.id('<|endoftext|>'), tok.id('<|user|>'), tok.id('<|observation|>')]);
    expect(() => tok.id('<|nope|>')).toThrow(/token "<\|nope\|>" is not in the vocabulary/);
  });

  it('round-trips any text exactly (byte-level alphabet)', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    for (const t of TRICKY) expect(tok.decode(tok.encode(t))).toBe(t);
    const rng = new Rng(5);
    for (let k = 0; k < 50; k++) {
      const s = Array.from({ length: rng.int(1, 40) }, () =>
        String.fromCodePoint(
          rng.pick([rng.int(0, 0x7f), rng.int(0x80, 0x7ff), rng.int(0x4e00, 0x9fff), rng.int(0x1f300, 0x1f64f)]),
        ),
      ).join('');
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('encodes exactly like the Rust tokenizers library on the same tokenizer.json', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    const ref = reference.Tokenizer.fromFile(join(FIX, 'tokenizer.json'));
    for (const t of [...TRICKY, corpusText.slice(0, 3000)]) {
      const ids = (await ref.encode(t, null, { addSpecialTokens: false })).getIds();
      expect(tok.encode(t)).toEqual(ids);
      if (ids.length) expect(tok.decode(ids)).toBe(await ref.decode(ids, false));
    }
  });

  it('keeps special tokens whole and can drop them when decoding', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    const ids = tok.encode('<|begin_of_image|><|image|><|image|><|end_of_image|>hi');
    expect(ids.slice(0, 4)).toEqual(
      ['<|begin_of_image|>', '<|image|>', '<|image|>', '<|end_of_image|>'].map((s) => tok.id(s)),
    );
    expect(tok.isSpecial(ids[1])).toBe(true);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hi');
    expect(tok.tokenize('<think>the</think>')).toEqual(['<think>', 'the', '</think>']);
  });

  it('flags think / answer / box tags non-special, as the published GLM-4.1V and GLM-4.5V tokenizers do', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    const cfg = JSON.parse(readFileSync(join(FIX, 'tokenizer_config.json'), 'utf8'));
    for (const s of GLM_SPECIAL_TOKENS) {
      const text = GLM_TEXT_TOKENS.includes(s);
      expect(tok.isSpecial(tok.id(s)), s).toBe(!text);
      expect(cfg.added_tokens_decoder[String(tok.id(s))].special, s).toBe(!text);
      expect(cfg.additional_special_tokens.includes(s), s).toBe(!text && s !== '<|endoftext|>');
    }
    // A GLM-4.1V response as the model writes it, then the stop token and a hallucinated next turn.
    const response =
      '<think>2 + 2 = 4</think><answer>The sum is <|begin_of_box|>4<|end_of_box|></answer><|user|>\nmore<|endoftext|>';
    const ids = tok.encode(response);
    expect(tok.decode(ids)).toBe(response);
    const kept = '<think>2 + 2 = 4</think><answer>The sum is <|begin_of_box|>4<|end_of_box|></answer>\nmore';
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(kept);
    expect(new TextDecoder().decode(tok.decodeBytes(ids, { skipSpecialTokens: true }))).toBe(kept);
    // The Rust tokenizers library (what HF transformers and vLLM decode with) reads the same flags the same way.
    const ref = reference.Tokenizer.fromFile(join(FIX, 'tokenizer.json'));
    expect(await ref.decode(ids, true)).toBe(kept);
    expect(await ref.decode(ids, false)).toBe(response);
    const prompt = tok.encode(
      '[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Hi/nothink<|assistant|>\n',
    );
    expect(tok.decode(prompt, { skipSpecialTokens: true })).toBe('\nHi/nothink\n');
    expect(await ref.decode(prompt, true)).toBe('\nHi/nothink\n');
  });

  it('trains with every added token special when asked (textTokens: [])', () => {
    const t = trainBpeTokenizer(['<think>a</think> b b b'], { vocabSize: 300, textTokens: [] }).tokenizer;
    for (const s of GLM_SPECIAL_TOKENS) expect(t.isSpecial(t.id(s)), s).toBe(true);
    expect(t.decode(t.encode('<think>a</think>'), { skipSpecialTokens: true })).toBe('a');
  });

  it('gives raw bytes per token so streams can cut at whole characters', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    const text = '数学😀 ok<|user|>';
    const ids = tok.encode(text);
    const parts = ids.map((id) => tok.decodeBytes([id]));
    // Some single tokens are partial UTF-8 sequences; concatenated they decode to the text.
    expect(
      parts.some((p) => {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(p);
          return false;
        } catch {
          return true;
        }
      }),
    ).toBe(true);
    expect(new TextDecoder().decode(Buffer.concat(parts))).toBe(text);
    expect(new TextDecoder().decode(tok.decodeBytes(ids, { skipSpecialTokens: true }))).toBe('数学😀 ok');
    expect(BYTE_TO_CHAR[32]).toBe('Ġ');
  });

  it('reads the older "a b" string form of merges the same way', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    const json = structuredClone(tok.tokenizerJson);
    json.model.merges = (json.model.merges as string[][]).map(([a, b]) => `${a} ${b}`);
    const old = new GlmTokenizer(json, tok.config);
    for (const t of TRICKY) expect(old.encode(t)).toEqual(tok.encode(t));
  });

  it('saves and reloads to the same tokenizer', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    const out = join(dir, 'saved');
    await tok.save(out);
    const again = await GlmTokenizer.fromPretrained(out);
    for (const t of TRICKY) expect(again.encode(t)).toEqual(tok.encode(t));
    expect(again.chatTemplate).toBe(tok.chatTemplate);
  });
});

describe('training from files', () => {
  it('reads files line by line like the reference and writes a metrics record', () => {
    const fromFiles = [...readCorpusFiles([join(FIX, 'corpus.txt')])];
    expect(fromFiles).toEqual(lines(corpusText));
    const metricsPath = join(dir, 'metrics', 'bpe.jsonl');
    const t = trainBpeTokenizer(readCorpusFiles([join(FIX, 'corpus.txt')]), {
      vocabSize: 600,
      metrics: new MetricsWriter(metricsPath),
    });
    const rec = JSON.parse(readFileSync(metricsPath, 'utf8').trim());
    expect(rec).toMatchObject({
      event: 'bpe_train',
      documents: fromFiles.length,
      merges: t.numMerges,
      vocab_size: 600,
    });
    expect(() => [...readCorpusFiles([join(dir, 'missing.txt')])]).toThrow(
      /corpus file .*missing\.txt: file not found/,
    );
    expect(() => [...readCorpusFiles([])]).toThrow(/at least one corpus file/);
  });
});

describe('bad input', () => {
  it('rejects impossible training settings and empty corpora', () => {
    expect(() => trainBpeTokenizer(['abc'], { vocabSize: 100 })).toThrow(
      /vocabSize 100 is smaller than the byte alphabet plus special tokens \(276\)/,
    );
    expect(() => trainBpeTokenizer([], { vocabSize: 1000 })).toThrow(/the corpus is empty/);
    expect(() => trainBpeTokenizer(['a'], { vocabSize: 1000, specialTokens: ['<a>', '<a>'] })).toThrow(/duplicates/);
    expect(() => trainBpeTokenizer([3 as unknown as string], { vocabSize: 1000 })).toThrow(
      /corpus items to be strings, found number/,
    );
  });

  it('stops early when no pair is frequent enough', () => {
    const t = trainBpeTokenizer(['ab ab ab cd'], { vocabSize: 5000, minFrequency: 3, specialTokens: [] });
    expect(t.tokenizer.tokenizerJson.model.merges).toEqual([['a', 'b']]);
  });

  it('rejects unknown ids when decoding', async () => {
    const tok = await GlmTokenizer.fromPretrained(FIX);
    expect(() => tok.decode([5, 99999])).toThrow(/id 99999 is not in the vocabulary \(size 512\)/);
    expect(() => tok.decode([-1])).toThrow(/id -1 is not in the vocabulary/);
  });

  it('reports missing files, bad JSON and malformed tokenizer.json clearly', async () => {
    await expect(GlmTokenizer.fromPretrained(join(dir, 'nowhere'))).rejects.toThrow(
      /no tokenizer\.json in this folder/,
    );
    const bad = join(dir, 'bad');
    await (await import('node:fs/promises')).mkdir(bad, { recursive: true });
    writeFileSync(join(bad, 'tokenizer.json'), '{ not json');
    await expect(GlmTokenizer.fromPretrained(bad)).rejects.toThrow(/tokenizer\.json .*: invalid JSON/);
    expect(() => new GlmTokenizer({ model: {} })).toThrow(/expected "model" with a "type"/);
    expect(() => new GlmTokenizer({ model: { type: 'BPE' } })).toThrow(/a BPE model needs a "vocab" object/);
    expect(() => new GlmTokenizer([])).toThrow(/expected a tokenizer\.json object, found an array/);
  });
});
