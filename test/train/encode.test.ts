/** Loss masks and prompt consistency: what is trained on, and that SFT prompts are exactly what inference builds. */
import { beforeAll, describe, expect, it } from 'vitest';
import type { PretrainDoc } from '../../src/data/pretrain.js';
import type { Sample } from '../../src/data/sample.js';
import { promptText, sftTarget } from '../../src/data/sft.js';
import { ChatModel } from '../../src/io/chat.js';
import { CHAT_TEMPLATES } from '../../src/io/template.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { loadTrainConfig, type ModelStageConfig } from '../../src/train/config.js';
import { Encoder, fitExample, IGNORE } from '../../src/train/encode.js';
import { archConfig, defaultProcessorConfigs, stageProcessor } from '../../src/train/model.js';
import { openRecords } from '../../src/train/records.js';
import { baseConfig, type Fixture, fixture } from './helpers.js';

let f: Fixture;
let tok: GlmTokenizer;
let enc: Encoder;
let docs: PretrainDoc[];
let samples: Sample[];
let pc: ReturnType<typeof defaultProcessorConfigs>;
let cfg: ModelStageConfig;

beforeAll(async () => {
  f = await fixture();
  cfg = loadTrainConfig(baseConfig(f, '/unused'), 'sft') as ModelStageConfig;
  tok = await GlmTokenizer.fromPretrained(f.tokenizer);
  pc = defaultProcessorConfigs(cfg.model.arch);
  enc = encoder();
  const d = await openRecords(f.docs);
  docs = Array.from({ length: d.size }, (_, i) => d.get(i)).flatMap((r) => (r.type === 'doc' ? [r.doc] : []));
  const s = await openRecords(f.samples);
  samples = Array.from({ length: s.size }, (_, i) => s.get(i)).flatMap((r) => (r.type === 'sample' ? [r.sample] : []));
});

/** An encoder of the fixture's tokenizer and processor, with the given cache budgets. */
const encoder = (caches: { imageCacheBytes?: number; textCacheBytes?: number } = {}) =>
  new Encoder({
    tokenizer: tok,
    imageConfig: pc.image,
    videoConfig: pc.video,
    template: CHAT_TEMPLATES.glm41v,
    style: 'glm41v',
    ...caches,
  });

const labelled = (ids: Int32Array, labels: Int32Array) => [...ids].filter((_, i) => labels[i] !== IGNORE);

describe('pre-training documents', () => {
  it('train on every text token and the document end, never on media tokens, their markers or the prefix', async () => {
    const doc = docs.find((d) => d.kind === 'interleaved')!;
    const ex = await enc.encodeDoc(doc);
    const masked = new Set(['<|image|>', '<|begin_of_image|>', '<|end_of_image|>', '[gMASK]', '<sop>']);
    ex.ids.forEach((id, i) => {
      const t = tok.idToToken(id)!;
      expect(ex.labels[i], `${t} at ${i}`).toBe(masked.has(t) ? IGNORE : id);
    });
    // The labelled tokens are the document's text, in order, then the end token.
    const texts = doc.content.flatMap((p) => (p.type === 'text' ? [p.text] : []));
    const text = tok.decode(labelled(ex.ids, ex.labels));
    expect(text.replaceAll('\n', '')).toBe(`${texts.join('')}<|endoftext|>`);
    expect(ex.targets).toBe(labelled(ex.ids, ex.labels).length);
    // One <|image|> per visual token: t·h·w / 4 (2×2 merge); a 56 px image is 4×4 patches → 4 tokens.
    expect(ex.images.length).toBe(doc.images.length);
    const visual = ex.images.reduce((a, m) => a + (m.grid[0] * m.grid[1] * m.grid[2]) / 4, 0);
    expect([...ex.ids].filter((id) => id === tok.id('<|image|>')).length).toBe(visual);
    const small = await enc.encodeDoc(docs.find((d) => d.kind === 'ocr')!);
    expect(small.images[0]!.grid).toEqual([1, 4, 4]);
  });

  it('render a sample as an instruction document (media, question, answer)', async () => {
    const s = samples.find((x) => x.images.length === 1)!;
    const ex = await enc.encodeDoc(enc.sampleAsDoc(s));
    expect(tok.decode(labelled(ex.ids, ex.labels))).toBe(`${promptText(s)}\n${s.answer}<|endoftext|>`);
  });
});

describe('SFT samples', () => {
  it('train on the assistant reply and the end token only, with the prompt inference builds', async () => {
    const s = samples.find((x) => x.images.length === 1 && x.rationale)!;
    const ex = await enc.encodeSft(s, true);
    expect(tok.decode(labelled(ex.ids, ex.labels))).toBe(`${sftTarget(s)}<|endoftext|>`);
    const firstLabel = ex.labels.findIndex((l) => l !== IGNORE);
    // The prompt part is exactly what ChatModel (glmv chat, eval, RL) feeds the model.
    const model = Glm4vForConditionalGeneration.random(archConfig(cfg.model.arch, tok), { seed: 1 });
    const withTemplate = new GlmTokenizer(tok.tokenizerJson, tok.config, { chatTemplate: CHAT_TEMPLATES.glm41v });
    const chat = new ChatModel(
      model,
      withTemplate,
      stageProcessor({ imageConfig: pc.image, videoConfig: pc.video }),
      '(test)',
    );
    const inference = await chat.prepare([enc.userMessage(s)], true);
    expect([...ex.ids.slice(0, firstLabel)]).toEqual(inference.inputIds);
    expect(ex.images[0]!.pixelValues).toEqual(inference.pixelValues);
    // /nothink: the user turn says so, thinking is empty, the answer is the same.
    const nt = await enc.encodeSft(s, false);
    const ntFirst = nt.labels.findIndex((l) => l !== IGNORE);
    expect(tok.decode(labelled(nt.ids, nt.labels))).toBe(
      `<think></think><answer><|begin_of_box|>${s.answer}<|end_of_box|></answer><|endoftext|>`,
    );
    const ntInference = await chat.prepare([enc.userMessage(s)], false);
    expect([...nt.ids.slice(0, ntFirst)]).toEqual(ntInference.inputIds);
  });

  it('GLM-4.5V style: the reply after the template-primed prefix, no answer tags', async () => {
    const enc45 = new Encoder({
      tokenizer: tok,
      imageConfig: pc.image,
      videoConfig: pc.video,
      template: CHAT_TEMPLATES.glm45v,
      style: 'glm45v',
    });
    const s = samples.find((x) => x.rationale)!;
    const think = await enc45.encodeSft(s, true);
    expect(tok.decode(labelled(think.ids, think.labels))).toBe(
      `\n<think>${s.rationale!.trim()}</think>\n<|begin_of_box|>${s.answer}<|end_of_box|><|endoftext|>`,
    );
    const nothink = await enc45.encodeSft(s, false);
    // The template primes `<think></think>` for /nothink, so only the answer is trained.
    expect(tok.decode(labelled(nothink.ids, nothink.labels))).toBe(
      `\n<|begin_of_box|>${s.answer}<|end_of_box|><|endoftext|>`,
    );
    expect(tok.decode(nothink.ids)).toContain('/nothink<|assistant|>\n<think></think>');
  });

  it('refuses a thinking target without a rationale, naming the sample', async () => {
    const s = { ...samples[0]!, rationale: undefined, id: 'no-rationale/1' };
    await expect(enc.encodeSft(s, true)).rejects.toThrow(/no-rationale\/1 has no rationale/);
  });
});

describe('the image cache', () => {
  it('decodes each image once while it has room, then stops admitting (never evicts)', async () => {
    const withImages = docs.filter((d) => d.images.length === 1 && d.kind === 'ocr').slice(0, 3);
    const mk = (bytes: number) => encoder({ imageCacheBytes: bytes });
    const big = mk(1 << 20);
    for (let r = 0; r < 2; r++) for (const d of withImages) await big.encodeDoc(d);
    expect(big.stats).toMatchObject({ decoded: 3, cached: 3 });
    // Room for one 56×56 image (9408 bytes): the first stays, later ones are decoded every time.
    const one = mk(56 * 56 * 3 + 10);
    for (let r = 0; r < 2; r++) for (const d of withImages) await one.encodeDoc(d);
    expect(one.stats).toMatchObject({ decoded: 5, cached: 1 });
    const off = mk(0);
    const a = await off.encodeDoc(withImages[0]!);
    const b = await big.encodeDoc(withImages[0]!);
    expect(off.stats.cached).toBe(0);
    expect(a.images[0]!.pixelValues).toEqual(b.images[0]!.pixelValues);
  });
});

describe('the token-id cache', () => {
  it('tokenizes each text once while it has room; the examples are those of an encoder without it', async () => {
    const mk = (bytes: number) => encoder({ textCacheBytes: bytes });
    const cached = mk(1 << 20);
    const off = mk(0);
    const some = samples.filter((s) => s.rationale).slice(0, 4);
    for (let r = 0; r < 3; r++)
      for (const s of some) {
        const a = await cached.encodeSft(s, true);
        const b = await off.encodeSft(s, true);
        expect([...a.ids]).toEqual([...b.ids]);
        expect([...a.labels]).toEqual([...b.labels]);
        // What a caller does with its example does not reach the cache.
        a.ids.fill(0);
      }
    // Two texts per sample (prompt and reply), tokenized in the first round only.
    expect(cached.stats).toMatchObject({ tokenized: 2 * some.length, tokensCached: 4 * some.length });
    expect(off.stats).toMatchObject({ tokenized: 6 * some.length, tokensCached: 0 });
    // A budget smaller than one text admits nothing.
    const tiny = mk(16);
    for (let r = 0; r < 2; r++) await tiny.encodeSft(some[0]!, true);
    expect(tiny.stats).toMatchObject({ tokenized: 4, tokensCached: 0 });
  });
});

describe('fitting to the sequence length', () => {
  const ids = { image: 900, endImage: 902, endVideo: 904 };
  const ex = (tokens: number[]) => ({
    id: 'e',
    group: 'g',
    ids: Int32Array.from(tokens),
    labels: Int32Array.from(tokens, (t, i) => (i === 0 || t >= 900 ? IGNORE : t)),
    targets: tokens.filter((t, i) => i > 0 && t < 900).length,
    images: [],
    videos: [],
  });
  it('keeps what fits, truncates after the last visual token, drops a cut through media', () => {
    const short = ex([1, 2, 3]);
    expect(fitExample(short, 3, 'drop', ids)).toBe(short);
    const cut = fitExample(ex([1, 901, 900, 902, 5, 6, 7, 8]), 6, 'truncate', ids)!;
    expect([...cut.ids]).toEqual([1, 901, 900, 902, 5, 6]);
    expect(cut.targets).toBe(2);
    expect(cut.truncated).toBe(true);
    expect(fitExample(ex([1, 901, 900, 900, 900, 902, 7]), 4, 'truncate', ids)).toBeNull();
    expect(fitExample(ex([1, 2, 3, 4, 5]), 4, 'drop', ids)).toBeNull();
  });
});
