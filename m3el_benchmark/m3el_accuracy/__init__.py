"""ACC, Top-k and MRR for entity linking: the ``evaluate`` module folder and the numpy core shared with the benchmark.

Import the core from here (``from m3el_benchmark.m3el_accuracy import compute_ranking_metrics``); importing this
package does not import ``evaluate``. Load the ``evaluate`` module with
``evaluate.load("m3el_benchmark/m3el_accuracy")``.
"""

from .ranking_metrics import (
    DEFAULT_KS,
    NO_GOLD,
    TIE_RULES,
    compute_ranking_metrics,
    compute_ranking_metrics_from_ranks,
    gold_ranks,
    pad_scores,
    ranks_from_counts,
)

__all__ = [
    "DEFAULT_KS",
    "NO_GOLD",
    "TIE_RULES",
    "compute_ranking_metrics",
    "compute_ranking_metrics_from_ranks",
    "gold_ranks",
    "pad_scores",
    "ranks_from_counts",
]
