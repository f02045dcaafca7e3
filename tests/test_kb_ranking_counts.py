"""Whole-KB counting gives the figures of the original counting rule on every path: the fused torch pass, FAISS
top-k with an exact count where the top-k cannot decide, and the exact path kept for score adjustments and
non-finite embeddings; with ties, near-ties, NaN entities and mentions, and mentions without gold.

The oracle is the counting of the implementation before issue 19 (seven elementwise passes per tile), written here
on the whole score matrix at once: it must not move with the library code it checks.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m3el_benchmark.evaluation import kb_counting, kb_ranking
from m3el_benchmark.evaluation.kb_counting import count_at_least_gold, tie_bounds
from m3el_benchmark.evaluation.kb_ranking import KBKeys, KBRankingSettings, count_above_gold, kb_scores
from m3el_benchmark.m3el_accuracy.ranking_metrics import NO_GOLD, compute_ranking_metrics_from_ranks, ranks_from_counts

TOLERANCE = kb_ranking.TIE_TOLERANCE


def oracle_counts(queries, keys, gold, adjust=None, tolerance=TOLERANCE):
    """(n_higher, n_equal, n_missing) as counted before issue 19."""
    has_gold, safe = gold >= 0, torch.where(gold >= 0, gold, 0)
    gold_scores = torch.einsum("bqd,bkd->bqk", queries, keys[safe]).flatten(1).amax(dim=1)
    if adjust is not None:
        gold_scores = adjust(gold_scores[:, None], safe[:, None])[:, 0]
    gold_scores = torch.where(has_gold, gold_scores.nan_to_num(nan=float("-inf")), float("-inf"))[:, None]
    scores = kb_scores(queries, keys)
    if adjust is not None:
        scores = adjust(scores, torch.arange(len(keys)))
    missing = torch.isnan(scores)
    scores = scores.masked_fill(missing, float("-inf"))
    rows = torch.arange(len(queries))
    scores[rows[has_gold], safe[has_gold]] = float("nan")
    higher = (scores > gold_scores + tolerance).sum(dim=1)
    equal = ((scores == gold_scores) | ((scores - gold_scores).abs() <= tolerance)).sum(dim=1)
    return higher, equal, missing.sum(dim=1)


def figures(counts, gold) -> dict:
    ranks = ranks_from_counts(counts[0].numpy(), counts[1].numpy())
    ranks = np.where(gold.numpy() == NO_GOLD, NO_GOLD, ranks)
    return compute_ranking_metrics_from_ranks(ranks, ks=(1, 3, 5, 10, 20))


def tricky_data(seed: int, vectors: tuple[int, int] = (1, 1), num_keys: int = 301, num_queries: int = 64):
    """Queries near their gold (a model that works), exact duplicates and near-duplicates of golds (scores inside
    and outside the tolerance), NaN entities (some of them golds), a NaN mention, a zero mention (every score
    ties at 0), and mentions without gold."""
    generator = torch.Generator().manual_seed(seed)
    q, k = vectors
    keys = F.normalize(torch.randn(num_keys, k, 16, generator=generator), dim=-1)
    gold = torch.randint(0, num_keys, (num_queries,), generator=generator)
    noise = torch.randn(num_queries, q, 16, generator=generator) * torch.rand(num_queries, 1, 1, generator=generator)
    queries = F.normalize(keys[gold, :1].expand(-1, q, -1) + noise, dim=-1)
    queries[:8] = keys[gold[:8], :1]  # scores of 1: the near-duplicates below land around it
    for offset, factor in enumerate((1.0, 1 + 2e-7, 1 - 3e-7, 1 + 5e-6, 1 - 5e-6, 1.0)):
        keys[(gold[offset] + 1 + offset) % num_keys] = keys[gold[offset]] * factor
    keys[[3, 50, 51, 200]] = float("nan")
    keys[gold[8]] = float("nan")  # a gold without embedding: past every scored entity
    keys[7, -1, 0] = float("nan")  # one vector of an entity broken: the entity has no score
    queries[9] = float("nan")
    queries[10] = 0.0
    gold[[11, 12]] = NO_GOLD
    return queries, keys, gold


@pytest.mark.parametrize("vectors", [(1, 1), (2, 3)])
@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096])
def test_counts_equal_the_original_rule(vectors, backend, chunk_size):
    if backend == "faiss":
        pytest.importorskip("faiss")
    queries, keys, gold = tricky_data(chunk_size, vectors)
    expected = oracle_counts(queries, keys, gold)
    settings = KBRankingSettings(chunk_size=chunk_size, backend=backend, top_k=5)
    counts = count_above_gold(queries, KBKeys(keys, settings), gold, settings)
    for name, ours, theirs in zip(("n_higher", "n_equal", "n_missing"), counts, expected, strict=True):
        assert ours.tolist() == theirs.tolist(), name
    assert figures(counts, gold) == figures(expected, gold)
    n_at_least, n_missing = count_at_least_gold(queries, KBKeys(keys, settings), gold, settings)
    assert n_at_least.tolist() == (expected[0] + expected[1]).tolist() and n_missing.tolist() == expected[2].tolist()
    assert counts[1][10] == len(keys) - 1 - 5 - 1  # the zero mention ties every scored entity; NaN ones are -inf


def test_non_finite_values_and_adjustments_take_the_exact_path(monkeypatch):
    queries, keys, gold = tricky_data(1)
    keys[20, 0, 0] = float("inf")
    bias = torch.linspace(-0.1, 0.1, len(keys))
    bias[30] = float("nan")

    def adjust(scores, rows):
        return scores + bias[rows]

    for key_table, adjustment in ((keys, None), (tricky_data(1)[1], adjust)):
        expected = oracle_counts(queries, key_table, gold, adjustment)
        counts = count_above_gold(queries, key_table, gold, KBRankingSettings(chunk_size=50), adjustment)
        assert [c.tolist() for c in counts] == [e.tolist() for e in expected]


@pytest.mark.parametrize("scale", [1e19, 1e37])
def test_huge_vectors_are_counted_by_torch_and_those_that_could_overflow_exactly(scale):
    queries, keys, gold = tricky_data(2)
    keys = keys * scale  # 1e19: no cosine, so no FAISS; 1e37: sums may overflow to inf, so the exact path
    expected = oracle_counts(queries, keys, gold)
    # One chunk, as the oracle: at this magnitude another matrix shape rounds differently by far more than the
    # tolerance, and the comparison would test BLAS instead of the counting.
    counts = count_above_gold(queries, keys, gold, KBRankingSettings(chunk_size=4096))
    assert [c.tolist() for c in counts] == [e.tolist() for e in expected]


def test_faiss_falls_back_to_exact_counts_where_its_top_k_cannot_decide():
    pytest.importorskip("faiss")
    queries, keys, gold = tricky_data(3, num_queries=40)
    queries[20:] = F.normalize(torch.randn(20, 1, 16, generator=torch.Generator().manual_seed(9)), dim=-1)
    settings = KBRankingSettings(chunk_size=128, backend="faiss", top_k=3)
    stats = {}
    counts = count_above_gold(queries, KBKeys(keys, settings), gold, settings, stats=stats)
    assert [c.tolist() for c in counts] == [e.tolist() for e in oracle_counts(queries, keys, gold)]
    assert 0 < stats["decided_by_top_k"] < len(queries)  # random mentions need the exact count


def test_settings_are_checked(monkeypatch):
    assert KBRankingSettings().backend == "torch"
    monkeypatch.setattr(kb_counting.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"m3el\[faiss\]"):
        KBRankingSettings(backend="faiss")
    with pytest.raises(ValueError, match="backend"):
        KBRankingSettings(backend="annoy")
    with pytest.raises(ValueError, match="top_k"):
        KBRankingSettings(top_k=0)
    with pytest.raises(ValueError, match="mention_batch"):
        KBRankingSettings(mention_batch=0)


def test_tie_bounds_are_the_tolerance_rule_to_the_last_bit():
    """Scores a few float32 steps either side of ``g - tolerance`` tie exactly when ``|s - g| <= tolerance``."""
    gold = torch.rand(20000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    low, high = tie_bounds(gold, TOLERANCE)
    assert high.tolist() == (gold + TOLERANCE).tolist()
    scores = gold - torch.tensor(TOLERANCE)
    for step in range(8):
        assert ((scores >= low) == ((scores - gold).abs() <= TOLERANCE)).all(), step
        scores = torch.nextafter(scores, torch.tensor(float("inf")))
    for step in range(8):
        scores = torch.nextafter(scores, torch.tensor(float("-inf")))
        assert ((scores >= low) == ((scores - gold).abs() <= TOLERANCE)).all(), step


def test_perf_kb_methods_give_identical_figures(capsys, monkeypatch):
    """`benchmark/perf/perf_kb.py`'s methods rank alike (its goals are about time only when the figures agree)."""
    pytest.importorskip("faiss")
    path = Path(__file__).resolve().parents[1] / "benchmark" / "perf" / "perf_kb.py"
    spec = importlib.util.spec_from_file_location("perf_kb", path)
    perf_kb = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "perf_kb", perf_kb)  # its dataclass looks its module up there
    spec.loader.exec_module(perf_kb)
    argv = ["--mentions", "300", "--kb_size", "3000", "--dim", "32", "--batch_size", "64", "--chunk_size", "700",
            "--repeats", "1"]  # fmt: skip
    assert perf_kb.main(argv) == 0
    printed = capsys.readouterr().out
    assert "identical figures (H@k; MR and MRR where a method has them): yes" in printed
    assert "project / plain torch:" in printed and "project / FAISS top-20:" in printed
