/**
 * LLaVA-style conversations: a JSON array (streamed element by element, so LLaVA-665K-sized files never sit in
 * memory whole) or JSONL of `{id, image | images, video?, conversations: [{from: human|gpt, value}]}`.
 * Each human→gpt turn becomes one Sample; earlier turns are kept in `meta.history`.
 */
import { createReadStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { JSONParser } from '@streamparser/json';
import type { Sample } from '../sample.js';
import {
  checkDefaults,
  type LoadOptions,
  type RawRow,
  RowError,
  resolveImagePath,
  SampleStream,
  sourceName,
} from './common.js';
import { jsonLines } from './jsonl.js';

const HUMAN = new Set(['human', 'user']);
const ASSISTANT = new Set(['gpt', 'assistant', 'model']);

/** Elements of a top-level JSON array, streamed. */
export async function* jsonArrayRows(file: string): AsyncGenerator<RawRow> {
  const parser = new JSONParser({ paths: ['$.*'], keepStack: false });
  const out: unknown[] = [];
  let isArray: boolean | null = null;
  parser.onValue = ({ value, stack }) => {
    if (stack.length === 1) out.push(value);
  };
  let row = 0;
  for await (const chunk of createReadStream(file)) {
    if (isArray === null) {
      const first = String(chunk).trimStart()[0];
      if (first !== undefined) {
        isArray = first === '[';
        if (!isArray)
          throw new Error(
            `${file}: expected a JSON array of conversations, found a file starting with ${JSON.stringify(first)}`,
          );
      }
    }
    try {
      parser.write(chunk as Buffer);
    } catch (e) {
      throw new RowError(file, row + 1, '(json)', `invalid JSON after element ${row}: ${(e as Error).message}`);
    }
    while (out.length) yield { row: ++row, value: out.shift() };
  }
  if (!parser.isEnded) {
    try {
      parser.end();
    } catch (e) {
      throw new RowError(file, row + 1, '(json)', `truncated JSON after element ${row}: ${(e as Error).message}`);
    }
  }
  while (out.length) yield { row: ++row, value: out.shift() };
}

export function llavaRecordToSamples(
  rec: Record<string, unknown>,
  file: string,
  row: number,
  root: string,
  source: string,
  opts: LoadOptions,
): Sample[] {
  const conv = rec.conversations;
  if (!Array.isArray(conv) || conv.length === 0) {
    throw new RowError(
      file,
      row,
      'conversations',
      `expected a non-empty list of {from, value} turns, found ${conv === undefined ? 'nothing' : JSON.stringify(conv).slice(0, 60)}`,
    );
  }
  let imgs: unknown = rec.images ?? rec.image;
  if (typeof imgs === 'string') imgs = [imgs];
  if (imgs !== undefined && imgs !== null && !(Array.isArray(imgs) && imgs.every((x) => typeof x === 'string'))) {
    throw new RowError(
      file,
      row,
      'image',
      `expected an image path or a list of paths, found ${JSON.stringify(imgs).slice(0, 60)}`,
    );
  }
  const images = ((imgs as string[] | undefined) ?? []).map((p, i) =>
    resolveImagePath(p, root, file, row, `image.${i}`),
  );
  const video =
    typeof rec.video === 'string' ? { path: resolveImagePath(rec.video, root, file, row, 'video') } : undefined;
  const baseId = rec.id === undefined ? `${source}/${row}` : `${source}/${String(rec.id)}`;
  const out: Sample[] = [];
  const history: Array<{ role: 'user' | 'assistant'; content: string }> = [];
  for (let t = 0; t < conv.length; t += 2) {
    const h = conv[t] as { from?: unknown; value?: unknown };
    const a = conv[t + 1] as { from?: unknown; value?: unknown } | undefined;
    const hf = String(h?.from ?? '').toLowerCase();
    if (!HUMAN.has(hf) || typeof h.value !== 'string') {
      throw new RowError(
        file,
        row,
        `conversations.${t}`,
        `expected a human turn {from: "human", value: string}, found ${JSON.stringify(h).slice(0, 80)}`,
      );
    }
    if (!a || !ASSISTANT.has(String(a.from ?? '').toLowerCase()) || typeof a.value !== 'string') {
      throw new RowError(
        file,
        row,
        `conversations.${t + 1}`,
        `expected an assistant turn {from: "gpt", value: string}, found ${a === undefined ? 'nothing' : JSON.stringify(a).slice(0, 80)}`,
      );
    }
    const question = h.value.replace(/<image>\s*|<video>\s*/g, '').trim();
    const s: Sample = {
      id: conv.length > 2 ? `${baseId}#${t / 2}` : baseId,
      domain: opts.domain ?? (video ? 'video' : images.length > 1 ? 'multi_image' : images.length ? 'vqa' : 'text'),
      source,
      split: opts.split ?? 'train',
      images,
      question,
      answer: a.value,
      verifier: opts.verifier ?? { type: 'general' },
      meta: { row, turn: t / 2, ...(history.length ? { history: [...history] } : {}) },
    };
    if (video) s.video = video;
    out.push(s);
    history.push({ role: 'user', content: question }, { role: 'assistant', content: a.value });
  }
  return out;
}

export function openLlava(file: string, opts: LoadOptions = {}): SampleStream {
  checkDefaults(opts, file);
  const source = opts.source ?? sourceName(file);
  const root = resolve(opts.imageRoot ?? dirname(file));
  const rows = file.endsWith('.jsonl') ? () => jsonLines(file) : () => jsonArrayRows(file);
  const convert = ({ row, value }: RawRow): Sample[] => {
    if (value instanceof RowError) throw value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new RowError(
        file,
        row,
        '(record)',
        `expected a conversation object, found ${JSON.stringify(value)?.slice(0, 60)}`,
      );
    }
    return llavaRecordToSamples(value as Record<string, unknown>, file, row, root, source, opts);
  };
  return new SampleStream(file, 'llava', rows, convert, opts);
}
