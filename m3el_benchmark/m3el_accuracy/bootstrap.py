"""Bootstrap intervals over mentions for the ranking metrics, and paired intervals of a difference between models.

A figure such as ACC is a mean over the scored mentions; its interval is the percentile bootstrap: draw the ``n``
mentions ``n`` times with replacement, recompute the figure, repeat ``n_resamples`` times and take the central
``confidence`` share of the recomputed figures. Mean rank (a ratio: the ranks summed over mentions whose gold is
present, divided by their number) is recomputed as that ratio on each resample.

The resamples are drawn by numpy's PCG64 seeded with ``(seed, n)``: they depend on the seed and the number of
mentions only. Two models scored on the same mentions are therefore resampled alike, which is what makes
`paired_difference` paired, and a run with the same seed gives the same intervals. Like `ranking_metrics`, this
module needs numpy only.

>>> import numpy as np
>>> low, high = ranking_intervals(np.array([1, 1, 2, -1]), ks=(1,), seed=0)["accuracy"]
>>> bool(low <= 0.5 <= high)
True
"""

import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from .ranking_metrics import DEFAULT_KS, _check_ks, _integer_array, per_mention_columns

DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95
BLOCK_ELEMENTS = 1 << 22
"""Resample counts drawn per block (rows x mentions), which bounds the memory whatever the number of mentions."""

__all__ = ["CONFIDENCE", "DEFAULT_RESAMPLES", "paired_difference", "ranking_intervals", "resampled_sums"]


def _check(n: int, n_resamples: int, confidence: float, seed: int) -> None:
    if n < 1:
        raise ValueError("No mention to resample: a bootstrap interval needs at least one scored mention.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise ValueError(f"n_resamples is {n_resamples!r}; pass a whole number of resamples >= 1, e.g. 1000.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is {confidence!r}; pass a share strictly between 0 and 1, e.g. 0.95.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed is {seed!r}; pass a whole number >= 0.")


def _resample_counts(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks ``(rows, n)`` of how often each mention is drawn in each resample, ``n_resamples`` rows in all."""
    generator = np.random.default_rng([int(seed), int(n)])
    rows_per_block = max(1, BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, rows_per_block):
        rows = min(rows_per_block, n_resamples - start)
        draws = generator.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def resampled_sums(
    values: np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> np.ndarray:
    """``(n_resamples, columns)``: the column sums of ``values (n, columns)`` over each resample of its ``n`` rows."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    _check(len(values), n_resamples, confidence, seed)
    return np.concatenate([counts @ values for counts in _resample_counts(len(values), n_resamples, seed)])


def _interval(samples: np.ndarray, confidence: float) -> np.ndarray:
    """``(..., 2)``: the central ``confidence`` share of ``samples`` along axis 0 (NaN resamples ignored)."""
    tail = 100 * (1 - confidence) / 2
    with warnings.catch_warnings():  # a column of NaN only (mean rank without any present gold) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        bounds = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return np.moveaxis(bounds, 0, -1)


def ranking_intervals(
    ranks: np.ndarray,
    *,
    ks: int | Iterable[int] = DEFAULT_KS,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Bootstrap interval of every figure of `compute_ranking_metrics_from_ranks` (``accuracy``, ``top_<k>``,
    ``mrr``, ``mean_rank``) from the gold ranks (-1 where the gold is absent, wrong at every k).

    ``ranks`` is ``(n,)``, or ``(n, settings)`` for several settings scored on the same ``n`` mentions (all
    resampled alike). Each value is ``[low, high]``, of shape ``(2,)`` or ``(settings, 2)``.
    """
    ks = _check_ks(ks)
    ranks = _integer_array(ranks, "rank")
    matrix = ranks[:, None] if ranks.ndim == 1 else ranks
    n, settings = matrix.shape
    columns = per_mention_columns(matrix.ravel(), ks, None)
    names = [f"top_{k}" for k in sorted(set(ks) | {1})] + ["reciprocal_rank", "has_gold", "rank"]
    stacked = np.concatenate([np.asarray(columns[name], np.float64).reshape(n, settings) for name in names], axis=1)
    sums = resampled_sums(stacked, n_resamples=n_resamples, seed=seed, confidence=confidence)
    sums = sums.reshape(len(sums), len(names), settings)
    by_name = dict(zip(names, np.moveaxis(sums, 1, 0), strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = {"accuracy": by_name["top_1"] / n, **{f"top_{k}": by_name[f"top_{k}"] / n for k in ks},
                   "mrr": by_name["reciprocal_rank"] / n,
                   "mean_rank": by_name["rank"] / by_name["has_gold"]}  # fmt: skip
    intervals = {name: _interval(values, confidence) for name, values in samples.items()}
    return {name: value[0] for name, value in intervals.items()} if ranks.ndim == 1 else intervals


def paired_difference(
    first: np.ndarray,
    second: np.ndarray,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(difference, low, high)`` of ``mean(first) - mean(second)``, with the paired bootstrap interval: both are
    per-mention values on the same mentions (e.g. 1 where a model's top candidate is the gold), resampled together.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(
            f"Paired values have shapes {first.shape} and {second.shape}: pass one value per mention for each "
            "model, on the same mentions in the same order."
        )
    difference = first - second
    sums = resampled_sums(difference, n_resamples=n_resamples, seed=seed, confidence=confidence)
    low, high = _interval(sums[:, 0] / len(difference), confidence)
    return float(difference.mean()), float(low), float(high)
