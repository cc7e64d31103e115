"""glmv rewards for verl: a ``compute_score`` that asks a running ``glmv reward serve`` to score each response.

Standard library only (urllib), so it loads in any verl worker. Configure verl with::

    custom_reward_function.path=integrations/verl/glmv_reward.py
    custom_reward_function.name=compute_score            # reward_model.reward_manager=naive (default)
    custom_reward_function.name=compute_score_batch      # reward_model.reward_manager=batch

and point it at the server with ``GLMV_REWARD_URL`` (default ``http://127.0.0.1:8100``) or
``custom_reward_function.reward_kwargs.url=...``.

verl decodes responses with ``skip_special_tokens=True``. GLM-4.1V / GLM-4.5V tokenizers (and the ones ``glmv``
trains) flag ``<think>``, ``</think>``, ``<answer>``, ``</answer>``, ``<|begin_of_box|>`` and ``<|end_of_box|>``
``special: false``, so those survive decoding and the server sees the full GLM format; any end-of-turn token left
in the text is stripped by the server exactly as for OpenRLHF.

The returned dict has ``score`` (the reward, a float) and float diagnostics verl logs per sample: ``acc``,
``format_fail``, ``unjudged`` (a needed judge was unavailable), ``error`` (bad sample or reference).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8100"
TIMEOUT_S = float(os.environ.get("GLMV_REWARD_TIMEOUT", "300"))
RETRIES = int(os.environ.get("GLMV_REWARD_RETRIES", "5"))


def _plain(value):
    """JSON-ready copy: numpy scalars and arrays (verl's non-tensor batch holds them) become Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy array or scalar, torch tensor
        return _plain(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _post(url: str, body: dict) -> dict:
    data = json.dumps(_plain(body)).encode("utf-8")
    last = None
    for attempt in range(max(1, RETRIES)):
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as res:
                return json.loads(res.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            if e.code < 500:  # the request itself is wrong: retrying cannot help
                raise RuntimeError(f"glmv reward server {url}: HTTP {e.code}: {detail}") from None
            last = f"HTTP {e.code}: {detail}"
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            last = str(e)
        time.sleep(min(8.0, 0.5 * 2**attempt))
    raise RuntimeError(f"glmv reward server {url}: no answer after {RETRIES} tries ({last})")


def _base(kwargs: dict) -> str:
    return str(kwargs.get("url") or os.environ.get("GLMV_REWARD_URL") or DEFAULT_URL).rstrip("/")


def _item(data_source, solution_str, ground_truth, extra_info) -> dict:
    return {
        "data_source": data_source,
        "solution_str": solution_str,
        "ground_truth": ground_truth,
        "extra_info": extra_info if isinstance(extra_info, dict) else {},
    }


def _view(r: dict) -> dict:
    return {
        "score": float(r["score"]),
        "acc": float(bool(r.get("acc"))),
        "format_fail": float(str(r.get("path", "")) in ("gate:format", "gate:extract")),
        "unjudged": float(r.get("status") == "unjudged"),
        "error": float(r.get("status") == "error"),
    }


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's per-sample reward function (naive reward manager, reward loop). Extra keyword arguments verl passes
    (``reward_kwargs``, ``reward_router_address``, ``reward_model_tokenizer``) are accepted; ``url`` is read."""
    out = _post(f"{_base(kwargs)}/verl/compute_score", _item(data_source, solution_str, ground_truth, extra_info))
    return _view(out)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, **kwargs):
    """verl's batch reward function (``reward_model.reward_manager=batch``): one request for the whole batch."""
    n = len(solution_strs)
    if not (len(data_sources) == len(ground_truths) == len(extra_infos) == n):
        raise ValueError(
            f"compute_score_batch: {len(data_sources)} data_sources, {n} solution_strs, "
            f"{len(ground_truths)} ground_truths, {len(extra_infos)} extra_infos; expected equal lengths"
        )
    items = [_item(data_sources[i], solution_strs[i], ground_truths[i], extra_infos[i]) for i in range(n)]
    out = _post(f"{_base(kwargs)}/verl/compute_score_batch", {"items": items})
    results = out.get("results")
    if not isinstance(results, list) or len(results) != n:
        raise RuntimeError(f"glmv reward server: expected {n} results, got {str(out)[:300]}")
    return [_view(r) for r in results]
