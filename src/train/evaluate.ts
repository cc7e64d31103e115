/**
 * Evaluation inside training: held-out loss (packed, no gradients), and the stage model as an answerer for held-out
 * accuracy and the SFT difficulty filter, whose answering and grading live in src/eval/heldout.ts.
 */

import { noGrad, scope } from '../engine/index.js';
import type { Answerer, PromptFormat } from '../eval/heldout.js';
import { ChatModel } from '../io/chat.js';
import type { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import { concatFloat32 } from '../util/arrays.js';
import type { Encoder, Example } from './encode.js';
import type { StageModel } from './model.js';
import { stageProcessor } from './model.js';
import { assembleRow, Packer, rowInputs } from './packing.js';

/** The live stage model answering in `prompt` format (the pretrain format through the stage's own encoder). */
export function stageAnswerer(
  sm: Pick<StageModel, 'model' | 'tokenizer' | 'imageConfig' | 'videoConfig'>,
  encoder: Encoder,
  prompt: PromptFormat,
): Answerer {
  if (prompt === 'chat')
    return { prompt, chat: new ChatModel(sm.model, sm.tokenizer, stageProcessor(sm), '(training)') };
  return {
    prompt,
    model: sm.model,
    tokenizer: sm.tokenizer,
    input: async (sample) => {
      const p = await encoder.pretrainPrompt(sample);
      return {
        inputIds: p.ids,
        pixelValues: concatFloat32(p.images.map((m) => m.pixelValues)),
        imageGridThw: p.images.length ? p.images.map((m) => m.grid) : null,
        pixelValuesVideos: concatFloat32(p.videos.map((m) => m.pixelValues)),
        videoGridThw: p.videos.length ? p.videos.map((m) => m.grid) : null,
      };
    },
  };
}

/**
 * Mean token loss of fixed examples, packed into rows of `microRows` sequences of `seqLen`, without gradients.
 * Returns the loss over every counted token and the count.
 */
export function heldoutLoss(
  model: Glm4vForConditionalGeneration,
  examples: readonly Example[],
  seqLen: number,
  microRows: number,
  padId: number,
): { loss: number; tokens: number } {
  let sum = 0;
  let count = 0;
  let i = 0;
  while (i < examples.length) {
    const packer = new Packer(seqLen, microRows);
    while (i < examples.length && packer.add(examples[i]!)) i++;
    const row = assembleRow(
      packer.bins.flatMap((b) => b.examples),
      { padId, padMultiple: 64 },
    );
    sum += noGrad(() =>
      scope(() => {
        const out = model.forward({ ...rowInputs(row), lossReduction: 'sum' });
        return out.loss!.item();
      }),
    );
    count += row.targets;
  }
  return { loss: count ? sum / count : Number.NaN, tokens: count };
}
