"""Replays verl's reward managers calling a custom reward function, as verl's own code does it.

Read from verl (volcengine/verl, ``verl/trainer/ppo/reward.py`` ``get_custom_reward_fn``,
``verl/workers/reward_manager/naive.py`` and ``batch.py``, ``verl/experimental/reward_loop/reward_manager/naive.py``):

* the function is loaded from ``custom_reward_function.path`` / ``name`` (``load_extern_object``: a module loaded
  from the file) and wrapped so ``custom_reward_function.reward_kwargs`` are merged into every call;
* naive manager: per item, ``extra_info`` gains ``num_turns`` and ``rollout_reward_scores``, then
  ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)``; a dict result's ``score`` goes into
  ``reward_tensor[i, valid_response_length - 1]`` and every key is appended to ``reward_extra_info``;
* batch manager: ``compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=, **reward_kwargs)``;
* reward loop (experimental naive): as naive, plus ``reward_router_address`` / ``reward_model_tokenizer`` keyword
  arguments when a reward router runs.

``solution_str`` is what verl decodes (``tokenizer.decode(valid_response_ids, skip_special_tokens=True)``); the
test does that decoding with the model's tokenizer and hands the strings in. Input: JSON on stdin; output: JSON.
"""

import importlib.util
import json
import sys
from collections import defaultdict
from functools import partial


def load_extern_object(module_path, object_name):
    spec = importlib.util.spec_from_file_location("custom_module", module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    spec.loader.exec_module(module)
    return getattr(module, object_name)


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
    merged_kwargs = {**kwargs, **extra_kwargs}
    return raw_fn(*args, **merged_kwargs)


def get_custom_reward_fn(path, name, reward_kwargs):
    raw_fn = load_extern_object(path, name)
    return partial(_call_with_kwargs, raw_fn, dict(reward_kwargs))


def naive(fn, rows, extra_call_kwargs):
    rewards, extra = [], defaultdict(list)
    for row in rows:
        extra_info = dict(row.get("extra_info") or {})
        extra_info["num_turns"] = None
        extra_info["rollout_reward_scores"] = {}
        score = fn(
            data_source=row["data_source"],
            solution_str=row["solution_str"],
            ground_truth=row["ground_truth"],
            extra_info=extra_info,
            **extra_call_kwargs,
        )
        if isinstance(score, dict):
            reward = score["score"]
            for k, v in score.items():
                extra[k].append(v)
        else:
            reward = score
        rewards.append(reward)
    return rewards, extra


def batch(fn, rows, manager_kwargs):
    extras = [dict(row.get("extra_info") or {}) for row in rows]
    for e in extras:
        e["rollout_reward_scores"] = {}
    scores = fn(
        data_sources=[row["data_source"] for row in rows],
        solution_strs=[row["solution_str"] for row in rows],
        ground_truths=[row["ground_truth"] for row in rows],
        extra_infos=extras,
        **manager_kwargs,
    )
    rewards, extra = [], defaultdict(list)
    for s in scores:
        if isinstance(s, dict):
            rewards.append(s["score"])
            for k, v in s.items():
                extra[k].append(v)
        else:
            rewards.append(s)
    return rewards, extra


def main():
    job = json.load(sys.stdin)
    fn = get_custom_reward_fn(job["path"], job["name"], job.get("reward_kwargs", {}))
    rows = job["rows"]
    if job["manager"] == "naive":
        rewards, extra = naive(fn, rows, {})
    elif job["manager"] == "reward_loop":
        rewards, extra = naive(fn, rows, {"reward_router_address": "127.0.0.1:9", "reward_model_tokenizer": None})
    elif job["manager"] == "batch":
        rewards, extra = batch(fn, rows, job.get("manager_kwargs", {}))
    else:
        raise SystemExit(f"unknown manager {job['manager']}")
    # reward_tensor[i, valid_response_length - 1] = reward, as a float32 tensor would hold it.
    tensor = []
    for row, r in zip(rows, rewards):
        line = [0.0] * row["response_length"]
        line[row["valid_response_length"] - 1] = float(r)
        tensor.append(line)
    json.dump(
        {
            "rewards": rewards,
            "reward_types": [type(r).__name__ for r in rewards],
            "extra": extra,
            "extra_types": {k: sorted({type(x).__name__ for x in v}) for k, v in extra.items()},
            "reward_tensor": tensor,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
