"""Ranking metrics for entity linking: ACC, Top-k (Hits@k), MRR and mean rank, overall and per group.

This is the one implementation of the figures in our benchmark tables. Two callers share it:

* the benchmark imports it as ``m3el_benchmark.m3el_accuracy.ranking_metrics`` (re-exported by
  ``m3el_benchmark.m3el_accuracy``);
* the ``evaluate`` module next to it (``m3el_accuracy.py``) imports it with ``from .ranking_metrics import ...``.
  ``evaluate.load`` (0.4.6, ``loading.get_imports``) treats a relative import as a file that sits beside the
  script and copies it into its module cache, locally and from the Hub alike, so the folder works on its own.

That is why this file imports nothing but numpy and the standard library, and no sibling module.

Conventions shared by every entry point:

* Ranks are 1-based. A gold index of ``-1`` (:data:`NO_GOLD`) means the gold entity is not among the mention's
  candidates; the rank of such a mention is ``-1`` too. It counts as wrong for every k, adds 0 to the MRR and is
  left out of the mean rank (which averages over the mentions whose gold is present).
* Ties are broken pessimistically by default: the gold ranks below every other candidate with an equal score,
  so a constant scorer earns no credit. ``ties="optimistic"`` counts only strictly higher scores, as DWE's
  ``metric_topk`` does; use it only to compare with such code.
* NIL (optional): with ``nil_threshold``, a mention whose best score is strictly below the threshold is
  predicted NIL, and a NIL prediction is correct exactly when the gold is absent. A mention with no candidate
  at all is always predicted NIL.
"""

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

NO_GOLD = -1
"""Gold index (and rank) of a mention whose gold entity is not among its candidates."""

TIE_RULES = ("pessimistic", "optimistic")
DEFAULT_KS = (1, 3, 5, 10, 20)

__all__ = [
    "DEFAULT_KS",
    "NO_GOLD",
    "TIE_RULES",
    "compute_ranking_metrics",
    "compute_ranking_metrics_from_ranks",
    "gold_ranks",
    "pad_scores",
    "per_mention_columns",
    "ranks_from_counts",
]


def _to_numpy(values: Any, dtype: Any = None) -> np.ndarray:
    """Turn a numpy array, torch tensor or nested sequence into a numpy array without importing torch."""
    if hasattr(values, "detach"):  # a torch tensor (bfloat16 has no numpy dtype, hence the cast)
        values = values.detach().cpu()
        values = (values.double() if values.is_floating_point() else values).numpy()
    return np.asarray(values, dtype=dtype)


def _pad_ragged(rows: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Pad per-mention score sequences of any lengths with -inf; return the 2-D scores and their mask."""
    rows = list(rows)
    try:
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    except TypeError:
        bad = next(i for i, row in enumerate(rows) if not hasattr(row, "__len__"))
        raise ValueError(
            f"scores of mention {bad} is {rows[bad]!r}, not a sequence: pass one sequence of candidate scores per "
            "mention, or a 2-D array."
        ) from None
    width = int(lengths.max()) if len(rows) else 0
    valid = np.arange(width) < lengths[:, None]
    dense = np.full((len(rows), width), -np.inf)
    dense[valid] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=int(lengths.sum()))
    logger.debug("Padded %d mentions to %d candidates", len(rows), width)
    return dense, valid


def _check_length(values: np.ndarray, name: str, n_mentions: int) -> None:
    if values.shape != (n_mentions,):
        raise ValueError(
            f"{name} has shape {values.shape} but there are {n_mentions} mentions: pass one value per mention."
        )


def _integer_array(values: Any, name: str) -> np.ndarray:
    """``values`` as int64, refusing NaN, fractions and non-numbers with the index of the first bad one."""
    values = _to_numpy(values)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integers, got dtype {values.dtype}.")
    if values.dtype.kind == "f":
        bad = np.flatnonzero(values != np.round(values))
        if bad.size:
            raise ValueError(f"{name} of mention {bad[0]} is {values[bad[0]]}, not an integer.")
    return values.astype(np.int64)


def _mask_from_lengths(lengths: Any, n_mentions: int, width: int) -> np.ndarray:
    lengths = _integer_array(lengths, "lengths")
    _check_length(lengths, "lengths", n_mentions)
    bad = np.flatnonzero((lengths < 0) | (lengths > width))
    if bad.size:
        raise ValueError(
            f"lengths of mention {bad[0]} is {lengths[bad[0]]}, outside 0..{width} (the number of score columns): "
            "each length counts the real candidates at the start of that mention's row."
        )
    return np.arange(width) < lengths[:, None]


def pad_scores(scores: Any, lengths: Any = None, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, valid)``: float64 scores (n_mentions, n_candidates) and a boolean mask of real candidates.

    ``scores`` is either a 2-D numpy array / torch tensor, optionally with ``lengths`` (real candidates first in
    each row) or a boolean ``mask`` of the same shape, or a sequence of per-mention score sequences of any
    lengths, which is padded with ``-inf``. Raises ``ValueError`` on NaN among the real candidates.
    """
    if lengths is not None and mask is not None:
        raise ValueError("Pass either lengths or mask to mark the real candidates, not both.")
    if isinstance(scores, np.ndarray) or hasattr(scores, "detach"):
        dense = _to_numpy(scores, np.float64)
        if dense.ndim != 2:
            raise ValueError(
                f"scores has shape {dense.shape}; pass a 2-D array (n_mentions, n_candidates) or one sequence of "
                "candidate scores per mention."
            )
        if lengths is not None:
            valid = _mask_from_lengths(lengths, *dense.shape)
        elif mask is not None:
            valid = _to_numpy(mask, bool)
            if valid.shape != dense.shape:
                raise ValueError(f"mask has shape {valid.shape} but scores has shape {dense.shape}: they must match.")
        else:
            valid = np.ones(dense.shape, dtype=bool)
    else:
        if lengths is not None or mask is not None:
            raise ValueError("lengths and mask apply to 2-D score arrays only; per-mention sequences carry their own.")
        dense, valid = _pad_ragged(scores)
    nan_at = np.argwhere(np.isnan(dense) & valid)
    if nan_at.size:
        mention, candidate = nan_at[0]
        raise ValueError(
            f"scores of mention {mention} is NaN at candidate {candidate}: fix the scorer, or give that candidate "
            "-inf if it must never be ranked first."
        )
    return dense, valid


def _check_gold(gold: Any, valid: np.ndarray) -> np.ndarray:
    """Validate gold indices against the candidates each mention really has; return them as int64."""
    gold = _integer_array(gold, "gold index")
    _check_length(gold, "gold", valid.shape[0])
    in_columns = (gold >= 0) & (gold < valid.shape[1])
    points_at_candidate = np.zeros_like(in_columns)
    points_at_candidate[in_columns] = valid[np.flatnonzero(in_columns), gold[in_columns]]
    bad = np.flatnonzero((gold != NO_GOLD) & ~points_at_candidate)
    if bad.size:
        mention = bad[0]
        raise ValueError(
            f"gold index of mention {mention} is {gold[mention]} but that mention has "
            f"{int(valid[mention].sum())} candidates: use an index among them, or -1 when the gold is absent."
        )
    return gold


def _check_ties(ties: str) -> None:
    if ties not in TIE_RULES:
        raise ValueError(f"ties is {ties!r}; use one of {TIE_RULES}.")


def _check_ks(ks: int | Iterable[int]) -> list[int]:
    """The distinct ks, sorted; each must be an integer >= 1."""
    ks = [ks] if isinstance(ks, int | np.integer) else list(ks)
    if not ks:
        raise ValueError("ks is empty: ask for at least one k, e.g. ks=(1, 5, 10).")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k={k!r} is not allowed: every k must be an integer >= 1 (top-1 is the accuracy).")
    return sorted({int(k) for k in ks})


def ranks_from_counts(n_higher: Any, n_equal: Any = None, *, ties: str = "pessimistic") -> np.ndarray:
    """1-based gold ranks (int64) from, per mention, the number of candidates scored strictly higher than the gold
    and the number of *other* candidates scored equal to it (the gold itself excluded).

    This lets whole-knowledge-base ranking count in chunks instead of keeping every score. ``n_equal`` may be
    left out with ``ties="optimistic"``, which ignores it.
    """
    _check_ties(ties)
    n_higher = _integer_array(n_higher, "n_higher")
    if ties == "optimistic":
        n_equal = np.zeros_like(n_higher)
    elif n_equal is None:
        raise ValueError("ties='pessimistic' needs n_equal, the number of other candidates scored equal to the gold.")
    n_equal = _integer_array(n_equal, "n_equal")
    _check_length(n_equal, "n_equal", len(n_higher))
    for name, counts in (("n_higher", n_higher), ("n_equal", n_equal)):
        bad = np.flatnonzero(counts < 0)
        if bad.size:
            raise ValueError(f"{name} of mention {bad[0]} is {counts[bad[0]]}; counts cannot be negative.")
    return 1 + n_higher + n_equal


def _ranks(dense: np.ndarray, valid: np.ndarray, gold: np.ndarray, ties: str) -> np.ndarray:
    """Gold ranks for validated inputs; NO_GOLD where the gold is absent."""
    present = gold != NO_GOLD
    if dense.shape[1] == 0:  # no mention has a candidate, so (validated) every gold is absent
        return np.full(len(gold), NO_GOLD, dtype=np.int64)
    gold_score = dense[np.arange(len(gold)), np.where(present, gold, 0)][:, None]
    n_higher = np.count_nonzero((dense > gold_score) & valid, axis=1)
    n_equal = None
    if ties == "pessimistic":  # rows without gold compared against a stand-in score: keep their counts >= 0
        n_equal = np.where(present, np.count_nonzero((dense == gold_score) & valid, axis=1) - 1, 0)
    ranks = ranks_from_counts(n_higher, n_equal, ties=ties)
    ranks[~present] = NO_GOLD
    return ranks


def gold_ranks(
    scores: Any, gold: Any, *, lengths: Any = None, mask: Any = None, ties: str = "pessimistic"
) -> np.ndarray:
    """1-based rank of each mention's gold among its candidates (int64), ``-1`` where the gold is absent.

    Inputs as in :func:`compute_ranking_metrics`.
    """
    _check_ties(ties)
    dense, valid = pad_scores(scores, lengths=lengths, mask=mask)
    return _ranks(dense, valid, _check_gold(gold, valid), ties)


def _group_codes(groups: Any, n_mentions: int) -> dict[str, tuple[list, np.ndarray]]:
    """For each grouping, its sorted distinct labels and each mention's position among them."""
    if groups is None:
        return {}
    if not isinstance(groups, Mapping):
        groups = {"group": groups}
    codes = {}
    for name, labels in groups.items():
        labels = _to_numpy(labels)
        _check_length(labels, f"groups[{name!r}]", n_mentions)
        try:
            distinct, inverse = np.unique(labels, return_inverse=True)
        except TypeError:
            raise ValueError(f"groups[{name!r}] mixes labels that cannot be sorted together; use strings.") from None
        codes[str(name)] = (distinct.tolist(), inverse.reshape(-1))
    return codes


def per_mention_columns(ranks: np.ndarray, ks: list[int], predicted_nil: np.ndarray | None) -> dict[str, np.ndarray]:
    """Each mention's contribution to every figure (``top_<k>``, ``reciprocal_rank``, ``has_gold``, ``rank``), so that
    any grouping is a weighted bincount and any resample a weighted sum."""
    present = ranks != NO_GOLD
    columns = {f"top_{k}": (ranks <= k) & present for k in sorted(set(ks) | {1})}
    columns["reciprocal_rank"] = np.where(present, 1.0 / np.where(present, ranks, 1), 0.0)
    columns["has_gold"] = present
    columns["rank"] = np.where(present, ranks, 0)
    if predicted_nil is not None:
        columns["nil_correct"] = predicted_nil & ~present
        columns["correct_with_nil"] = np.where(predicted_nil, ~present, ranks == 1)
        columns["predicted_nil"] = predicted_nil
    return columns


def _summarise(columns: dict[str, np.ndarray], ks: list[int], inverse: np.ndarray, n_groups: int) -> list[dict]:
    """The figures of each of ``n_groups`` groups; mention i belongs to group ``inverse[i]``."""
    count = np.bincount(inverse, minlength=n_groups)
    sums = {name: np.bincount(inverse, weights=column, minlength=n_groups) for name, column in columns.items()}
    summaries = []
    for group in range(n_groups):
        n, n_gold = int(count[group]), int(sums["has_gold"][group])
        figures = {"accuracy": float(sums["top_1"][group] / n)}
        figures.update({f"top_{k}": float(sums[f"top_{k}"][group] / n) for k in ks})
        figures["mrr"] = float(sums["reciprocal_rank"][group] / n)
        figures["mean_rank"] = float(sums["rank"][group] / n_gold) if n_gold else float("nan")
        figures["num_mentions"] = n
        figures["num_no_gold"] = n - n_gold
        if "predicted_nil" in sums:
            figures["nil_accuracy"] = float(sums["nil_correct"][group] / (n - n_gold)) if n > n_gold else float("nan")
            figures["accuracy_with_nil"] = float(sums["correct_with_nil"][group] / n)
            figures["num_predicted_nil"] = int(sums["predicted_nil"][group])
        summaries.append(figures)
    return summaries


def _metrics(ranks: np.ndarray, ks: list[int], groups: Any, predicted_nil: np.ndarray | None) -> dict[str, Any]:
    columns = per_mention_columns(ranks, ks, predicted_nil)
    result = _summarise(columns, ks, np.zeros(len(ranks), dtype=np.intp), 1)[0]
    codes = _group_codes(groups, len(ranks))
    if codes:
        result["by_group"] = {
            name: dict(zip(labels, _summarise(columns, ks, inverse, len(labels)), strict=True))
            for name, (labels, inverse) in codes.items()
        }
    return result


def _check_threshold(nil_threshold: float) -> float:
    threshold = float(nil_threshold)
    if np.isnan(threshold):
        raise ValueError("nil_threshold is NaN: pass a score, or None to turn NIL prediction off.")
    return threshold


def compute_ranking_metrics(
    scores: Any,
    gold: Any,
    *,
    lengths: Any = None,
    mask: Any = None,
    ks: int | Iterable[int] = DEFAULT_KS,
    groups: Any = None,
    ties: str = "pessimistic",
    nil_threshold: float | None = None,
) -> dict[str, Any]:
    """ACC, Top-k, MRR and mean rank of the gold among each mention's scored candidates.

    Args:
        scores: a 2-D array or tensor (n_mentions, n_candidates), or one sequence of candidate scores per mention
            (any lengths; padded internally with -inf). Higher is better.
        gold: per mention, the index of the gold candidate, or -1 when the gold is not among the candidates.
        lengths / mask: for a 2-D ``scores`` with padding, the number of real candidates at the start of each row,
            or a boolean array marking the real candidates.
        ks: the k of every ``top_k`` figure to report.
        groups: per-mention labels (e.g. topics), or a mapping from a grouping name (e.g. ``"task"``) to them.
        ties: ``"pessimistic"`` (default) or ``"optimistic"``, see the module docstring.
        nil_threshold: when given, predict NIL for a mention whose best score is below it.

    Returns:
        ``{"accuracy", "top_<k>" for each k, "mrr", "mean_rank", "num_mentions", "num_no_gold"}``, plus
        ``"nil_accuracy", "accuracy_with_nil", "num_predicted_nil"`` with ``nil_threshold``, plus with ``groups``
        ``"by_group": {grouping name: {label: the same figures}}``.
    """
    ks = _check_ks(ks)
    _check_ties(ties)
    dense, valid = pad_scores(scores, lengths=lengths, mask=mask)
    if dense.shape[0] == 0:
        raise ValueError("scores holds no mention: pass at least one mention to compute metrics on.")
    ranks = _ranks(dense, valid, _check_gold(gold, valid), ties)
    predicted_nil = None
    if nil_threshold is not None:
        best = np.max(np.where(valid, dense, -np.inf), axis=1, initial=-np.inf)
        predicted_nil = (best < _check_threshold(nil_threshold)) | ~valid.any(axis=1)
    return _metrics(ranks, ks, groups, predicted_nil)


def micro_f1(ranks: Any, predicted: Any = None) -> float:
    """Micro-F1 of mention links (Gan et al. 2021; MulRel): precision = correct / predicted links, recall =
    correct / mentions, a mention whose gold is absent (rank -1) being wrong. ``predicted`` marks the mentions that
    received a link (default: all, the benchmark's setting), and then micro-F1 equals Top-1 accuracy:

    >>> micro_f1([1, 2, 1, -1]), round(micro_f1([1, 2, 1, -1], predicted=[True, True, True, False]), 4)
    (0.5, 0.5714)
    """
    ranks = _integer_array(ranks, "rank")
    linked = np.ones(len(ranks), dtype=bool) if predicted is None else _to_numpy(predicted, bool)
    _check_length(linked, "predicted", len(ranks))
    correct = int(np.count_nonzero((ranks == 1) & linked))
    if not correct:
        return 0.0
    precision, recall = correct / int(np.count_nonzero(linked)), correct / len(ranks)
    if precision == recall:  # every mention linked: Top-1 exactly, without the rounding of the harmonic mean
        return recall
    return 2 * precision * recall / (precision + recall)


def compute_ranking_metrics_from_ranks(
    ranks: Any,
    *,
    ks: int | Iterable[int] = DEFAULT_KS,
    groups: Any = None,
    best_scores: Any = None,
    nil_threshold: float | None = None,
) -> dict[str, Any]:
    """The figures of :func:`compute_ranking_metrics` from gold ranks already computed, e.g. against a whole
    knowledge base with :func:`ranks_from_counts`.

    Args:
        ranks: per mention, the 1-based rank of the gold, or -1 when the gold is absent.
        ks, groups: as in :func:`compute_ranking_metrics`.
        best_scores: per mention, the highest candidate score (-inf for no candidate); needed for NIL only.
        nil_threshold: when given, predict NIL for a mention whose best score is below it.

    Returns:
        The same dictionary as :func:`compute_ranking_metrics`.
    """
    ks = _check_ks(ks)
    ranks = _integer_array(ranks, "rank")
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks has shape {ranks.shape}: pass one rank per mention, for at least one mention.")
    bad = np.flatnonzero((ranks < 1) & (ranks != NO_GOLD))
    if bad.size:
        raise ValueError(f"rank of mention {bad[0]} is {ranks[bad[0]]}: ranks start at 1; use -1 for an absent gold.")
    predicted_nil = None
    if nil_threshold is not None:
        if best_scores is None:
            raise ValueError("nil_threshold needs best_scores, each mention's highest candidate score.")
        best = _to_numpy(best_scores, np.float64)
        _check_length(best, "best_scores", len(ranks))
        if np.isnan(best).any():
            raise ValueError(f"best score of mention {np.flatnonzero(np.isnan(best))[0]} is NaN; fix the scorer.")
        predicted_nil = best < _check_threshold(nil_threshold)
    return _metrics(ranks, ks, groups, predicted_nil)
