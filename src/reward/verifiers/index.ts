/** The verifier registry: exactly the names of `VERIFIER_TYPES` (src/data/sample.ts). */
import type { VerifierType } from '../../data/sample.js';
import type { Verifier } from '../types.js';
import { chartVerifier } from './chart.js';
import { chemistryVerifier } from './chemistry.js';
import { countingVerifier } from './counting.js';
import { generalVerifier } from './general.js';
import { groundingVerifier } from './grounding.js';
import { guiVerifier } from './gui.js';
import { longDocVerifier } from './long_doc.js';
import { mathVerifier } from './math.js';
import { multipleChoiceVerifier } from './multiple_choice.js';
import { ocrVerifier } from './ocr.js';
import { physicsVerifier } from './physics.js';
import { spatialVerifier } from './spatial.js';
import { videoVerifier } from './video.js';
import { vqaVerifier } from './vqa.js';

// biome-ignore lint/suspicious/noExplicitAny: each verifier has its own params type; the router validates them.
export const VERIFIERS: { [K in VerifierType]: Verifier<any> } = {
  math: mathVerifier,
  physics: physicsVerifier,
  chemistry: chemistryVerifier,
  chart: chartVerifier,
  ocr: ocrVerifier,
  vqa: vqaVerifier,
  multiple_choice: multipleChoiceVerifier,
  counting: countingVerifier,
  grounding: groundingVerifier,
  spatial: spatialVerifier,
  gui: guiVerifier,
  video: videoVerifier,
  long_doc: longDocVerifier,
  general: generalVerifier,
};
