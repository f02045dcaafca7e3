"""The DifFMEL release: M3EL's records rooted at ``/DiffMEL/`` with a ``difficulty`` level, kept as a column."""

import ast
import json

import datasets
import pytest
import yaml
from real_data import real_data
from release_fixtures import FakeRelease, image_bytes

from m3el_dataset import M3ELBuilder
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.release import ReleaseRecordError, iter_release
from m3el_dataset.report import BuildReport


class DiffMELRelease(FakeRelease):
    """A release whose records name their images ``/DiffMEL/...``, as the DifFMEL README prints them."""

    def image_ref(self, topic, folder, qid, ext=".jpg"):
        original, url, local = super().image_ref(topic, folder, qid, ext)
        return [original, url, local.replace("/M3EL/", "/DiffMEL/", 1)]

    def path_of(self, local_path):
        return self.root / local_path.removeprefix("/DiffMEL/")


def _release(root, topics=("movies", "sports"), per_topic=5):
    release = DiffMELRelease(root)
    for topic in topics:
        for i in range(per_topic):
            gold = f"Q{100 + i}"
            record = release.add(topic, name=f"Entity {i}", qid=gold, sentence=f"Entity {i} of {topic}. More.",
                                 candidates=((gold, f"Entity {i}", "it"), (f"Q{900 + i}", "Other", "not it")))
            record["difficulty"] = i % 3
    return release


def _configs(folder):
    meta = yaml.safe_load((folder / "README.md").read_text(encoding="utf-8").split("---")[1])
    return {entry["config_name"]: [f["split"] for f in entry["data_files"]] for entry in meta["configs"]}


def _load_every_declared_split(folder):
    """Every config and split the card declares, loaded with `load_dataset`: {config: {split: dataset}}."""
    return {config: {split: datasets.load_dataset(str(folder), config, split=split) for split in splits}
            for config, splits in _configs(folder).items()}  # fmt: skip


def test_diffmel_builds_with_its_images_and_keeps_difficulty(tmp_path):
    release = _release(tmp_path / "download" / "DiffMEL")  # the user gives the folder above DiffMEL/
    release.write()
    result = export_release(tmp_path / "download", tmp_path / "hub", ExportConfig())
    assert result.report.image_problems == [] and result.report.ignored_fields == []
    loaded = _load_every_declared_split(result.out_dir)
    assert all("difficulty" in loaded[config]["movies"].column_names for config in ("ITm-ITe", "Tm-Te", "Im-Ie"))
    movies = loaded["mentions"]["movies"]
    assert dict(zip(movies["gold_qid"], movies["difficulty"], strict=True)) == {f"Q{100 + i}": i % 3 for i in range(5)}
    assert movies["label"] == [0] * 5
    assert all(row["mention_image"] is not None and None not in row["candidate_images"] for row in movies)
    assert sum(len(loaded["mentions"][split]) for split in ("sports", "movies")) == 10
    assert "difficulty" not in loaded["kb"]["kb"].column_names
    assert "DifFMEL" in (result.out_dir / "README.md").read_text(encoding="utf-8")


def test_a_one_topic_diffmel_release_loads_every_declared_config_and_split(tmp_path):
    _release(tmp_path / "DiffMEL", topics=("books",), per_topic=4).write()
    result = export_release(tmp_path / "DiffMEL", tmp_path / "hub", ExportConfig())
    loaded = _load_every_declared_split(result.out_dir)
    assert set(loaded["mentions"]) == {split for split in ("train", "validation", "test") if
                                       result.statistics.total.splits[split]} | {"books"}  # fmt: skip
    assert sorted(row["difficulty"] for row in loaded["mentions"]["books"]) == [0, 0, 1, 2]
    assert all(len(datasets_by_split["books"]) == 4 for name, datasets_by_split in loaded.items() if name != "kb")


def test_the_builder_class_keeps_difficulty_too(tmp_path):
    _release(tmp_path / "DiffMEL", topics=("sports",), per_topic=3).write()
    builder = M3ELBuilder(config_name="Tm-Te", data_dir=str(tmp_path / "DiffMEL"), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    assert builder.as_dataset(split="sports")["difficulty"] == [0, 1, 2]


def test_fields_without_a_column_are_reported_never_dropped_silently(tmp_path):
    release = _release(tmp_path / "raw", topics=("movies",), per_topic=3)
    release.files["movies.json"][0]["aliases"] = ["E0"]
    release.files["movies.json"][2]["aliases"] = []
    release.files["movies.json"][1]["candidates"][0]["rank"] = 1
    release.write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
    ignored = {entry.field: (entry.records, entry.first) for entry in result.report.ignored_fields}
    assert ignored == {"aliases": (2, "movies.json, record 0"), "candidates[].rank": (1, "movies.json, record 1")}
    saved = json.loads((result.out_dir / "build_report.json").read_text(encoding="utf-8"))
    assert {entry["field"] for entry in saved["ignored_fields"]} == {"aliases", "candidates[].rank"}


def test_a_level_that_only_later_records_hold_is_reported(tmp_path):
    release = _release(tmp_path / "raw", topics=("movies",), per_topic=3)
    del release.files["movies.json"][0]["difficulty"]  # the first record decides the columns
    release.write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
    assert [(e.field, e.records) for e in result.report.ignored_fields] == [("difficulty", 2)]
    assert "difficulty" not in datasets.load_dataset(str(result.out_dir), "mentions", split="movies").column_names


def test_a_level_that_is_not_an_integer_names_the_record(tmp_path):
    release = _release(tmp_path / "raw", topics=("movies",), per_topic=2)
    release.files["movies.json"][1]["difficulty"] = "hard"
    release.write()
    with pytest.raises(ReleaseRecordError, match=r"movies.json, record 1, field 'difficulty': expected int, got str"):
        list(iter_release(tmp_path / "raw"))


def _readme_record(text: str) -> dict:
    # The DifFMEL README prints its record as a Python literal with no comma after "'difficulty': 0".
    return ast.literal_eval(text.replace("'difficulty': 0\n", "'difficulty': 0,\n"))


@pytest.mark.parametrize(("file", "root"), [("readme_record.json", "M3EL"),
                                            ("diffmel_readme_record.py.txt", "DiffMEL")])  # fmt: skip
def test_the_published_records_build_with_placeholder_images(tmp_path, file, root):
    text = real_data("m3el", file).read_text(encoding="utf-8")
    record = json.loads(text) if file.endswith(".json") else _readme_record(text)
    raw = tmp_path / "download" / root
    raw.mkdir(parents=True)
    (raw / "movies.json").write_text(json.dumps([record]), encoding="utf-8")
    for local in {record["image"][2], *(candidate["image"][2] for candidate in record["candidates"])}:
        path = raw / local.removeprefix(f"/{root}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(local))
    result = export_release(tmp_path / "download", tmp_path / "hub", ExportConfig())
    assert result.report.image_problems == [] and result.report.ignored_fields == []
    row = datasets.load_dataset(str(result.out_dir), "mentions", split="movies")[0]
    assert (row["gold_qid"], row["label"]) == ("Q18151305", 0)
    assert row["candidate_qids"] == ["Q18151305", "Q1558", "Q204328"]
    assert row.get("difficulty") == (0 if root == "DiffMEL" else None)
    assert BuildReport.load(result.out_dir).images_ok == 4
