"""Choosing Gan21-OT's weights on validation (spec A5: lambda_t, lambda_v from `rescoring.WEIGHT_GRID`).

lambda_t only changes the textual mentions' scores and lambda_v only the visual ones', so each is chosen alone: the
value of the grid with the best Top-1 accuracy (= micro-F1, every mention being linked) of its settings on the
validation mentions, the smaller on a tie. The embeddings come from the cache, so each grid point costs one
rescoring, not an encoder pass. `select_on_validation` is what the benchmark run calls before it scores a dataset;
a dataset without a validation split keeps the default weights, and the log and ``results.json`` say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from m3el_dataset import loading

from ...baselines.base import EmbeddingAdapter
from ...evaluation.data import KnowledgeBase, MentionTable, load_kb, load_mentions
from ...evaluation.evaluate import evaluate_model
from ...evaluation.figures import FigureSettings
from ...evaluation.kb_ranking import KBRankingSettings
from ...evaluation.scoring import Setting
from .rescoring import WEIGHT_GRID, Gan21JointStep, JointConfig

if TYPE_CHECKING:
    from ...run import LoadedDataset

logger = logging.getLogger(__name__)

VALIDATION_SPLIT = "validation"
WEIGHTS = {"lambda_t": True, "lambda_v": False}
"""Each weight, and whether it rescores the textual mentions (Tm-* settings) or the visual ones (Im-*)."""


def best_weights(accuracies: Mapping[str, Mapping[float, float]]) -> dict[str, float]:
    """Per weight name, the grid value of highest accuracy, the smaller value on a tie (less rescoring)."""
    return {name: max(values, key=lambda w: (values[w], -w)) for name, values in accuracies.items() if values}


def grid_accuracies(
    evaluate: Callable[[JointConfig], Sequence[dict[str, Any]]], config: JointConfig, grid: Sequence[float]
) -> dict[str, dict[float, float]]:
    """Per weight name and grid value, the mean ACC over all mentions of the settings that weight rescores;
    ``evaluate(config)`` returns the figure records with both weights set to the grid value."""
    accuracies: dict[str, dict[float, float]] = {name: {} for name in WEIGHTS}
    for weight in grid:
        records = evaluate(replace(config, lambda_t=weight, lambda_v=weight))
        for name, textual in WEIGHTS.items():
            chosen = [r["accuracy"] for r in records if r["topic"] == "all" and r["task"].startswith("Tm") == textual]
            if chosen:
                accuracies[name][weight] = sum(chosen) / len(chosen)
    return accuracies


def choose_weights(
    adapter: EmbeddingAdapter,
    validation: MentionTable,
    settings: Sequence[Setting],
    run: tuple,
    config: JointConfig | None = None,
    grid: Sequence[float] = WEIGHT_GRID,
    kb: KnowledgeBase | None = None,
    kb_settings: KBRankingSettings | None = None,
    nil_policy: str = "wrong",
) -> tuple[JointConfig, dict[str, dict[float, float]]]:
    """``config`` with the best lambda_t and lambda_v on ``validation``, and each grid point's mean Top-1.

    ``adapter``'s own ``joint_step`` (if any) is set aside while choosing and put back; ``run`` is
    `evaluate_model`'s ``(accelerator, encoding, cache_root, text_formats)``; with ``kb`` the validation mentions
    are ranked against the knowledge base (``kb`` protocol), as the test mentions will be.
    """
    config = config or JointConfig()
    own = getattr(adapter, "joint_step", None)
    figures = FigureSettings(nil_policy, n_resamples=1)  # only ACC is read, never its interval nor a mistake

    def evaluate(candidate: JointConfig) -> list[dict[str, Any]]:
        adapter.joint_step = Gan21JointStep(candidate)
        return evaluate_model(adapter, validation, settings, *run, VALIDATION_SPLIT, kb, kb_settings, figures,
                              gallery=False).records  # fmt: skip

    try:
        accuracies = grid_accuracies(evaluate, config, grid)
    finally:
        if own is None:
            del adapter.joint_step
        else:
            adapter.joint_step = own
    return replace(config, **best_weights(accuracies)), accuracies


def _fallback(step: Gan21JointStep, dataset: str, reason: str) -> None:
    logger.warning("%s on %s: %s; the default weights lambda_t = %s, lambda_v = %s are used, not chosen on "
                   "validation.", step.name, dataset, reason, step.config.lambda_t, step.config.lambda_v)  # fmt: skip
    step.selection = {"weights_chosen_on": f"none: default weights ({reason})", "weight_grid": list(WEIGHT_GRID)}


def select_on_validation(
    adapter: EmbeddingAdapter, data: LoadedDataset, run: tuple, kb_settings: KBRankingSettings | None = None
) -> None:
    """Before ``data`` is scored: set the weights of ``adapter``'s Gan21-OT step to those chosen on the dataset's
    validation split (under the dataset's protocol and nil policy), recorded in the step's ``selection``.

    Does nothing for another step (Gan21-Naive has no weight); falls back, loudly, to the step's weights when the
    dataset has no validation split or ranks by a protocol the step does not rescore (``retrieved``).
    """
    step, spec = getattr(adapter, "joint_step", None), data.spec
    if not isinstance(step, Gan21JointStep):
        return
    step.config = replace(step.config, **step.default_weights)  # each dataset chooses afresh
    if spec.protocol not in ("candidates", "kb"):
        return _fallback(step, spec.name, f"the {spec.protocol} protocol is not rescored by the joint step")
    try:
        formats = spec.mention_text_formats
        validation = load_mentions(data.path, [VALIDATION_SPLIT], spec.topics, formats, drop_nil=spec.drop_nil)
    except loading.MissingSplitError:
        return _fallback(step, spec.name, f"{data.path} has no {VALIDATION_SPLIT} split")
    except ValueError as error:  # e.g. no validation mention of the chosen topics
        return _fallback(step, spec.name, f"its {VALIDATION_SPLIT} split cannot be used: {error}")
    kb = load_kb(data.path, validation.inputs) if spec.protocol == "kb" else None
    chosen, accuracies = choose_weights(adapter, validation, data.settings, run, step.config, WEIGHT_GRID, kb,
                                        kb_settings, spec.nil_policy)  # fmt: skip
    step.config = chosen
    overlap = VALIDATION_SPLIT in spec.splits
    step.selection = {
        "weights_chosen_on": VALIDATION_SPLIT + (" (also a scored split: the figures are not held out)" if overlap
                                                 else ""),
        "weight_grid": list(WEIGHT_GRID),
        "validation_mentions": len(validation),
        "validation_accuracy": {name: {str(w): a for w, a in values.items()} for name, values in accuracies.items()},
    }  # fmt: skip
    logger.info("%s on %s: lambda_t = %s, lambda_v = %s chosen on %d validation mentions from %s", step.name,
                spec.name, chosen.lambda_t, chosen.lambda_v, len(validation), list(WEIGHT_GRID))  # fmt: skip
    if overlap:
        logger.warning("%s on %s: the weights were chosen on the validation split, which is also scored.",
                       step.name, spec.name)  # fmt: skip
