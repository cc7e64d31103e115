/**
 * Scores one response to one item. Verifier-shaped metrics (`reward`, `mcq`) go through the reward router — the
 * very extraction and verifiers the RL rewards use, with gates that judge training-time style (format, language,
 * repetition) switched off; the standard benchmark metrics extract the answer with the shared parser
 * (src/io/answer/) and apply the formulas of ./metrics.ts.
 */
import sharp from 'sharp';
import {
  type Box,
  boxCenter,
  type ImageSize,
  normPointToPixel,
  normToPixel,
  type Point,
  parseBoxes,
  parsePoints,
  pointInBox,
} from '../io/answer/geometry.js';
import { parseResponse } from '../io/answer/response.js';
import type { JudgeClient, JudgeProvenance } from '../reward/judge.js';
import { RewardRouter } from '../reward/router.js';
import type { Benchmark } from './benchmark.js';
import { type EvalItem, groupValue } from './data.js';
import { anls, exactMatch, iouHit, ocrbenchScore, relaxedAccuracy, vqaScore, xywhToXyxy } from './metrics.js';

export type ScoreStatus = 'scored' | 'no_answer' | 'gated' | 'unjudged' | 'error';

export interface ScoreResult {
  /** In [0, 1]. */
  score: number;
  correct: boolean;
  /** The extracted answer, or null. */
  extracted: string | null;
  status: ScoreStatus;
  reason: string;
  /** Decision path (`multiple_choice:choice`, `judge`, `anls`, …). */
  path: string;
  judge?: JudgeProvenance;
  detail?: Record<string, unknown>;
}

/** Gates for eval: answer content is scored, not training-time style. Injection and echo stay on. */
export const EVAL_GATES = {
  format: { enabled: false },
  language: { enabled: false },
  repetition: { enabled: false },
  boxInNonVerifiable: { enabled: false },
  overlong: { truncatedFails: false },
};

const sizeCache = new Map<string, Promise<ImageSize>>();

/** Display size of an image (EXIF orientation applied), read from its header. */
export function imageSize(path: string): Promise<ImageSize> {
  let p = sizeCache.get(path);
  if (!p) {
    p = sharp(path)
      .metadata()
      .then((m) => {
        if (!m.width || !m.height) throw new Error(`image ${path}: no dimensions`);
        const swap = (m.orientation ?? 1) >= 5;
        return { width: swap ? m.height : m.width, height: swap ? m.width : m.height };
      });
    sizeCache.set(path, p);
    if (sizeCache.size > 4096) sizeCache.delete(sizeCache.keys().next().value as string);
  }
  return p;
}

function toPixelBox(b: Box, frame: 'norm1000' | 'norm1' | 'pixel', size: ImageSize): Box {
  if (frame === 'pixel') return b;
  if (frame === 'norm1000') return normToPixel(b, size);
  return [b[0] * size.width, b[1] * size.height, b[2] * size.width, b[3] * size.height];
}

function toPixelPoint(p: Point, frame: 'norm1000' | 'norm1' | 'pixel', size: ImageSize): Point {
  if (frame === 'pixel') return p;
  if (frame === 'norm1000') return normPointToPixel(p, size);
  return [p[0] * size.width, p[1] * size.height];
}

const round = (b: readonly number[]) => b.map((v) => Math.round(v * 100) / 100);

export interface ScorerOptions {
  /** A judge shared across benchmarks (its cache and provenance), or null for rule-only scoring. */
  judge: JudgeClient | null;
}

export class Scorer {
  private readonly router: RewardRouter | null;

  constructor(
    readonly bench: Benchmark,
    opts: ScorerOptions,
  ) {
    const m = bench.metric;
    if (bench.judge === 'always' && !opts.judge)
      throw new Error(`benchmark ${bench.name}: judge "always" needs a judge endpoint (--judge URL)`);
    if (m.name === 'reward' || m.name === 'mcq') {
      const verifier = m.name === 'mcq' ? 'multiple_choice' : m.verifier;
      const params = m.name === 'mcq' ? { allowOptionText: m.allowOptionText } : m.params;
      this.router = new RewardRouter(
        {
          minReward: 0,
          gates: EVAL_GATES,
          cas: { enabled: true, threads: 1, timeoutMs: 3000 },
          routes: [
            {
              name: bench.name,
              match: {},
              ...(verifier ? { verifier } : {}),
              params,
              judge: bench.judge,
            },
          ],
          // The config names the judge (the router validates "always" against it); the shared client is used.
          ...(opts.judge && bench.judge !== 'never' ? { judge: opts.judge.config } : {}),
        },
        { judge: bench.judge === 'never' ? null : opts.judge },
      );
    } else this.router = null;
  }

  async close(): Promise<void> {
    await this.router?.close();
  }

  async score(item: EvalItem, text: string): Promise<ScoreResult> {
    try {
      return await this.scoreInner(item, text);
    } catch (e) {
      return {
        score: 0,
        correct: false,
        extracted: null,
        status: 'error',
        reason: `scoring failed: ${(e as Error).message}`,
        path: 'error',
      };
    }
  }

  private async scoreInner(item: EvalItem, text: string): Promise<ScoreResult> {
    const b = this.bench;
    const m = b.metric;
    if (this.router) {
      const r = await this.router.score(item.sample, text, { extract: b.extraction });
      const noAnswer = r.path === 'gate:extract';
      const status: ScoreStatus =
        r.status === 'scored' ? 'scored' : r.status === 'gated' ? (noAnswer ? 'no_answer' : 'gated') : r.status;
      return {
        score: status === 'scored' ? Math.max(0, Math.min(1, r.reward)) : 0,
        correct: status === 'scored' && r.correct,
        extracted: r.answer,
        status,
        reason: r.reason,
        path: r.path,
        ...(r.judge ? { judge: r.judge } : {}),
      };
    }
    const parsed = parseResponse(text, { mode: b.extraction });
    const answer = parsed.answer;
    if (answer === null)
      return {
        score: 0,
        correct: false,
        extracted: null,
        status: 'no_answer',
        reason: `no answer extracted (${parsed.box.ok ? 'empty' : parsed.box.failure})`,
        path: 'extract',
      };
    const done = (score: number, path: string, reason: string, detail?: Record<string, unknown>): ScoreResult => ({
      score,
      correct: score >= 1,
      extracted: answer,
      status: 'scored',
      reason,
      path,
      ...(detail ? { detail } : {}),
    });
    switch (m.name) {
      case 'relaxed_accuracy': {
        const s = relaxedAccuracy(answer, item.answers, m.maxRelativeChange);
        return done(s, 'relaxed_accuracy', s ? 'within tolerance of a reference' : 'not within tolerance');
      }
      case 'anls': {
        const s = anls(answer, item.answers, { threshold: m.threshold, convention: m.convention });
        return done(s, 'anls', `ANLS ${s.toFixed(4)}`);
      }
      case 'vqa_score': {
        const s = vqaScore(answer, item.answers);
        return done(s, 'vqa_score', `VQA score ${s.toFixed(4)} over ${item.answers.length} answers`);
      }
      case 'ocrbench': {
        const s = ocrbenchScore(answer, item.answers, groupValue(item.sample, m.categoryField) ?? undefined);
        return done(s, 'ocrbench', s ? 'a reference occurs in the answer' : 'no reference occurs in the answer');
      }
      case 'exact_match': {
        const s = exactMatch(answer, item.answers, m.caseSensitive);
        return done(s, 'exact_match', s ? 'exact match' : 'differs');
      }
      case 'iou': {
        const pred = parseBoxes(answer)[0];
        if (!pred) return { ...done(0, 'iou', 'no box in the answer'), status: 'no_answer' };
        const size = await imageSize(item.sample.images[0]!);
        const gtRaw = m.gtFormat === 'xywh' ? xywhToXyxy(item.refBox!) : item.refBox!;
        const gt = toPixelBox(gtRaw, m.gt, size);
        const pb = toPixelBox(pred.box, m.pred, size);
        const h = iouHit(pb, gt, m.threshold);
        return done(h.hit ? 1 : 0, 'iou', `IoU ${h.iou.toFixed(4)}`, {
          iou: h.iou,
          predBox: round(pb),
          refBox: round(gt),
        });
      }
      case 'point_in_box': {
        const pts = parsePoints(answer);
        const boxes = parseBoxes(answer);
        const raw: Point | undefined = pts[0] ?? (boxes[0] ? boxCenter(boxes[0].box) : undefined);
        if (!raw) return { ...done(0, 'point_in_box', 'no point or box in the answer'), status: 'no_answer' };
        const size = await imageSize(item.sample.images[0]!);
        const gtRaw = m.gtFormat === 'xywh' ? xywhToXyxy(item.refBox!, m.inclusive) : item.refBox!;
        const gt = toPixelBox(gtRaw, m.gt, size);
        const p = toPixelPoint(raw, m.pred, size);
        const hit = pointInBox(p, gt);
        return done(hit ? 1 : 0, 'point_in_box', hit ? 'inside the target' : 'outside the target', {
          point: round(p),
          refBox: round(gt),
        });
      }
      default:
        throw new Error(`metric ${(m as { name: string }).name} has no scorer`);
    }
  }
}
