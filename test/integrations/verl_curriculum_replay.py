"""Replays verl's curriculum-sampler protocol against integrations/verl/glmv_curriculum.py and a glmv service.

Read from verl (``verl/trainer/main_ppo.py`` ``create_rl_sampler``, ``verl/trainer/ppo/ray_trainer.py``):
``load_extern_object(class_path, class_name)(data_source=dataset, data_config=config.data)``, the requirement
``dataloader_num_workers == 0``, a ``StatefulDataLoader(batch_size=gen_batch_size or train_batch_size,
drop_last=True, sampler=sampler)`` iterated one batch per step, rollouts repeated ``n`` times per prompt with a
``uid`` each, the batch reordered (``balance_batch``), rewards in ``token_level_scores`` and the reward adapter's
``acc`` in ``non_tensor_batch``, then ``sampler.update(batch=batch)``.

The rollouts are synthetic: prompt ``i`` of the fake dataset is always solved when ``i % 4 == 0``, never when
``i % 4 == 1``, and half the time otherwise. Uses torch's BatchSampler when torch is installed, its semantics
otherwise. Input: JSON on stdin; output: JSON.
"""

import importlib.util
import json
import random
import sys


def load_extern_object(module_path, object_name):
    spec = importlib.util.spec_from_file_location("custom_module", module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    spec.loader.exec_module(module)
    return getattr(module, object_name)


class FakeDataset:
    """What the sampler reads of verl's RLHFDataset: ``dataframe`` columns and ``len``."""

    def __init__(self, n):
        self.dataframe = {
            "data_source": ["hiyouga/geometry3k" if i % 2 else "openai/gsm8k" for i in range(n)],
            "extra_info": [{"split": "train", "index": i} for i in range(n)],
        }

    def __len__(self):
        return len(self.dataframe["data_source"])


class Batch:
    def __init__(self, non_tensor_batch, batch):
        self.non_tensor_batch = non_tensor_batch
        self.batch = batch


def batches(sampler, batch_size):
    try:
        from torch.utils.data import BatchSampler

        yield from BatchSampler(sampler, batch_size, drop_last=True)
    except ImportError:
        buf = []
        for idx in sampler:
            buf.append(idx)
            if len(buf) == batch_size:
                yield buf
                buf = []


def main():
    job = json.load(sys.stdin)
    data_config = {
        "train_batch_size": job["train_batch_size"],
        "gen_batch_size": job["gen_batch_size"],
        "dataloader_num_workers": 0,
        "sampler": {"class_path": job["path"], "class_name": "GlmvCurriculumSampler", "url": job["url"]},
    }
    assert data_config.get("dataloader_num_workers", 8) == 0
    cls = load_extern_object(data_config["sampler"]["class_path"], data_config["sampler"]["class_name"])
    dataset = FakeDataset(job["size"])
    sampler = cls(data_source=dataset, data_config=data_config)
    rng = random.Random(0)
    n = job["n"]
    steps = []
    def epochs():  # for epoch in range(total_epochs): for batch_dict in self.train_dataloader
        while True:
            yield from batches(sampler, data_config["gen_batch_size"])

    for step, indices in enumerate(epochs()):
        if step >= job["steps"]:
            break
        rows = []
        for i in indices:
            for _ in range(n):  # batch.repeat(n, interleave=True)
                ok = i % 4 == 0 or (i % 4 > 1 and rng.random() < 0.5)
                rows.append((i, 1.0 if ok else 0.0))
        rng.shuffle(rows)  # balance_batch reorders the rollouts
        nt = {
            "data_source": [dataset.dataframe["data_source"][i] for i, _ in rows],
            "extra_info": [dict(dataset.dataframe["extra_info"][i]) for i, _ in rows],
            "uid": [f"uid-{i}" for i, _ in rows],
            "acc": [r for _, r in rows],
        }
        # reward at the last valid token of each response, zeros before it
        scores = [[0.0, 0.0, r] for _, r in rows]
        sampler.update(batch=Batch(nt, {"token_level_scores": scores}))
        per_prompt = {}
        for i, r in rows:
            per_prompt.setdefault(i, []).append(r)
        invalid = sum(1 for v in per_prompt.values() if sum(v) in (0, len(v)))
        steps.append(
            {
                "indices": list(indices),
                "invalid_share": invalid / len(per_prompt),
                "expansion": sampler.expansion,
                "gen_prompts": sampler.gen_prompts,
                "populations": sampler.last_update["populations"],
            }
        )
    json.dump({"len": len(sampler), "base": type(sampler).__mro__[1].__name__, "steps": steps}, sys.stdout)


if __name__ == "__main__":
    main()
