"""PyTorch peer for bench/engine.ts: the same pre-LN GPT (tinyGpt.ts), trained with AdamW, timed per step.
Prints one JSON line. Usage: python torch_transformer.py STEPS WARMUP"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, D, H, LAYERS, FFN, L, B = 1000, 256, 4, 4, 1024, 256, 4


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.fc1 = nn.Linear(D, FFN)
        self.fc2 = nn.Linear(FFN, D)

    def forward(self, x):
        b, l, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, l, 3, H, d // H).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, l, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, D)
        self.wpe = nn.Embedding(L, D)
        self.h = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_f = nn.LayerNorm(D)
        self.lm_head = nn.Linear(D, V, bias=False)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.h:
            x = b(x)
        return self.lm_head(self.ln_f(x))


def main():
    steps, warmup = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    torch.manual_seed(0)
    model = Gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ids = torch.randint(0, V, (B, L))
    tgt = torch.randint(0, V, (B, L))

    def step():
        loss = F.cross_entropy(model(ids).view(-1, V), tgt.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    times, fwd = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    # Where a step's time goes: the BLAS products' own time (aten::mm / addmm / bmm, which call MKL on CPU), over 3
    # profiled steps; and this build's fp32 GEMM rate at n = 1024, so the step can be read against the BLAS it got.
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    gemm_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm", "aten::bmm"))
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    it, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        a @ b
        it += 1
    gemm_gflops = 2 * 1024**3 * it / (time.perf_counter() - t0) / 1e9
    with torch.no_grad():
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            model(ids)
            if i >= warmup:
                fwd.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "step_ms": times,
        "fwd_ms": fwd,
        "gemm_ms_per_step": gemm_us / 3 / 1000,
        "gemm1024_gflops": gemm_gflops,
        "params": sum(p.numel() for p in model.parameters()),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
