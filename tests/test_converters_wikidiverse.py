import json
import logging

import datasets
import pytest
import yaml
from converter_fixtures import WIKIDIVERSE_DESCRIPTIONS, wikidiverse_image_name, write_json, write_wikidiverse
from PIL import Image
from real_data import real_data
from release_fixtures import image_bytes

from m3el_dataset.cli import main
from m3el_dataset.converters import convert
from m3el_dataset.converters.wikidiverse import mention_image_name
from m3el_dataset.export import ExportConfig


def _load(result, config, split):
    return datasets.load_dataset(str(result.out_dir), config, split=split)


def _configs(result):
    meta = yaml.safe_load((result.out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    return {c["config_name"]: c for c in meta["configs"]}


def test_passage_format_gold_only(tmp_path):
    result = convert("wikidiverse", write_wikidiverse(tmp_path / "src"), tmp_path / "hub", ExportConfig())
    assert list(_configs(result)) == ["Tm-Te", "Im-Te", "ITm-Te", "mentions", "kb"]
    train = _load(result, "ITm-Te", "train")
    assert train["gold_qid"] == ["Detroit Lions", "Green Bay Packers"] and train["label"] == [0, 0]
    assert train[0]["gold_description"] == "American football team" and train[1]["gold_description"] == ""
    assert isinstance(train[0]["mention_image"], Image.Image)  # found under its MD5 name
    nil = _load(result, "Tm-Te", "validation")[0]
    assert (nil["label"], nil["gold_qid"], nil["candidate_qids"]) == (-1, "", [])
    assert isinstance(_load(result, "Im-Te", "validation")[0]["mention_image"], Image.Image)  # .svg stored as .png
    obama = "Obama spoke. Obama: 44th president of the United States"
    assert _load(result, "Tm-Te", "test")[0]["text_S1-M-D"] == obama
    assert sorted(_load(result, "kb", "kb")["qid"]) == ["Barack Obama", "Detroit Lions", "Green Bay Packers"]
    assert result.statistics.total.mentions == 4 and result.statistics.total.gold_absent == 1


def test_candidate_format_labels_and_missed_golds(tmp_path):
    src = write_wikidiverse(tmp_path / "src", with_candidates=True, descriptions=False)
    result = convert("wikidiverse", src, tmp_path / "hub", ExportConfig())
    train = _load(result, "mentions", "train")
    assert train[0]["candidate_qids"] == ["Detroit", "Detroit Lions", "Barack Obama", "Obama (film)"]  # de-duplicated
    assert train["label"] == [1, -1]  # the Packers' gold was missed by retrieval
    assert _load(result, "mentions", "test")["label"] == [2]
    assert "text_S-M-D" not in train.column_names and "gold_description" not in train.column_names
    text = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "retrieved candidates" in text and "H@1 61.21" in text and "wang2022wikidiverse" in text


def test_bad_items_are_named(tmp_path):
    src = write_wikidiverse(tmp_path / "src")
    passages = json.loads((src / "test.json").read_text())
    passages[0][3][0] = ["Obama", "Person", 0, 5]
    (src / "test.json").write_text(json.dumps(passages))
    with pytest.raises(ValueError, match=r"test.json, record 0, field 'mentions\[0\]'"):
        convert("wikidiverse", src, tmp_path / "out", ExportConfig())
    result = convert("wikidiverse", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert list(_configs(result)["Tm-Te"]["data_files"][-1].values()) == ["validation", "data/*/validation-*.parquet"]
    assert [(s.file, s.index) for s in result.report.skipped_records] == [("test.json", 0)]
    with pytest.raises(FileNotFoundError, match="w_10cands"):
        convert("wikidiverse", tmp_path / "out", tmp_path / "out3", ExportConfig())


def test_a_latin1_description_file_is_named_with_its_line(tmp_path):
    src = write_wikidiverse(tmp_path / "src")
    lines = "Detroit_Lions@@@@American football team\nMontréal@@@@city in Québec\n"
    (src / WIKIDIVERSE_DESCRIPTIONS).write_bytes(lines.encode("latin-1"))
    with pytest.raises(ValueError, match=r"entity2desc_filtered.tsv, line 2: not UTF-8 text .* re-encode the file"):
        convert("wikidiverse", src, tmp_path / "out", ExportConfig())
    assert not (tmp_path / "out").exists()


def _load_all(result):
    """Every declared config and split, loaded with `load_dataset`."""
    return {name: {entry["split"]: _load(result, name, entry["split"]) for entry in config["data_files"]}
            for name, config in _configs(result).items()}  # fmt: skip


def test_with_candidates_every_gold_is_in_the_kb(tmp_path):
    src = write_wikidiverse(tmp_path / "src", with_candidates=True)
    loaded = _load_all(convert("wikidiverse", src, tmp_path / "hub", ExportConfig()))
    mentions = [row for split in loaded["mentions"].values() for row in split]
    kb = set(loaded["kb"]["kb"]["qid"])
    assert {row["gold_qid"] for row in mentions} - {""} <= kb
    assert "Green Bay Packers" in kb  # the gold retrieval missed: label -1, yet rankable under kb
    assert [(row["gold_qid"], row["label"]) for row in mentions if row["label"] < 0] == [("Green Bay Packers", -1),
                                                                                           ("", -1)]  # fmt: skip
    assert {row["candidate_qids"][0] for row in mentions if row["candidate_qids"]} <= kb


def test_the_cli_summary_tells_nil_from_a_gold_missed_by_retrieval(tmp_path, capsys):
    src = write_wikidiverse(tmp_path / "src", with_candidates=True)
    assert main(["convert", "wikidiverse", str(src), str(tmp_path / "hub")]) == 0
    out = capsys.readouterr().out
    assert "Wrote 4 mentions (1 NIL: no gold entity; 1 whose gold entity is not among their candidates)" in out


def test_descriptions_are_read_under_their_released_name_or_their_absence_is_said(tmp_path, caplog):
    result = convert("wikidiverse", write_wikidiverse(tmp_path / "src"), tmp_path / "hub", ExportConfig())
    assert _load(result, "Tm-Te", "train")[0]["gold_description"] == "American football team"
    assert f"`{WIKIDIVERSE_DESCRIPTIONS}`" in (result.out_dir / "README.md").read_text(encoding="utf-8")
    src = write_wikidiverse(tmp_path / "bare", descriptions=False)
    with caplog.at_level(logging.WARNING, logger="m3el_dataset.converters.wikidiverse"):
        result = convert("wikidiverse", src, tmp_path / "hub2", ExportConfig())
    assert "No *entity2desc* file (wikipedia_entity2desc_filtered.tsv) in" in caplog.text
    assert "No `*entity2desc*` file was found" in (result.out_dir / "README.md").read_text(encoding="utf-8")
    (src / f"{WIKIDIVERSE_DESCRIPTIONS}.zip").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"entity2desc_filtered.tsv.zip is an archive: unpack it"):
        convert("wikidiverse", src, tmp_path / "hub3", ExportConfig())


def _rows(result):
    return [(row["split"], row["mention_name"], row["gold_qid"], row["label"], row["gold_description"],
             row["mention_image"] is not None) for split in ("train", "validation", "test")
            for row in _load(result, "mentions", split)]  # fmt: skip


def test_the_authors_layout_converts_from_either_folder(tmp_path):
    flat = convert("wikidiverse", write_wikidiverse(tmp_path / "flat", with_candidates=True), tmp_path / "hub0",
                   ExportConfig())  # fmt: skip
    root = write_wikidiverse(tmp_path / "wikidiverse", with_candidates=True, folder="wikidiverse_w_cands")
    from_root = convert("wikidiverse", root, tmp_path / "hub1", ExportConfig())
    from_cands = convert("wikidiverse", root / "wikidiverse_w_cands", tmp_path / "hub2", ExportConfig())
    assert _rows(from_root) == _rows(from_cands) == _rows(flat)
    assert all(found for *_, found in _rows(from_cands)) and from_cands.report.image_problems == []
    assert _rows(from_cands)[0][4] == "American football team"  # the descriptions file beside the folder


def test_broken_entity_urls_are_repaired_as_the_authors_script_does_and_listed(tmp_path):
    url = "https://upload.wikimedia.org/wikipedia/commons/0/06/X.jpg"
    items = [  # gold, candidates
        ("ttps://en.wikipedia.org/wiki/Detroit_Lions", ["Detroit Lions"]),
        ("[https://en.wikipedia.org/wiki/Barack_Obama]", ["https://en.wikipedia.org/wiki/Barack_Obama]"]),
        ("hhttps://en.wikipedia.org/wiki/Jean-Paul_Sartre", ["Jean Paul", "Jean Paul Sartre"]),
        ("https://en.wikipedia.org/wiki/Coca_Cola", ["Coca-Cola"]),
    ]
    src = tmp_path / "src"
    write_json(src / "test_w_10cands.json", [[f"Caption {i}.", url, "m", "Other", [], [], gold, cands, "news", 0, 1]
                                             for i, (gold, cands) in enumerate(items)])  # fmt: skip
    result = convert("wikidiverse", src, tmp_path / "hub", ExportConfig())
    test = _load(result, "mentions", "test")
    assert test["gold_qid"] == ["Detroit Lions", "Barack Obama", "Jean-Paul Sartre", "Coca Cola"]
    assert test["label"] == [0, 0, 1, 0]  # "Jean Paul Sartre" and "Coca-Cola" are the golds, spelled as first met
    assert test["candidate_qids"][2] == ["Jean Paul", "Jean-Paul Sartre"]
    listed = [(v.index, v.field, v.original, v.value) for v in result.report.normalised_values]
    assert listed == [
        (0, "item[6]", "ttps://en.wikipedia.org/wiki/Detroit_Lions", "Detroit Lions"),
        (1, "item[6]", "[https://en.wikipedia.org/wiki/Barack_Obama]", "Barack Obama"),
        (1, "item[7][0]", "https://en.wikipedia.org/wiki/Barack_Obama]", "Barack Obama"),
        (2, "item[6]", "hhttps://en.wikipedia.org/wiki/Jean-Paul_Sartre", "Jean-Paul Sartre"),
        (2, "item[7][1]", "Jean Paul Sartre", "Jean-Paul Sartre"),
        (3, "item[7][0]", "Coca-Cola", "Coca Cola"),
    ]
    assert sorted(_load(result, "kb", "kb")["qid"]) == ["Barack Obama", "Coca Cola", "Detroit Lions", "Jean Paul",
                                                         "Jean-Paul Sartre"]  # fmt: skip


def test_the_readme_records_convert(tmp_path, capsys):
    """The two records the WikiDiverse README prints, each in its layout, with placeholder images."""
    passage = json.loads(real_data("wikidiverse", "readme_passage_item.json").read_text(encoding="utf-8"))
    mention = json.loads(real_data("wikidiverse", "readme_mention_item.json").read_text(encoding="utf-8"))
    for folder, name, item in (("passages", "train.json", passage), ("cands", "test_w_10cands.json", mention)):
        write_json(tmp_path / folder / name, [item])
        (tmp_path / folder / "wikinewsImgs").mkdir()
        (tmp_path / folder / "wikinewsImgs" / wikidiverse_image_name(item[1])).write_bytes(image_bytes(item[1]))
    result = convert("wikidiverse", tmp_path / "passages", tmp_path / "hub1", ExportConfig())
    train = _load(result, "ITm-Te", "train")
    assert train["gold_qid"] == ["Detroit Lions", "Green Bay Packers"] and train["label"] == [0, 0]
    assert train["mention_name"] == ["Lions", "Packers"] and result.report.image_problems == []
    assert main(["convert", "wikidiverse", str(tmp_path / "cands"), str(tmp_path / "hub2")]) == 0
    assert "(0 NIL: no gold entity; 1 whose gold entity is not among their candidates)" in capsys.readouterr().out
    row = datasets.load_dataset(str(tmp_path / "hub2"), "mentions", split="test")[0]
    assert (row["gold_qid"], row["label"], row["candidate_qids"]) == ("High-definition television", -1, [])
    assert datasets.load_dataset(str(tmp_path / "hub2"), "kb", split="kb")["qid"] == ["High-definition television"]


def test_the_image_names_of_real_wikidiverse_urls_follow_the_readme_recipe():
    urls = json.loads(real_data("wikidiverse", "kgmel_WikiDiverse_img_urls.json").read_text(encoding="utf-8"))
    assert len(urls) == 7179
    assert [mention_image_name(url) for url in urls] == [wikidiverse_image_name(url) for url in urls]
    assert all(not name.lower().endswith(".svg") for name in map(mention_image_name, urls))


def test_a_ghmfc_file_inside_a_wikidiverse_folder_points_to_convert_ghmfc(tmp_path):
    from m3el_dataset.converters import convert
    from m3el_dataset.export import ExportConfig

    source = write_wikidiverse(tmp_path / "wikidiverse")
    keyed = {"21717": {"id": "21717", "sentence": "A sentence.", "mentions": ["A"], "answer": ["Q1"]}}
    (source / "train.json").write_text(__import__("json").dumps(keyed, indent=1))
    with pytest.raises(ValueError, match=r"train.json: this looks like a JSON object keyed by id .* convert ghmfc"):
        convert("wikidiverse", source, tmp_path / "out", ExportConfig())
