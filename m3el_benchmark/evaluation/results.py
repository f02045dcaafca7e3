"""``results.json`` (every figure and what produced it) and the model-index block of the CLIP-ND model card."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import ALL_TOPICS, ModelEvaluation
from .scoring import NO_FORMAT

LIBRARIES = ("m3el", "torch", "transformers", "accelerate", "datasets", "huggingface_hub", "numpy", "pillow")
MODEL_INDEX_METRICS = ("accuracy", "top_5", "mrr")


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
) -> dict[str, Any]:
    """The content of ``results.json``: run settings, datasets, models, skipped models and every record.

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
        }
    )


def model_index_results(
    evaluation: ModelEvaluation, text_format: str, dataset: str | None = None
) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` on all topics at ``text_format`` (of ``dataset`` only, if given): what
    ``build_model_card(results=...)`` takes."""
    results = {}
    for record in evaluation.records:
        if dataset is not None and record.get("dataset", dataset) != dataset:
            continue
        if record["topic"] == ALL_TOPICS and record["text_format"] in (text_format, NO_FORMAT):
            results[record["task"]] = {metric: round(record[metric], 4) for metric in MODEL_INDEX_METRICS}
    return results


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
