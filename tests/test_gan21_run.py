"""Gan21-OT inside a benchmark run: its weights chosen on validation (or a stated fallback), recorded in
results.json and under the tables, and the micro-F1 table of textual and visual mentions."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from tiny_clip import save_tiny_clip

from m3el_benchmark.evaluation.dataset_specs import DatasetSpec
from m3el_benchmark.run import main
from m3el_benchmark.systems.gan21 import selection
from m3el_benchmark.systems.gan21.rescoring import Gan21JointStep, JointConfig
from m3el_dataset import loading

pytest.importorskip("ot")

VALIDATION = {  # the mean ACC of the settings each weight rescores, per grid value: a peak and a tie
    "Tm": {0.0: 0.50, 0.1: 0.55, 0.25: 0.70, 0.5: 0.60, 1.0: 0.40},
    "Im": {0.0: 0.20, 0.1: 0.20, 0.25: 0.30, 0.5: 0.45, 1.0: 0.45},
}


def synthetic_validation(config: JointConfig) -> list[dict]:
    """Records as `evaluate_model` writes them, for a validation set where lambda_t = 0.25 and lambda_v = 0.5
    (tied with 1.0) are best; per-topic records and ITm settings must be ignored."""
    records = []
    for task, family in (("Tm-Te", "Tm"), ("Tm-Ie", "Tm"), ("Im-Ie", "Im")):
        weight = config.lambda_t if family == "Tm" else config.lambda_v
        records.append({"task": task, "topic": "all", "accuracy": VALIDATION[family][weight]})
        records.append({"task": task, "topic": "movies", "accuracy": 1.0 - VALIDATION[family][weight]})
    return records


def test_chosen_weights_are_the_argmax_on_a_synthetic_validation_set():
    accuracies = selection.grid_accuracies(synthetic_validation, JointConfig(), selection.WEIGHT_GRID)
    assert accuracies == {"lambda_t": VALIDATION["Tm"], "lambda_v": VALIDATION["Im"]}
    assert selection.best_weights(accuracies) == {"lambda_t": 0.25, "lambda_v": 0.5}  # a tie goes to the smaller


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("gan21_run_clip") / "clip")


def _argv(clip, tmp_path, *extra: str) -> list[str]:
    return ["--dataset", "sample", "--dataset_name", "M3EL sample", "--models", f"CLIP={clip}",
            f"Gan21-OT(CLIP={clip})", "--train_tiny", "false", "--skip_unavailable", "false", "--tasks", "Tm-Te",
            "Im-Ie", "--text_formats", "M-S1", "--headline_task", "Tm-Te", "--headline_format", "M-S1",
            "--splits", "test", "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "cache"),
            "--num_workers", "0", *extra]  # fmt: skip


def test_a_run_chooses_the_weights_on_validation_and_says_so(clip, tmp_path):
    result = main(_argv(clip, tmp_path))
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    model = next(m for m in saved["models"] if m["name"] == "Gan21-OT(CLIP)")
    system = model["system"]["M3EL sample"]
    assert system["weights_chosen_on"] == "validation" and system["weight_grid"] == list(selection.WEIGHT_GRID)
    assert system["validation_mentions"] > 0
    for name in ("lambda_t", "lambda_v"):
        scores = {float(w): a for w, a in system["validation_accuracy"][name].items()}
        assert set(scores) == set(selection.WEIGHT_GRID)
        assert scores[system[name]] == max(scores.values())  # the test figures use the argmax
    assert "system" not in next(m for m in saved["models"] if m["name"] == "CLIP")
    tables = (tmp_path / "out" / "tables" / "tables.md").read_text()
    assert f"lambda_t = {system['lambda_t']}, lambda_v = {system['lambda_v']}" in tables
    assert "chosen on: validation, from the grid {0.0, 0.1, 0.25, 0.5, 1.0}" in tables
    # the micro-F1 table: textual and visual mentions, equal to ACC for every model
    micro = (tmp_path / "out" / "tables" / "micro_f1.md").read_text()
    assert "M3EL sample textual (Tm-Te, M-S1)" in micro and "M3EL sample visual (Im-Ie)" in micro
    assert "equals Top-1 accuracy" in micro and "published, Table 3" in micro
    for record in result.results["results"]:
        assert record["micro_f1"] == record["accuracy"] and record["ci95"]["micro_f1"] == record["ci95"]["accuracy"]
    row = next(line for line in micro.splitlines() if line.startswith("| Gan21-OT(CLIP) |"))
    accuracy = {r["task"]: r["accuracy"] for r in result.results["results"]
                if r["model"] == "Gan21-OT(CLIP)" and r["topic"] == "all"}  # fmt: skip
    assert row.split("|")[2:4] == [f" {100 * accuracy['Tm-Te']:.2f} ", f" {100 * accuracy['Im-Ie']:.2f} "]


def test_without_a_validation_split_the_default_weights_are_kept_and_stated(monkeypatch, caplog):
    def no_validation(path, splits, *args, **kwargs):
        raise loading.MissingSplitError(f"{path} has no split {splits[0]!r}")

    monkeypatch.setattr(selection, "load_mentions", no_validation)
    step = Gan21JointStep(JointConfig(lambda_t=0.1, lambda_v=0.5))
    spec = DatasetSpec("Peer", "peer", "candidates", ("Tm-Te",), ("M-S1",), ("test",))
    data = SimpleNamespace(spec=spec, path="/data/peer", settings=[])
    with caplog.at_level(logging.WARNING, logger=selection.__name__):
        selection.select_on_validation(SimpleNamespace(joint_step=step), data, ())
    assert (step.config.lambda_t, step.config.lambda_v) == (0.1, 0.5)
    described = step.describe()
    assert described["weights_chosen_on"] == "none: default weights (/data/peer has no validation split)"
    assert "lambda_t = 0.1, lambda_v = 0.5" in described["note"] and "default weights" in caplog.text
    retrieved = SimpleNamespace(spec=DatasetSpec("Peer", "peer", "retrieved", ("Tm-Te",), ("M-S1",), ("test",)),
                                path="/data/peer", settings=[])  # fmt: skip
    selection.select_on_validation(SimpleNamespace(joint_step=step), retrieved, ())
    assert step.describe()["weights_chosen_on"].startswith("none: default weights (the retrieved protocol")


def test_micro_f1_table_only_with_a_gan21_system_and_im_te_where_im_ie_was_not_scored():
    from m3el_benchmark.evaluation.micro_f1_table import build_micro_f1_table
    from m3el_benchmark.evaluation.tables import TableLayout

    def record(model, task, text_format, value):
        return {"model": model, "dataset": "D", "task": task, "text_format": text_format, "topic": "all",
                "micro_f1": value, "accuracy": value, "num_mentions": 4, "ci95": {"micro_f1": [0.0, 1.0]}}  # fmt: skip

    records = [record(model, "Tm-Te", "M-S1", 0.5) for model in ("CLIP", "Gan21-OT(CLIP)")]
    records += [record(model, "Im-Te", "-", 0.25) for model in ("CLIP", "Gan21-OT(CLIP)")]
    spec = DatasetSpec("D", "p", "candidates", ("Tm-Te", "Im-Te"), ("M-S1",), ("test",), nil_policy="exclude")
    layout = TableLayout(["CLIP", "Gan21-OT(CLIP)"], ["Tm-Te", "Im-Te"], ["M-S1"], [], "Tm-Te", "M-S1", "D",
                         datasets=[spec])  # fmt: skip
    table = build_micro_f1_table(records, layout)
    assert table.header == ["Model", "D textual (Tm-Te, M-S1)", "D visual (Im-Te)"]
    assert [[cell.text() for cell in row.cells] for row in table.rows] == [["50.00", "25.00"]] * 2
    assert "left out; Gan et al.'s recall counts them" in table.title
    assert build_micro_f1_table(records, TableLayout(["CLIP"], ["Tm-Te"], ["M-S1"], [], "Tm-Te", "M-S1", "D")) is None
