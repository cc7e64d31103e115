/**
 * The two seams of the RL stack. Everything in src/rl (GRPO, RLCS, expansion, the trainer) is written against these
 * interfaces, never against a concrete model:
 *
 * - `Policy`: the model being trained. Given prompts and response token ids it returns the log-probability of every
 *   response token, batched and differentiable, plus its trainable parameters and weights for checkpoints.
 * - `RolloutEngine`: something that samples G responses per prompt (local generation or an OpenAI-compatible
 *   server) with sampling parameters, a thinking budget and force answering, and reports exactly which tokens it
 *   sampled and which it inserted.
 *
 * Implementations in this folder: `GlmPolicy` + `GlmRolloutEngine` (glm.ts: a GLM-4.1V / 4.5V checkpoint, rollouts
 * with the KV-cache generator of src/io/generate.ts), `ToyPolicy` + `ToyRolloutEngine` (toy.ts, rollout/toy.ts: the
 * engine's TinyGpt on a character vocabulary, small enough to learn on a CPU in minutes) and `ServerRolloutEngine`
 * (rollout/openai.ts: any vLLM / SGLang server through src/serve/client.ts).
 */

import type { Sample } from '../data/sample.js';
import type { Parameter, Tensor } from '../engine/index.js';
import type { AnswerStyle } from '../io/answer/think.js';

/** A prompt as the policy consumes it: token ids plus model-specific inputs (pixels, grids) the RL code never reads. */
export interface PromptInput {
  ids: Int32Array;
  /** Opaque to RL: e.g. `{ pixelValues, gridThw }` for the GLM model. */
  extra?: unknown;
}

/** One prompt to roll out: the sample (for rewards, servers and logs) and its encoded form (for local models). */
export interface RolloutPrompt {
  sample: Sample;
  input: PromptInput;
}

/** Output convention: what force answering inserts after the thinking budget runs out (docs/design.md D.6). Its home is
 * io/answer/think.ts; listed here because the Policy seam's public types include it. */
export type { AnswerStyle };

export interface SamplingParams {
  /** Softmax temperature (> 0). The paper does not publish it; 1.0 as verl / TRL / DAPO. */
  temperature: number;
  /** Nucleus mass; 1 = off (the paper found 0.9 harmful late in training, §5.3.2). */
  topP: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Most tokens before `</think>`; reaching it without `</think>` triggers force answering (when enabled). */
  maxThinkingTokens: number;
  /** Most sampled tokens after `</think>` (tokens inserted by force answering are not counted). */
  maxAnswerTokens: number;
  /** Insert `</think>` (+ `<answer>` for glm41v) when the thinking budget runs out, and let the model answer. */
  forceAnswer: boolean;
  style: AnswerStyle;
  /** Seed of this call: identical calls give identical samples (local engines; servers honour it when they can). */
  seed: number;
}

export type FinishReason = 'stop' | 'length' | 'error';

export interface Rollout {
  /** Response token ids in the policy's vocabulary (sampled and inserted); empty when the engine could not tell. */
  tokenIds: Int32Array;
  /** Per token: 1 = sampled by the policy (trained on), 0 = inserted by force answering (context only). */
  lossMask: Uint8Array;
  /** The response text as the model wrote it (what rewards score). */
  text: string;
  /** Log-probability of each token under the sampling policy (temperature applied), or null when unknown. */
  logprobs: Float32Array | null;
  finishReason: FinishReason;
  /** True when force answering inserted `</think>`. */
  forced: boolean;
  /** Tokens spent before `</think>` (the forced one excluded) and after it. */
  thinkingTokens: number;
  answerTokens: number;
  /** Why the rollout failed (finishReason `error`): the request never produced text. */
  error?: string;
  /** Something the engine changed, e.g. a response cut before a vision placeholder token it cannot train on. */
  note?: string;
  /** The version of the weights that sampled it, when the engine can tell (a server reporting `policy_version`). */
  policyVersion?: number;
}

export interface RolloutEngine {
  readonly name: string;
  /** G responses for each prompt, in prompt order (out[i][j] = j-th response to prompts[i]). */
  generate(prompts: readonly RolloutPrompt[], groupSize: number, params: SamplingParams): Promise<Rollout[][]>;
  /**
   * Engines that sample from a copy of the weights (a server) receive the policy's weights here before each step's
   * rollouts, tagged with the number of updates so far; their rollouts then report that version.
   */
  syncPolicy?(policy: Policy, version: number): Promise<void>;
  /** Releases connections, threads or buffers. */
  close?(): Promise<void>;
}

/** One (prompt, response) pair whose response-token log-probs the policy computes. */
export interface PolicyItem {
  prompt: PromptInput;
  response: Int32Array;
}

export interface PolicyOutput {
  /** [B, T] float32, T = the longest response of the batch; row b holds items[b]'s tokens, zeros past its end. */
  logprobs: Tensor;
  /** [B, T] entropy of the next-token distribution at each response position (when asked for). */
  entropy?: Tensor;
}

export interface LogProbOptions {
  /** Divide logits by this before the softmax (the rollout temperature, as verl does). Default 1. */
  temperature?: number;
  /** Also return the per-position entropy. */
  entropy?: boolean;
}

export interface Policy {
  readonly name: string;
  /** Turns a sample into the policy's prompt (template + tokenizer + processor). Throws naming the sample. */
  encodePrompt(sample: Sample): PromptInput | Promise<PromptInput>;
  /** Token log-probs of responses given prompts; differentiable unless called under `noGrad`. */
  logProbs(items: readonly PolicyItem[], opts?: LogProbOptions): PolicyOutput;
  /** Trainable parameters (what the optimizer updates). */
  parameters(): Parameter[];
  /** The same parameters with their checkpoint names (the vision tower's start with `model.visual.`), where known. */
  namedParameters?(): Array<[string, Parameter]>;
  /** Every weight by name, for checkpoints. */
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: Map<string, Tensor>): void;
  /** A frozen copy of the current weights (the KL reference). */
  snapshot(): Policy;
  /** Text → ids in the policy's vocabulary (server rollouts are retokenised with it). */
  encodeText(text: string): number[];
}
