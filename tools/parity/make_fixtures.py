#!/usr/bin/env python3
"""Parity fixtures for glmv's GLM-4.1V / GLM-4.5V model, produced by the Hugging Face reference implementation.

Builds a small random Glm4vForConditionalGeneration (or Glm4vMoeForConditionalGeneration) with transformers, runs
the reference on hand-built prompts (image, video, image + video, and a left-padded batch of two prompts) and writes
what the TypeScript tests compare against:

  config.json, model.safetensors      save_pretrained output (the installed transformers' format)
  pixel_values.safetensors            pixel_values (two images, [40, 1176]) and pixel_values_videos ([32, 1176])
  inputs.json                         per case: input_ids, attention_mask, grids, token types, which pixels it uses
  expected.json                       per case: position_ids, rope_deltas (reference convention), greedy tokens, ...
  logits.safetensors                  per case: logits, hidden_states, image/video embeddings, generation scores
  grads.safetensors                   gradient of every parameter for the image prompt with labels (expected.train)
  resample.safetensors (--resample)   a 24×24 position table and its bicubic resampling to real-size grids

Usage (a virtual environment with torch and transformers in .venv, see README):
  .venv/bin/python tools/parity/make_fixtures.py --kind glm4v --seed 1 --out test/fixtures/parity/glm4v/seed1
  .venv/bin/python tools/parity/make_fixtures.py --kind glm4v_moe --seed 1 --hidden 96 --out runs/parity-moe

Everything runs on CPU in float32 with eager attention. Nothing here is copied from transformers: it only calls it.
"""

import argparse
import json
import math
import os
import sys

import torch


def tiny_config(kind: str, a: argparse.Namespace) -> dict:
    """A config dict in the nested layout (vision_config / text_config). Special ids sit at the top of the vocab."""
    head_dim = a.hidden // a.heads
    n_freq = head_dim // 4  # rotary dims / 2 with partial_rotary_factor 0.5
    t = max(1, round(n_freq * 8 / 32))
    h = max(1, round((n_freq - t) * 12 / 24))
    section = [t, h, n_freq - t - h]
    special = a.vocab - 12
    text = {
        "vocab_size": a.vocab,
        "hidden_size": a.hidden,
        "intermediate_size": 2 * a.hidden,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.5,
            "mrope_section": section,
        },
    }
    if a.width == "9b":
        # GLM-4.1V-9B-Thinking's widths (docs/design.md E); depth and vocabulary stay as given.
        text.update(
            {
                "hidden_size": 4096,
                "intermediate_size": 13696,
                "num_attention_heads": 32,
                "num_key_value_heads": 2,
                "head_dim": 128,
                "max_position_embeddings": 65536,
            }
        )
        text["rope_parameters"]["mrope_section"] = [8, 12, 12]
    if kind == "glm4v_moe":
        text.update(
            {
                "attention_bias": True,
                "n_routed_experts": 8,
                "num_experts_per_tok": 2,
                "n_shared_experts": 1,
                "moe_intermediate_size": a.hidden // 2,
                "n_group": 2,
                "topk_group": 1,
                "norm_topk_prob": True,
                "routed_scaling_factor": 1.0,
                "first_k_dense_replace": 1,
            }
        )
    vision = {
        "depth": a.vision_depth,
        "hidden_size": a.hidden // 2,
        "num_heads": 2,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "image_size": 56,
        "out_hidden_size": a.hidden,
        "intermediate_size": (3 * a.hidden) // 2,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "attention_bias": False,
    }
    if a.width == "9b":
        vision.update(
            {"hidden_size": 1536, "num_heads": 12, "image_size": 336, "out_hidden_size": 4096, "intermediate_size": 13696}
        )
    return {
        "text_config": text,
        "vision_config": vision,
        "image_start_token_id": special,
        "image_end_token_id": special + 1,
        "video_start_token_id": special + 2,
        "video_end_token_id": special + 3,
        "image_token_id": special + 4,
        "video_token_id": special + 5,
        "tie_word_embeddings": False,
    }


def redraw(model: torch.nn.Module, seed: int) -> None:
    """Weights with O(1) activations (the reference's 0.02 init makes logits nearly flat and greedy ties likely)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "norm" in name and p.ndim == 1:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif "position_embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                # Matrices, conv kernels and fused expert tensors: std 1/sqrt(fan_in) of one output row.
                fan_in = p.shape[-1] if p.ndim == 3 and "experts" in name else p[0].numel()
                scale = 2.0 if name == "lm_head.weight" else 1.0
                p.copy_(scale / math.sqrt(fan_in) * torch.randn(p.shape, generator=g))
        for name, buf in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buf.copy_(0.05 * torch.randn(buf.shape, generator=g))


def token_types(ids: list, cfg: dict) -> list:
    out, in_video = [], False
    for t in ids:
        if t == cfg["video_start_token_id"]:
            in_video = True
        elif t == cfg["video_end_token_id"]:
            in_video = False
        out.append((2 if in_video else 1) if t == cfg["image_token_id"] else 0)
    return out


def build_cases(cfg: dict, rng: torch.Generator) -> tuple:
    s0 = cfg["image_start_token_id"]
    s1 = cfg["image_end_token_id"]
    v0 = cfg["video_start_token_id"]
    v1 = cfg["video_end_token_id"]
    im = cfg["image_token_id"]
    V = cfg["text_config"]["vocab_size"]

    def words(n):
        return torch.randint(3, V - 12, (n,), generator=rng).tolist()

    pre, post, mid = words(4), words(5), words(2)
    ts = words(2)  # stand-ins for the timestamp text after each video group
    image_a = [s0] + [im] * 6 + [s1]  # grid (1, 4, 6): 6 merged tokens
    image_b = [s0] + [im] * 4 + [s1]  # grid (1, 4, 4): 4 merged tokens
    video = [v0] + [s0] + [im] * 4 + [s1] + [ts[0]] + [s0] + [im] * 4 + [s1] + [ts[1]] + [v1]  # grid (2, 4, 4)
    pad = 0
    row0 = pre + image_a + post
    row1 = words(2) + image_b + words(3)
    width = max(len(row0), len(row1))
    cases = {
        "image": {"rows": [pre + image_a + post], "images": [0], "video": False},
        "video": {"rows": [pre + video + post], "images": [], "video": True},
        "image_video": {"rows": [pre + image_a + mid + video + post], "images": [0], "video": True},
        "batch_left_pad": {
            "rows": [[pad] * (width - len(r)) + r for r in (row0, row1)],
            "mask": [[0] * (width - len(r)) + [1] * len(r) for r in (row0, row1)],
            "images": [0, 1],
            "video": False,
        },
    }
    grids = [[1, 4, 6], [1, 4, 4]]
    return cases, grids


def resample_fixture(out_dir: str, seed: int) -> None:
    """The learned position table at the real size (24×24, image_size 336) resampled by the reference's vision
    embeddings to real-size grids: captured around `model.visual.embeddings` of a one-block vision tower."""
    from safetensors.torch import save_file
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration

    C = 8
    cfg = Glm4vConfig(
        text_config={"vocab_size": 512, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                         "mrope_section": [1, 0, 1]}},
        vision_config={"depth": 1, "hidden_size": C, "num_heads": 2, "image_size": 336, "patch_size": 14,
                       "out_hidden_size": 16, "intermediate_size": 16},
        image_token_id=504, video_token_id=505, image_start_token_id=500, image_end_token_id=501,
        video_start_token_id=502, video_end_token_id=503,
    )
    model = Glm4vForConditionalGeneration(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(576, C, generator=g)
    emb = model.model.visual.embeddings
    with torch.no_grad():
        emb.position_embedding.weight.copy_(table)
    captured = {}

    def hook(_m, args, out):
        captured["pos"] = (out - args[0]).detach().clone()

    emb.register_forward_hook(hook)
    # Grids of the processor fixtures (50x50, 333x517, 768x1024, 1080x1920, 30x3000) and a tiny one.
    grids = [[1, 6, 6], [1, 24, 36], [1, 54, 74], [1, 78, 138], [1, 2, 214], [1, 2, 2]]
    tensors = {"table": table}
    for gr in grids:
        n = gr[0] * gr[1] * gr[2]
        with torch.no_grad():
            model.model.visual(torch.zeros(n, 1176), grid_thw=torch.tensor([gr]))
        tensors["x".join(map(str, gr))] = captured["pos"]
    save_file(tensors, os.path.join(out_dir, "resample.safetensors"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["glm4v", "glm4v_moe"], required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vision-depth", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=8)
    ap.add_argument(
        "--width",
        choices=["tiny", "9b"],
        default="tiny",
        help="9b: GLM-4.1V-9B's real widths (text 4096/32 heads/2 kv/head_dim 128/13696, vision 1536/12 heads, "
        "24x24 position table); --layers, --vision-depth and --vocab still set depth and vocabulary",
    )
    ap.add_argument("--resample", action="store_true", help="also write resample.safetensors (real-size position table)")
    a = ap.parse_args()
    if a.width == "9b" and a.kind != "glm4v":
        ap.error("--width 9b is GLM-4.1V-9B's shape; use --kind glm4v")

    import transformers
    from safetensors.torch import save_file
    from transformers import (
        Glm4vConfig,
        Glm4vForConditionalGeneration,
        Glm4vMoeConfig,
        Glm4vMoeForConditionalGeneration,
    )

    torch.manual_seed(a.seed)
    cfg_dict = tiny_config(a.kind, a)
    Config, Model = (
        (Glm4vConfig, Glm4vForConditionalGeneration)
        if a.kind == "glm4v"
        else (Glm4vMoeConfig, Glm4vMoeForConditionalGeneration)
    )
    config = Config(**cfg_dict)
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    config.vision_config._attn_implementation = "eager"
    model = Model(config).eval()
    redraw(model, a.seed)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)

    rng = torch.Generator().manual_seed(1000 + a.seed)
    cases, grids = build_cases(cfg_dict, rng)
    n_img = [g[0] * g[1] * g[2] for g in grids]
    pixel_images = torch.randn(sum(n_img), 1176, generator=rng)
    pixel_video = torch.randn(32, 1176, generator=rng)
    save_file({"pixel_values": pixel_images, "pixel_values_videos": pixel_video}, os.path.join(a.out, "pixel_values.safetensors"))

    inputs_json, expected, tensors = {}, {}, {}
    mm = model.model
    routed: dict = {}
    if a.kind == "glm4v_moe":
        for li, layer in enumerate(mm.language_model.layers):
            gate = getattr(layer.mlp, "gate", None)
            if gate is None:
                continue

            def hook(_m, _inp, out, li=li):
                routed[li] = torch.sort(out[-1], dim=-1).values.tolist()

            gate.register_forward_hook(hook)
    for name, c in cases.items():
        ids = torch.tensor(c["rows"])
        B, L = ids.shape
        mask = torch.tensor(c.get("mask", [[1] * L] * B))
        types = torch.tensor([token_types(r, cfg_dict) for r in c["rows"]])
        img_rows = sum(n_img[i] for i in c["images"])
        img_off = sum(n_img[: c["images"][0]]) if c["images"] else 0
        kw = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": types}
        if c["images"]:
            kw["pixel_values"] = pixel_images[img_off : img_off + img_rows]
            kw["image_grid_thw"] = torch.tensor([grids[i] for i in c["images"]])
        if c["video"]:
            kw["pixel_values_videos"] = pixel_video
            kw["video_grid_thw"] = torch.tensor([[2, 4, 4]])
        pos, deltas = mm.get_rope_index(
            ids,
            mm_token_type_ids=types,
            image_grid_thw=kw.get("image_grid_thw"),
            video_grid_thw=kw.get("video_grid_thw"),
            attention_mask=mask,
        )
        native = not (c["images"] and c["video"])
        routed.clear()
        with torch.no_grad():
            img_emb = torch.cat(list(mm.get_image_features(kw["pixel_values"], kw["image_grid_thw"]).pooler_output)) if c["images"] else None
            vid_emb = torch.cat(list(mm.get_video_features(pixel_video, kw["video_grid_thw"]).pooler_output)) if c["video"] else None
            if native:
                out = model(**kw, output_hidden_states=True)
            else:
                # Both an image and a video: the reference builds its image and video masks from the same token id
                # and cannot run this natively; compose it from its own pieces (features written in token order,
                # image rows outside the video span, video rows inside).
                emb = mm.get_input_embeddings()(ids).clone()
                flat = emb.view(-1, emb.shape[-1])
                t = types.view(-1)
                flat[t == 1] = img_emb
                flat[t == 2] = vid_emb
                out = model(inputs_embeds=emb, position_ids=pos, attention_mask=mask, output_hidden_states=True)
        routed_fwd = dict(routed)
        hs = list(out.hidden_states)
        final = model.model.language_model.norm(hs[-1]) if len(hs) == a.layers + 1 else hs[-1]
        if not torch.allclose(model.lm_head(final), out.logits, atol=1e-5):
            final = hs[-1]  # already normed in this transformers version
        hs = hs[: a.layers] + [final]
        assert torch.allclose(model.lm_head(hs[-1]), out.logits, atol=1e-5), "hidden_states[-1] must give the logits"
        key = name
        tensors[f"{key}.logits"] = out.logits.squeeze(0) if B == 1 else out.logits
        tensors[f"{key}.hidden_states"] = torch.stack([h.squeeze(0) if B == 1 else h for h in hs])
        if img_emb is not None:
            tensors[f"{key}.image_embeds"] = img_emb
        if vid_emb is not None:
            tensors[f"{key}.video_embeds"] = vid_emb
        entry = {
            "position_ids": (pos[:, 0] if B == 1 else pos).tolist(),
            "rope_deltas": deltas.view(-1).tolist(),
            "rope_deltas_convention": "max position + 1 - number of unpadded tokens (transformers 5.x)",
            "logits_shape": list(tensors[f"{key}.logits"].shape),
            "native_hf_forward": native,
        }
        if native:
            with torch.no_grad():
                gen = model.generate(**kw, do_sample=False, max_new_tokens=a.new_tokens, pad_token_id=0,
                                     output_scores=True, return_dict_in_generate=True)
                gen_nc = model.generate(**kw, do_sample=False, max_new_tokens=a.new_tokens, pad_token_id=0, use_cache=False)
            new = gen.sequences[:, L:]
            assert torch.equal(new, gen_nc[:, L:]), "greedy tokens differ with and without the KV cache"
            scores = torch.stack(gen.scores, dim=1)  # [B, steps, V]
            top2 = scores.topk(2, dim=-1).values
            entry["generated_tokens"] = new[0].tolist() if B == 1 else new.tolist()
            margin = (top2[..., 0] - top2[..., 1])
            entry["step_top2_margin"] = margin[0].tolist() if B == 1 else margin.tolist()
            tensors[f"{key}.generate_scores"] = scores[0] if B == 1 else scores
        if routed_fwd:
            # Experts chosen in each MoE layer during this case's forward (sorted per token, tokens of all rows).
            entry["router_topk_experts"] = {str(li): idx for li, idx in routed_fwd.items()}
        expected[key] = entry
        inputs_json[key] = {
            "input_ids": c["rows"][0] if B == 1 else c["rows"],
            "attention_mask": mask[0].tolist() if B == 1 else mask.tolist(),
            "image_grid_thw": [grids[i] for i in c["images"]] if c["images"] else None,
            "video_grid_thw": [[2, 4, 4]] if c["video"] else None,
            "mm_token_type_ids": types[0].tolist() if B == 1 else types.tolist(),
            "pixel_rows": [img_off, img_off + img_rows] if c["images"] else None,
            "uses": (["pixel_values"] if c["images"] else []) + (["pixel_values_videos"] if c["video"] else []),
        }

    # Training: the image prompt with labels (image tokens ignored): loss and the gradient of every parameter.
    c = cases["image"]
    ids = torch.tensor(c["rows"])
    labels = ids.clone()
    labels[ids == cfg_dict["image_token_id"]] = -100
    model.zero_grad()
    out = model(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        mm_token_type_ids=torch.tensor([token_types(c["rows"][0], cfg_dict)]),
        pixel_values=pixel_images[: n_img[0]],
        image_grid_thw=torch.tensor([grids[0]]),
        labels=labels,
    )
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    save_file(grads, os.path.join(a.out, "grads.safetensors"))
    expected["train"] = {"case": "image", "labels": labels[0].tolist(), "loss": out.loss.item(), "grad_count": len(grads)}

    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(a.out, "logits.safetensors"))
    meta = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "attn_implementation": "eager",
        "seed": a.seed,
        "command": " ".join(sys.argv),
    }
    with open(os.path.join(a.out, "inputs.json"), "w") as f:
        json.dump({**meta, "cases": inputs_json}, f, indent=1)
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump({**meta, "cases": expected}, f, indent=1)
    if a.resample:
        resample_fixture(a.out, a.seed)
    print(f"wrote {a.out}: {', '.join(sorted(os.listdir(a.out)))}")


if __name__ == "__main__":
    main()
