import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainBpeTokenizer } from '../../src/io/bpe-trainer.js';
import type { RgbImage } from '../../src/io/image.js';
import { Glm4vProcessor, prepareChatInputs } from '../../src/io/processor/request.js';
import { mmTokenTypeIds } from '../../src/io/processor/tokens.js';
import {
  type ChatMessage,
  ChatTemplate,
  collectMedia,
  GLM41V_CHAT_TEMPLATE,
  GLM45V_CHAT_TEMPLATE,
  renderChat,
} from '../../src/io/template.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';

const SPEC_MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'SYS' },
  {
    role: 'user',
    content: [
      { type: 'image', image: 'a.png' },
      { type: 'text', text: 'What is this?' },
    ],
  },
];

describe('GLM-4.1V template (verbatim)', () => {
  it("renders the spec's example byte for byte", () => {
    expect(renderChat('glm41v', SPEC_MESSAGES, { addGenerationPrompt: true })).toBe(
      '[gMASK]<sop><|system|>\nSYS<|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is this?<|assistant|>\n',
    );
  });

  it('starts with the verbatim first lines of the released template', () => {
    expect(
      GLM41V_CHAT_TEMPLATE.startsWith(
        "[gMASK]<sop>\n{%- for msg in messages %}\n    {%- if msg.role == 'system' %}\n<|system|>\n{{ msg.content }}",
      ),
    ).toBe(true);
    expect(GLM41V_CHAT_TEMPLATE.endsWith('{% if add_generation_prompt %}<|assistant|>\n{% endif %}')).toBe(true);
  });

  it('omits the generation prompt when asked and renders videos and string content', () => {
    const msgs: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'video', video: 'v.mp4' },
          { type: 'text', text: 'Describe.' },
        ],
      },
      { role: 'assistant', content: 'A cat.' },
      { role: 'user', content: 'More?' },
    ];
    expect(renderChat('glm41v', msgs, { addGenerationPrompt: false })).toBe(
      '[gMASK]<sop><|user|>\n<|begin_of_video|><|video|><|end_of_video|>Describe.<|assistant|>\nA cat.<|user|>\nMore?',
    );
  });

  it('drops the thinking of history turns, keeping the answer tags', () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Q1' },
      { role: 'assistant', content: '<think>long reasoning</think><answer>A1</answer>' },
      { role: 'user', content: 'Q2' },
    ];
    expect(renderChat('glm41v', msgs)).toBe(
      '[gMASK]<sop><|user|>\nQ1<|assistant|>\n<answer>A1</answer><|user|>\nQ2<|assistant|>\n',
    );
    expect(renderChat('glm41v', msgs, { stripHistoryThinking: false })).toContain('<think>long reasoning</think>');
  });
});

describe('GLM-4.5V-style template', () => {
  it('thinking on: no /nothink, bare assistant prefix', () => {
    expect(renderChat('glm45v', SPEC_MESSAGES)).toBe(
      '[gMASK]<sop><|system|>\nSYS<|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is this?<|assistant|>',
    );
  });

  it('thinking off: /nothink on user turns (once) and an empty think block primed', () => {
    expect(renderChat('glm45v', SPEC_MESSAGES, { enableThinking: false })).toBe(
      '[gMASK]<sop><|system|>\nSYS<|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is this?/nothink<|assistant|>\n<think></think>',
    );
    expect(renderChat('glm45v', [{ role: 'user', content: 'hi/nothink' }], { enableThinking: false })).toBe(
      '[gMASK]<sop><|user|>\nhi/nothink<|assistant|>\n<think></think>',
    );
  });

  it('history turns lose their reasoning; turns after the last user message keep it', () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Q1' },
      { role: 'assistant', content: '<think>r1</think>\nA1' },
      { role: 'user', content: 'Q2' },
      { role: 'assistant', content: 'A2', reasoning_content: 'r2' },
      { role: 'observation', content: 'tool says 3' },
    ];
    expect(renderChat('glm45v', msgs, { addGenerationPrompt: false })).toBe(
      '[gMASK]<sop><|user|>\nQ1<|assistant|>\n<think></think>\nA1<|user|>\nQ2<|assistant|>\n<think>r2</think>\nA2<|observation|>\ntool says 3',
    );
  });
});

describe('messages and media', () => {
  it('collects images and videos in prompt order, accepting url/path spellings', () => {
    const img: RgbImage = { width: 1, height: 1, data: new Uint8Array(3) };
    const msgs: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image', url: 'data:image/png;base64,AA==' },
          { type: 'video', path: 'v.mp4' },
        ],
      },
      { role: 'assistant', content: 'ok' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'and' },
          { type: 'image', image: img },
        ],
      },
    ];
    expect(collectMedia(msgs)).toEqual({ images: ['data:image/png;base64,AA==', img], videos: ['v.mp4'] });
    expect(() => collectMedia([{ role: 'user', content: [{ type: 'image' }] }])).toThrow(
      /message 0 part 0: image part has no source/,
    );
  });

  it('validates messages with the culprit named', () => {
    expect(() => renderChat('glm41v', [])).toThrow(/at least one message/);
    expect(() => renderChat('glm41v', [{ role: 'bot', content: 'x' } as unknown as ChatMessage])).toThrow(
      /chat message 0: expected role system, user, assistant, observation or tool, found "bot"/,
    );
    expect(() =>
      renderChat('glm41v', [{ role: 'user', content: [{ type: 'audio' }] } as unknown as ChatMessage]),
    ).toThrow(/chat message 0 part 0: expected type text, image or video, found "audio"/);
    expect(() => renderChat('glm41v', [{ role: 'user', content: 5 } as unknown as ChatMessage])).toThrow(
      /content to be a string or an array of parts, found number/,
    );
    expect(() => renderChat('glm41v', [{ role: 'assistant', content: [{ type: 'image', image: 'a.png' }] }])).toThrow(
      /images and videos are only allowed in user messages/,
    );
  });

  it('reports template syntax errors', () => {
    expect(() => new ChatTemplate('{% for x in %}', 'my template')).toThrow(
      /my template: cannot parse the Jinja template/,
    );
    expect(GLM45V_CHAT_TEMPLATE).toContain('/nothink');
  });
});

describe('template + processor + tokenizer', () => {
  it('renders, expands and tokenizes an image prompt into the right number of image ids', async () => {
    const tok = await GlmTokenizer.fromPretrained(join(import.meta.dirname, '../fixtures/tokenizer'));
    const tpl = new ChatTemplate(tok.chatTemplate!);
    const img: RgbImage = { width: 100, height: 60, data: new Uint8Array(100 * 60 * 3).fill(128) };
    const frame = (v: number): RgbImage => ({ width: 56, height: 56, data: new Uint8Array(56 * 56 * 3).fill(v) });
    const msgs: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image', image: img },
          { type: 'video', video: { frames: [frame(0), frame(9), frame(18), frame(27)], fps: 2 } },
          { type: 'text', text: 'What changes?' },
        ],
      },
    ];
    const text = tpl.render(msgs);
    const processed = await new Glm4vProcessor().process({ text, ...collectMedia(msgs) });
    const ids = tok.encode(processed.text);
    const imageId = tok.id('<|image|>');
    const types = mmTokenTypeIds(ids, {
      image: imageId,
      videoStart: tok.id('<|begin_of_video|>'),
      videoEnd: tok.id('<|end_of_video|>'),
    });
    const count = (t: number) => types.filter((x) => x === t).length;
    // Image: smart_resize(2, 60, 100) → 56x112 → 2x4 = 8 tokens. Video: 4 frames of 56x56 → 2 groups of 4 tokens.
    expect(processed.imageGridThw).toEqual([[1, 4, 8]]);
    expect(processed.videoGridThw).toEqual([[2, 4, 4]]);
    expect(count(1)).toBe(8);
    expect(count(2)).toBe(8);
    expect(tok.decode(ids)).toBe(processed.text);
    expect(processed.text).toContain('<|end_of_image|>0<|begin_of_image|>');
    expect(processed.text).toContain('<|end_of_image|>1<|end_of_video|>What changes?<|assistant|>\n');
  });

  it('prepareChatInputs does it in one step and checks the image-token count', async () => {
    const tok = await GlmTokenizer.fromPretrained(join(import.meta.dirname, '../fixtures/tokenizer'));
    const img: RgbImage = { width: 56, height: 56, data: new Uint8Array(56 * 56 * 3).fill(9) };
    const msgs: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image', image: img },
          { type: 'text', text: 'Hi' },
        ],
      },
    ];
    const out = await prepareChatInputs(new Glm4vProcessor(), tok, msgs);
    // 56x56 is below the 112·112 minimum (two frames counted): scaled up to 84x84 → 3x3 = 9 tokens.
    expect(out.imageGridThw).toEqual([[1, 6, 6]]);
    expect(tok.decode(out.inputIds)).toBe(
      `[gMASK]<sop><|user|>\n<|begin_of_image|>${'<|image|>'.repeat(9)}<|end_of_image|>Hi<|assistant|>\n`,
    );
    expect(Array.from(out.mmTokenTypeIds).filter((t) => t === 1).length).toBe(9);
    const off = await prepareChatInputs(new Glm4vProcessor(), tok, msgs, { template: 'glm45v', enableThinking: false });
    expect(tok.decode(off.inputIds).endsWith('Hi/nothink<|assistant|>\n<think></think>')).toBe(true);
    // A tokenizer without the GLM special tokens splits <|image|> into pieces: caught, not silently wrong.
    const plain = trainBpeTokenizer(['plain text only'], {
      vocabSize: 300,
      specialTokens: ['<|endoftext|>'],
    }).tokenizer;
    await expect(prepareChatInputs(new Glm4vProcessor(), plain, msgs)).rejects.toThrow(/no chat_template/);
    await expect(prepareChatInputs(new Glm4vProcessor(), plain, msgs, { template: 'glm41v' })).rejects.toThrow(
      /token "<\|image\|>" is not in the vocabulary/,
    );
  });
});
