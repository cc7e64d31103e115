"""Replays OpenRLHF's remote-reward client against a glmv reward server, as OpenRLHF's own code does it.

Read from OpenRLHF (0.9/0.10, ``openrlhf/utils/agent.py`` ``SingleTurnAgentExecutor._fetch_rewards_via_http`` and
``openrlhf/trainer/ppo_utils/samples_generator.py`` / ``experience_maker.py``; older releases:
``openrlhf/utils/remote_rm_utils.py`` ``request_api_wrapper``):

* per rollout, POST ``{"query": [q], "prompts": [p], "labels": [l]}`` and parse the body with Python's json;
  ``reward = info.get("rewards")``, ``scores = info.get("scores")`` (else the rewards), ``extra_logs``;
  each becomes ``torch.tensor([value])``; the experiences are concatenated and reshaped to
  ``[-1, n_samples_per_prompt]``;
* older releases POST the whole batch once and build ``torch.tensor(body["rewards"])``;
* reward shaping: ``rloo`` (leave-one-out baseline), ``reinforce_baseline`` / ``dr_grpo`` (group mean),
  ``group_norm`` (GRPO: ``(r - mean) / (std + 1e-9)``, unbiased std), each needing a floating-point tensor.

With torch installed the real tensor operations run; without it the same steps run on lists with torch's dtype
rule (a tensor built from Python ints is int64, and ``std`` / in-place float arithmetic on it raises).
Input: JSON on stdin. Output: JSON on stdout.
"""

import json
import sys
import urllib.request

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:  # CI machines: the dtype rule below stands in for torch
    HAVE_TORCH = False


def post(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=120) as res:
        return json.loads(res.read().decode())


def dtype_of(values):
    """torch.tensor's inferred dtype for a nested list of Python scalars."""
    flat = []

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(v)

    walk(values)
    if any(isinstance(x, float) for x in flat):
        return "float32"
    if all(isinstance(x, bool) for x in flat):
        return "bool"
    return "int64"


def shape_rewards(rows, n, estimator):
    """experience_maker.compute_advantages_and_returns, reward-shaping part. rows: one [reward] per experience."""
    if HAVE_TORCH:
        import torch

        raw = torch.cat([torch.tensor([r]) for r in rows], dim=0)
        rewards = torch.empty_like(raw)
        rewards[torch.arange(len(rows))] = raw
        rewards = rewards.reshape(-1, n)
        if n > 1:
            rewards.std(-1, keepdim=True)  # group_reward_std, logged for every estimator
        if estimator == "rloo":
            baseline = (rewards.sum(-1, keepdim=True) - rewards) / (n - 1)
            rewards = rewards - baseline
        elif estimator in ("reinforce_baseline", "dr_grpo"):
            rewards = rewards - rewards.mean(-1, keepdim=True)
        elif estimator == "group_norm":
            rewards = (rewards - rewards.mean(-1, keepdim=True)) / (rewards.std(-1, keepdim=True) + 1e-9)
        return str(rewards.dtype).replace("torch.", ""), rewards.reshape(-1).tolist()
    dtype = dtype_of([[r] for r in rows])
    if dtype != "float32" and n > 1:
        raise RuntimeError("std and var only support floating point and complex dtypes.")
    flat = [r[0] if isinstance(r, list) else r for r in rows]
    groups = [flat[i : i + n] for i in range(0, len(flat), n)]
    out = []
    for g in groups:
        mean = sum(g) / n
        std = (sum((x - mean) ** 2 for x in g) / (n - 1)) ** 0.5 if n > 1 else float("nan")
        for x in g:
            if estimator == "rloo":
                out.append(x - (sum(g) - x) / (n - 1))
            elif estimator in ("reinforce_baseline", "dr_grpo"):
                out.append(x - mean)
            elif estimator == "group_norm":
                out.append((x - mean) / (std + 1e-9))
            else:
                out.append(x)
    return dtype, out


def main():
    job = json.load(sys.stdin)
    url, n = job["url"], job["n_samples_per_prompt"]
    queries, prompts, labels = job["queries"], job["prompts"], job["labels"]
    # 0.9+: one request per rollout (SingleTurnAgentExecutor), the reply's lists taken as the experience's values.
    rewards, scores, logs = [], [], {}
    for q, p, l in zip(queries, prompts, labels):
        info = post(url, {"query": [q], "prompts": [p], "labels": [l]})
        r = info.get("rewards")
        s = info.get("scores")
        rewards.append(r)
        scores.append(s if s is not None else r)
        for k, v in (info.get("extra_logs") or {}).items():
            logs.setdefault(k, []).append(v)
    result = {"torch": HAVE_TORCH, "per_request": {}, "batched": {}}
    for est in job["estimators"]:
        try:
            dtype, adv = shape_rewards(rewards, n, est)
            result["per_request"][est] = {"dtype": dtype, "advantages": adv}
        except Exception as e:  # what OpenRLHF would die with
            result["per_request"][est] = {"error": str(e)}
    result["scores_dtype"] = dtype_of(scores)
    result["extra_logs_dtype"] = {k: dtype_of(v) for k, v in logs.items()}
    result["extra_logs_mean"] = {k: sum(x[0] for x in v) / len(v) for k, v in logs.items()}
    # older releases: one batched request, torch.tensor(body["rewards"]).
    body = post(url, {"query": queries, "prompts": prompts, "labels": labels})
    for est in job["estimators"]:
        try:
            dtype, adv = shape_rewards([[x] for x in body["rewards"]], n, est)
            result["batched"][est] = {"dtype": dtype, "advantages": adv}
        except Exception as e:
            result["batched"][est] = {"error": str(e)}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
