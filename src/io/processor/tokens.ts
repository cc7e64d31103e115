/**
 * The visual tokens of a prompt: the placeholders the chat template writes, their expansion to one `<|image|>` per
 * visual token, and the text/image/video type of each token id.
 */

import type { GridThw } from './patches.js';

/** Placeholder strings written by the chat template and expanded here. */
export const IMAGE_TOKEN = '<|image|>';
export const VIDEO_TOKEN = '<|video|>';
export const BEGIN_OF_IMAGE = '<|begin_of_image|>';
export const END_OF_IMAGE = '<|end_of_image|>';
export const BEGIN_OF_VIDEO = '<|begin_of_video|>';
export const END_OF_VIDEO = '<|end_of_video|>';

export interface ExpansionInputs {
  /** `grid_thw` of each image, in prompt order. */
  imageGrids?: GridThw[];
  /** `grid_thw` and per-group timestamps of each video, in prompt order. */
  videos?: Array<{ gridThw: GridThw; timestamps: number[] }>;
  mergeSize?: number;
}

/**
 * Replaces each `<|image|>` placeholder by (t·h·w/merge²) `<|image|>` tokens and each `<|video|>` placeholder by one
 * `<|begin_of_image|>…<|end_of_image|>{seconds}` block per temporal group (the `<|begin_of_video|>` and
 * `<|end_of_video|>` around it come from the chat template). Placeholder counts must match the media given.
 */
export function expandMediaTokens(text: string, inputs: ExpansionInputs): string {
  const merge2 = (inputs.mergeSize ?? 2) ** 2;
  const images = inputs.imageGrids ?? [];
  const videos = inputs.videos ?? [];
  const placeholders = text.match(/<\|image\|>|<\|video\|>/g) ?? [];
  const nImg = placeholders.filter((p) => p === IMAGE_TOKEN).length;
  const nVid = placeholders.length - nImg;
  if (nImg !== images.length) {
    throw new Error(
      `prompt: found ${nImg} ${IMAGE_TOKEN} placeholder${nImg === 1 ? '' : 's'} but ${images.length} image${images.length === 1 ? ' was' : 's were'} given`,
    );
  }
  if (nVid !== videos.length) {
    throw new Error(
      `prompt: found ${nVid} ${VIDEO_TOKEN} placeholder${nVid === 1 ? '' : 's'} but ${videos.length} video${videos.length === 1 ? ' was' : 's were'} given`,
    );
  }
  let i = 0;
  let v = 0;
  return text.replace(/<\|image\|>|<\|video\|>/g, (tok) => {
    if (tok === IMAGE_TOKEN) {
      const [t, h, w] = images[i++];
      return IMAGE_TOKEN.repeat((t * h * w) / merge2);
    }
    const { gridThw, timestamps } = videos[v++];
    const [t, h, w] = gridThw;
    const perGroup = IMAGE_TOKEN.repeat((h * w) / merge2);
    let s = '';
    for (let g = 0; g < t; g++) {
      const ts = timestamps[g] ?? timestamps[timestamps.length - 1] ?? 0;
      s += `${BEGIN_OF_IMAGE}${perGroup}${END_OF_IMAGE}${Math.trunc(ts)}`;
    }
    return s;
  });
}

/**
 * Marks each token as text (0), image (1) or video (2): image tokens between `<|begin_of_video|>` and
 * `<|end_of_video|>` are video tokens (both use the same `<|image|>` id). The model's 3D RoPE needs this split.
 */
export function mmTokenTypeIds(
  ids: ArrayLike<number>,
  tokenIds: { image: number; videoStart: number; videoEnd: number },
): Uint8Array {
  const out = new Uint8Array(ids.length);
  let depth = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === tokenIds.videoStart) depth++;
    else if (id === tokenIds.videoEnd) depth = Math.max(0, depth - 1);
    else if (id === tokenIds.image) out[i] = depth > 0 ? 2 : 1;
  }
  return out;
}
