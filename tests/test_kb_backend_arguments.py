"""The kb protocol's knobs on the command line (``--kb_backend``, ``--kb_mention_batch``): the same figures from
either backend through the runner, recorded in results.json, and a clear error when FAISS is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tiny_clip import save_tiny_clip

from m3el_benchmark.evaluation.kb_ranking import KBRankingSettings
from m3el_benchmark.run import main, parse_arguments
from m3el_dataset.loading import resolve_source

HAS_FAISS = importlib.util.find_spec("faiss") is not None


@pytest.fixture(scope="module")
def sample_and_clip(tmp_path_factory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("kb_backends")
    return resolve_source("sample", root / "datasets"), save_tiny_clip(root / "clip")


def _run(sample: str, clip: Path, out: Path, backend: str) -> dict:
    return main(["--dataset", sample, "--protocol", "kb", "--models", f"CLIP={clip}", "--train_tiny", "false",
                 "--tasks", "Tm-Te", "ITm-ITe", "--text_formats", "M-S1", "--kb_chunk_size", "7",
                 "--kb_backend", backend, "--kb_mention_batch", "3", "--num_workers", "0",
                 "--output_dir", str(out / "out"), "--cache_dir", str(out / "cache")]).results  # fmt: skip


def test_the_flags_reach_the_kb_settings_and_default_to_them():
    default = parse_arguments([]).kb_settings()
    assert (default.backend, default.mention_batch) == (KBRankingSettings.backend, KBRankingSettings.mention_batch)
    chosen = parse_arguments(["--kb_backend", "torch", "--kb_mention_batch", "5", "--kb_chunk_size", "9"])
    assert (chosen.kb_settings().mention_batch, chosen.kb_settings().chunk_size) == (5, 9)


@pytest.mark.skipif(not HAS_FAISS, reason="the faiss backend needs faiss (pip install 'm3el[faiss]')")
def test_both_backends_give_identical_figures_on_the_sample(sample_and_clip, tmp_path):
    sample, clip = sample_and_clip
    exact = _run(sample, clip, tmp_path / "torch", "torch")
    listed = _run(sample, clip, tmp_path / "faiss", "faiss")
    assert listed["run"]["kb_backend"] == "faiss" and exact["run"]["kb_backend"] == "torch"
    assert listed["run"]["kb_mention_batch"] == 3
    records = [record for record in exact["results"] if record["topic"] == "all"]
    assert records and all(record["protocol"] == "kb" for record in records)
    assert listed["results"] == exact["results"]


def test_faiss_backend_without_faiss_names_the_extra(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args):
        return None if name == "faiss" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ValueError, match=r"pip install 'm3el\[faiss\]'.*--kb_backend"):
        parse_arguments(["--kb_backend", "faiss"])


def test_an_unknown_backend_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["--kb_backend", "annoy"])
    assert "torch" in capsys.readouterr().err
