"""RLCS, the GLM-4.1V curriculum, as verl's curriculum sampler: prompts drawn by a ``glmv curriculum serve`` service.

verl's hook (``verl/experimental/dataset/sampler.py``): ``data.sampler.class_path`` / ``class_name`` name a subclass
of ``AbstractCurriculumSampler``; the trainer constructs it with ``(data_source=dataset, data_config=config.data)``,
the dataloader iterates it (``data.dataloader_num_workers=0`` is required, so every batch is drawn after the
previous step's ``update``), and after each step the trainer calls ``sampler.update(batch=batch)``.

This sampler registers the dataset's prompts with the service (a prompt's key is ``extra_info["id"]`` or
``"<data_source>/<extra_info['index']>"``, as verl's example preprocessing writes them; domain and difficulty come
from ``extra_info["domain"]`` / ``extra_info["difficulty"]``, else the data source), asks the service for each
batch's prompts (RLCS tiers from offline pass@k and online results, domain mix), and posts each step's per-prompt
rewards (``token_level_scores`` summed per response; correctness from the reward adapter's ``acc`` when present).
The service answers with the expansion EMA: ``self.expansion["ema"]`` and ``self.gen_prompts`` (prompts to roll
out for ``train_batch_size`` useful groups) are there for a DAPO-style recipe sizing ``gen_batch_size``.

Standard library only; it subclasses verl's ``AbstractCurriculumSampler`` when verl is installed (torch's
``Sampler`` when only torch is, a plain class otherwise), so the same file runs in tests without either.

    data.sampler.class_path=integrations/verl/glmv_curriculum.py
    data.sampler.class_name=GlmvCurriculumSampler
    data.dataloader_num_workers=0
    +data.sampler.url=http://127.0.0.1:8200          # or GLMV_CURRICULUM_URL
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8200"

try:  # the real base class, so verl's isinstance checks pass
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler as _Base
except Exception:  # noqa: BLE001 - verl absent (tests, other trainers)
    try:
        from torch.utils.data import Sampler as _Base
    except Exception:  # noqa: BLE001 - torch absent too

        class _Base:  # type: ignore[no-redef]
            pass


def _get(cfg, key, default=None):
    """A key of a dict or an OmegaConf DictConfig (both have .get)."""
    if cfg is None:
        return default
    try:
        value = cfg.get(key, default)
    except Exception:  # noqa: BLE001
        value = getattr(cfg, key, default)
    return default if value is None else value


def _post(url: str, body: dict, retries: int = 5) -> dict:
    data = json.dumps(body).encode("utf-8")
    last = None
    for attempt in range(retries):
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as res:
                return json.loads(res.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            if e.code < 500:
                raise RuntimeError(f"glmv curriculum service {url}: HTTP {e.code}: {detail}") from None
            last = f"HTTP {e.code}: {detail}"
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last = str(e)
        time.sleep(min(8.0, 0.5 * 2**attempt))
    raise RuntimeError(f"glmv curriculum service {url}: no answer after {retries} tries ({last})")


def _scalar(x):
    return x.item() if hasattr(x, "item") and callable(x.item) else x


def prompt_key(data_source, extra_info) -> str:
    """The prompt id shared by the sampler, the reward adapter and offline pass@k files."""
    extra = extra_info if isinstance(extra_info, dict) else {}
    if isinstance(extra.get("id"), str) and extra["id"]:
        return extra["id"]
    if extra.get("index") is not None:
        return f"{data_source}/{_scalar(extra['index'])}"
    raise ValueError(
        f"glmv curriculum: a row of data source {data_source!r} has neither extra_info.id nor extra_info.index; "
        "verl's example preprocessing writes extra_info.index — every prompt needs a unique key"
    )


def _rows(dataset):
    """(data_source, extra_info) per dataset position, from verl's RLHFDataset dataframe when there is one."""
    frame = getattr(dataset, "dataframe", None)
    if frame is not None:
        sources = list(frame["data_source"])
        extras = list(frame["extra_info"]) if "extra_info" in _columns(frame) else [{}] * len(sources)
        return list(zip(sources, extras))
    return [(row.get("data_source", "default"), row.get("extra_info") or {}) for row in (dataset[i] for i in range(len(dataset)))]


def _columns(frame):
    names = getattr(frame, "column_names", None)
    return list(names) if names is not None else list(frame.keys())


def _sum_rows(scores):
    if hasattr(scores, "sum") and not isinstance(scores, list):
        return [float(x) for x in scores.sum(-1).tolist()]
    return [float(sum(r)) for r in scores]


class GlmvCurriculumSampler(_Base):
    """verl curriculum sampler backed by the glmv RLCS service."""

    def __init__(self, data_source, data_config):
        self.data_config = data_config
        sampler_cfg = _get(data_config, "sampler", {})
        self.url = str(_get(sampler_cfg, "url") or os.environ.get("GLMV_CURRICULUM_URL") or DEFAULT_URL).rstrip("/")
        self.train_batch_size = int(_get(data_config, "train_batch_size"))
        self.batch_size = int(_get(data_config, "gen_batch_size", self.train_batch_size))
        rows = _rows(data_source)
        self.keys = [prompt_key(ds, ex) for ds, ex in rows]
        self.position = {}
        for i, k in enumerate(self.keys):
            if k in self.position:
                raise ValueError(f"glmv curriculum: rows {self.position[k]} and {i} have the same key {k!r}")
            self.position[k] = i
        if self.batch_size > len(self.keys):
            raise ValueError(f"glmv curriculum: batch size {self.batch_size} exceeds the {len(self.keys)} prompts")
        prompts = []
        for (ds, ex), k in zip(rows, self.keys):
            ex = ex if isinstance(ex, dict) else {}
            p = {"id": k, "domain": str(ex.get("domain") or ds)}
            if isinstance(_scalar(ex.get("difficulty")), (int, float)) and 1 <= _scalar(ex["difficulty"]) <= 5:
                p["difficulty"] = _scalar(ex["difficulty"])
            prompts.append(p)
        reg = _post(f"{self.url}/curriculum/register", {"prompts": prompts})
        self.step = int(reg.get("lastStep", -1)) + 1  # a restarted run continues the step count
        self.expansion = None
        self.gen_prompts = None
        self.last_update = None

    def __len__(self):
        return len(self.keys)

    def __iter__(self):
        for _ in range(len(self.keys) // self.batch_size):
            out = _post(f"{self.url}/curriculum/draw", {"n": self.batch_size, "step": self.step})
            self.step += 1
            for p in out["prompts"]:
                yield self.position[p["id"]]

    def update(self, batch) -> None:
        """verl calls this after each training step with the step's batch (rewards included)."""
        nt = batch.non_tensor_batch
        tensors = batch.batch
        scores_key = "token_level_scores" if "token_level_scores" in tensors else "token_level_rewards"
        scores = _sum_rows(tensors[scores_key])
        acc = nt["acc"] if "acc" in nt else None
        groups = {}
        for i, (ds, ex) in enumerate(zip(nt["data_source"], nt["extra_info"])):
            g = groups.setdefault(prompt_key(ds, ex), {"rewards": [], "correct": []})
            g["rewards"].append(scores[i])
            if acc is not None:
                g["correct"].append(float(_scalar(acc[i])))
        body = {
            "step": self.step - 1,
            "trainPrompts": self.train_batch_size,
            "groups": [
                {"id": k, "rewards": g["rewards"], **({"correct": g["correct"]} if acc is not None else {})}
                for k, g in groups.items()
            ],
        }
        self.last_update = _post(f"{self.url}/curriculum/update", body)
        self.expansion = self.last_update["expansion"]
        self.gen_prompts = self.last_update.get("genPrompts")
