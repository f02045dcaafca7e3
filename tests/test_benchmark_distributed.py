"""Two CPU processes under `accelerate launch` give exactly the figures of one process, each input encoded once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_baselines import TINY_BASELINES

from benchmark.evaluation.data import resolve_dataset
from benchmark.run import main

REPO = Path(__file__).resolve().parents[1]
# One plain dual encoder, one scored per query token, one with its own multimodal fusion.
MODELS = ("CLIP", "BLIP-2", "FLAVA")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    dataset = resolve_dataset("sample", tmp_path / "datasets")
    specs = [f"{name}={TINY_BASELINES[name](tmp_path / name)}" for name in MODELS]
    common = ["--dataset", dataset, "--models", *specs, "--train_tiny", "false", "--num_workers", "0",
              "--tasks", "Tm-Te", "Im-Ie", "ITm-ITe", "--text_formats", "M-S1", "S-M-D"]  # fmt: skip
    single = main([*common, "--output_dir", str(tmp_path / "one"), "--cache_dir", str(tmp_path / "cache1")])

    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--main_process_port", str(_free_port()), str(REPO / "benchmark" / "run.py"), *common,
               "--output_dir", str(tmp_path / "two"), "--cache_dir", str(tmp_path / "cache2")]  # fmt: skip
    completed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["run"]["num_processes"] == 2
    assert two["results"] == single.results["results"]
    for model in two["models"]:
        assert model["pass_ratio"] == 1.0
        for stats in model["encoding"].values():
            assert stats["encoder_passes"] == stats["unique_inputs"]
    assert "| Model | M-S1 | S-M-D |" in completed.stdout
