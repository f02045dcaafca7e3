"""Choosing Gan21-OT's weights on validation (spec A5: lambda_t, lambda_v from `rescoring.WEIGHT_GRID`).

lambda_t only changes the textual mentions' scores and lambda_v only the visual ones', so each is chosen alone: the
value of the grid with the best Top-1 accuracy (micro-F1) of its settings on the validation mentions, the smaller
on a tie. The embeddings come from the cache, so each grid point costs one rescoring, not an encoder pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ...baselines.base import EmbeddingAdapter
from ...evaluation.data import MentionTable
from ...evaluation.evaluate import evaluate_model
from ...evaluation.scoring import Setting
from .rescoring import WEIGHT_GRID, Gan21JointStep, JointConfig


def choose_weights(
    adapter: EmbeddingAdapter,
    validation: MentionTable,
    settings: Sequence[Setting],
    run: tuple,
    config: JointConfig | None = None,
    grid: Sequence[float] = WEIGHT_GRID,
) -> tuple[JointConfig, dict[str, dict[float, float]]]:
    """``config`` with the best lambda_t and lambda_v on ``validation``, and each grid point's mean Top-1.

    ``adapter`` is a plain adapter (its own ``joint_step``, if any, is replaced while choosing); ``run`` is
    `evaluate_model`'s ``(accelerator, encoding, cache_root, text_formats)``.
    """
    config = config or JointConfig()
    accuracies: dict[str, dict[float, float]] = {"lambda_t": {}, "lambda_v": {}}
    for weight in grid:
        adapter.joint_step = Gan21JointStep(replace(config, lambda_t=weight, lambda_v=weight))
        records = evaluate_model(adapter, validation, settings, *run, "validation").records
        for name, textual in (("lambda_t", True), ("lambda_v", False)):
            chosen = [r["accuracy"] for r in records if r["topic"] == "all" and r["task"].startswith("Tm") == textual]
            if chosen:
                accuracies[name][weight] = sum(chosen) / len(chosen)
    del adapter.joint_step
    best = {name: max(values, key=lambda w: (values[w], -w)) for name, values in accuracies.items() if values}
    return replace(config, **best), accuracies
