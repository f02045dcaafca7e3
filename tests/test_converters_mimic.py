import json

import datasets
import pytest
import yaml
from converter_fixtures import MIMIC_KB, MIMIC_MENTIONS, write_json, write_mimic
from PIL import Image

from m3el_dataset.cli import main
from m3el_dataset.constants import TASKS
from m3el_dataset.converters import CONVERTERS, convert
from m3el_dataset.export import ExportConfig


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("mimic")
    return convert("mimic", write_mimic(root / "WikiMEL"), root / "hub", ExportConfig())


def _load(result, config, split):
    return datasets.load_dataset(str(result.out_dir), config, split=split)


def test_counts_splits_labels_and_nil_round_trip(converted):
    expected = {"train": "train", "validation": "dev", "test": "test"}
    for split, suffix in expected.items():
        ds = _load(converted, "mentions", split)
        source = MIMIC_MENTIONS[suffix]
        assert len(ds) == len(source) and set(ds["split"]) == {split} and set(ds["topic"]) == {"wikimel"}
        for row, (mention, _, _, answer) in zip(ds, source, strict=True):
            assert row["mention_name"] == mention
            if answer == "nil":
                assert (row["label"], row["gold_qid"], row["candidate_qids"]) == (-1, "", [])
            else:
                assert (row["label"], row["gold_qid"], row["candidate_qids"]) == (0, answer, [answer])
    assert converted.statistics.total.mentions == 6 and converted.statistics.total.gold_absent == 2


def test_every_config_loads_and_kb_is_the_whole_knowledge_base(converted):
    meta = yaml.safe_load((converted.out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == [*TASKS, "mentions", "kb"]
    for config in TASKS:
        assert len(_load(converted, config, "test")) == 2
    kb = _load(converted, "kb", "kb")
    assert kb["qid"] == [qid for _, qid, *_ in MIMIC_KB] and converted.num_kb_entities == 5
    assert kb["name"][0] == "Barack Obama" and kb["description"][3] == "capital of France"  # unquoted; "desc"
    assert isinstance(kb[0]["image"], Image.Image) and kb[4]["image"] is None  # first image; none given


def test_texts_images_and_gold_description(converted):
    row = _load(converted, "ITm-ITe", "validation")[0]
    assert row["text_M-S1"] == "Obama: Obama visited Berlin."
    assert row["gold_description"] == "44th president of the United States"
    assert isinstance(row["mention_image"], Image.Image)  # 3.JPG found as the converted 3.jpg
    assert row["candidate_texts"] == ["Barack Obama: 44th president of the United States"]
    assert _load(converted, "Im-Ie", "test")[0]["mention_image"] is None  # imgPath ""
    report = json.loads((converted.out_dir / "build_report.json").read_text())
    assert report["image_problems"] == []  # an empty imgPath is an absence in the source, not a problem


def test_card_cites_published_figures_as_published(converted):
    text = (converted.out_dir / "README.md").read_text(encoding="utf-8")
    assert "H@1 83.23 / H@3 92.10 / H@5 94.51 / MRR 88.23" in text
    assert "published results" in text and "they are not ours" in text
    assert "arXiv:2410.18096" in text and "Table 5" in text and "luo2023multi" in text
    assert "WikiMEL (MIMIC format)" in text


def test_richpediamel_mention_images_folder(tmp_path):
    src = write_mimic(tmp_path / "rich", prefix="RichpediaMEL", mention_dir="mention_images")
    result = convert("mimic", src, tmp_path / "hub", ExportConfig())
    assert result.report.image_problems == [] and result.report.images_ok == 5 + 4 + 4  # mentions, golds, KB entities
    text = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "H@1 67.78" in text and "data/richpediamel" not in text
    assert (result.out_dir / "data/richpediamel").is_dir()


def _break(src, file, index, change):
    records = json.loads((src / file).read_text())
    change(records[index])
    write_json(src / file, records)


@pytest.mark.parametrize(
    ("file", "index", "change", "match", "also_skipped"),
    [
        ("WikiMEL_train.json", 1, lambda r: r.pop("answer"), "_train.json, record 1, field .answer.: missing", []),
        ("WikiMEL_dev.json", 0, lambda r: r.update(answer="Q999"), "record 0, field 'answer'.*Q999", []),
        ("WikiMEL_test.json", 1, lambda r: r.update(sentence=3), "record 1, field 'sentence': expected str", []),
        # A skipped entity leaves the mentions it is the gold of unresolvable: they are skipped and listed too.
        ("kb_entity.json", 2, lambda r: r.pop("attr"), "kb_entity.json, record 2, field 'desc': missing",
         [("WikiMEL_train.json", 1)]),
        ("kb_entity.json", 4, lambda r: r.update(image_list=[1]), "record 4, field 'image_list'", []),
    ],
)  # fmt: skip
def test_bad_inputs_are_named_and_leave_nothing(tmp_path, file, index, change, match, also_skipped):
    src = write_mimic(tmp_path / "src")
    _break(src, file, index, change)
    with pytest.raises(ValueError, match=match):
        convert("mimic", src, tmp_path / "out", ExportConfig())
    assert not (tmp_path / "out").exists()
    result = convert("mimic", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert [(s.file, s.index) for s in result.report.skipped_records] == [(file, index), *also_skipped]


def test_missing_files_are_clear_errors(tmp_path):
    src = write_mimic(tmp_path / "src")
    (src / "qid2id.json").unlink()
    with pytest.raises(FileNotFoundError, match="qid2id.json"):
        convert("mimic", src, tmp_path / "out", ExportConfig())
    for path in src.glob("*_*.json"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="_train.json"):
        convert("mimic", src, tmp_path / "out", ExportConfig())
    with pytest.raises(ValueError, match="choose one of"):
        convert("nope", src, tmp_path / "out", ExportConfig())


def test_cli_convert(tmp_path, capsys):
    src = write_mimic(tmp_path / "src")
    assert main(["convert", "mimic", str(src), str(tmp_path / "out")]) == 0
    summary = "Wrote 6 mentions (2 NIL: no gold entity; 0 whose gold entity is not among their candidates), 5 KB"
    assert summary in capsys.readouterr().out
    assert main(["convert", "mimic", str(tmp_path / "missing"), str(tmp_path / "out2")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert "mimic" in CONVERTERS
