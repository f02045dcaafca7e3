"""End to end: `benchmark/run.py` on the bundled sample with tiny offline versions of all seven models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tiny_baselines import save_all_tiny_models

from benchmark.evaluation.data import resolve_dataset
from benchmark.run import main
from m3el_dataset.constants import TASKS, TEXT_FORMATS, TOPICS

MODEL_ORDER = ["ALIGN", "BLIP-2", "CLIP", "FLAVA", "OWL-ViT", "SigLIP", "CLIP-ND"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    return save_all_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="module")
def sample_dataset(tmp_path_factory) -> str:
    return resolve_dataset("sample", tmp_path_factory.mktemp("datasets"))


def run_args(dataset: str, models: dict[str, Path], out: Path, cache: Path, *extra: str) -> list[str]:
    specs = [f"{label}={path}" for label, path in models.items()]
    return ["--dataset", dataset, "--models", *specs, "--train_tiny", "false", "--skip_unavailable", "false",
            "--output_dir", str(out), "--cache_dir", str(cache), "--num_workers", "0", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def full_run(tiny_models, sample_dataset, tmp_path_factory):
    """Every model, task, format and topic; then the same run again on the warm embedding cache."""
    root = tmp_path_factory.mktemp("full_run")
    models = {label: tiny_models[label] for label in MODEL_ORDER}
    first = main(run_args(sample_dataset, models, root / "first", root / "cache"))
    second = main(run_args(sample_dataset, models, root / "second", root / "cache"))
    return first, second


def _figures(results: dict) -> list[tuple]:
    keys = ("model", "task", "text_format", "topic", "accuracy", "top_5", "mrr", "mean_rank", "num_mentions")
    return [tuple(record[key] for key in keys) for record in results["results"]]


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_every_model_task_format_and_topic_is_reported(full_run):
    first, _ = full_run
    records = first.results["results"]
    assert [model["name"] for model in first.results["models"]] == MODEL_ORDER
    text_tasks = [task for task in TASKS if not task.startswith("Im-")]
    settings_per_model = len(text_tasks) * len(TEXT_FORMATS) + (len(TASKS) - len(text_tasks))
    assert len(records) == len(MODEL_ORDER) * settings_per_model * (len(TOPICS) + 1)
    for record in records:
        assert 0.0 <= record["accuracy"] <= record["top_5"] <= 1.0
        assert record["missing_candidate_scores"] == 0 and record["missing_mentions"] == 0


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_each_unique_input_is_encoded_once_and_reused_from_the_cache(full_run):
    first, second = full_run
    for cold, warm in zip(first.results["models"], second.results["models"], strict=True):
        assert cold["pass_ratio"] == 1.0 and warm["pass_ratio"] == 1.0
        for kind, stats in cold["encoding"].items():
            assert stats["encoder_passes"] == stats["unique_inputs"] > 0 and stats["cache_hits"] == 0
            assert warm["encoding"][kind]["encoder_passes"] == 0
            assert warm["encoding"][kind]["cache_hits"] == stats["unique_inputs"]
    fusion = {model["name"]: model["fusion"] for model in first.results["models"]}
    assert fusion["FLAVA"] == "multimodal-encoder" and fusion["CLIP"] == "mean"
    assert "pair" in first.results["models"][MODEL_ORDER.index("FLAVA")]["encoding"]
    assert _figures(first.results) == _figures(second.results)


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_table_layouts(full_run):
    first, _ = full_run
    tables = first.output_dir / "tables"
    with (tables / "table4_ITm-ITe.csv").open() as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["Model", *TEXT_FORMATS]
    assert [row[0] for row in rows[1:]] == MODEL_ORDER
    with (tables / "table5.csv").open() as stream:
        assert list(csv.reader(stream))[0] == ["Model", "M3EL sample"]
    with (tables / "tasks.csv").open() as stream:
        assert list(csv.reader(stream))[0] == ["Model", *TASKS]
    with (tables / "topics.csv").open() as stream:
        assert list(csv.reader(stream))[0] == ["Model", *TOPICS, "all"]
    markdown = (tables / "table5.md").read_text()
    assert "| Model | M3EL sample |" in markdown and "| CLIP-ND |" in markdown
    assert not list(tables.glob("table4_Im-*"))  # image-only mentions have no text format
    assert (first.output_dir / "accuracy_by_task.png").read_bytes()[:4] == b"\x89PNG"
    model_index = json.loads((first.output_dir / "model_index.json").read_text())
    assert set(model_index["CLIP-ND"]) == set(TASKS)
    assert set(model_index["CLIP-ND"]["ITm-ITe"]) == {"accuracy", "top_5", "mrr"}


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_results_json_records_provenance(full_run):
    first, _ = full_run
    saved = json.loads((first.output_dir / "results.json").read_text())
    assert {"date", "versions", "run", "dataset", "models", "skipped_models", "results"} <= set(saved)
    assert saved["versions"]["transformers"] and saved["run"]["seed"] == 42
    assert all(model["revision"].startswith("local-") for model in saved["models"])
    assert saved["dataset"]["num_mentions"] == 27


def test_a_new_text_format_reuses_cached_embeddings(tiny_models, sample_dataset, tmp_path):
    models = {"CLIP": tiny_models["CLIP"]}
    common = ("--tasks", "Tm-Te", "--headline_task", "Tm-Te")
    main(run_args(sample_dataset, models, tmp_path / "a", tmp_path / "cache", *common, "--text_formats", "S1",
                  "--headline_format", "S1"))  # fmt: skip
    second = main(run_args(sample_dataset, models, tmp_path / "b", tmp_path / "cache", *common, "--text_formats",
                           "S1", "M-S1", "--headline_format", "M-S1"))  # fmt: skip
    stats = second.results["models"][0]["encoding"]["text"]
    assert stats["cache_hits"] > 0 and stats["encoder_passes"] == 27  # only the 27 new mention texts
    assert stats["cache_hits"] + stats["encoder_passes"] == stats["unique_inputs"]


def test_images_are_decoded_in_dataloader_workers(tiny_models, sample_dataset, tmp_path):
    args = run_args(sample_dataset, {"CLIP": tiny_models["CLIP"]}, tmp_path / "out", tmp_path / "cache",
                    "--tasks", "Im-Ie", "--headline_task", "Im-Ie")  # fmt: skip
    args[args.index("--num_workers") + 1] = "2"
    result = main(args)
    assert result.results["models"][0]["encoding"]["image"]["encoder_passes"] == 71
