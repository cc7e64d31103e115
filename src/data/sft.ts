/**
 * Turns a `Sample` into long-CoT SFT pairs in the paper's format:
 *   GLM-4.1V: `<think>{rationale}</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>`
 *   GLM-4.5V: `<think>{rationale}</think>\n<|begin_of_box|>{answer}<|end_of_box|>` (no answer tags)
 * `/nothink` variants keep the same answer with empty thinking and `/nothink` appended to the prompt (paper §4.2).
 * Multiple-choice items convert to fill-in-the-blank form when their answer is unique (paper §5.1).
 */
import { BOX_CLOSE, BOX_OPEN } from '../io/answer/tags.js';
import type { AnswerStyle } from '../io/answer/think.js';
import { type ChatMessage, type ContentPart, NOTHINK } from '../io/template.js';
import type { Sample, VerifierSpec } from './sample.js';

export interface SftOptions {
  /** Thinking (default) or `/nothink` (empty thinking). */
  thinking?: boolean;
  style?: AnswerStyle;
}

export function boxed(answer: string): string {
  return `${BOX_OPEN}${answer}${BOX_CLOSE}`;
}

/** The user text of a sample: question, then lettered options for multiple choice. */
export function promptText(sample: Sample, opts: SftOptions = {}): string {
  let text = sample.question.trim();
  if (sample.options?.length) {
    text += `\n${sample.options.map((o, i) => `${String.fromCharCode(65 + i)}. ${o}`).join('\n')}`;
  }
  if (opts.thinking === false && !text.endsWith(NOTHINK)) text += NOTHINK;
  return text;
}

/**
 * The user turn of a sample — its images, its video, then the question with lettered options (and `/nothink` when
 * thinking is off), or the question first when `sample.questionFirst` — exactly as SFT trains it, RL prompts it and
 * evaluation asks it.
 */
export function sampleMessage(sample: Sample, opts: SftOptions = {}): ChatMessage {
  const parts: ContentPart[] = sample.images.map((image) => ({ type: 'image' as const, image }));
  if (sample.video) {
    const v =
      sample.video.path ??
      (sample.video.frames
        ? { frames: sample.video.frames, ...(sample.video.fps ? { fps: sample.video.fps } : {}) }
        : null);
    if (!v) throw new Error(`sample ${sample.id}: video has neither path nor frames`);
    parts.push({ type: 'video', video: v });
  }
  const text = { type: 'text' as const, text: promptText(sample, opts) };
  return { role: 'user', content: sample.questionFirst ? [text, ...parts] : [...parts, text] };
}

/** The assistant target string. Thinking samples need a rationale; the error names the sample. */
export function sftTarget(sample: Sample, opts: SftOptions = {}): string {
  const thinking = opts.thinking ?? true;
  const style = opts.style ?? 'glm41v';
  if (style !== 'glm41v' && style !== 'glm45v')
    throw new Error(`sftTarget: style must be glm41v or glm45v, got ${JSON.stringify(style)}`);
  if (sample.answer.includes(BOX_OPEN) || sample.answer.includes(BOX_CLOSE)) {
    throw new Error(
      `sftTarget: sample ${sample.id}: answer already contains box tokens: ${JSON.stringify(sample.answer)}`,
    );
  }
  let think = '';
  if (thinking) {
    if (!sample.rationale?.trim())
      throw new Error(`sftTarget: sample ${sample.id} has no rationale for a thinking target`);
    think = sample.rationale.trim();
  }
  if (/<\/?think>|<\/?answer>/.test(think)) {
    throw new Error(
      `sftTarget: sample ${sample.id}: rationale contains think/answer tags, which would break the format`,
    );
  }
  return assistantTarget(think, sample.answer, style);
}

/**
 * The paper's assistant format around a rationale and an answer (both already checked): the answer boxed, in answer
 * tags for GLM-4.1V, after a newline for GLM-4.5V. The one home of this string for SFT and the RL toy's cold start.
 */
export function assistantTarget(think: string, answer: string, style: AnswerStyle): string {
  const box = boxed(answer);
  return style === 'glm41v' ? `<think>${think}</think><answer>${box}</answer>` : `<think>${think}</think>\n${box}`;
}

/**
 * Fill-in-the-blank form of a multiple-choice sample: no options, the option text as the answer, and the
 * verifier the generator recorded (or `vqa`). Returns null when the item cannot be converted (the option text is
 * not unique, or the answer letter is out of range); non-MCQ samples come back unchanged.
 */
export function toFillInBlank(sample: Sample): Sample | null {
  if (!sample.options?.length) return sample;
  const idx = sample.answer.trim().toUpperCase().charCodeAt(0) - 65;
  const text = sample.options[idx];
  if (sample.answer.trim().length !== 1 || text === undefined) return null;
  if (sample.options.filter((o) => o.trim().toLowerCase() === text.trim().toLowerCase()).length !== 1) return null;
  const blank = sample.meta?.blank as { answer?: string; verifier?: VerifierSpec } | undefined;
  const out: Sample = {
    ...sample,
    id: `${sample.id}#blank`,
    answer: blank?.answer ?? text,
    verifier: blank?.verifier ?? { type: 'vqa' },
    meta: { ...sample.meta, fromChoice: { options: sample.options, letter: sample.answer } },
  };
  delete out.options;
  if (out.rationale) out.rationale = out.rationale.replace(/\s*That is option [A-J]\.$/, '');
  return out;
}
