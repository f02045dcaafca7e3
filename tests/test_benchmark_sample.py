"""The default run (``m3el_benchmark/configs/sample.yaml``): build the sample, train a tiny CLIP-ND, compare, skip;
run as the README's main command, ``accelerate launch benchmark/run.py``, whose log must read cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from readable_log import log_problems
from tiny_baselines import place_in_hub_cache, save_tiny_clip_baseline

from m3el_benchmark.baselines import BASELINES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_default_sample_run_trains_compares_and_skips_models_not_downloaded(tmp_path):
    hub = tmp_path / "hub"
    place_in_hub_cache(save_tiny_clip_baseline(tmp_path / "clip"), hub, BASELINES["CLIP"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub), "PYTHONPATH": str(REPO)}
    # The README's command with the sample config as it is, with a shorter training so that the test stays fast.
    command = [sys.executable, "-m", "accelerate.commands.launch", "benchmark/run.py", "--train_max_steps", "2",
               "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    names = [model["name"] for model in results["models"]]
    assert names == ["CLIP-ND (tiny, trained)", "CLIP-ND (tiny, untrained)", "CLIP"]
    assert set(results["skipped_models"]) == set(BASELINES) - {"CLIP"}
    assert "hf download google/siglip-base-patch16-224" in results["skipped_models"]["SigLIP"]
    printed = completed.stdout
    assert "**Table 5 - ACC (%) by dataset" in printed and "| Model | M3EL sample ITm-ITe (M-S1) |" in printed
    assert "nil_policy: wrong" in printed and "| *n (mentions scored)* | 27 |" in printed
    assert "**ACC of each model minus CLIP-ND (tiny, trained)'s on the same mentions" in printed
    assert "| CLIP-ND (tiny, trained) |" in printed and "Skipped models:" in printed
    assert "- FLAVA: not downloaded: `hf download facebook/flava-full` to include it" in printed
    assert (tmp_path / "out" / "models" / "clip_nd_tiny" / "config.json").is_file()
    # The log (stderr, not a terminal): each warning once, no deprecation warning from our code, no record glued
    # onto a progress bar, no cursor-up escapes, no empty bars.
    assert log_problems(completed.stderr) == [], completed.stderr[-3000:]
    assert "Skipping 5 models not in the local cache" in completed.stderr  # one line, not one per model
