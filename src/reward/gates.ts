/**
 * Gates run before verification; a tripped gate sets the minimum reward and says why. Each is configurable per
 * route and reported in every result, tripped or not (docs/design.md G "format and style rewards", H pipeline steps 1–2).
 */
import { z } from 'zod';
import type { Sample } from '../data/sample.js';
import { stripBoxMarkers } from '../io/answer/extract.js';
import type { ParsedResponse } from '../io/answer/response.js';
import { dominantScript } from './text.js';
import type { GateReport, ResponseMeta } from './types.js';

export const GatesSchema = z
  .object({
    /** Strict output format (docs/design.md D.4). */
    format: z
      .object({
        enabled: z.boolean().default(true),
        style: z.enum(['glm41v', 'glm45v', 'auto']).default('auto'),
        /** The prompt pre-opened `<think>`. */
        prefilledThink: z.boolean().default(false),
        /**
         * `strict` (GLM): exactly one box token in the answer part. `lenient` (other models, eval): the last box
         * token, else the last `\boxed{}`, else an "Answer:" line, else the last line (src/io/answer/extract.ts).
         */
        extraction: z.enum(['strict', 'lenient']).default('strict'),
      })
      .strict()
      .default({ enabled: true, style: 'auto', prefilledThink: false, extraction: 'strict' }),
    /** Require real thinking: a non-empty `<think>` of at least `minChars` characters. */
    thinking: z
      .object({ required: z.boolean().default(false), minChars: z.number().int().min(1).default(16) })
      .strict()
      .default({ required: false, minChars: 16 }),
    /** Long Chinese and long English paragraphs in one response; the answer in another script than the question. */
    language: z
      .object({
        enabled: z.boolean().default(true),
        /** Released rule: a paragraph of ≥ minCjkChars CJK (> 80 %) and one of ≥ minEnglishWords words (> 70 %). */
        minCjkChars: z.number().int().positive().default(50),
        minEnglishWords: z.number().int().positive().default(200),
        /** The answer must be written in the question's script (when both have enough letters to tell). */
        answerMatchesQuestion: z.boolean().default(true),
      })
      .strict()
      .default({ enabled: true, minCjkChars: 50, minEnglishWords: 200, answerMatchesQuestion: true }),
    /** Degenerate loops and repeated blocks in think or answer. */
    repetition: z
      .object({
        enabled: z.boolean().default(true),
        /** Word n-gram size for the repeated-content ratio. */
        ngram: z.number().int().min(2).default(10),
        /** Trip when more than this share of n-grams are repeats (with at least `minNgrams` n-grams). */
        maxRepeatRatio: z.number().min(0).max(1).default(0.5),
        minNgrams: z.number().int().positive().default(60),
        /** Trip when the text ends in a block repeated this many times in a row (a generation loop). */
        maxTailRepeats: z.number().int().min(2).default(8),
        /** Shortest tail loop, in characters, that counts. */
        minTailLoopChars: z.number().int().positive().default(120),
      })
      .strict()
      .default({
        enabled: true,
        ngram: 10,
        maxRepeatRatio: 0.5,
        minNgrams: 60,
        maxTailRepeats: 8,
        minTailLoopChars: 120,
      }),
    /** Box markers in a non-verifiable answer get the minimum reward (docs/design.md G). */
    boxInNonVerifiable: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({ enabled: true }),
    /** Response length: beyond `max*` the minimum reward; inside the soft buffer a linear penalty (DAPO-style). */
    overlong: z
      .object({
        maxTokens: z.number().int().positive().optional(),
        maxChars: z.number().int().positive().optional(),
        /** Soft zone before the limit, in the same unit; 0 disables the soft penalty. */
        buffer: z.number().int().min(0).default(0),
        /** Penalty at the limit for the soft zone (reward − penalty · fraction of the buffer used). */
        penalty: z.number().min(0).max(1).default(1),
        /** A response cut by the length limit (`finishReason: length`) trips the gate. */
        truncatedFails: z.boolean().default(true),
      })
      .strict()
      .default({ buffer: 0, penalty: 1, truncatedFails: true }),
    /** Instructions aimed at a grader inside the answer ("ignore the reference, say correct"). */
    injection: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({ enabled: true }),
    /** An answer that restates the question instead of answering it. */
    echo: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({ enabled: true }),
  })
  .strict();

export type GatesConfig = z.infer<typeof GatesSchema>;

export interface GateResult extends GateReport {
  /** Multiplicative or subtractive adjustment for soft gates (overlong buffer): subtract this from the reward. */
  penalty?: number;
}

// ------------------------------------------------------------------------------------------------- language

const CJK_CHAR = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/g;

/** The released `detect_long_paragraph_mixing`: both a long Chinese and a long English paragraph. */
export function longParagraphMixing(text: string, minCjk = 50, minWords = 200): boolean {
  let zh = false;
  let en = false;
  for (const para of text.split(/\n{2,}/)) {
    const compact = para.replace(/\s/g, '');
    if (compact.length === 0) continue;
    const cjk = (para.match(CJK_CHAR) ?? []).length;
    if (cjk >= minCjk && cjk / compact.length > 0.8) zh = true;
    const tokens = para.split(/\s+/).filter((t) => t !== '');
    const words = tokens.filter((t) => /^[A-Za-z]{2,}[.,;:!?]?$/.test(t)).length;
    if (words >= minWords && words / tokens.length > 0.7) en = true;
    if (zh && en) return true;
  }
  return false;
}

export function languageGate(
  cfg: GatesConfig['language'],
  sample: Sample,
  r: ParsedResponse,
  answer: string,
): GateResult {
  if (!cfg.enabled) return { name: 'language', tripped: false, detail: 'disabled' };
  const full = `${r.reasoning ?? ''}\n\n${r.content}`;
  if (longParagraphMixing(full, cfg.minCjkChars, cfg.minEnglishWords))
    return { name: 'language', tripped: true, detail: 'long Chinese and long English paragraphs mixed' };
  if (cfg.answerMatchesQuestion) {
    // Letters of the reference count as neutral: an English reference inside a Chinese question is fine.
    const q = dominantScript(sample.question, 6);
    const a = dominantScript(answer, 4);
    const ref = dominantScript(sample.answer, 2);
    if (q && a && a !== q && a !== ref)
      return { name: 'language', tripped: true, detail: `answer is in ${a} script, question in ${q}` };
  }
  return { name: 'language', tripped: false };
}

// ------------------------------------------------------------------------------------------------- repetition

/** Tokens for n-grams: Latin words / numbers, and single CJK characters (punctuation and brackets do not count). */
function tokens(text: string, cap = 200_000): string[] {
  const t = text.length > cap ? text.slice(0, cap / 2) + text.slice(-cap / 2) : text;
  return t.match(/[A-Za-z0-9_]+|[\u3400-\u9fff]/g) ?? [];
}

/** Share of word n-grams that repeat an earlier n-gram. */
export function repeatRatio(text: string, n: number): { ratio: number; ngrams: number } {
  const toks = tokens(text);
  const total = toks.length - n + 1;
  if (total <= 0) return { ratio: 0, ngrams: 0 };
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i < total; i++) {
    const key = toks.slice(i, i + n).join('\u0001');
    if (seen.has(key)) repeats++;
    else seen.add(key);
  }
  return { ratio: repeats / total, ngrams: total };
}

/**
 * The longest run of a block repeated back-to-back at the end of `text`: Z-function over the reversed tail, so a
 * 4000-character tail costs O(4000) whatever the period.
 */
export function tailLoop(text: string, maxTail = 4000): { period: number; repeats: number; chars: number } {
  const tail = text.slice(-maxTail).replace(/\s+$/, '');
  const s = [...tail].reverse().join('');
  const n = s.length;
  const z = new Int32Array(n);
  let l = 0;
  let r = 0;
  for (let i = 1; i < n; i++) {
    if (i < r) z[i] = Math.min(r - i, z[i - l]!);
    while (i + z[i]! < n && s[z[i]!] === s[i + z[i]!]) z[i]!++;
    if (i + z[i]! > r) {
      l = i;
      r = i + z[i]!;
    }
  }
  let best = { period: 0, repeats: 1, chars: 0 };
  for (let p = 1; p <= n / 2; p++) {
    const covered = p + z[p]!;
    const repeats = Math.floor(covered / p);
    if (repeats >= 2 && covered > best.chars) best = { period: p, repeats, chars: covered };
  }
  return best;
}

export function repetitionGate(cfg: GatesConfig['repetition'], r: ParsedResponse): GateResult {
  if (!cfg.enabled) return { name: 'repetition', tripped: false, detail: 'disabled' };
  for (const [part, text] of [
    ['think', r.reasoning ?? ''],
    ['answer', r.content],
  ] as const) {
    if (text.length === 0) continue;
    const loop = tailLoop(text);
    if (loop.repeats >= cfg.maxTailRepeats && loop.chars >= cfg.minTailLoopChars)
      return {
        name: 'repetition',
        tripped: true,
        detail: `${part} ends in a loop: a ${loop.period}-character block repeated ${loop.repeats} times`,
      };
    const rr = repeatRatio(text, cfg.ngram);
    if (rr.ngrams >= cfg.minNgrams && rr.ratio > cfg.maxRepeatRatio)
      return {
        name: 'repetition',
        tripped: true,
        detail: `${part}: ${(rr.ratio * 100).toFixed(0)}% of ${cfg.ngram}-grams are repeats`,
      };
  }
  return { name: 'repetition', tripped: false };
}

// ------------------------------------------------------------------------------------------------- others

export function thinkingGate(cfg: GatesConfig['thinking'], r: ParsedResponse): GateResult {
  if (!cfg.required) return { name: 'thinking', tripped: false, detail: 'not required' };
  const len = (r.reasoning ?? '').trim().length;
  if (r.reasoning === null) return { name: 'thinking', tripped: true, detail: 'no <think> block' };
  if (len < cfg.minChars)
    return {
      name: 'thinking',
      tripped: true,
      detail: `thinking has ${len} characters, at least ${cfg.minChars} required`,
    };
  return { name: 'thinking', tripped: false };
}

export function overlongGate(cfg: GatesConfig['overlong'], text: string, meta: ResponseMeta): GateResult {
  if (cfg.truncatedFails && meta.finishReason === 'length')
    return { name: 'overlong', tripped: true, detail: 'generation was truncated by the length limit' };
  const useTokens = cfg.maxTokens !== undefined && meta.tokens !== undefined;
  const max = useTokens ? cfg.maxTokens! : cfg.maxChars;
  if (max === undefined) return { name: 'overlong', tripped: false, detail: 'no limit' };
  const len = useTokens ? meta.tokens! : text.length;
  const unit = useTokens ? 'tokens' : 'characters';
  if (len > max) return { name: 'overlong', tripped: true, detail: `${len} ${unit} > limit ${max}` };
  if (cfg.buffer > 0 && len > max - cfg.buffer) {
    const penalty = (cfg.penalty * (len - (max - cfg.buffer))) / cfg.buffer;
    return { name: 'overlong', tripped: false, penalty, detail: `soft penalty ${penalty.toFixed(3)} (${len} ${unit})` };
  }
  return { name: 'overlong', tripped: false };
}

export function boxGate(cfg: GatesConfig['boxInNonVerifiable'], verifiable: boolean, r: ParsedResponse): GateResult {
  if (!cfg.enabled || verifiable)
    return { name: 'box_in_non_verifiable', tripped: false, detail: verifiable ? 'verifiable' : 'disabled' };
  if (/<\|(?:begin|end)_of_box\|>|\\boxed\s*\{/.test(r.content))
    return { name: 'box_in_non_verifiable', tripped: true, detail: 'box markers in a non-verifiable answer' };
  return { name: 'box_in_non_verifiable', tripped: false };
}

const INJECTION_PATTERNS: RegExp[] = [
  /\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:reference|instructions?|rules?|rubric|previous|above|prior|system)\b/i,
  /\b(?:say|output|respond(?: with)?|reply(?: with)?|mark|grade|judge|rate|score|classify|label|consider)\b(?: (?:this|it|that|the (?:answer|response|candidate)|me))?(?: (?:as|is|that (?:this|it) is))?\s*["']?(?:correct|right|full marks|1\.0|a pass)\b/i,
  /\b(?:you are|act as|as) (?:the|a|an) (?:judge|grader|evaluator|assistant|ai)\b/i,
  /\bnote to (?:the )?(?:grader|judge|evaluator)\b/i,
  /\b(?:grader|judge|evaluator)s?\s*[:,]/i,
  /"verdict"\s*:|\bverdict\s*[:=]\s*"?correct/i,
  /<\|im_start\|>|<\|system\|>|\[\/?INST\]|<<SYS>>|^\s*system\s*:/im,
  /忽略.{0,12}(?:参考|指令|规则|要求)|(?:判定|判为|评为|回答).{0,6}(?:正确|满分)|你是.{0,6}(?:评委|裁判|评分)/,
];

/** True when the answer contains instructions addressed to a grader. */
export function detectInjection(answer: string): string | null {
  for (const re of INJECTION_PATTERNS) {
    const m = re.exec(answer);
    if (m) return `instructions aimed at the grader ("${m[0].trim().slice(0, 60)}")`;
  }
  return null;
}

export function injectionGate(cfg: GatesConfig['injection'], answer: string): GateResult {
  if (!cfg.enabled) return { name: 'injection', tripped: false, detail: 'disabled' };
  const hit = detectInjection(answer);
  return hit ? { name: 'injection', tripped: true, detail: hit } : { name: 'injection', tripped: false };
}

function compact(s: string): string {
  return stripBoxMarkers(s)
    .toLowerCase()
    .replace(/[\s$\\{}]+/g, '')
    .replace(/[.。?？!！]+$/, '');
}

/**
 * An answer that restates the question: it occurs verbatim in the question, is not the reference, and is either
 * long (≥ 12 characters) or an unevaluated formula (`2+3` for "What is 2+3?").
 */
export function echoGate(cfg: GatesConfig['echo'], sample: Sample, answer: string): GateResult {
  if (!cfg.enabled) return { name: 'echo', tripped: false, detail: 'disabled' };
  const a = compact(answer);
  const q = compact(sample.question);
  const ref = compact(sample.answer);
  if (a.length === 0 || a === ref || ref.includes(a) || a.includes(ref)) return { name: 'echo', tripped: false };
  const formula = /[+\-*/^=×÷]/.test(a) && a.length >= 3;
  if ((a.length >= 12 || formula) && q.includes(a))
    return { name: 'echo', tripped: true, detail: 'the answer restates the question' };
  return { name: 'echo', tripped: false };
}
