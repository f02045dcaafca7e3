import json

import datasets
import pytest
import yaml
from converter_fixtures import write_wikidiverse
from PIL import Image

from m3el_dataset.converters import convert
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
    (src / "entity2desc_filtered.tsv").write_bytes(lines.encode("latin-1"))
    with pytest.raises(ValueError, match=r"entity2desc_filtered.tsv, line 2: not UTF-8 text .* re-encode the file"):
        convert("wikidiverse", src, tmp_path / "out", ExportConfig())
    assert not (tmp_path / "out").exists()
