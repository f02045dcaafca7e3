import json

import datasets
import pytest
import yaml
from converter_fixtures import WIKIPERSON, WIKIPERSON_KB, write_wikiperson
from PIL import Image

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
    with pytest.raises(FileNotFoundError, match=r"No entity image in .*kb_image: the WIKIPerson converter reads"):
        convert("wikiperson", src, tmp_path / "out3", ExportConfig())
    for path in src.glob("*.json"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="WIKIPerson_Train"):
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
