"""Two CPU processes under `accelerate launch` give exactly the figures of one process, each input encoded once."""

from __future__ import annotations

import json

import pytest
from tiny_baselines import TINY_BASELINES
from two_processes import launch_two_cpu_processes

from m3el_benchmark.run import main
from m3el_dataset.loading import resolve_source

# One plain dual encoder, one scored per query token, one with its own multimodal fusion (FLAVA-MM's pairs).
MODELS = ("CLIP", "BLIP-2", "FLAVA")
FUSION = {"FLAVA": "#multimodal-encoder"}


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    dataset = resolve_source("sample", tmp_path / "datasets")
    specs = [f"{name}={TINY_BASELINES[name](tmp_path / name)}{FUSION.get(name, '')}" for name in MODELS]
    common = ["--dataset", dataset, "--models", *specs, "--train_tiny", "false", "--num_workers", "0",
              "--tasks", "Tm-Te", "Im-Ie", "ITm-ITe", "--text_formats", "M-S1", "S-M-D"]  # fmt: skip
    single = main([*common, "--output_dir", str(tmp_path / "one"), "--cache_dir", str(tmp_path / "cache1")])

    two_args = [*common, "--output_dir", str(tmp_path / "two"), "--cache_dir", str(tmp_path / "cache2")]
    completed = launch_two_cpu_processes("benchmark/run.py", two_args)

    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["run"]["num_processes"] == 2
    assert two["results"] == single.results["results"]
    for model in two["models"]:
        assert model["pass_ratio"] == 1.0
        for stats in model["encoding"].values():
            assert stats["encoder_passes"] == stats["unique_inputs"]
    assert "| Model | M-S1 | S-M-D |" in completed.stdout
    # The report's gallery: each process kept the mistakes of its shard, merged into the single process's sample.
    one_report, two_report = ((tmp_path / run / "report.html").read_text(encoding="utf-8") for run in ("one", "two"))
    gallery = one_report[one_report.index('<section id="gallery">'):]
    assert gallery.count('class="mistake"') > 0 and two_report[two_report.index('<section id="gallery">'):] == gallery
