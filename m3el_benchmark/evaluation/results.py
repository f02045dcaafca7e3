"""``results.json`` (every figure and what produced it) and the model-index block of the CLIP-ND model card.

Each record of ``results`` is one figure set: model, dataset, protocol, task, text format and topic; the metrics;
``num_mentions`` (n, the mentions scored), ``ci95`` (each metric's 95 % bootstrap interval over them),
``nil_policy`` and ``num_excluded`` (`figures`). ``uncertainty`` says how the intervals were drawn, ``comparisons``
holds each model's paired ACC difference to the reference model (CLIP-ND).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .dataset_specs import DatasetSpec
from .evaluate import ALL_TOPICS, ModelEvaluation
from .scoring import NO_FORMAT

LIBRARIES = ("m3el", "torch", "transformers", "accelerate", "datasets", "huggingface_hub", "numpy", "pillow")
MODEL_INDEX_METRICS = ("accuracy", "top_5", "mrr")
"""The model index's metrics; a top-k is left out where no mention is ranked against more than k entities (with
M3EL's three candidates top-5 is only the share of mentions whose gold is present, the same for every task)."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the figures."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def model_summary(evaluation: ModelEvaluation) -> dict[str, Any]:
    """What a run records about one model besides its figures."""
    info = evaluation.info
    return {
        "name": info.name,
        "source": info.source,
        "revision": info.revision,
        "family": info.family,
        "model_type": info.model_type,
        "fusion": info.fusion,
        "dtype": info.dtype,
        "text_tokens": info.text_tokens,
        "text_tokens_source": info.text_tokens_source,
        "encoding": {
            kind: {
                "unique_inputs": s.unique,
                "encoder_passes": s.encoded,
                "cache_hits": s.cached,
                "undecodable": s.undecodable,
                "non_finite_embeddings": s.non_finite,
                "seconds": round(s.seconds, 3),
            }
            for kind, s in evaluation.encoding.items()
        },  # fmt: skip
        "pass_ratio": evaluation.pass_ratio,
        "undecodable_images": evaluation.undecodable_images,
        "non_finite_embeddings": sum(s.non_finite for s in evaluation.encoding.values()),
        "seconds": round(evaluation.seconds, 3),
        **({"system": evaluation.extra} if evaluation.extra else {}),  # by dataset: a document-level system's settings
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def build_results(
    evaluations: Sequence[ModelEvaluation],
    skipped: dict[str, str],
    run: dict[str, Any],
    datasets: Sequence[dict[str, Any]],
    uncertainty: dict[str, Any] | None = None,
    comparisons: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The content of ``results.json``: run settings, datasets, models, skipped models, every record, how the
    intervals were drawn and the paired comparisons.

    ``dataset`` is the first (in a one-dataset run, the only) dataset, ``datasets`` every one.
    """
    return _json_safe(
        {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": library_versions(),
            "run": run,
            "dataset": datasets[0],
            "datasets": list(datasets),
            "models": [model_summary(evaluation) for evaluation in evaluations],
            "skipped_models": skipped,
            "results": [record for evaluation in evaluations for record in evaluation.records],
            "uncertainty": uncertainty or {},
            "comparisons": list(comparisons),
        }
    )


def _index_metrics(record: dict[str, Any]) -> list[str]:
    ranked_against = record.get("max_candidates") or 0
    return [m for m in MODEL_INDEX_METRICS if not m.startswith("top_") or int(m.split("_")[1]) < ranked_against]


def model_index_results(evaluation: ModelEvaluation, spec: DatasetSpec, text_format: str) -> dict[str, Any]:
    """What the model card's ``model-index`` gets from one dataset: its task config (protocol, nil policy, splits,
    text format) and ``results``, ``{task: {metric: value}}`` on all topics at ``text_format`` (what
    ``build_model_card(results=...)`` takes), with each figure's n and interval beside them."""
    results, n, ci95 = {}, {}, {}
    for record in evaluation.records:
        if record.get("dataset", spec.name) != spec.name or record["topic"] != ALL_TOPICS:
            continue
        if record["text_format"] in (text_format, NO_FORMAT) and record["num_mentions"] > 0:
            metrics = _index_metrics(record)
            results[record["task"]] = {metric: round(record[metric], 4) for metric in metrics}
            n[record["task"]] = record["num_mentions"]
            ci95[record["task"]] = {metric: record["ci95"][metric] for metric in metrics}
    config = {"protocol": spec.protocol, "nil_policy": spec.nil_policy, "splits": list(spec.splits),
              "text_format": text_format}  # fmt: skip
    return {**config, "results": results, "num_mentions": n, "ci95": _json_safe(ci95)}


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
