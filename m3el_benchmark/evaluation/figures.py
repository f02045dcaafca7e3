"""From each mention's gold rank to the figures a run reports: metrics, n, bootstrap intervals and the nil policy.

For every setting (task, text format) and every group (``all`` mentions, then each topic) a record carries the
metrics of the ``m3el_accuracy`` core (with ``micro_f1``, Gan et al.'s figure: equal to ACC, since every mention
is linked), the number of mentions scored (``num_mentions``: the n of the figure), a 95 % bootstrap interval over
those mentions for each metric (``ci95``, `m3el_accuracy.bootstrap`, seeded) and the policy that decided which
mentions were scored (``nil_policy``). `paired_comparisons` adds each model's ACC minus a reference model's on the
same mentions, with the paired bootstrap interval of the difference.

The gold-absent policy (``nil_policy``) says what a mention whose gold is not among the entities it is ranked
against (its candidates, or under the ``kb`` protocol the knowledge base: NIL mentions and QIDs the KB lacks) counts:

* ``wrong`` (default): it is scored, and wrong at every k. On M3EL, where 14.8 % of the mentions lack their gold
  among the candidates, this caps ACC at 85.2 %.
* ``exclude``: it is left out of the figures; ``num_excluded`` counts those left out of each record.

Whether the gold is present depends on the data only, never on a model, so every model is scored on the same
mentions under either policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..m3el_accuracy.bootstrap import CONFIDENCE, DEFAULT_RESAMPLES, paired_difference, ranking_intervals
from ..m3el_accuracy.ranking_metrics import (
    DEFAULT_KS,
    NO_GOLD,
    compute_ranking_metrics_from_ranks,
    micro_f1,
    per_mention_columns,
)
from .scoring import Setting

ALL_TOPICS = "all"
NIL_POLICIES = ("wrong", "exclude")
"""What a mention whose gold is absent counts as: wrong at every k, or left out of the figures."""
INTERVAL_METRICS = ("accuracy", *(f"top_{k}" for k in DEFAULT_KS), "mrr", "mean_rank")
"""The metrics of a record, each with its interval in ``ci95``."""


@dataclass(frozen=True)
class FigureSettings:
    """How ranks become figures.

    Args:
        nil_policy (`str`, *optional*, defaults to ``"wrong"``): one of `NIL_POLICIES`.
        seed (`int`, *optional*, defaults to 0): seed of the bootstrap resamples (the run's ``--seed``).
        n_resamples (`int`, *optional*, defaults to 1000): bootstrap resamples per interval.
        confidence (`float`, *optional*, defaults to 0.95): the share of the resamples an interval covers.
    """

    nil_policy: str = "wrong"
    seed: int = 0
    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = CONFIDENCE

    def __post_init__(self):
        if self.nil_policy not in NIL_POLICIES:
            raise ValueError(f"Unknown nil_policy {self.nil_policy!r}; choose from {', '.join(NIL_POLICIES)}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"The bootstrap seed (--seed) is {self.seed!r}; pass a whole number >= 0.")

    def describe(self) -> dict[str, Any]:
        """What ``results.json`` says about the intervals."""
        return {"method": "percentile bootstrap over the scored mentions; every model is resampled alike (paired)",
                "resamples": self.n_resamples, "confidence": self.confidence, "seed": self.seed}  # fmt: skip


@dataclass
class SettingRanks:
    """Each mention's gold rank (-1: gold absent) in every setting of one dataset, kept for paired comparisons."""

    settings: list[tuple[str, str]]
    ranks: np.ndarray
    nil_policy: str

    def scored(self) -> np.ndarray:
        """The mentions the figures count: all of them, or under ``exclude`` those whose gold is present."""
        absent = self.ranks == NO_GOLD
        assert (absent == absent[:, :1]).all(), "the gold's presence depends on the data, not on the setting"
        return ~absent[:, 0] if self.nil_policy == "exclude" else np.ones(len(self.ranks), dtype=bool)

    def column(self, task: str, text_format: str) -> np.ndarray | None:
        """The ranks of one setting, ``None`` if it was not scored."""
        if (task, text_format) not in self.settings:
            return None
        return self.ranks[:, self.settings.index((task, text_format))]


def _empty_metrics() -> dict[str, Any]:
    """The figures of a group with no mention left to score (every gold absent under ``exclude``)."""
    return {**dict.fromkeys(INTERVAL_METRICS, float("nan")), "micro_f1": float("nan"), "num_mentions": 0,
            "num_no_gold": 0}


def _group_figures(ranks: np.ndarray, settings: FigureSettings) -> tuple[list[dict], dict[str, np.ndarray] | None]:
    """The metrics of each column of ``ranks (n, settings)`` and every metric's intervals, ``(settings, 2)``."""
    if not len(ranks):
        return [_empty_metrics() for _ in range(ranks.shape[1])], None
    metrics = [{**compute_ranking_metrics_from_ranks(ranks[:, column]), "micro_f1": micro_f1(ranks[:, column])}
               for column in range(ranks.shape[1])]  # fmt: skip
    intervals = ranking_intervals(ranks, ks=DEFAULT_KS, n_resamples=settings.n_resamples,
                                  confidence=settings.confidence, seed=settings.seed)  # fmt: skip
    return metrics, intervals


def figure_records(
    base_fields: dict[str, Any],
    settings: Sequence[Setting],
    figures: np.ndarray,
    topics: Sequence[str],
    figure_settings: FigureSettings,
) -> list[dict[str, Any]]:
    """One record per setting and group (``all``, then each topic in sorted order) from ``figures``, the
    ``(mentions, settings, 3)`` gold ranks, missing candidate scores and mention-missing flags of `rank_mentions`."""
    ranks, missing_scores, missing_mentions = np.moveaxis(figures, 2, 0)
    scored = SettingRanks([], ranks, figure_settings.nil_policy).scored()
    by_group = [(topic, *_topic_figures(ranks, missing_scores, missing_mentions, members, scored, figure_settings))
                for topic, members in topic_groups(topics)]  # fmt: skip
    records = []
    for column, setting in enumerate(settings):
        base = {**base_fields, "task": setting.task.name, "text_format": setting.text_format}
        for topic, excluded, metrics, intervals, missing_candidates, missing_mention_flags in by_group:
            ci95 = {name: (values[column].tolist() if intervals is not None else [None, None])
                    for name, values in (intervals or dict.fromkeys(INTERVAL_METRICS)).items()}  # fmt: skip
            ci95["micro_f1"] = ci95["accuracy"]  # every mention is linked, so micro-F1 is ACC (`micro_f1`)
            records.append({**base, "topic": topic, **metrics[column], "nil_policy": figure_settings.nil_policy,
                            "num_excluded": excluded, "ci95": ci95,
                            "missing_candidate_scores": int(missing_candidates[column]),
                            "missing_mentions": int(missing_mention_flags[column])})  # fmt: skip
    return records


def topic_groups(topics: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """``(group, member mask)`` for ``all``, then each topic in sorted order; the topic names are compared once,
    as integer codes, instead of once per topic."""
    names, codes = np.unique(np.asarray(topics, dtype=object).astype(str), return_inverse=True)
    groups = [(ALL_TOPICS, np.ones(len(codes), dtype=bool))]
    return groups + [(str(name), codes == code) for code, name in enumerate(names)]


def _topic_figures(
    ranks: np.ndarray,
    missing_scores: np.ndarray,
    missing_mentions: np.ndarray,
    members: np.ndarray,
    scored: np.ndarray,
    settings: FigureSettings,
) -> tuple[int, list[dict], dict[str, np.ndarray] | None, np.ndarray, np.ndarray]:
    """One group's exclusions, metrics and intervals, and its missing counts for every setting at once (the
    group's rows are selected once, not once per setting)."""
    selected = members & scored
    metrics, intervals = _group_figures(ranks[selected], settings)
    missing = missing_scores[selected].sum(axis=0), missing_mentions[selected].sum(axis=0)
    return int((members & ~scored).sum()), metrics, intervals, *missing


def setting_ranks(settings: Sequence[Setting], figures: np.ndarray, nil_policy: str) -> SettingRanks:
    """The gold ranks of `rank_mentions`' ``figures`` by (task name, text format)."""
    keys = [(setting.task.name, setting.text_format) for setting in settings]
    return SettingRanks(keys, np.ascontiguousarray(figures[:, :, 0]), nil_policy)


def paired_comparisons(
    ranks_by_model: Mapping[str, Mapping[str, SettingRanks]],
    reference: str,
    columns: Sequence[tuple[str, str, str]],
    settings: FigureSettings,
) -> list[dict[str, Any]]:
    """Each model's ACC minus ``reference``'s on the same mentions, for each ``(dataset, task, text format)`` of
    ``columns`` both scored, with the paired bootstrap interval of the difference (same seed as the figures)."""
    comparisons = []
    for dataset, task, text_format in columns:
        base = ranks_by_model.get(reference, {}).get(dataset)
        theirs = base.column(task, text_format) if base is not None else None
        if theirs is None:
            continue
        scored = base.scored()
        reference_correct = per_mention_columns(theirs[scored], [1], None)["top_1"]
        for model, by_dataset in ranks_by_model.items():
            ours = by_dataset[dataset].column(task, text_format) if dataset in by_dataset else None
            if model == reference or ours is None or not scored.any():
                continue
            correct = per_mention_columns(ours[scored], [1], None)["top_1"]
            difference, low, high = paired_difference(correct, reference_correct, n_resamples=settings.n_resamples,
                                                      confidence=settings.confidence, seed=settings.seed)  # fmt: skip
            comparisons.append({"dataset": dataset, "task": task, "text_format": text_format, "topic": ALL_TOPICS,
                                "metric": "accuracy", "model": model, "reference": reference,
                                "difference": difference, "ci95": [low, high], "num_mentions": int(scored.sum()),
                                "nil_policy": base.nil_policy})  # fmt: skip
    return comparisons
