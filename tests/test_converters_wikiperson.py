import json

import datasets
import pytest
import yaml
from converter_fixtures import (
    WIKIPERSON,
    WIKIPERSON_KB,
    WIKIPERSON_TEST,
    WIKIPERSON_TEXT_KB,
    WIKIPERSON_TRAIN_DEV,
    write_json,
    write_wikiperson,
    write_wikiperson_release,
)
from PIL import Image
from real_data import real_data
from release_fixtures import image_bytes

from m3el_dataset.converters import convert
from m3el_dataset.export import ExportConfig


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("wikiperson")
    return convert("wikiperson", write_wikiperson(root / "src"), root / "hub", ExportConfig())


def test_only_im_ie_and_no_text_columns(converted):
    meta = yaml.safe_load((converted.out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert list(configs) == ["Im-Ie", "mentions", "kb"]
    assert [f["split"] for f in configs["Im-Ie"]["data_files"]] == ["train", "test"]
    ds = datasets.load_dataset(str(converted.out_dir), "mentions", split="train")
    assert not any(column.startswith("text_") or column.startswith("candidate_text") for column in ds.column_names)
    assert datasets.load_dataset(str(converted.out_dir), "kb", split="kb").column_names == ["qid", "image"]
    card = (converted.out_dir / "README.md").read_text(encoding="utf-8")
    assert 'load_dataset("<org>/wikiperson", "Im-Ie", split="test")' in card and "<org>/m3el" not in card


def test_counts_labels_nil_and_crops(converted):
    train = datasets.load_dataset(str(converted.out_dir), "Im-Ie", split="train")
    test = datasets.load_dataset(str(converted.out_dir), "Im-Ie", split="test")
    assert (len(train), len(test)) == (len(WIKIPERSON["Train"]), len(WIKIPERSON["Test"]))
    assert train["gold_qid"] == ["Q76", "Q6294"] and train["label"] == [0, 0]
    assert (test[1]["label"], test[1]["gold_qid"], test[1]["candidate_qids"]) == (-1, "", [])
    assert [image.size for image in train["mention_image"]] == [(18, 26), (30, 36)]  # the two persons of 10.jpg
    assert test[0]["mention_image"].size == (40, 50)  # clamped to the 64x64 image
    assert isinstance(train[0]["candidate_images"][0], Image.Image)
    kb = datasets.load_dataset(str(converted.out_dir), "kb", split="kb")
    assert sorted(kb["qid"]) == sorted(WIKIPERSON_KB)


def test_bad_boxes_and_files(tmp_path):
    src = write_wikiperson(tmp_path / "src")
    records = json.loads((src / "WIKIPerson_Test.json").read_text())
    records[0]["boundingbox"] = "[10, 10, 5, 20]"
    (src / "WIKIPerson_Test.json").write_text(json.dumps(records))
    with pytest.raises(ValueError, match="WIKIPerson_Test.json, record 0, field 'boundingbox'"):
        convert("wikiperson", src, tmp_path / "out", ExportConfig())
    records[0]["boundingbox"] = "[100, 100, 120, 130]"  # valid, but outside the 64x64 image
    (src / "WIKIPerson_Test.json").write_text(json.dumps(records))
    result = convert("wikiperson", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert [(s.file, s.index, s.field) for s in result.report.skipped_records] == [
        ("WIKIPerson_Test.json", 0, "boundingbox")
    ]
    for path in (src / "kb_image").iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"No knowledge base in .*src: the WIKIPerson converter reads the "
                                                r"visual knowledge base"):
        convert("wikiperson", src, tmp_path / "out3", ExportConfig())
    for path in src.glob("*.json"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="expected WIKIPerson_Train_Dev.json and WIKIPerson_Test.json"):
        convert("wikiperson", src, tmp_path / "out2", ExportConfig())


def _set_record(src, field, value, index=0, split="Test"):
    path = src / f"WIKIPerson_{split}.json"
    records = json.loads(path.read_text())
    records[index][field] = value
    path.write_text(json.dumps(records))


@pytest.mark.parametrize("box", ["[NaN, 1, 9, 9]", "[1, 1, Infinity, 9]", "[1, 1, 1e999, 9]", "[1, -Infinity, 9, 9]",
                                 "[1, 1, true, 9]", "[[1], 1, 9, 9]"])  # fmt: skip
def test_boxes_that_are_not_finite_numbers_name_the_record(tmp_path, box):
    src = write_wikiperson(tmp_path / "src")
    _set_record(src, "boundingbox", box, index=1)
    with pytest.raises(ValueError, match=r"WIKIPerson_Test.json, record 1, field 'boundingbox': expected four finite"):
        convert("wikiperson", src, tmp_path / "out", ExportConfig())
    result = convert("wikiperson", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert [(s.file, s.index, s.field) for s in result.report.skipped_records] == [
        ("WIKIPerson_Test.json", 1, "boundingbox")
    ]


def test_huge_box_coordinates_are_clamped_or_refused_by_name(tmp_path):
    src = write_wikiperson(tmp_path / "src")
    _set_record(src, "boundingbox", "[-1e308, 0, 1e308, 10]", index=0)  # clamped to the image's width
    _set_record(src, "boundingbox", f"[{10**400}, 0, {10**401}, 10]", index=1)  # right of the image
    with pytest.raises(ValueError, match=r"WIKIPerson_Test.json, record 1, field 'boundingbox': box .* lies outside"):
        convert("wikiperson", src, tmp_path / "out", ExportConfig())
    result = convert("wikiperson", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert datasets.load_dataset(str(result.out_dir), "Im-Ie", split="test")[0]["mention_image"].size == (64, 10)


def test_cmyk_images_are_cropped_as_rgb(tmp_path):
    src = write_wikiperson(tmp_path / "src")
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(src / "images" / "10.jpg", format="JPEG")
    result = convert("wikiperson", src, tmp_path / "out", ExportConfig())
    crops = datasets.load_dataset(str(result.out_dir), "Im-Ie", split="train")["mention_image"]
    assert [(image.mode, image.size) for image in crops] == [("RGB", (18, 26)), ("RGB", (30, 36))]
    red, green, blue = crops[0].getpixel((5, 5))
    assert red > 200 and green < 60 and blue < 60
    assert result.report.image_problems == []


def test_without_decode_check_a_corrupt_image_is_a_reported_empty_cell(tmp_path):
    src = write_wikiperson(tmp_path / "src")
    (src / "images" / "11.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated JPEG")
    result = convert("wikiperson", src, tmp_path / "out", ExportConfig(decode_check=False))
    test = datasets.load_dataset(str(result.out_dir), "mentions", split="test")
    assert len(test) == 2 and test[0]["mention_image"] is None and test[1]["mention_image"] is not None
    (problem,) = result.report.image_problems
    assert (problem.role, problem.status, problem.path) == ("mention", "unreadable", "images/11.jpg")
    assert "not a readable image" in problem.detail


def _declared(out_dir):
    meta = yaml.safe_load((out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    return {c["config_name"]: [f["split"] for f in c["data_files"]] for c in meta["configs"]}


def _load_all(out_dir):
    """Every declared config and split, loaded with `load_dataset`."""
    return {config: {split: datasets.load_dataset(str(out_dir), config, split=split) for split in splits}
            for config, splits in _declared(out_dir).items()}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("wikiperson-release")
    return convert("wikiperson", write_wikiperson_release(root / "src"), root / "hub", ExportConfig())


def test_the_kaggle_layout_converts_with_both_knowledge_bases(release):
    loaded = _load_all(release.out_dir)
    assert list(loaded) == ["Im-Te", "Im-Ie", "Im-ITe", "mentions", "kb"]
    mentions = loaded["mentions"]
    assert set(mentions) == {"train", "validation", "test"}  # Train_Dev is split into train and validation
    rows = [row for split in ("train", "validation") for row in mentions[split]]
    expected = {source_id: qid for source_id, _, _, qid in WIKIPERSON_TRAIN_DEV}
    assert {row["source_id"]: row["gold_qid"] for row in rows} == expected and all(r["label"] == 0 for r in rows)
    assert [row["source_id"] for row in mentions["test"]] == [0, 1]
    assert mentions["test"]["gold_qid"] == [qid for *_, qid in WIKIPERSON_TEST]
    both = [row["split"] for row in rows if row["source_id"] in (38880, 38890)]  # the two persons of 20.jpg
    assert len(set(both)) == 1
    for config in ("Im-Ie", "Im-Te", "Im-ITe"):
        assert sum(len(ds) for ds in loaded[config].values()) == len(WIKIPERSON_TRAIN_DEV) + len(WIKIPERSON_TEST)
        assert "source_id" in loaded[config]["test"].column_names


def test_entity_names_and_descriptions_come_from_the_textual_kb(release):
    kb = {row["qid"]: row for row in datasets.load_dataset(str(release.out_dir), "kb", split="kb")}
    assert list(kb) == ["Q76", "Q6294", "Q7747", "Q999999"]  # the text KB's order, then the gold in neither
    assert (kb["Q76"]["name"], kb["Q76"]["description"]) == ("Barack Obama", "44th president of the United States")
    assert (kb["Q6294"]["name"], kb["Q6294"]["description"]) == ("Hillary Clinton", "")  # null description
    assert kb["Q7747"]["image"] is None and isinstance(kb["Q76"]["image"], Image.Image)
    assert (kb["Q999999"]["name"], kb["Q999999"]["image"]) == ("", None)
    test = datasets.load_dataset(str(release.out_dir), "Im-Te", split="test")
    assert test[0]["candidate_names"] == ["Barack Obama"] and test[0]["candidate_descriptions"][0].startswith("44th")
    ignored = {entry.field: entry.records for entry in release.report.ignored_fields}
    assert ignored == {"kb.image_url": 3, "kb.lastrevid": 3, "kb.modified": 3}


@pytest.mark.parametrize(("text_kb", "image_kb", "tasks", "kb_columns"), [
    (True, False, ["Im-Te"], ["qid", "name", "description", "text"]),
    (False, True, ["Im-Ie"], ["qid", "image"]),
])  # fmt: skip
def test_one_knowledge_base_gives_its_tasks(tmp_path, text_kb, image_kb, tasks, kb_columns):
    src = write_wikiperson_release(tmp_path / "src", text_kb=text_kb, image_kb=image_kb)
    result = convert("wikiperson", src, tmp_path / "hub", ExportConfig())
    loaded = _load_all(result.out_dir)
    assert list(loaded) == [*tasks, "mentions", "kb"]
    assert loaded["kb"]["kb"].column_names == kb_columns


def test_layouts_read_twice_or_ambiguous_are_refused_by_name(tmp_path):
    src = write_wikiperson_release(tmp_path / "src")
    (src / "WIKIPerson_Dev.json").write_text("[]")
    with pytest.raises(ValueError, match="holds WIKIPerson_Train_Dev.json and WIKIPerson_Dev.json: the first is"):
        convert("wikiperson", src, tmp_path / "out", ExportConfig())
    (src / "WIKIPerson_Dev.json").unlink()
    write_json(src / "more" / "entities.json", WIKIPERSON_TEXT_KB[:1])
    with pytest.raises(ValueError, match=r"\(Textual_Knowledge_Base.json, more/entities.json\); keep one"):
        convert("wikiperson", src, tmp_path / "out", ExportConfig())
    (src / "more" / "entities.json").unlink()
    (src / "more" / "Q1.jpg").write_bytes(image_bytes("Q1"))
    with pytest.raises(ValueError, match=r"Visual_Knowledge_Base/ \(2\), more/ \(1\)"):
        convert("wikiperson", src, tmp_path / "out", ExportConfig())


def test_the_real_test_file_and_train_dev_record_convert(tmp_path):
    """VNEL's released WIKIPerson_Test.json and the README's Train_Dev record, with a textual KB of their golds and
    placeholder images for the first five annotated images (the others are reported empty cells)."""
    test_records = json.loads(real_data("vnel", "WIKIPerson_Test.json").read_text(encoding="utf-8"))
    train_dev = json.loads(real_data("vnel", "readme_traindev_record.json").read_text(encoding="utf-8"))
    src = tmp_path / "src"
    write_json(src / "WIKIPerson_Test.json", test_records)
    write_json(src / "WIKIPerson_Train_Dev.json", train_dev)
    golds = list(dict.fromkeys(record["wikiid"] for record in train_dev + test_records))
    write_json(src / "kb.json", [{"id": qid, "name": f"person {qid}", "description": ""} for qid in golds])
    placeholders = list(dict.fromkeys(record["image"] for record in test_records))[:5]
    for image in placeholders:
        (src / image).write_bytes(image_bytes(image, size=224, fmt="JPEG"))
    result = convert("wikiperson", src, tmp_path / "hub", ExportConfig())
    loaded = _load_all(result.out_dir)
    test = loaded["mentions"]["test"]
    assert len(test) == 6142 and result.statistics.total.mentions == 6143
    assert test["source_id"] == [record["id"] for record in test_records]
    assert test["gold_qid"] == [record["wikiid"] for record in test_records] and set(test["label"]) == {0}
    (row,) = [row for split in ("train", "validation") if split in loaded["mentions"]
              for row in loaded["mentions"][split]]  # fmt: skip
    assert (row["source_id"], row["gold_qid"]) == (38880, "Q342282")
    assert len(loaded["kb"]["kb"]) == len(golds)
    cropped = sum(record["image"] in placeholders for record in test_records)
    assert sum(image is not None for image in test["mention_image"]) == cropped
    assert len(result.report.image_problems) == 6143 - cropped
    assert {problem.status for problem in result.report.image_problems} == {"missing"}
