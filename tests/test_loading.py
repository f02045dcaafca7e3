"""The one dataset-access layer: every source kind gives the same rows, training and the benchmark read through it,
and one `supported_tasks` answers for both."""

from __future__ import annotations

import re

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants as hub_constants
from release_fixtures import small_release

from m3el_benchmark.evaluation.data import UniqueInputs, load_kb, load_mentions
from m3el_benchmark.evaluation.dataset_specs import DatasetSpec
from m3el_benchmark.run import load_dataset_spec
from m3el_benchmark.train import parse_arguments
from m3el_benchmark.training.trainer import CLIPNDTrainer
from m3el_dataset import loading
from m3el_dataset.constants import TASKS
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.loading import MissingSplitError, missing_inputs, open_split, resolve_source, supported_tasks
from m3el_dataset.rows import FEATURES, MENTIONS_CONFIG, config_columns
from m3el_dataset.sample import SAMPLE_DIR


@pytest.fixture(scope="module")
def raw_release(tmp_path_factory):
    return small_release(tmp_path_factory.mktemp("release") / "raw", per_topic=6).write()


@pytest.fixture(scope="module")
def exported(raw_release, tmp_path_factory):
    return str(export_release(raw_release, tmp_path_factory.mktemp("hub") / "hub", ExportConfig()).out_dir)


def test_a_raw_release_and_its_export_give_the_same_rows(raw_release, exported, tmp_path):
    from_raw = open_split(str(raw_release), MENTIONS_CONFIG, "test", cache_dir=tmp_path / "cache")
    from_export = open_split(exported, MENTIONS_CONFIG, "test")
    assert len(from_export) > 0 and from_raw.to_list() == from_export.to_list()
    assert from_raw.column_names == list(FEATURES)
    assert set(from_raw[0]["mention_image"]) == {"bytes", "path"}  # left undecoded


def test_the_sample_gives_the_rows_of_its_export(tmp_path):
    from_sample = open_split("sample", MENTIONS_CONFIG, "validation", cache_dir=tmp_path / "cache")
    hub = export_release(SAMPLE_DIR, tmp_path / "hub", ExportConfig()).out_dir
    assert len(from_sample) > 0
    assert from_sample.to_list() == open_split(str(hub), MENTIONS_CONFIG, "validation").to_list()


def test_a_raw_release_is_exported_once_per_fingerprint(raw_release, tmp_path, monkeypatch):
    first = resolve_source(str(raw_release), tmp_path)
    assert first.startswith(str(tmp_path / "raw-")) and resolve_source(str(raw_release), tmp_path) == first
    monkeypatch.setattr(loading, "export_release", lambda *args: pytest.fail("exported a second time"))
    assert resolve_source(str(raw_release), tmp_path) == first


def test_the_default_cache_is_under_hf_home(raw_release, tmp_path, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HOME", str(tmp_path / "hf"))
    assert resolve_source(str(raw_release)).startswith(str(tmp_path / "hf" / "m3el" / "datasets" / "raw-"))


def test_exported_folders_and_hub_ids_are_read_as_they_are(exported, tmp_path):
    assert resolve_source(exported, tmp_path) == exported and resolve_source("org/name", tmp_path) == "org/name"
    assert not any(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="'no-such' is neither a folder nor a Hub id"):
        resolve_source("no-such", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds neither an exported M3EL dataset"):
        resolve_source(str(tmp_path / "empty"), tmp_path)


def test_columns_keep_those_the_dataset_has(exported):
    table = open_split(exported, MENTIONS_CONFIG, "test", columns=["label", "id", "no_such_column"])
    assert table.column_names == ["label", "id"]


def test_a_missing_split_names_the_dataset_and_the_split(exported):
    with pytest.raises(MissingSplitError, match=rf"Dataset {re.escape(exported)} has no split 'training'"):
        open_split(exported, MENTIONS_CONFIG, "training")


def test_a_folder_not_in_m3el_layout_is_named(tmp_path):
    (tmp_path / "data" / "x").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a", "b"]}), tmp_path / "data" / "x" / "test.parquet")
    card = "---\nconfigs:\n- config_name: mentions\n  data_files:\n  - split: test\n    path: data/x/test.parquet\n"
    card += "---\n"
    (tmp_path / "README.md").write_text(card)
    with pytest.raises(ValueError, match=r"not an M3EL-layout folder: its shard data/x/test.parquet has no column id"):
        open_split(str(tmp_path), MENTIONS_CONFIG, "test")


def test_supported_tasks_of_a_full_dataset_and_of_column_subsets():
    full = list(FEATURES)
    assert supported_tasks(["M-S1"], full) == list(TASKS) == supported_tasks(["S1", "S-M-D"], full)
    assert supported_tasks([], full) == ["Im-Te", "Im-Ie", "Im-ITe"]  # no format: no mention text
    image_only = config_columns("Im-Ie")  # a converted WIKIPerson: images on both sides
    assert supported_tasks(["M-S1"], image_only) == ["Im-Ie"]
    assert missing_inputs("Tm-Te", ["M-S1"], image_only) == {
        "mention text 'M-S1'": ["mention_name", "sentence1"],
        "entity text": ["candidate_names", "candidate_descriptions", "candidate_texts"],
    }
    no_entity_image = [column for column in full if column != "candidate_images"]  # a converted WikiDiverse
    assert supported_tasks(["M-S1"], no_entity_image) == ["Tm-Te", "Im-Te", "ITm-Te"]


def test_supported_tasks_under_the_kb_protocol_ask_the_knowledge_base():
    class ImageOnlyKB:
        has_text, has_image = False, True

    with_text = config_columns("ITm-ITe")
    assert supported_tasks(["M-S1"], with_text, ImageOnlyKB()) == ["Tm-Ie", "Im-Ie", "ITm-Ie"]
    assert missing_inputs("ITm-Te", ["M-S1"], with_text, ImageOnlyKB()) == {"entity text": []}


@pytest.fixture
def opened(monkeypatch):
    """Every (config, split) read through `loading.open_split`; any other read of a dataset fails the test."""
    real_open, real_as_dataset = loading.open_split, datasets.DatasetBuilder.as_dataset
    calls, inside = [], []

    def spy(source, config, split, **kwargs):
        calls.append((config, split))
        inside.append(True)
        try:
            return real_open(source, config, split, **kwargs)
        finally:
            inside.pop()

    def guarded(self, *args, **kwargs):  # every table `datasets` builds, from a folder or a builder, passes here
        assert inside, "a dataset was read outside m3el_dataset.loading.open_split"
        return real_as_dataset(self, *args, **kwargs)

    monkeypatch.setattr(loading, "open_split", spy)
    monkeypatch.setattr(datasets.DatasetBuilder, "as_dataset", guarded)
    return calls


def test_training_obtains_every_split_through_open_split(raw_release, tmp_path, opened):
    argv = ["--init", "tiny", "--tiny_hidden_size", "32", "--tiny_image_size", "16", "--tiny_patch_size", "8",
            "--tiny_vocab_size", "300", "--report_to", "none", "--dataset", str(raw_release),
            "--dataset_cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "run")]  # fmt: skip
    CLIPNDTrainer(*parse_arguments(argv))
    assert opened == [(MENTIONS_CONFIG, "train"), (MENTIONS_CONFIG, "validation")]
    assert [path.name.startswith("raw-") for path in (tmp_path / "cache").iterdir()] == [True]


def test_training_names_the_argument_of_a_missing_split(exported, tmp_path, opened):
    argv = ["--init", "tiny", "--dataset", exported, "--train_split", "training", "--output_dir", str(tmp_path)]
    with pytest.raises(ValueError, match="has no split 'training'.* Choose one with --train_split/--validation_split"):
        CLIPNDTrainer(*parse_arguments(argv))
    assert opened == [(MENTIONS_CONFIG, "training")]


def test_the_benchmark_obtains_every_split_through_open_split(raw_release, tmp_path, opened):
    spec = DatasetSpec("raw", str(raw_release), "kb", ("ITm-ITe",), ("M-S1",), ("train", "test"))
    loaded = load_dataset_spec(spec, tmp_path / "cache")
    assert opened == [(MENTIONS_CONFIG, "train"), (MENTIONS_CONFIG, "test"), ("kb", "kb")]
    opened.clear()
    mentions = load_mentions(loaded.path, ["validation"], None, ["M-S1"])
    load_kb(loaded.path, UniqueInputs())
    assert opened == [(MENTIONS_CONFIG, "validation"), ("kb", "kb")] and len(mentions) > 0
