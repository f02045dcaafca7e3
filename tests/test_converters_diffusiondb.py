import json

import datasets
import pytest
import yaml
from converter_fixtures import (
    DIFFUSIONDB_PARTS,
    DIFFUSIONDB_PROMPTS,
    write_diffusiondb_flat,
    write_diffusiondb_hub,
    write_diffusiondb_metadata,
    write_diffusiondb_parquet,
    write_diffusiondb_parts,
    write_diffusiondb_zip,
    write_json,
)
from PIL import Image
from real_data import real_data
from release_fixtures import image_bytes

from m3el_dataset.cli import main
from m3el_dataset.converters import convert
from m3el_dataset.export import ExportConfig
from m3el_dataset.rows import undecoded_images


@pytest.mark.parametrize("write", [write_diffusiondb_parquet, write_diffusiondb_parts, write_diffusiondb_zip,
                                   write_diffusiondb_flat, write_diffusiondb_hub])  # fmt: skip
def test_prompts_link_to_their_images(tmp_path, write):
    result = convert("diffusiondb", write(tmp_path / "src"), tmp_path / "hub", ExportConfig())
    meta = yaml.safe_load((result.out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["Tm-Ie", "mentions", "kb"]
    ds = datasets.load_dataset(str(result.out_dir), "Tm-Ie", split="test")
    assert ds.column_names == ["id", "topic", "split", "sentence", "sentence1", "text_S1", "text_S", "gold_qid",
                               "candidate_qids", "candidate_images", "label"]  # fmt: skip
    names = list(DIFFUSIONDB_PROMPTS)  # DiffusionDB's image_name, the same in every layout
    assert ds["text_S"] == list(DIFFUSIONDB_PROMPTS.values()) and ds["gold_qid"] == names
    assert ds["label"] == [0, 0, 0] and ds["candidate_qids"] == [[name] for name in names]
    assert ds[0]["text_S1"] == "a castle on a hill, oil painting."
    assert all(isinstance(row["candidate_images"][0], Image.Image) for row in ds)
    kb = datasets.load_dataset(str(result.out_dir), "kb", split="kb")
    assert kb["qid"] == names and kb.column_names == ["qid", "image"]
    assert result.report.image_problems == [] and result.report.skipped_records == []


def test_missing_prompt_and_empty_folder(tmp_path):
    src = write_diffusiondb_parts(tmp_path / "src")
    table = src / "images/part-000001/part-000001.json"
    table.write_text(table.read_text().replace('"p"', '"prompt"', 1))
    with pytest.raises(ValueError, match="part-000001.json, record 0, field 'p': missing"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    result = convert("diffusiondb", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert result.statistics.total.mentions == 2 and len(result.report.skipped_records) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="2m_random_1k"):
        convert("diffusiondb", tmp_path / "empty", tmp_path / "out2", ExportConfig())


def test_zipped_parts_name_the_broken_archive_or_member(tmp_path):
    src = write_diffusiondb_zip(tmp_path / "src")
    archive = src / "images" / "part-000001.zip"
    data = archive.read_bytes()
    archive.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"images/part-000001.zip: not a readable zip archive"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    import zipfile

    archive.unlink()
    with zipfile.ZipFile(archive, "w") as broken:
        broken.writestr("other.json", "{}")
    with pytest.raises(ValueError, match=r"images/part-000001.zip: no part-000001.json inside the archive"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    archive.write_bytes(data)
    write_diffusiondb_parts(src)  # the same part unzipped beside the archive: read once, from the unzipped files
    result = convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    ids = datasets.load_dataset(str(result.out_dir), "mentions", split="test")["id"]
    assert ids == [f"images/part-000001/part-000001-{i:06d}" for i in range(3)]
    write_diffusiondb_parquet(src)
    with pytest.raises(ValueError, match="two DiffusionDB layouts, 2m_random_1k Parquet shards and part-NNNNNN"):
        convert("diffusiondb", src, tmp_path / "out2", ExportConfig())


def _write_part(root, number: int, images: dict[str, bytes]) -> None:
    part = root / "images" / f"part-{number:06d}"
    table = {name: {"p": f"prompt of {name}", "se": 1, "c": 7.0, "st": 50, "sa": "k_lms"} for name in images}
    write_json(part / f"part-{number:06d}.json", table)
    for name, data in images.items():
        (part / name).parent.mkdir(parents=True, exist_ok=True)
        (part / name).write_bytes(data)


def test_images_with_one_stem_stay_distinct_entities(tmp_path):
    images = {name: image_bytes(name) for name in ("a.png", "a.jpg", "sub/a.png")}
    _write_part(tmp_path / "src", 1, images)
    result = convert("diffusiondb", tmp_path / "src", tmp_path / "hub", ExportConfig())
    ds = datasets.load_dataset(str(result.out_dir), "mentions", split="test")
    assert ds["gold_qid"] == list(images) and ds["candidate_qids"] == [[name] for name in images]
    kb = undecoded_images(datasets.load_dataset(str(result.out_dir), "kb", split="kb"))
    assert kb["qid"] == list(images) and [cell["bytes"] for cell in kb["image"]] == list(images.values())
    assert result.report.kb_conflicts == []


def test_an_image_name_given_twice_is_refused_naming_both_records(tmp_path):
    _write_part(tmp_path / "src", 1, {"a.png": image_bytes("first"), "b.png": image_bytes("b")})
    _write_part(tmp_path / "src", 2, {"a.png": image_bytes("second")})
    with pytest.raises(ValueError, match=r"images/part-000002/part-000002.json, record 0, field 'image': image name "
                                         r"'a.png' is already that of images/part-000001/part-000001.json, record 0"):
        convert("diffusiondb", tmp_path / "src", tmp_path / "out", ExportConfig())
    result = convert("diffusiondb", tmp_path / "src", tmp_path / "out", ExportConfig(skip_invalid=True))
    assert result.statistics.total.mentions == 2
    assert [(s.file, s.index) for s in result.report.skipped_records] == [("images/part-000002/part-000002.json", 0)]


def test_zip_members_are_read_within_the_byte_limit(tmp_path, monkeypatch):
    import zipfile

    src = write_diffusiondb_zip(tmp_path / "src")
    sizes = {name: len(image_bytes(name)) for name in DIFFUSIONDB_PROMPTS}
    limit = min(sizes.values()) - 1  # every image is over it
    requested = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read", lambda self, n=-1: requested.append(n) or real_read(self, n))
    result = convert("diffusiondb", src, tmp_path / "hub", ExportConfig(max_image_bytes=limit))
    assert result.statistics.total.mentions == 3
    assert [(p.path, p.status) for p in result.report.image_problems] == [
        (f"images/part-000001.zip/{name}", "unreadable") for name in DIFFUSIONDB_PROMPTS
    ]
    assert all(f"{sizes[name]:,} bytes exceed the limit of {limit:,}" in p.detail
               for name, p in zip(DIFFUSIONDB_PROMPTS, result.report.image_problems, strict=True))  # fmt: skip
    assert all(0 <= n <= limit + 1 for n in requested if n != -1) and requested.count(-1) <= 1  # only the JSON whole


def _zip(path, members):
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_the_hub_layout_takes_its_prompts_from_the_metadata_table(tmp_path):
    src = write_diffusiondb_hub(tmp_path / "src", with_tables=False)  # the zips' own tables are not needed
    result = convert("diffusiondb", src, tmp_path / "hub", ExportConfig())
    test = datasets.load_dataset(str(result.out_dir), "Tm-Ie", split="test")
    names = [name for part in DIFFUSIONDB_PARTS.values() for name in part]
    assert test["gold_qid"] == names and test["text_S"] == [DIFFUSIONDB_PROMPTS[name] for name in names]
    assert test["id"] == ["images/part-000001-000000", "images/part-000001-000001", "images/part-000002-000000"]
    assert result.report.image_problems == [] and result.statistics.total.mentions == 3  # part 3 was not downloaded
    card = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "2 of its parts (part-000001 to part-000002), prompts from `metadata.parquet`" in card


def test_the_metadata_alone_is_named_as_such_without_a_skip_hint(tmp_path, capsys):
    write_diffusiondb_metadata(tmp_path / "src" / "metadata.parquet", [("a.png", "a prompt", 1)])
    assert main(["convert", "diffusiondb", str(tmp_path / "src"), str(tmp_path / "hub")]) == 2
    error = capsys.readouterr().err
    assert "metadata.parquet: holds DiffusionDB's prompts but no image" in error
    assert "scripts/download.py -i 1 -r 2 --unzip" in error and "--skip-invalid" not in error


def test_a_parquet_file_of_another_kind_is_named_without_a_skip_hint(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "src").mkdir()
    pq.write_table(pa.table({"text": ["x"], "label": [1]}), tmp_path / "src" / "train.parquet")
    with pytest.raises(ValueError, match=r"train.parquet: a Parquet file with columns label, text: neither a "
                                         r"2m_random_1k shard \(image, prompt\) nor DiffusionDB's metadata") as error:
        convert("diffusiondb", tmp_path / "src", tmp_path / "hub", ExportConfig())
    assert "--skip-invalid" not in str(error.value)


def test_skipping_a_broken_part_is_offered_only_when_another_part_remains(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "images" / "part-000001.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable zip archive") as error:
        convert("diffusiondb", src, tmp_path / "hub", ExportConfig(skip_invalid=True))
    assert "--skip-invalid" not in str(error.value) and "Download this part again" in str(error.value)
    _zip(src / "images" / "part-000002.zip", {"part-000002.json": '{"b.png": {"p": "a prompt"}}',
                                              "b.png": image_bytes("b")})  # fmt: skip
    with pytest.raises(ValueError, match=r"images/part-000001.zip: not a readable zip archive .*--skip-invalid"):
        convert("diffusiondb", src, tmp_path / "hub", ExportConfig())
    result = convert("diffusiondb", src, tmp_path / "hub", ExportConfig(skip_invalid=True))
    assert result.statistics.total.mentions == 1
    assert [(s.file, s.index) for s in result.report.skipped_records] == [("images/part-000001.zip", None)]


def test_the_readme_part_record_converts_zipped_and_unzipped(tmp_path):
    table = json.loads(real_data("diffusiondb", "readme_part_record.json").read_text(encoding="utf-8"))
    ((name, params),) = table.items()
    members = {"part-000001.json": json.dumps(table), name: image_bytes(name)}
    _zip(tmp_path / "hub-layout" / "images" / "part-000001.zip", members)
    for file, data in members.items():  # scripts/download.py --unzip: side by side in the working folder
        (tmp_path / "flat").mkdir(exist_ok=True)
        (tmp_path / "flat" / file).write_bytes(data if isinstance(data, bytes) else data.encode())
    for layout in ("hub-layout", "flat"):
        result = convert("diffusiondb", tmp_path / layout, tmp_path / f"out-{layout}", ExportConfig())
        row = datasets.load_dataset(str(result.out_dir), "Tm-Ie", split="test")[0]
        assert (row["text_S"], row["gold_qid"], row["label"]) == (" ".join(params["p"].split()), name, 0)
        assert row["candidate_images"][0] is not None and result.report.image_problems == []


def test_the_readme_metadata_rows_give_the_prompts_of_their_parts(tmp_path):
    rows = json.loads(real_data("diffusiondb", "readme_metadata_rows.json").read_text(encoding="utf-8"))
    src = tmp_path / "src"
    write_diffusiondb_metadata(src / "metadata.parquet", [(row[0], row[1], int(row[2])) for row in rows])
    for name, _, part, *_ in rows:  # each image in its part's zip, as the Hub stores it
        _zip(src / "images" / f"part-{int(part):06d}.zip", {name: image_bytes(name)})
    result = convert("diffusiondb", src, tmp_path / "hub", ExportConfig())
    test = datasets.load_dataset(str(result.out_dir), "Tm-Ie", split="test")
    by_part = sorted(rows, key=lambda row: int(row[2]))  # parts are read in order
    assert test["gold_qid"] == [row[0] for row in by_part] and test["text_S"] == [row[1] for row in by_part]
    assert test["label"] == [0, 0, 0] and result.report.image_problems == []
