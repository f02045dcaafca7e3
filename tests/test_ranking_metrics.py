"""Tests of the ranking-metric core: known values, agreement with scikit-learn and slow references, bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import top_k_accuracy_score

from m3el_benchmark.m3el_accuracy.ranking_metrics import (
    NO_GOLD,
    compute_ranking_metrics,
    compute_ranking_metrics_from_ranks,
    gold_ranks,
    pad_scores,
    ranks_from_counts,
)


def assert_same_figures(actual: dict, expected: dict) -> None:
    """Nested figure dictionaries are equal up to float rounding, NaN matching NaN."""
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, dict):
            assert_same_figures(actual[name], value)
        else:
            assert actual[name] == pytest.approx(value, nan_ok=True), name


def slow_rank(scores: list[float], gold: int, ties: str = "pessimistic") -> int:
    """The gold's rank by a plain loop: the reference the vectorised core must match."""
    if gold == NO_GOLD:
        return NO_GOLD
    rank = 1
    for i, score in enumerate(scores):
        if i != gold and (score > scores[gold] or (ties == "pessimistic" and score == scores[gold])):
            rank += 1
    return rank


def slow_metrics(rows: list[list[float]], gold: list[int], ks: list[int]) -> dict:
    ranks = [slow_rank(row, g) for row, g in zip(rows, gold, strict=True)]
    found = [r for r in ranks if r != NO_GOLD]
    figures = {f"top_{k}": sum(r != NO_GOLD and r <= k for r in ranks) / len(ranks) for k in ks}
    figures["mrr"] = sum(1 / r for r in found) / len(ranks)
    figures["mean_rank"] = sum(found) / len(found) if found else math.nan
    return figures


def random_ragged(rng: np.random.Generator, n: int, max_candidates: int, levels: int | None = None):
    """Random per-mention scores of random lengths (ties when ``levels`` is small) and gold indices, some absent."""
    lengths = rng.integers(0, max_candidates + 1, size=n)
    if levels is None:
        rows = [rng.normal(size=length).tolist() for length in lengths]
    else:
        rows = [rng.integers(0, levels, size=length).astype(float).tolist() for length in lengths]
    gold = [int(rng.integers(-1, length)) if length else NO_GOLD for length in lengths]
    return rows, gold


def test_known_values():
    rows = [[0.9, 0.1, 0.3], [0.2, 0.8], [0.4, 0.6, 0.5, 0.1], [0.7, 0.3]]
    result = compute_ranking_metrics(rows, [0, 0, 2, NO_GOLD], ks=(1, 2))
    assert result == {
        "accuracy": 0.25,
        "top_1": 0.25,
        "top_2": 0.75,
        "mrr": pytest.approx((1 + 1 / 2 + 1 / 2 + 0) / 4),
        "mean_rank": pytest.approx(5 / 3),
        "num_mentions": 4,
        "num_no_gold": 1,
    }


def test_ties_are_pessimistic_by_default_and_optimistic_on_request():
    scores = np.array([[0.5, 0.5, 0.5], [0.2, 0.7, 0.7]])
    assert gold_ranks(scores, [0, 2]).tolist() == [3, 2]
    assert gold_ranks(scores, [0, 2], ties="optimistic").tolist() == [1, 1]
    constant = compute_ranking_metrics(np.zeros((50, 4)), np.arange(50) % 4, ks=(1, 3))
    assert constant["accuracy"] == 0.0 and constant["top_3"] == 0.0 and constant["mean_rank"] == 4.0


@pytest.mark.parametrize("n_candidates", [3, 5, 20])
def test_top_k_agrees_with_sklearn_without_ties(n_candidates):
    rng = np.random.default_rng(n_candidates)
    ks = sorted({1, 2, n_candidates // 2, n_candidates - 1})  # sklearn warns for k >= n_candidates
    for _ in range(700):
        n = int(rng.integers(1, 30))
        scores = rng.normal(size=(n, n_candidates))
        gold = rng.integers(0, n_candidates, size=n)
        result = compute_ranking_metrics(scores, gold, ks=ks)
        for k in ks:
            expected = top_k_accuracy_score(gold, scores, k=k, labels=np.arange(n_candidates))
            assert result[f"top_{k}"] == pytest.approx(expected)


def test_absent_gold_is_wrong_for_every_k():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(200, 4))
    gold = rng.integers(-1, 4, size=200)
    result = compute_ranking_metrics(scores, gold, ks=(1, 2, 3, 4))
    present = gold != NO_GOLD
    assert result["top_4"] == pytest.approx(present.mean())
    expected_top_2 = top_k_accuracy_score(gold[present], scores[present], k=2, labels=np.arange(4)) * present.mean()
    assert result["top_2"] == pytest.approx(expected_top_2)
    assert result["num_no_gold"] == int((~present).sum())


def test_mrr_and_mean_rank_agree_with_slow_loop_on_ragged_input_with_ties():
    rng = np.random.default_rng(2)
    for _ in range(2000):
        rows, gold = random_ragged(rng, n=int(rng.integers(1, 12)), max_candidates=6, levels=3)
        ks = [1, 2, 5]
        result = compute_ranking_metrics(rows, gold, ks=ks)
        expected = slow_metrics(rows, gold, ks)
        for name, value in expected.items():
            assert result[name] == pytest.approx(value, nan_ok=True), (name, rows, gold)


def test_grouped_figures_add_up_to_the_overall():
    rng = np.random.default_rng(3)
    rows, gold = random_ragged(rng, n=500, max_candidates=5, levels=4)
    groups = {"task": rng.choice(["MEL", "MMEL", "TTE"], size=500), "topic": rng.choice(["sports", "music"], size=500)}
    result = compute_ranking_metrics(rows, gold, ks=(1, 3), groups=groups, nil_threshold=1.5)
    assert set(result["by_group"]) == {"task", "topic"}
    for grouping in result["by_group"].values():
        parts = grouping.values()
        assert sum(part["num_mentions"] for part in parts) == result["num_mentions"]
        assert sum(part["num_no_gold"] for part in parts) == result["num_no_gold"]
        assert sum(part["num_predicted_nil"] for part in parts) == result["num_predicted_nil"]
        for name in ("accuracy", "top_3", "mrr", "accuracy_with_nil"):
            weighted = sum(part[name] * part["num_mentions"] for part in parts)
            assert weighted / result["num_mentions"] == pytest.approx(result[name])


def test_plain_sequence_of_groups_is_named_group():
    result = compute_ranking_metrics([[1.0, 0.0], [0.0, 1.0]], [0, 0], ks=1, groups=["a", "b"])
    alone = {
        "a": compute_ranking_metrics([[1.0, 0.0]], [0], ks=1),
        "b": compute_ranking_metrics([[0.0, 1.0]], [0], ks=1),
    }
    assert result["by_group"] == {"group": alone}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(-3, 3).map(float), max_size=5), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
)
def test_dense_lengths_mask_and_ragged_inputs_agree(rows, random):
    gold = [random.randrange(-1, len(row)) if row else NO_GOLD for row in rows]
    width = max(len(row) for row in rows)
    dense = np.full((len(rows), width), 99.0)  # padding the mask must hide, even though it scores highest
    for i, row in enumerate(rows):
        dense[i, : len(row)] = row
    lengths = [len(row) for row in rows]
    mask = np.arange(width) < np.array(lengths)[:, None]
    expected = compute_ranking_metrics(rows, gold, ks=(1, 2))
    assert_same_figures(compute_ranking_metrics(dense, gold, lengths=lengths, ks=(1, 2)), expected)
    assert_same_figures(compute_ranking_metrics(dense, gold, mask=mask, ks=(1, 2)), expected)
    assert gold_ranks(rows, gold).tolist() == [slow_rank(row, g) for row, g in zip(rows, gold, strict=True)]


def test_ranks_entry_point_matches_scores_entry_point():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 5, size=(300, 8)).astype(float)
    gold = rng.integers(-1, 8, size=300)
    groups = rng.choice(["x", "y"], size=300)
    safe_gold = np.where(gold >= 0, gold, 0)
    gold_score = scores[np.arange(300), safe_gold][:, None]
    for ties in ("pessimistic", "optimistic"):
        n_higher = (scores > gold_score).sum(axis=1)
        n_equal = (scores == gold_score).sum(axis=1) - 1
        ranks = np.where(gold >= 0, ranks_from_counts(n_higher, n_equal, ties=ties), NO_GOLD)
        assert ranks.tolist() == gold_ranks(scores, gold, ties=ties).tolist()
        from_ranks = compute_ranking_metrics_from_ranks(
            ranks, ks=(1, 5), groups=groups, best_scores=scores.max(axis=1), nil_threshold=3.5
        )
        from_scores = compute_ranking_metrics(scores, gold, ks=(1, 5), groups=groups, ties=ties, nil_threshold=3.5)
        assert_same_figures(from_ranks, from_scores)


def test_nil_prediction():
    rows = [[0.9, 0.2], [0.1, 0.3], [0.2, 0.1], [0.7, 0.8], []]
    result = compute_ranking_metrics(rows, [0, NO_GOLD, 1, 1, NO_GOLD], ks=1, nil_threshold=0.5)
    # NIL predicted for mentions 1, 2 and 4 (no candidate); right for 1 and 4, wrong for 2.
    assert result["num_predicted_nil"] == 3
    assert result["nil_accuracy"] == 1.0
    assert result["accuracy_with_nil"] == pytest.approx(4 / 5)
    assert result["accuracy"] == pytest.approx(2 / 5)
    assert "nil_accuracy" not in compute_ranking_metrics(rows, [0, NO_GOLD, 1, 1, NO_GOLD], ks=1)


def test_torch_and_float32_inputs():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]], dtype=torch.bfloat16)
    result = compute_ranking_metrics(scores, torch.tensor([1, 2]), ks=(1, 3))
    assert result["accuracy"] == 0.5 and result["top_3"] == 1.0
    dense, valid = pad_scores(np.ones((2, 3), dtype=np.float32))
    assert dense.dtype == np.float64 and valid.all()


def test_mean_rank_is_nan_without_any_gold():
    result = compute_ranking_metrics([[0.1, 0.2]], [NO_GOLD], ks=1)
    assert math.isnan(result["mean_rank"]) and result["mrr"] == 0.0 and result["num_no_gold"] == 1


@pytest.mark.parametrize(
    "scores, gold, kwargs, message",
    [
        ([[0.1, 0.2], [0.3]], [0, 0, 0], {}, "gold has shape \\(3,\\) but there are 2 mentions"),
        (np.zeros((2, 3)), [0], {}, "gold has shape \\(1,\\) but there are 2 mentions"),
        ([[0.1, 0.2], [0.3]], [0, 1], {}, "gold index of mention 1 is 1 but that mention has 1 candidates"),
        ([[0.1, 0.2]], [-2], {}, "gold index of mention 0 is -2"),
        (np.zeros((2, 3)), [0, 2], {"lengths": [3, 2]}, "gold index of mention 1 is 2 but that mention has 2"),
        ([[0.1, 0.2], [0.3, float("nan")]], [0, 0], {}, "scores of mention 1 is NaN at candidate 1"),
        ([], [], {}, "no mention"),
        (np.zeros((0, 3)), [], {}, "no mention"),
        ([[0.1, 0.2]], [0], {"ks": (1, 0)}, "k=0 is not allowed"),
        ([[0.1, 0.2]], [0], {"ks": ()}, "ks is empty"),
        ([[0.1, 0.2]], [0.5], {}, "gold index of mention 0 is 0.5, not an integer"),
        ([[0.1, 0.2]], [0], {"ties": "random"}, "ties is 'random'"),
        ([[0.1, 0.2]], [0], {"nil_threshold": float("nan")}, "nil_threshold is NaN"),
        (np.zeros(3), [0, 0, 0], {}, "pass a 2-D array"),
        (np.zeros((2, 3)), [0, 0], {"lengths": [3, 4]}, "lengths of mention 1 is 4, outside 0..3"),
        (np.zeros((2, 3)), [0, 0], {"lengths": [3]}, "lengths has shape \\(1,\\)"),
        (np.zeros((2, 3)), [0, 0], {"mask": np.ones((2, 2), bool)}, "mask has shape"),
        ([[0.1], [0.2]], [0, 0], {"lengths": [1, 1]}, "2-D score arrays only"),
        ([[0.1], 0.2], [0, 0], {}, "scores of mention 1 is 0.2, not a sequence"),
        ([[0.1, 0.2]], [0], {"groups": ["a", "b"]}, "groups\\['group'\\] has shape \\(2,\\) but there are 1"),
    ],
)
def test_bad_input_raises_value_error_naming_it(scores, gold, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_ranking_metrics(scores, gold, **kwargs)


@pytest.mark.parametrize(
    "ranks, kwargs, message",
    [
        ([1, 0, 2], {}, "rank of mention 1 is 0: ranks start at 1"),
        ([1, 2.5], {}, "rank of mention 1 is 2.5, not an integer"),
        ([], {}, "for at least one mention"),
        ([1, 2], {"ks": [-1]}, "k=-1 is not allowed"),
        ([1, 2], {"nil_threshold": 0.5}, "nil_threshold needs best_scores"),
        ([1, 2], {"nil_threshold": 0.5, "best_scores": [0.1]}, "best_scores has shape \\(1,\\)"),
        ([1, 2], {"nil_threshold": 0.5, "best_scores": [0.1, float("nan")]}, "best score of mention 1 is NaN"),
    ],
)
def test_bad_ranks_raise_value_error_naming_them(ranks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_ranking_metrics_from_ranks(ranks, **kwargs)


@pytest.mark.parametrize(
    "n_higher, n_equal, ties, message",
    [
        ([0, -1], [0, 0], "pessimistic", "n_higher of mention 1 is -1"),
        ([0, 1], None, "pessimistic", "needs n_equal"),
        ([0, 1], [0], "pessimistic", "n_equal has shape"),
    ],
)
def test_bad_counts_raise_value_error(n_higher, n_equal, ties, message):
    with pytest.raises(ValueError, match=message):
        ranks_from_counts(n_higher, n_equal, ties=ties)
