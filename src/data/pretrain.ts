/**
 * Pre-training mixtures built from the same worlds as the curriculum: dense captions from scene graphs,
 * interleaved image-text documents, OCR pages, grounding pairs (labels with 0–1000 boxes), video captions,
 * instruction pairs, and a text-only corpus. Records are `PretrainDoc`s: ordered text and media parts.
 */
import { createReadStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { pixelToNorm } from '../io/answer/geometry.js';
import { yieldToEventLoop } from '../util/async.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { parseDifficulty } from './dataset.js';
import { fileStem, hash32, type MediaFile, planOne } from './generate.js';
import { getGenerator } from './generators/index.js';
import type { Generator, Split } from './generators/types.js';
import { toPng } from './render.js';
import type { VideoRef } from './sample.js';
import { RowError } from './schema.js';
import { type DatasetInfo, manifestFiles, ShardWriter } from './store.js';

export const PRETRAIN_KINDS = [
  'caption',
  'interleaved',
  'ocr',
  'grounding',
  'video_caption',
  'instruction',
  'text',
] as const;
export type PretrainKind = (typeof PRETRAIN_KINDS)[number];

export type Part = { type: 'text'; text: string } | { type: 'image'; index: number } | { type: 'video' };

export interface PretrainDoc {
  id: string;
  kind: PretrainKind;
  /** The generator(s) the content came from. */
  source: string;
  split: Split;
  images: string[];
  video?: VideoRef;
  /** Text and media in reading order; `{type:'image', index}` refers to `images[index]`. */
  content: Part[];
}

export const pretrainDocSchema = z
  .object({
    id: z.string().min(1),
    kind: z.enum(PRETRAIN_KINDS),
    source: z.string().min(1),
    split: z.enum(['train', 'heldout']),
    images: z.array(z.string().min(1)),
    video: z
      .object({ frames: z.array(z.string()).optional(), path: z.string().optional(), fps: z.number().optional() })
      .optional(),
    content: z
      .array(
        z.discriminatedUnion('type', [
          z.object({ type: z.literal('text'), text: z.string() }),
          z.object({ type: z.literal('image'), index: z.number().int().min(0) }),
          z.object({ type: z.literal('video') }),
        ]),
      )
      .min(1),
  })
  .strict()
  .refine(
    (d) => d.content.every((p) => p.type !== 'image' || p.index < d.images.length),
    'an image part refers past the images list',
  );

const IMAGE_GENS = ['vqa', 'stem', 'ocr', 'chart', 'grounding', 'gui', 'spatial', 'multi_image', 'long_doc'];
const REGION_GENS = ['vqa', 'grounding', 'gui'];

interface Ctx {
  seed: number;
  split: Split;
  difficulty: number | [number, number];
  size?: number;
}

/** Renders one accepted plan of a generator: media files (named after `stem`) and what build() returned. */
function realize(gen: Generator, ctx: Ctx, index: number, stem: string, sizeOverride?: number) {
  const size = Math.max(sizeOverride ?? ctx.size ?? gen.defaultSize, gen.minSize);
  const { plan, cfg, rng } = planOne(gen, {
    seed: ctx.seed,
    index,
    split: ctx.split,
    difficulty: ctx.difficulty,
    size,
  });
  const built = gen.build(plan, cfg, rng);
  const media: MediaFile[] = built.images.map((c, i) => ({ path: `img/${stem}-${i}.png`, png: toPng(c) }));
  const frames = built.video
    ? built.video.frames.map((c, i) => ({ path: `img/${stem}-f${String(i).padStart(2, '0')}.png`, png: toPng(c) }))
    : [];
  return { plan, cfg, built, media, frames, size };
}

function imageParts(n: number, offset = 0): Part[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'image' as const, index: offset + i }));
}

/** Builds document `index` of a kind. Deterministic in (kind, seed, split, index). */
export function makePretrainDoc(kind: PretrainKind, ctx: Ctx, index: number): { doc: PretrainDoc; media: MediaFile[] } {
  const rng = new Rng(hash32(`pretrain|${kind}|${ctx.split}|${ctx.seed}|${index}`));
  const id = `pretrain/${kind}/${ctx.split}/${ctx.seed}-${index}`;
  const stem = fileStem(id);
  // Each document draws its generator samples from a stream of its own (index space × 16), never shared.
  const sub = (k: number) => index * 16 + k;
  const doc = (source: string, images: string[], content: Part[], video?: VideoRef): PretrainDoc => ({
    id,
    kind,
    source,
    split: ctx.split,
    images,
    ...(video ? { video } : {}),
    content,
  });
  switch (kind) {
    case 'caption': {
      const name = rng.pick(IMAGE_GENS);
      const gen = getGenerator(name);
      const r = realize(gen, ctx, sub(0), stem);
      return {
        doc: doc(
          gen.name,
          r.media.map((m) => m.path),
          [...imageParts(r.media.length), { type: 'text', text: gen.describe(r.plan, r.cfg) }],
        ),
        media: r.media,
      };
    }
    case 'grounding': {
      const gen = getGenerator(rng.pick(REGION_GENS));
      const r = realize(gen, ctx, sub(0), stem);
      const c0 = r.built.images[0]!;
      const regions = gen.regions!(r.plan, r.cfg);
      const text = regions
        .map(
          (g) =>
            `${g.label} [${pixelToNorm([g.box.x1, g.box.y1, g.box.x2, g.box.y2], { width: c0.width, height: c0.height }).join(',')}]`,
        )
        .join('; ');
      return {
        doc: doc(
          gen.name,
          [r.media[0]!.path],
          [
            { type: 'image', index: 0 },
            { type: 'text', text },
          ],
        ),
        media: [r.media[0]!],
      };
    }
    case 'ocr': {
      const gen = getGenerator('ocr');
      const r = realize(gen, { ...ctx, difficulty: rng.int(2, 5) }, sub(0), stem);
      return {
        doc: doc(
          gen.name,
          [r.media[0]!.path],
          [
            { type: 'image', index: 0 },
            { type: 'text', text: r.built.answer },
          ],
        ),
        media: [r.media[0]!],
      };
    }
    case 'video_caption': {
      const gen = getGenerator('video');
      const r = realize(gen, ctx, sub(0), stem);
      return {
        doc: doc(gen.name, [], [{ type: 'video' }, { type: 'text', text: gen.describe(r.plan, r.cfg) }], {
          frames: r.frames.map((f) => f.path),
          fps: r.built.video!.fps,
        }),
        media: r.frames,
      };
    }
    case 'instruction': {
      const gen = getGenerator(rng.pick([...IMAGE_GENS, 'video', 'text']));
      const r = realize(gen, ctx, sub(0), stem);
      const parts: Part[] = r.frames.length ? [{ type: 'video' }] : imageParts(r.media.length);
      const opts = r.built.options?.length
        ? `\n${r.built.options.map((o, i) => `${String.fromCharCode(65 + i)}. ${o}`).join('\n')}`
        : '';
      parts.push({ type: 'text', text: `${r.built.question}${opts}` }, { type: 'text', text: r.built.answer });
      return {
        doc: doc(
          gen.name,
          r.media.map((m) => m.path),
          parts,
          r.frames.length ? { frames: r.frames.map((f) => f.path), fps: r.built.video!.fps } : undefined,
        ),
        media: [...r.media, ...r.frames],
      };
    }
    case 'interleaved': {
      const n = rng.int(2, 4);
      const media: MediaFile[] = [];
      const parts: Part[] = [
        {
          type: 'text',
          text: rng.pick([
            'This note collects a few figures from our records.',
            'The report below walks through several figures.',
            'Here are the pictures we discussed, each with a short description.',
          ]),
        },
      ];
      const sources: string[] = [];
      for (let k = 0; k < n; k++) {
        const name = rng.pick(IMAGE_GENS.filter((g) => g !== 'long_doc' && g !== 'multi_image'));
        const gen = getGenerator(name);
        const r = realize(gen, ctx, sub(k), `${stem}-${k}`);
        sources.push(gen.name);
        parts.push(
          { type: 'text', text: `Figure ${k + 1}.` },
          { type: 'image', index: media.length },
          { type: 'text', text: gen.describe(r.plan, r.cfg) },
        );
        media.push(r.media[0]!);
      }
      return {
        doc: doc(
          [...new Set(sources)].join('+'),
          media.map((m) => m.path),
          parts,
        ),
        media,
      };
    }
    case 'text': {
      const name = rng.pick([...IMAGE_GENS, 'video', 'text', 'text', 'text']);
      const gen = getGenerator(name);
      // Plans only (no rendering): the text side describes the same worlds the images show.
      const { plan, cfg } = planOne(gen, {
        seed: ctx.seed,
        index: sub(0),
        split: ctx.split,
        difficulty: ctx.difficulty,
        size: Math.max(ctx.size ?? gen.defaultSize, gen.minSize),
      });
      return { doc: doc(gen.name, [], [{ type: 'text', text: gen.describe(plan, cfg) }]), media: [] };
    }
  }
}

export interface PretrainSpec {
  /** "caption:3,interleaved,ocr,grounding:2,video_caption,instruction,text" or "all". */
  kinds: string;
  n: number;
  split: Split;
  seed: number;
  difficulty: string;
  size?: number;
  shardSize?: number;
}

export function parseKinds(text: string): Array<{ kind: PretrainKind; weight: number }> {
  if (text.trim() === 'all') return PRETRAIN_KINDS.map((kind) => ({ kind, weight: 1 }));
  return text.split(',').map((part) => {
    const [k, w] = part.split(':').map((s) => s.trim());
    if (!PRETRAIN_KINDS.includes(k as PretrainKind))
      throw new Error(`--kinds: unknown kind "${k}"; expected ${PRETRAIN_KINDS.join(', ')}`);
    const weight = w === undefined ? 1 : Number(w);
    if (!(weight > 0)) throw new Error(`--kinds: weight of ${k} must be positive, got "${w}"`);
    return { kind: k as PretrainKind, weight };
  });
}

export async function generatePretrain(spec: PretrainSpec, out: string, quiet = false): Promise<DatasetInfo> {
  const kinds = parseKinds(spec.kinds);
  const difficulty = parseDifficulty(spec.difficulty);
  if (spec.size !== undefined && (spec.size < 28 || spec.size % 28 !== 0))
    throw new Error(`--size: expected a multiple of 28, got ${spec.size}`);
  const writer = new ShardWriter(out, spec.shardSize ?? 1000);
  const progress = new Progress({ label: 'data pretrain', total: spec.n, quiet });
  const total = kinds.reduce((a, k) => a + k.weight, 0);
  const counts = kinds.map(() => 0);
  const t0 = performance.now();
  for (let i = 0; i < spec.n; i++) {
    let best = 0;
    for (let k = 1; k < kinds.length; k++) {
      if (
        ((i + 1) * kinds[k]!.weight) / total - counts[k]! >
        ((i + 1) * kinds[best]!.weight) / total - counts[best]! + 1e-12
      )
        best = k;
    }
    const { doc, media } = makePretrainDoc(
      kinds[best]!.kind,
      { seed: spec.seed, split: spec.split, difficulty, size: spec.size },
      counts[best]!,
    );
    counts[best]!++;
    writer.writeRecord(doc, media, doc.kind);
    if (i % 32 === 31) await yieldToEventLoop(); // frees the canvases rendered so far
    progress.update(i + 1, doc.kind);
  }
  progress.stop();
  const info = writer.close({ ...spec, generatedBy: 'glmv data pretrain' });
  new MetricsWriter(join(out, 'metrics.jsonl')).write({
    event: 'done',
    count: info.count,
    seconds: (performance.now() - t0) / 1000,
    by_kind: info.byDomain,
  });
  return info;
}

/** Streams pre-training documents of a dataset folder, validated, with media paths made absolute. */
export async function* readPretrain(path: string): AsyncGenerator<PretrainDoc> {
  for (const file of manifestFiles(path)) {
    const base = dirname(file);
    const rl = createInterface({
      input: createReadStream(file, { encoding: 'utf8' }),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    let line = 0;
    for await (const text of rl) {
      line++;
      if (!text.trim()) continue;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new RowError(file, line, '(line)', `not valid JSON: ${(e as Error).message}`);
      }
      const r = pretrainDocSchema.safeParse(v);
      if (!r.success) {
        const issue = r.error.issues[0]!;
        throw new RowError(file, line, issue.path.join('.') || '(record)', issue.message);
      }
      const d = r.data as PretrainDoc;
      d.images = d.images.map((p) => resolve(base, p));
      if (d.video?.frames) d.video.frames = d.video.frames.map((p) => resolve(base, p));
      yield d;
    }
  }
}
