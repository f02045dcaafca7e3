"""The default run (``m3el_benchmark/configs/sample.yaml``): build the sample, train a tiny CLIP-ND, compare, skip."""

from __future__ import annotations

import pytest
from tiny_baselines import place_in_hub_cache, save_tiny_clip_baseline

from m3el_benchmark.baselines import BASELINES
from m3el_benchmark.run import main


@pytest.mark.slow
def test_default_sample_run_trains_compares_and_skips_models_not_downloaded(tmp_path, monkeypatch, capsys):
    hub = tmp_path / "hub"
    place_in_hub_cache(save_tiny_clip_baseline(tmp_path / "clip"), hub, BASELINES["CLIP"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    # The sample config as it is, with a shorter training so that the test stays fast.
    result = main(["--train_max_steps", "2", "--num_workers", "0", "--output_dir", str(tmp_path / "out"),
                   "--cache_dir", str(tmp_path / "cache")])  # fmt: skip
    names = [model["name"] for model in result.results["models"]]
    assert names == ["CLIP-ND (tiny, trained)", "CLIP-ND (tiny, untrained)", "CLIP"]
    assert set(result.skipped) == set(BASELINES) - {"CLIP"}
    assert "hf download google/siglip-base-patch16-224" in result.skipped["SigLIP"]
    printed = capsys.readouterr().out
    assert "**Table 5 - ACC (%) by dataset" in printed and "| Model | M3EL sample ITm-ITe (M-S1) |" in printed
    assert "nil_policy: wrong" in printed and "| *n (mentions scored)* | 27 |" in printed
    assert "**ACC of each model minus CLIP-ND (tiny, trained)'s on the same mentions" in printed
    assert "| CLIP-ND (tiny, trained) |" in printed and "Skipped models:" in printed
    assert "- FLAVA: not downloaded: `hf download facebook/flava-full` to include it" in printed
    assert (tmp_path / "out" / "models" / "clip_nd_tiny" / "config.json").is_file()
