"""Tests of the `evaluate` module m3el_benchmark/m3el_accuracy: offline loading, batching, groups, doctests, card."""

import doctest
import shutil
from pathlib import Path

import evaluate
import numpy as np
import pytest

from m3el_benchmark.m3el_accuracy import m3el_accuracy
from m3el_benchmark.m3el_accuracy.ranking_metrics import compute_ranking_metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO_ROOT / "m3el_benchmark" / "m3el_accuracy"


@pytest.fixture(scope="module")
def metric() -> evaluate.EvaluationModule:
    return evaluate.load(str(MODULE_DIR), keep_in_memory=True)


def random_mentions(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, size=n)
    scores = [rng.integers(0, 4, size=length).astype(float).tolist() for length in lengths]
    gold = [int(rng.integers(-1, length)) for length in lengths]
    labels = [[str(rng.choice(["MEL", "MMEL"])), str(rng.choice(["sports", "music", "film"]))] for _ in range(n)]
    return scores, gold, labels


def test_compute_matches_the_core(metric):
    scores, gold, _ = random_mentions(0)
    result = metric.compute(predictions=scores, references=gold, ks=[1, 3], nil_threshold=2.5)
    assert result == compute_ranking_metrics(scores, gold, ks=[1, 3], nil_threshold=2.5)


def test_add_batch_then_compute_equals_one_compute(metric):
    scores, gold, labels = random_mentions(1)
    options = {"ks": [1, 2, 5], "group_names": ["task", "topic"], "ties": "optimistic"}
    at_once = metric.compute(predictions=scores, references=gold, groups=labels, **options)
    for start in range(0, len(scores), 7):
        stop = start + 7
        metric.add_batch(predictions=scores[start:stop], references=gold[start:stop], groups=labels[start:stop])
    assert metric.compute(**options) == at_once
    assert set(at_once["by_group"]) == {"task", "topic"}
    for row_scores, row_gold, row_labels in zip(scores, gold, labels, strict=True):
        metric.add(prediction=row_scores, reference=row_gold, groups=row_labels)
    assert metric.compute(**options) == at_once


def test_groups_default_names_and_plain_labels(metric):
    scores, gold, labels = random_mentions(2)
    result = metric.compute(predictions=scores, references=gold, groups=labels, ks=[1])
    assert set(result["by_group"]) == {"group_0", "group_1"}
    topics = [topic for _, topic in labels]
    result = metric.compute(predictions=scores, references=gold, groups=topics, ks=[1])
    expected = compute_ranking_metrics(scores, gold, ks=[1], groups={"group": topics})
    assert result == expected


def test_dense_array_predictions(metric):
    scores = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.3]])
    result = metric.compute(predictions=scores, references=[1, 2], ks=[1, 2])
    assert result["accuracy"] == 0.5 and result["top_2"] == 1.0


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"predictions": [[0.1, float("nan")]], "references": [0]}, "mention 0 is NaN at candidate 1"),
        ({"predictions": [[0.1, 0.2]], "references": [2]}, "gold index of mention 0 is 2"),
        ({"predictions": [[0.1, 0.2]], "references": [0], "ks": [0]}, "k=0 is not allowed"),
        ({"predictions": [[0.1], [0.2]], "references": [0]}, "Mismatch in the number of predictions"),
        ({"predictions": [], "references": []}, "no mention"),
        ({"predictions": [[0.1]], "references": [0], "groups": [["a"]], "group_names": ["x", "y"]}, "group_names"),
        ({"predictions": [[0.1], [0.2]], "references": [0, 0], "groups": [["a"], ["a", "b"]]}, "mention 1 has 2"),
    ],
)
def test_bad_input_raises_value_error(metric, inputs, message):
    with pytest.raises(ValueError, match=message):
        metric.compute(**inputs)


def test_doctests_in_kwargs_description_pass(monkeypatch):
    # The examples load "m3el_benchmark/m3el_accuracy", as a user in a checkout would.
    monkeypatch.chdir(REPO_ROOT)
    test = doctest.DocTestParser().get_doctest(m3el_accuracy._KWARGS_DESCRIPTION, {}, "_KWARGS_DESCRIPTION", None, 0)
    assert len(test.examples) >= 10
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_folder_is_self_sufficient(tmp_path):
    # As on the Hub: the script, the core beside it and the card, without the benchmark package around them.
    alone = tmp_path / "m3el_accuracy"
    alone.mkdir()
    for name in ("m3el_accuracy.py", "ranking_metrics.py", "README.md"):
        shutil.copy(MODULE_DIR / name, alone / name)
    metric = evaluate.load(str(alone), keep_in_memory=True)
    result = metric.compute(predictions=[[0.2, 0.7], [0.5, 0.1]], references=[1, 1], ks=[1])
    assert result["accuracy"] == 0.5


def test_metric_card_has_the_usual_sections():
    card = (MODULE_DIR / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    for section in (
        "# Metric Card for M3EL Accuracy",
        "## Metric Description",
        "## How to Use",
        "### Inputs",
        "### Output Values",
        "### Examples",
        "## Limitations and Bias",
        "## Citation",
        "## Further References",
    ):
        assert section in card, section


def test_fractional_gold_indices_are_refused_not_truncated(metric):
    scores = [[0.1, 0.9], [0.3, 0.2]]
    with pytest.raises(ValueError, match=r"references\[0\] is 0.5"):
        metric.compute(predictions=scores, references=[0.5, 1])
    with pytest.raises(ValueError, match=r"references\[1\] is 1.5"):
        metric.add_batch(predictions=scores, references=[0, 1.5])
    assert metric.compute(predictions=scores, references=[1.0, 0])["accuracy"] == 1.0
