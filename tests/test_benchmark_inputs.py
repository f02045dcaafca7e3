"""Bad input names the valid values; missing and undecodable images are scored as missing and counted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from tiny_clip import save_tiny_clip

from m3el_benchmark.baselines import BASELINES
from m3el_benchmark.evaluation.data import MentionTable, UniqueInputs
from m3el_benchmark.evaluation.encoding import IMAGE, TEXT, EmbeddingTable
from m3el_benchmark.evaluation.scoring import NO_FORMAT, CandidateScorer, Setting
from m3el_benchmark.run import CONFIG_DIR, BenchmarkArguments, main, parse_arguments
from m3el_dataset.constants import TASKS, TEXT_FORMATS
from m3el_dataset.loading import resolve_source


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("--tasks", "Tm-Xe", "Unknown task 'Tm-Xe'; choose from Tm-Te, Tm-Ie"),
        ("--text_formats", "M-S2", "Unknown text format 'M-S2'; choose from S1, S, M-S1"),
        ("--splits", "dev", "Unknown split 'dev'; choose from train, validation, test, movies"),
        ("--topics", "music", "Unknown topic 'music'; choose from movies, common"),
        ("--protocol", "kb-all", "Unknown protocol 'kb-all'; choose from candidates"),
    ],
)
def test_unknown_names_list_the_valid_ones(argument, value, message):
    with pytest.raises(ValueError, match=message):
        parse_arguments([argument, value])


def test_unknown_model_name_lists_the_baselines(tmp_path):
    with pytest.raises(ValueError, match="Unknown model 'ViT-L'; use one of the baselines ALIGN, BLIP-2"):
        main(
            ["--models", "ViT-L", "--train_tiny", "false", "--output_dir", str(tmp_path), "--cache_dir", str(tmp_path)]
        )


def test_unknown_config_key_is_refused(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("dataset: sample\nmodel: CLIP\n")
    with pytest.raises(ValueError, match=r"Unknown keys \['model'\] in .*bad.yaml; valid keys: .*models"):
        parse_arguments(["--config", str(config)])


@pytest.mark.parametrize("name", ["sample.yaml", "paper.yaml"])
def test_bundled_configs_agree_with_the_registry_and_constants(name):
    values = yaml.safe_load((CONFIG_DIR / name).read_text())
    assert set(values) <= set(BenchmarkArguments.__dataclass_fields__)
    assert values["models"] == list(BASELINES)
    assert values["tasks"] == list(TASKS) and values["text_formats"] == list(TEXT_FORMATS)
    args = parse_arguments(["--config", str(CONFIG_DIR / name)])
    assert args.protocol == "candidates"


def test_command_line_overrides_the_config():
    args = parse_arguments(["--tasks", "Tm-Te", "--headline_task", "Tm-Te", "--batch_size", "8"])
    assert args.tasks == ["Tm-Te"] and args.batch_size == 8 and args.train_tiny  # the rest from sample.yaml


def _table(mention_images, candidate_images, gold) -> MentionTable:
    count = len(gold)
    return MentionTable(
        ids=[f"m{i}" for i in range(count)],
        topics=["books"] * count,
        gold=np.asarray(gold),
        mention_texts={"S1": ["t"] * count},
        mention_images=mention_images,
        candidate_texts=[["t", "u"]] * count,
        candidate_images=candidate_images,
        inputs=UniqueInputs(),
    )


def test_missing_images_rank_last_and_a_mention_without_its_image_is_wrong():
    table = _table([None, "a", "a"], [["a", None], ["a", None], ["a", None]], gold=[0, 0, 1])
    unit = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    tables = {TEXT: EmbeddingTable({"t": 0, "u": 1}, unit), IMAGE: EmbeddingTable({"a": 0}, unit[:1])}
    scorer = CandidateScorer(table, tables, ["S1"])
    figures = scorer.ranks(Setting("Im-Ie", NO_FORMAT), torch.arange(3))
    ranks, missing_scores, mention_missing = figures.T.tolist()
    assert ranks == [3, 1, 2]  # no mention image: past both candidates; a gold without image ranks below the rest
    assert missing_scores == [2, 1, 1] and mention_missing == [1, 0, 0]
    text_only = scorer.ranks(Setting("Tm-Te", "S1"), torch.arange(3))
    assert text_only[:, 1].sum() == 0 and text_only[:, 2].sum() == 0  # text tasks never see the images


def _damage_images(folder: Path) -> None:
    """Empty the first test mention's image of a topic, and replace one candidate image by bytes that are no image."""
    shard = next((folder / "data" / "books").glob("test-*.parquet"))
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["mention_image"] = None
    rows[1]["candidate_images"][0] = {"bytes": b"not an image", "path": "broken.jpg"}
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), shard)


@pytest.mark.slow
def test_missing_and_undecodable_images_are_counted_end_to_end(tmp_path):
    exported = Path(resolve_source("sample", tmp_path / "datasets"))
    damaged = tmp_path / "damaged"
    shutil.copytree(exported, damaged)
    _damage_images(damaged)
    clip = save_tiny_clip(tmp_path / "clip")
    output = ["--num_workers", "0", "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "c")]
    result = main(["--dataset", str(damaged), "--models", f"CLIP={clip}", "--train_tiny", "false",
                   "--tasks", "Tm-Te", "Im-Ie", "Tm-Ie", "--headline_task", "Tm-Te", "--text_formats", "M-S1",
                   *output])  # fmt: skip
    model = result.results["models"][0]
    assert model["undecodable_images"] == 1 and model["encoding"]["image"]["undecodable"] == 1
    records = {(r["task"], r["topic"]): r for r in result.results["results"]}
    assert records["Tm-Te", "all"]["missing_candidate_scores"] == 0
    assert records["Im-Ie", "all"]["missing_mentions"] == 1 and records["Im-Ie", "books"]["missing_mentions"] == 1
    assert (
        records["Tm-Ie", "all"]["missing_candidate_scores"] == 1 and records["Tm-Ie", "all"]["missing_mentions"] == 0
    )
