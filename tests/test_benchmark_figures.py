"""Figures a paper can cite: the nil policy, n, seeded bootstrap intervals, paired comparisons and LaTeX tables."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_tables import parse_tabular

from m3el_benchmark.evaluation.figures import FigureSettings, figure_records, paired_comparisons, setting_ranks
from m3el_benchmark.evaluation.scoring import Setting
from m3el_benchmark.evaluation.table_formats import Cell, Row, Table
from m3el_benchmark.m3el_accuracy.bootstrap import paired_difference, ranking_intervals

# Six mentions in two topics, gold ranks in two settings; mentions 2 and 5 lack their gold among the candidates.
RANKS = np.array([[1, 2], [2, 1], [-1, -1], [1, 1], [3, 1], [-1, -1]])
TOPICS = ["a", "a", "a", "b", "b", "b"]
SETTINGS = [Setting("ITm-ITe", "M-S"), Setting("Tm-Te", "M-S")]


def as_figures(ranks: np.ndarray) -> np.ndarray:
    """`rank_mentions`' output for ``ranks``: no missing score, no missing mention."""
    return np.stack([ranks, np.zeros_like(ranks), np.zeros_like(ranks)], axis=2)


def records_by_key(policy: str, ranks: np.ndarray = RANKS, topics=TOPICS, seed: int = 0) -> dict[tuple, dict]:
    records = figure_records({"model": "m"}, SETTINGS, as_figures(ranks), topics, FigureSettings(policy, seed=seed))
    return {(r["task"], r["topic"]): r for r in records}


RR_A = 1 + 1 / 2 + 1 + 1 / 3  # ITm-ITe's reciprocal ranks summed over the mentions whose gold is present
RR_B = 1 / 2 + 1 + 1 + 1  # Tm-Te's


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # (ACC, MRR, n, left out): ITm-ITe is right on mentions 0 and 3, Tm-Te on 1, 3 and 4.
        ("wrong", {("ITm-ITe", "all"): (2 / 6, RR_A / 6, 6, 0), ("Tm-Te", "all"): (3 / 6, RR_B / 6, 6, 0),
                   ("ITm-ITe", "a"): (1 / 3, 1.5 / 3, 3, 0), ("ITm-ITe", "b"): (1 / 3, (4 / 3) / 3, 3, 0)}),
        ("exclude", {("ITm-ITe", "all"): (2 / 4, RR_A / 4, 4, 2), ("Tm-Te", "all"): (3 / 4, RR_B / 4, 4, 2),
                     ("ITm-ITe", "a"): (1 / 2, 1.5 / 2, 2, 1), ("ITm-ITe", "b"): (1 / 2, (4 / 3) / 2, 2, 1)}),
    ],
)  # fmt: skip
def test_nil_policy_gives_the_hand_computed_figures(policy, expected):
    records = records_by_key(policy)
    found = {key: (r["accuracy"], r["mrr"], r["num_mentions"], r["num_excluded"]) for key, r in records.items()}
    for key, value in expected.items():
        assert found[key] == pytest.approx(value), key
    assert {r["nil_policy"] for r in records.values()} == {policy}
    assert [key[1] for key in records][:3] == ["all", "a", "b"]  # all, then each topic


def test_a_topic_left_without_mentions_is_reported_empty_not_dropped():
    records = records_by_key("exclude", topics=["a", "a", "c", "b", "b", "b"], ranks=np.where(
        np.arange(6)[:, None] == 2, -1, RANKS))  # fmt: skip
    empty = records[("ITm-ITe", "c")]
    assert (empty["num_mentions"], empty["num_excluded"]) == (0, 1)
    assert np.isnan(empty["accuracy"]) and empty["ci95"]["accuracy"] == [None, None]


def test_an_unknown_nil_policy_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="Unknown nil_policy 'drop'; choose from wrong, exclude"):
        FigureSettings("drop")


@pytest.fixture
def many_ranks() -> np.ndarray:
    rng = np.random.default_rng(7)
    ranks = rng.integers(1, 4, size=(200, 3))
    ranks[rng.random(200) < 0.15] = -1  # gold absent, in every setting alike
    return ranks


def test_bootstrap_intervals_are_deterministic_with_a_seed(many_ranks):
    first, again = ranking_intervals(many_ranks, seed=3), ranking_intervals(many_ranks, seed=3)
    other = ranking_intervals(many_ranks, seed=4)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["accuracy"], other["accuracy"])


def test_every_interval_contains_its_figure_and_n_counts_the_scored_mentions(many_ranks):
    topics = np.repeat(["a", "b"], 100)
    settings = SETTINGS + [Setting("Im-Ie", "-")]
    absent = int((many_ranks[:, 0] == -1).sum())
    for policy, n_all in (("wrong", 200), ("exclude", 200 - absent)):
        records = figure_records({}, settings, as_figures(many_ranks), topics, FigureSettings(policy, seed=1))
        assert {r["num_mentions"] for r in records if r["topic"] == "all"} == {n_all}
        assert sum(r["num_mentions"] for r in records if r["topic"] != "all") == len(settings) * n_all
        for record in records:
            for metric, (low, high) in record["ci95"].items():
                assert low <= record[metric] <= high, (policy, record["task"], record["topic"], metric)
                assert low < high or metric.startswith("top_") and low == high == 1.0 or metric == "mean_rank"


def test_settings_on_the_same_mentions_are_resampled_alike(many_ranks):
    together = ranking_intervals(many_ranks, ks=(1,), seed=5)["accuracy"]
    alone = [ranking_intervals(many_ranks[:, column], ks=(1,), seed=5)["accuracy"] for column in range(3)]
    assert np.array_equal(together, np.stack(alone))


def test_paired_difference_of_the_same_model_is_exactly_zero_and_else_contains_the_difference():
    rng = np.random.default_rng(0)
    reference = (rng.random(300) < 0.6).astype(float)
    assert paired_difference(reference, reference, seed=0) == (0.0, 0.0, 0.0)
    better = np.where(rng.random(300) < 0.2, 1.0, reference)  # right wherever the reference is, and on some more
    difference, low, high = paired_difference(better, reference, seed=0)
    assert difference == pytest.approx(better.mean() - reference.mean()) and 0 <= low <= difference <= high
    with pytest.raises(ValueError, match="one value per mention for each model"):
        paired_difference(better, reference[:-1])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"n_resamples": 0}, "n_resamples is 0"), ({"confidence": 1.0}, "confidence is 1.0"),
     ({"seed": -1}, "seed is -1")],
)
def test_bad_bootstrap_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        ranking_intervals(RANKS, **arguments)


def test_paired_comparisons_score_every_model_on_the_reference_mentions():
    other = np.where(RANKS == -1, -1, 1)  # right on every mention whose gold is present
    by_model = {name: {"D": setting_ranks(SETTINGS, as_figures(ranks), "exclude")}
                for name, ranks in (("CLIP-ND", RANKS), ("CLIP", other))}  # fmt: skip
    (comparison,) = paired_comparisons(by_model, "CLIP-ND", [("D", "ITm-ITe", "M-S")], FigureSettings(seed=0))
    assert (comparison["model"], comparison["reference"], comparison["num_mentions"]) == ("CLIP", "CLIP-ND", 4)
    assert comparison["difference"] == pytest.approx(4 / 4 - 2 / 4) and comparison["nil_policy"] == "exclude"
    low, high = comparison["ci95"]
    assert 0 <= low <= comparison["difference"] <= high


def test_latex_output_parses_as_a_booktabs_tabular_with_every_row_complete():
    header = ["Model", "R&D_1", "100% {x}"]
    mark = "published (paper, Table 4)"
    rows = [Row("CLIP #1", [Cell(75.5, 70.25, 80.0, 27), Cell()]),
            Row(f"CLIP — {mark}", [Cell(75.8), Cell(1.5)], mark)]
    latex = Table("t", "ACC (%) on M3EL_test; nil_policy: exclude", header, rows).to_latex()
    spec, parsed = parse_tabular(latex)
    assert spec == "lrr" and all(len(row) == len(header) for row in parsed)
    assert parsed[0] == [r"Model ", r" R\&D\_1 ", r" 100\% \{x\}"]
    assert parsed[1] == ["$n$ ", " 27 ", " -"]
    assert parsed[2][1] == r" 75.50 {\scriptsize [70.25, 80.00]} " and parsed[3][0].startswith("CLIP ---")
    assert r"\caption{ACC (\%) on M3EL\_test; nil\_policy: exclude}" in latex
