"""Adds the MoE routing record to every case of a GLM-4.5V parity fixture folder that lacks one.

The fixtures in test/fixtures/parity/glm4v_moe (top level) were written by transformers 4.57.6 with a routing record
(`layer1_router_topk_experts`: the sorted expert pair chosen for each token in the MoE layer) for the `image` case
only. This script loads the folder's own `model.safetensors` with the installed transformers, reruns every case the
way the fixtures were made (the `image` and `video` cases natively; `image_video` from reference pieces, because the
reference cannot run a sequence holding both an image and a video: see test/fixtures/parity/glm4v/README.md), checks
that it reproduces the stored logits and any stored routing, and writes the routing of the cases that had none.
Nothing else in `expected.json` changes.

    python tools/parity/record_routing.py --dir test/fixtures/parity/glm4v_moe

It refuses to run when the installed transformers is not the version the folder records (use the same one, so the
record describes the same reference computation).
"""

import argparse
import json
import os

import torch
import transformers
from safetensors.torch import load_file
from transformers import Glm4vMoeForConditionalGeneration

LOGITS_TOL = 1e-4  # the parity test's own tolerance; the rerun must reproduce the stored logits within it


def compose_inputs(model, ids, mask, pixel_values, image_grid, pixel_values_videos, video_grid):
    """Embeddings and positions of a sequence with both an image and a video, from the reference's own pieces."""
    cfg = model.config
    inner = model.model
    position_ids, _ = inner.get_rope_index(ids, image_grid, video_grid, mask)
    embeds = inner.get_input_embeddings()(ids)
    image_embeds = torch.cat(inner.get_image_features(pixel_values, image_grid), dim=0)
    video_embeds = torch.cat(inner.get_video_features(pixel_values_videos, video_grid), dim=0)
    row = ids[0].tolist()
    in_video = False
    img_rows, vid_rows = [], []
    for pos, tok in enumerate(row):
        if tok == cfg.video_start_token_id:
            in_video = True
        elif tok == cfg.video_end_token_id:
            in_video = False
        elif tok == cfg.image_token_id:
            (vid_rows if in_video else img_rows).append(pos)
    if len(img_rows) != image_embeds.shape[0] or len(vid_rows) != video_embeds.shape[0]:
        raise SystemExit(
            f"image_video: {len(img_rows)} image and {len(vid_rows)} video token rows for "
            f"{image_embeds.shape[0]} image and {video_embeds.shape[0]} video embeddings"
        )
    embeds = embeds.clone()
    embeds[0, img_rows] = image_embeds.to(embeds.dtype)
    embeds[0, vid_rows] = video_embeds.to(embeds.dtype)
    return {"inputs_embeds": embeds, "position_ids": position_ids, "attention_mask": mask}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="fixture folder (config.json, model.safetensors, inputs.json, ...)")
    args = ap.parse_args()
    d = args.dir
    expected_path = os.path.join(d, "expected.json")
    with open(expected_path) as f:
        expected = json.load(f)
    with open(os.path.join(d, "inputs.json")) as f:
        inputs = json.load(f)
    want = expected.get("transformers_version")
    if want != transformers.__version__:
        raise SystemExit(f"{expected_path} was made by transformers {want}; installed is {transformers.__version__}")

    torch.manual_seed(0)
    model = Glm4vMoeForConditionalGeneration.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    layers = model.model.language_model.layers
    moe_layers = [i for i, layer in enumerate(layers) if hasattr(layer.mlp, "gate")]
    if moe_layers != [1]:
        raise SystemExit(f"expected one MoE layer (1), found {moe_layers}")
    captured = {}

    def hook(_module, _inputs, output):
        captured["topk"] = output[0].detach().clone()

    layers[1].mlp.gate.register_forward_hook(hook)

    px = load_file(os.path.join(d, "pixel_values.safetensors"))
    ref = load_file(os.path.join(d, "logits.safetensors"))
    added = []
    for name, c in inputs["cases"].items():
        ids = torch.tensor([c["input_ids"]])
        mask = torch.tensor([c["attention_mask"]])
        uses = c["uses"]
        image_grid = torch.tensor(c["image_grid_thw"]) if c["image_grid_thw"] else None
        video_grid = torch.tensor(c["video_grid_thw"]) if c["video_grid_thw"] else None
        pv = px["pixel_values"] if "pixel_values" in uses else None
        pvv = px["pixel_values_videos"] if "pixel_values_videos" in uses else None
        captured.clear()
        with torch.no_grad():
            if expected["cases"][name]["native_hf_forward"]:
                out = model(
                    input_ids=ids,
                    attention_mask=mask,
                    pixel_values=pv,
                    image_grid_thw=image_grid,
                    pixel_values_videos=pvv,
                    video_grid_thw=video_grid,
                )
            else:
                out = model(**compose_inputs(model, ids, mask, pv, image_grid, pvv, video_grid))
        diff = (out.logits[0] - ref[f"{name}.logits"]).abs().max().item()
        if not diff < LOGITS_TOL:
            raise SystemExit(f"{name}: logits differ from the stored ones by {diff:g} (> {LOGITS_TOL})")
        pairs = sorted_pairs(captured["topk"])
        if len(pairs) != ids.shape[1]:
            raise SystemExit(f"{name}: {len(pairs)} routing rows for {ids.shape[1]} tokens")
        stored = expected["cases"][name].get("layer1_router_topk_experts")
        if stored is not None:
            if stored != pairs:
                raise SystemExit(f"{name}: the rerun picks other experts than the stored record")
            print(f"{name}: logits max |diff| {diff:.2g}, stored routing reproduced")
        else:
            expected["cases"][name]["layer1_router_topk_experts"] = pairs
            added.append(name)
            print(f"{name}: logits max |diff| {diff:.2g}, routing recorded for {len(pairs)} tokens")
    if added:
        with open(expected_path, "w") as f:
            json.dump(expected, f, indent=1)  # the layout the folder was written with
    print(f"added routing to: {', '.join(added) if added else 'none'}")


def sorted_pairs(topk):
    return [sorted(int(e) for e in row) for row in topk.reshape(-1, topk.shape[-1]).tolist()]


if __name__ == "__main__":
    main()
