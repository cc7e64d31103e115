"""PyTorch peer for bench/train.ts: the same GLM-4.1V-shaped model in Hugging Face transformers (built from our
config.json, random weights), timed on the same micro-batch: forward + backward, and an AdamW step over all weights.

transformers' eager CPU attention cannot keep packed samples apart, so each packed sequence is one row of the batch
(right-padded to the sequence length, full causal attention inside the row): the same tokens and images, slightly
more attention work than glmv's per-sample segments.

Usage: python torch_glm4v_train.py MODEL_DIR BATCH_JSON PIXELS_BIN STEPS WARMUP THREADS [bf16]
Prints one JSON line: {"torch", "transformers", "threads", "step_ms": [...], "params"}.
"""
import json
import sys
import time

import numpy as np
import torch
from transformers import Glm4vConfig, Glm4vForConditionalGeneration


def main():
    model_dir, batch_json, pixels_bin = sys.argv[1:4]
    steps, warmup, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    bf16 = len(sys.argv) > 7 and sys.argv[7] == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    config = Glm4vConfig(**cfg)
    for c in (config, config.text_config, config.vision_config):
        c._attn_implementation = "sdpa"
    model = Glm4vForConditionalGeneration(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    with open(batch_json) as f:
        b = json.load(f)
    pixels = torch.from_numpy(np.fromfile(pixels_bin, dtype=np.float32).reshape(-1, b["patch_dim"]))
    ids = torch.tensor(b["input_ids"], dtype=torch.long)
    mask = torch.tensor(b["attention_mask"], dtype=torch.long)
    labels = torch.tensor(b["labels"], dtype=torch.long)
    grid = torch.tensor(b["image_grid_thw"], dtype=torch.long) if b["image_grid_thw"] else None
    types = torch.tensor(b["mm_token_type_ids"], dtype=torch.long)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(
                input_ids=ids,
                attention_mask=mask,
                pixel_values=pixels if grid is not None else None,
                image_grid_thw=grid,
                mm_token_type_ids=types,
                labels=labels,
            )
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    import transformers

    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "threads": torch.get_num_threads(),
                "step_ms": times,
                "params": sum(p.numel() for p in model.parameters()),
                "bf16": bf16,
            }
        )
    )


if __name__ == "__main__":
    main()
