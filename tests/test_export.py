import hashlib

import datasets
import pytest
import yaml
from PIL import Image
from release_fixtures import FakeRelease, small_release

from m3el_dataset import M3ELBuilder
from m3el_dataset.card import metadata_configs
from m3el_dataset.constants import ALL_SPLITS, SPLITS, TASKS, TEXT_FORMAT_TEMPLATES, TOPICS, parse_task
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.parquet_shards import ShardLimits
from m3el_dataset.rows import CONFIG_NAMES, FEATURES, config_columns, text_column


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    small_release(root / "raw", per_topic=10).write()
    return export_release(root / "raw", root / "hub", ExportConfig())


def _load(folder, config, split):
    return datasets.load_dataset(str(folder), config, split=split)


@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_every_config_and_split_loads(exported, config):
    splits = ["kb"] if config == "kb" else list(ALL_SPLITS)
    total = {}
    for split in splits:
        ds = _load(exported.out_dir, config, split)
        assert ds.column_names == config_columns(config)
        total[split] = len(ds)
    if config == "kb":
        assert total["kb"] == exported.num_kb_entities
    else:
        assert sum(total[s] for s in SPLITS) == sum(total[t] for t in TOPICS) == 50


def test_images_decode_to_pil_and_labels_point_at_gold(exported):
    ds = _load(exported.out_dir, "ITm-ITe", "movies")
    for row in ds:
        assert isinstance(row["mention_image"], Image.Image)
        assert all(isinstance(image, Image.Image) for image in row["candidate_images"])
        if row["label"] >= 0:
            assert row["candidate_qids"][row["label"]] == row["gold_qid"]
        else:
            assert row["gold_qid"] not in row["candidate_qids"]
    assert sorted({row["label"] for row in ds}) == [-1, 0, 1]


def test_texts_match_templates(exported):
    ds = _load(exported.out_dir, "Tm-Te", "books")
    row = ds[3]
    parts = {"M": row["mention_name"], "S": row["sentence"], "S1": row["sentence1"], "D": row["gold_description"]}
    assert parts["S1"] == f"Here {parts['M']} of books appears."
    for name, template in TEXT_FORMAT_TEMPLATES.items():
        assert row[text_column(name)] == template.format(**parts)
    pairs = zip(row["candidate_names"], row["candidate_descriptions"], strict=True)
    assert row["candidate_texts"] == [f"{name}: {description}" for name, description in pairs]


def test_splits_are_disjoint_cover_everything_and_match_the_split_column(exported):
    ids = {split: set(_load(exported.out_dir, "Im-Te", split)["id"]) for split in ALL_SPLITS}
    learning = [ids[s] for s in SPLITS]
    assert sum(map(len, learning)) == len(set.union(*learning)) == 50
    assert set.union(*learning) == set.union(*(ids[t] for t in TOPICS))
    for split in SPLITS:
        assert set(_load(exported.out_dir, "Im-Te", split)["split"]) <= {split}


def _file_digests(folder):
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_two_builds_are_identical_and_num_proc_changes_nothing(exported, tmp_path):
    again = export_release(exported.out_dir.parent / "raw", tmp_path / "again", ExportConfig(num_proc=2))
    assert _file_digests(again.out_dir) == _file_digests(exported.out_dir)


def test_card_yaml_agrees_with_the_source_of_truth(exported):
    text = (exported.out_dir / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---")[1])
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert list(configs) == [*TASKS, "mentions", "kb"]
    assert configs["mentions"]["default"] is True
    for task in TASKS:
        spec = parse_task(task)
        columns = configs[task]["columns"]
        assert columns == config_columns(task)
        assert ("mention_image" in columns) == spec.mention_image
        assert ("text_M-S1" in columns) == spec.mention_text
        assert ("candidate_images" in columns) == spec.entity_image
        assert ("candidate_texts" in columns) == spec.entity_text
        assert [f["split"] for f in configs[task]["data_files"]] == list(ALL_SPLITS)
    infos = {info["config_name"]: info for info in meta["dataset_info"]}
    assert [f["name"] for f in infos["mentions"]["features"]] == list(FEATURES)
    assert meta["size_categories"] == ["n<1K"] and meta["license"] == "unknown" and meta["pretty_name"]
    for name in [*TEXT_FORMAT_TEMPLATES, *TOPICS]:
        assert name in text
    assert "| all | 50 | 50 | 150 |" in text  # statistics computed from the data
    assert "arXiv:2410.18096" in text and "gold entity's description on the mention side" in text
    assert metadata_configs() == meta["configs"]


def test_images_are_stored_once_whatever_the_number_of_configs(exported):
    import pyarrow.parquet as pq

    data_shards = sorted(exported.out_dir.glob("data/*/*.parquet"))
    assert {p.parent.name for p in data_shards} == set(TOPICS)
    assert {p.name.split("-")[0] for p in data_shards} <= set(SPLITS)
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in data_shards) == 50  # each mention row once
    others = {p.relative_to(exported.out_dir).as_posix() for p in exported.out_dir.rglob("*.parquet")}
    data_names = {p.relative_to(exported.out_dir).as_posix() for p in data_shards}
    assert others - data_names == {"kb/kb-00000-of-00001.parquet"}


def test_shard_and_row_group_limits(tmp_path):
    small_release(tmp_path / "raw", per_topic=10).write()
    limits = ShardLimits(max_shard_bytes=2_000, row_group_rows=2)
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig(limits=limits))
    movie_train = sorted((tmp_path / "hub/data/movies").glob("train-*.parquet"))
    assert len(movie_train) > 1 and movie_train[-1].name.endswith(f"-of-{len(movie_train):05d}.parquet")
    import pyarrow.parquet as pq

    assert max(pq.ParquetFile(p).metadata.num_rows for p in movie_train) <= 2 * 2
    assert len(_load(result.out_dir, "Tm-Ie", "train")) == result.statistics.total.splits["train"]


def test_kb_lists_each_candidate_entity_once(exported):
    kb = _load(exported.out_dir, "kb", "kb")
    assert len(kb["qid"]) == len(set(kb["qid"]))
    mentions = _load(exported.out_dir, "mentions", "train").select_columns(["candidate_qids"])
    assert {q for qids in mentions["candidate_qids"] for q in qids} <= set(kb["qid"])


def test_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    small_release(tmp_path / "raw", per_topic=2).write()
    out = tmp_path / "hub"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_release(tmp_path / "raw", out, ExportConfig())
    release = FakeRelease(tmp_path / "bad")
    release.add("movies").pop("Qid")
    release.write()
    with pytest.raises(ValueError, match="field 'Qid'"):
        export_release(tmp_path / "bad", tmp_path / "never", ExportConfig())
    assert not (tmp_path / "never").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unknown_config_and_split_are_named(exported):
    with pytest.raises(ValueError, match="Tm-Ie"):
        _load(exported.out_dir, "Tm-Xe", "train")
    with pytest.raises(ValueError, match="validation"):
        _load(exported.out_dir, "Tm-Ie", "dev")


def test_builder_class_gives_the_same_rows_as_the_export(exported, tmp_path):
    raw = exported.out_dir.parent / "raw"
    for config, split in [("Tm-Ie", "validation"), ("ITm-ITe", "sports"), ("kb", "kb")]:
        builder = M3ELBuilder(config_name=config, data_dir=str(raw), cache_dir=str(tmp_path / "cache"))
        builder.download_and_prepare()
        built = builder.as_dataset(split=split)
        loaded = _load(exported.out_dir, config, split)
        key = "qid" if config == "kb" else "id"
        assert sorted(built.to_list(), key=lambda r: r[key]) == sorted(loaded.to_list(), key=lambda r: r[key])


def test_builder_needs_data_dir(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        M3ELBuilder(config_name="Tm-Te", cache_dir=str(tmp_path)).download_and_prepare()


def test_rebuilt_folder_and_namesakes_never_load_stale_rows(tmp_path):
    counts = {}
    for name, per_topic in (("a", 2), ("b", 3)):
        small_release(tmp_path / name / "raw", per_topic=per_topic).write()
        result = export_release(tmp_path / name / "raw", tmp_path / name / "hub", ExportConfig())
        counts[name] = result.statistics.total.splits
    assert 0 in counts["a"].values()  # a split without rows is not declared; the others load
    for name in ("a", "b"):
        for split in SPLITS:
            if counts[name][split]:
                assert len(_load(tmp_path / name / "hub", "Tm-Te", split)) == counts[name][split]
            else:
                with pytest.raises(ValueError, match=f'Unknown split "{split}"'):
                    _load(tmp_path / name / "hub", "Tm-Te", split)
    # Rebuilt in place with other data: the card's split sizes change, and so does what loads.
    rebuilt = export_release(tmp_path / "b" / "raw", tmp_path / "a" / "hub", ExportConfig(overwrite=True))
    movies = rebuilt.statistics.topics["movies"].mentions
    assert len(_load(tmp_path / "a" / "hub", "mentions", "movies")) == movies == 3


def test_card_records_rows_per_split(exported):
    meta = yaml.safe_load((exported.out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    infos = {info["config_name"]: info for info in meta["dataset_info"]}
    splits = {s["name"]: s["num_examples"] for s in infos["Tm-Ie"]["splits"]}
    assert splits == {**exported.statistics.total.splits, **{t: 10 for t in TOPICS}}
    assert infos["kb"]["splits"][0]["num_examples"] == exported.num_kb_entities


def test_kb_takes_an_entity_image_from_a_later_copy_when_the_first_is_missing(tmp_path):
    release = FakeRelease(tmp_path / "raw")
    first = release.add("movies", file="movies.json")
    release.add("movies", file="movies.json", name="Kansas Saloon Smashers again")  # same candidates, own folder
    release.path_of(first["candidates"][1]["image"][2]).unlink()  # Q204328's first copy is missing
    release.write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
    kb = {row["qid"]: row["image"] for row in _load(result.out_dir, "kb", "kb")}
    assert len(kb) == 3 and all(isinstance(image, Image.Image) for image in kb.values())
    builder = M3ELBuilder(config_name="kb", data_dir=str(tmp_path / "raw"), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    assert sorted(builder.as_dataset(split="kb")["qid"]) == sorted(kb)
    assert all(image is not None for image in builder.as_dataset(split="kb")["image"])
