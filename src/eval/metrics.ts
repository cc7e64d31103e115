/**
 * Standard benchmark metrics the reward verifiers do not cover, each as its published formula:
 * - ANLS (DocVQA/InfoVQA; Biten et al. 2019): `s = 1 − NL(gt, pred)` if `NL < τ` else 0, max over ground truths,
 *   NL = Levenshtein distance / length of the longer string, both lower-cased with whitespace collapsed, τ = 0.5.
 *   The `harness` convention reproduces VLMEvalKit/lmms-eval: lengths of the un-normalised strings and `s ≥ τ`
 *   kept (so NL = 0.5 scores 0.5 there, 0 in the paper);
 * - VQA score (VQAv2/TextVQA): `mean over the 10 leave-one-out annotator subsets of min(1, #matches / 3)`, after
 *   the official answer normalisation (punctuation, digits, articles, contractions);
 * - relaxed accuracy (ChartQA): numbers within 5 % relative change (`x%` read as x/100), otherwise (or when the
 *   target is 0) case-insensitive exact match; max over ground truths;
 * - OCRBench: a ground truth contained in the prediction (lower-cased; spaces removed for handwritten formulas);
 * - circular MCQ (MMBench CircularEval): a question counts only if every rotation of its options is answered right;
 * - IoU ≥ 0.5 hits (RefCOCO) and point-in-box hits (ScreenSpot);
 * - percentile bootstrap confidence intervals, and the paired bootstrap for think vs no-think differences.
 */
import { distance } from 'fastest-levenshtein';
import type { Box } from '../io/answer/geometry.js';
import { iou } from '../io/answer/geometry.js';
import { Rng } from '../util/rng.js';

// ---------------------------------------------------------------------------------------------------------------
// ANLS
// ---------------------------------------------------------------------------------------------------------------

export interface AnlsOptions {
  /** τ: normalised distances at or above it score 0 (default 0.5). */
  threshold?: number;
  /** `paper` (default) or `harness` (VLMEvalKit / lmms-eval quirks, see the file comment). */
  convention?: 'paper' | 'harness';
}

const anlsNorm = (s: string) => s.trim().toLowerCase().split(/\s+/).filter(Boolean).join(' ');

/** Normalised Levenshtein distance of two strings after ANLS normalisation (0 for two empty strings). */
export function normalizedLevenshtein(gt: string, pred: string, convention: 'paper' | 'harness' = 'paper'): number {
  const a = anlsNorm(gt);
  const b = anlsNorm(pred);
  const len = convention === 'paper' ? Math.max(a.length, b.length) : Math.max(gt.length, pred.length);
  if (len === 0) return 0;
  return distance(a, b) / len;
}

/** ANLS of one prediction against its ground truths. */
export function anls(pred: string, answers: readonly string[], opts: AnlsOptions = {}): number {
  if (answers.length === 0) throw new Error('anls: expected at least one ground-truth answer, found none');
  const tau = opts.threshold ?? 0.5;
  const conv = opts.convention ?? 'paper';
  const nl = Math.min(...answers.map((a) => normalizedLevenshtein(a, pred, conv)));
  const s = 1 - nl;
  if (conv === 'paper') return nl < tau ? s : 0;
  return s < tau ? 0 : s;
}

// ---------------------------------------------------------------------------------------------------------------
// VQA score
// ---------------------------------------------------------------------------------------------------------------

const VQA_PUNCT = [
  ';',
  '/',
  '[',
  ']',
  '"',
  '{',
  '}',
  '(',
  ')',
  '=',
  '+',
  '\\',
  '_',
  '-',
  '>',
  '<',
  '@',
  '`',
  ',',
  '?',
  '!',
];
const COMMA_BETWEEN_DIGITS = /(\d)(,)(\d)/;
const NUMBER_WORDS: Record<string, string> = {
  none: '0',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
// The official evaluation restores apostrophes of contractions written without them.
const CONTRACTIONS: Record<string, string> = Object.fromEntries(
  (
    "aint ain't|arent aren't|cant can't|couldve could've|couldnt couldn't|couldn'tve couldn't've|couldnt've couldn't've|" +
    "didnt didn't|doesnt doesn't|dont don't|hadnt hadn't|hadnt've hadn't've|hadn'tve hadn't've|hasnt hasn't|havent haven't|" +
    "hed he'd|hed've he'd've|he'dve he'd've|hes he's|howd how'd|howll how'll|hows how's|Id've I'd've|I'dve I'd've|Im I'm|" +
    "Ive I've|isnt isn't|itd it'd|itd've it'd've|it'dve it'd've|itll it'll|maam ma'am|mightnt mightn't|" +
    "mightnt've mightn't've|mightn'tve mightn't've|mightve might've|mustnt mustn't|mustve must've|neednt needn't|" +
    "notve not've|oclock o'clock|oughtnt oughtn't|ow's'at 'ow's'at|'ows'at 'ow's'at|'ow'sat 'ow's'at|shant shan't|" +
    "shed've she'd've|she'dve she'd've|shouldve should've|shouldnt shouldn't|shouldnt've shouldn't've|" +
    "shouldn'tve shouldn't've|somebody'd somebodyd|somebodyd've somebody'd've|somebody'dve somebody'd've|" +
    "somebodyll somebody'll|somebodys somebody's|someoned someone'd|someoned've someone'd've|someone'dve someone'd've|" +
    "someonell someone'll|someones someone's|somethingd something'd|somethingd've something'd've|" +
    "something'dve something'd've|somethingll something'll|thats that's|thered there'd|thered've there'd've|" +
    "there'dve there'd've|therere there're|theres there's|theyd they'd|theyd've they'd've|they'dve they'd've|" +
    "theyll they'll|theyre they're|theyve they've|twas 'twas|wasnt wasn't|wed've we'd've|we'dve we'd've|weve we've|" +
    "werent weren't|whatll what'll|whatre what're|whats what's|whatve what've|whens when's|whered where'd|" +
    "wheres where's|whereve where've|whod who'd|whod've who'd've|who'dve who'd've|wholl who'll|whos who's|" +
    "whove who've|whyll why'll|whyre why're|whys why's|wont won't|wouldve would've|wouldnt wouldn't|" +
    "wouldnt've wouldn't've|wouldn'tve wouldn't've|yall y'all|yall'll y'all'll|y'allll y'all'll|yall'd've y'all'd've|" +
    "y'alld've y'all'd've|y'all'dve y'all'd've|youd you'd|youd've you'd've|you'dve you'd've|youll you'll|" +
    "youre you're|youve you've"
  )
    .split('|')
    .map((pair) => pair.split(' ') as [string, string]),
);

/** The official VQA answer normalisation (processPunctuation, then processDigitArticle). */
export function vqaNormalize(s: string): string {
  const input = s.replace(/[\n\t]/g, ' ').trim();
  let out = input;
  for (const p of VQA_PUNCT) {
    // A punctuation mark touching a space (or any digit-comma-digit) is deleted, else it becomes a space.
    const drop = input.includes(`${p} `) || input.includes(` ${p}`) || COMMA_BETWEEN_DIGITS.test(input);
    out = out.split(p).join(drop ? '' : ' ');
  }
  // The original pattern's look-behind is mistyped and never applies: every period not followed by a digit goes.
  out = out.replace(/\.(?!\d)/g, '');
  const words = out
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => NUMBER_WORDS[w] ?? w)
    .filter((w) => !ARTICLES.has(w))
    .map((w) => CONTRACTIONS[w] ?? w);
  return words.join(' ');
}

/** VQA accuracy of one prediction against the annotators' answers (usually 10). */
export function vqaScore(pred: string, answers: readonly string[]): number {
  if (answers.length === 0) throw new Error('vqaScore: expected annotator answers, found none');
  const p = vqaNormalize(pred);
  const gts = answers.map(vqaNormalize);
  let sum = 0;
  for (let i = 0; i < gts.length; i++) {
    let matches = 0;
    for (let j = 0; j < gts.length; j++) if (j !== i && gts[j] === p) matches++;
    sum += Math.min(1, matches / 3);
  }
  return sum / gts.length;
}

// ---------------------------------------------------------------------------------------------------------------
// ChartQA relaxed accuracy
// ---------------------------------------------------------------------------------------------------------------

const FLOAT_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function toFloat(text: string): number | null {
  const t = text.trim();
  if (t.endsWith('%')) {
    const body = t.replace(/%+$/, '').trim();
    return FLOAT_RE.test(body) ? Number(body) / 100 : null;
  }
  return FLOAT_RE.test(t) ? Number(t) : null;
}

/** ChartQA's relaxed correctness of one prediction against one target. */
export function relaxedCorrectness(pred: string, target: string, maxRelativeChange = 0.05): boolean {
  const p = toFloat(pred);
  const t = toFloat(target);
  if (p !== null && t !== null && t !== 0) return Math.abs(p - t) / Math.abs(t) <= maxRelativeChange;
  return pred.trim().toLowerCase() === target.trim().toLowerCase();
}

/** 1 when any target is relaxed-correct, else 0. */
export function relaxedAccuracy(pred: string, targets: readonly string[], maxRelativeChange = 0.05): number {
  if (targets.length === 0) throw new Error('relaxedAccuracy: expected at least one target, found none');
  return targets.some((t) => relaxedCorrectness(pred, t, maxRelativeChange)) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// OCRBench, exact match
// ---------------------------------------------------------------------------------------------------------------

export const OCRBENCH_FORMULA_CATEGORY = 'Handwritten Mathematical Expression Recognition';

/** OCRBench: 1 when a ground truth occurs inside the prediction. */
export function ocrbenchScore(pred: string, answers: readonly string[], category?: string): number {
  if (answers.length === 0) throw new Error('ocrbenchScore: expected at least one answer, found none');
  const formula = category === OCRBENCH_FORMULA_CATEGORY;
  const norm = (s: string) =>
    formula ? s.trim().replace(/\n/g, ' ').replace(/ /g, '') : s.toLowerCase().trim().replace(/\n/g, ' ');
  const p = norm(pred);
  return answers.some((a) => p.includes(norm(a))) ? 1 : 0;
}

/** Case-insensitive, whitespace-collapsed exact match against any answer. */
export function exactMatch(pred: string, answers: readonly string[], caseSensitive = false): number {
  const n = (s: string) => {
    const t = s.trim().split(/\s+/).join(' ');
    return caseSensitive ? t : t.toLowerCase();
  };
  return answers.some((a) => n(a) === n(pred)) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Grounding and GUI
// ---------------------------------------------------------------------------------------------------------------

/** IoU of a predicted and a ground-truth box (same coordinate system) and whether it reaches the threshold. */
export function iouHit(pred: Box, gt: Box, threshold = 0.5): { iou: number; hit: boolean } {
  const v = iou(pred, gt);
  return { iou: v, hit: v >= threshold };
}

/** `[x, y, w, h]` → `[x1, y1, x2, y2]`; `inclusive` gives VLMEvalKit's `x + w − 1` (pixel-index boxes). */
export function xywhToXyxy(b: Box, inclusive = false): Box {
  const d = inclusive ? 1 : 0;
  return [b[0], b[1], b[0] + b[2] - d, b[1] + b[3] - d];
}

// ---------------------------------------------------------------------------------------------------------------
// Multiple choice rotations
// ---------------------------------------------------------------------------------------------------------------

export const LETTERS = 'ABCDEFGHIJ';

/**
 * The `k`-th circular rotation of an MCQ: option i of the copy is option (i + k) mod n of the original, so the
 * answer letter moves back by k.
 */
export function rotateChoices(
  options: readonly string[],
  answer: string,
  k: number,
): { options: string[]; answer: string } {
  const n = options.length;
  const idx = LETTERS.indexOf(answer.trim().toUpperCase());
  if (n < 2) throw new Error(`rotateChoices: expected at least 2 options, found ${n}`);
  if (idx < 0 || idx >= n)
    throw new Error(`rotateChoices: answer must be a letter A–${LETTERS[n - 1]}, found ${JSON.stringify(answer)}`);
  const shift = ((k % n) + n) % n;
  return {
    options: options.map((_, i) => options[(i + shift) % n]!),
    answer: LETTERS[(idx - shift + n) % n]!,
  };
}

/** CircularEval: per group, correct only when every member is. Groups keep first-seen order. */
export function circularGroups(
  items: ReadonlyArray<{ group: string; score: number }>,
): Array<{ group: string; score: number; size: number }> {
  const byGroup = new Map<string, { ok: boolean; size: number }>();
  for (const it of items) {
    const g = byGroup.get(it.group) ?? { ok: true, size: 0 };
    g.ok &&= it.score >= 1;
    g.size++;
    byGroup.set(it.group, g);
  }
  return [...byGroup].map(([group, g]) => ({ group, score: g.ok ? 1 : 0, size: g.size }));
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------------------------

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Mean and sample standard deviation (n − 1; 0 for a single value), e.g. of a score over seeds. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const m = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - m) ** 2;
  return { mean: m, sd: xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : 0 };
}

export interface BootstrapOptions {
  /** Resamples (default 1000). */
  samples?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  seed?: number;
}

export interface Interval {
  low: number;
  high: number;
}

function checkBootstrap(o: BootstrapOptions): { B: number; level: number; seed: number } {
  const B = o.samples ?? 1000;
  const level = o.level ?? 0.95;
  if (!Number.isInteger(B) || B < 1) throw new Error(`bootstrap samples: expected a positive integer, found ${B}`);
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap level: expected a number in (0, 1), found ${level}`);
  return { B, level, seed: o.seed ?? 0 };
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Percentile bootstrap interval of the mean. NaN bounds for empty input; a point for one value. */
export function bootstrapCI(values: readonly number[], opts: BootstrapOptions = {}): Interval {
  const { B, level, seed } = checkBootstrap(opts);
  const n = values.length;
  if (n === 0) return { low: Number.NaN, high: Number.NaN };
  const rng = new Rng(seed);
  const means = new Array<number>(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[Math.floor(rng.random() * n)]!;
    means[b] = s / n;
  }
  means.sort((x, y) => x - y);
  const a = (1 - level) / 2;
  return { low: quantile(means, a), high: quantile(means, 1 - a) };
}

/** Paired bootstrap of mean(a − b) over the same units (think vs no-think on the same questions). */
export function pairedBootstrapDiff(
  a: readonly number[],
  b: readonly number[],
  opts: BootstrapOptions = {},
): Interval & { diff: number } {
  if (a.length !== b.length)
    throw new Error(`pairedBootstrapDiff: expected paired scores of equal length, found ${a.length} and ${b.length}`);
  const d = a.map((x, i) => x - b[i]!);
  return { diff: mean(d), ...bootstrapCI(d, opts) };
}
