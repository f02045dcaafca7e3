import json
import shutil
from collections import Counter
from pathlib import Path

import datasets
import pytest
import yaml
from ghmfc_fixtures import (
    RICHPEDIA,
    RICHPEDIA_ABSTRACTS,
    WIKIMEL,
    WIKIMEL_IMAGES,
    WIKIMEL_NAMES,
    WIKIMEL_SPLITS,
    richpedia_object,
    wikimel_object,
    write_ghmfc_richpedia,
    write_ghmfc_wikimel,
    write_json,
    write_melbench_richpedia,
    write_melbench_wikimel,
)
from PIL import Image

from m3el_dataset.cli import main
from m3el_dataset.converters import CONVERTERS, convert
from m3el_dataset.export import ExportConfig
from m3el_dataset.release import ReleaseRecordError
from m3el_dataset.splits import split_of

SPLIT_NAMES = {"train": "train", "dev": "validation", "test": "test"}


def load_every_config(out_dir: Path) -> dict[tuple[str, str], datasets.Dataset]:
    """Every (config, split) the card declares, loaded with `datasets`."""
    meta = yaml.safe_load((out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    return {
        (config["config_name"], files["split"]): datasets.load_dataset(str(out_dir), config["config_name"],
                                                                       split=files["split"])
        for config in meta["configs"]
        for files in config["data_files"]
    }  # fmt: skip


def expected_wikimel_rows(split_of_record) -> dict[str, list[tuple[str, str, str]]]:
    """Split -> [(id, mention, gold)] in file order."""
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for key, (_, mentions, _, answers) in WIKIMEL.items():
        for position, (mention, gold) in enumerate(zip(mentions, answers, strict=True)):
            rows.setdefault(split_of_record(key), []).append((f"Wikidata-MEL/{key}-{position:06d}", mention, gold))
    return rows


def _listed_split(key: str) -> str:
    return next(SPLIT_NAMES[name] for name, keys in WIKIMEL_SPLITS.items() if key in keys)


@pytest.fixture(scope="module", params=["", "input_data"], ids=["records-beside-input_data", "records-in-input_data"])
def wikimel(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("ghmfc")
    src = write_ghmfc_wikimel(root / "datasets", records_in=request.param)
    return convert("ghmfc", src, root / "hub", ExportConfig())


def test_wikimel_one_row_per_mention_with_the_release_splits(wikimel):
    loaded = load_every_config(wikimel.out_dir)
    assert {config for config, _ in loaded} == {"Tm-Te", "Im-Te", "ITm-Te", "mentions", "kb"}
    for split, rows in expected_wikimel_rows(_listed_split).items():
        ds = loaded["mentions", split]
        assert [(r["id"], r["mention_name"], r["gold_qid"]) for r in ds] == rows
        assert set(ds["label"]) == {0} and ds["candidate_qids"] == [[gold] for _, _, gold in rows]
        assert set(ds["topic"]) == {"wikimel"} and set(ds["split"]) == {split}
        for config in ("Tm-Te", "Im-Te", "ITm-Te"):
            assert loaded[config, split]["id"] == ds["id"]
    assert wikimel.statistics.total.mentions == 7 and wikimel.statistics.total.gold_absent == 0


def test_wikimel_kb_holds_every_entity_and_gold(wikimel):
    kb = datasets.load_dataset(str(wikimel.out_dir), "kb", split="kb")
    assert kb["qid"] == [*WIKIMEL_NAMES, "Q7186"]  # qid2ne's entities, then the gold it lacks
    entity = dict(zip(kb["qid"], kb["text"], strict=True))
    assert entity["Q7186"] == "Marie Curie"  # named from the record's "entities", no abstract
    assert entity["Q313"] == "Will Rogers"  # an empty abstract: the name alone, no dangling ": "
    assert entity["Q76"] == "Barack Obama: Sex: male. Birth: 1961, Honolulu. Occupation: politician, lawyer."
    row = datasets.load_dataset(str(wikimel.out_dir), "ITm-Te", split="train")[3]
    assert row["candidate_texts"] == ["Will Rogers"] and row["text_M-S1"] == f"Will Rogers: {WIKIMEL['102'][0]}"


def test_wikimel_images_and_the_missing_one_reported(wikimel):
    train = datasets.load_dataset(str(wikimel.out_dir), "Im-Te", split="train")
    assert all(isinstance(image, Image.Image) for image in train["mention_image"])
    assert datasets.load_dataset(str(wikimel.out_dir), "Im-Te", split="validation")[0]["mention_image"] is None
    report = json.loads((wikimel.out_dir / "build_report.json").read_text())
    assert [(p["record_id"], p["role"], p["status"]) for p in report["image_problems"]] == [
        ("Wikidata-MEL/104-000000", "mention", "missing")
    ]
    assert wikimel.report.images_ok == sum(len(WIKIMEL[key][1]) for key in WIKIMEL_IMAGES)


def test_wikimel_card_says_where_splits_and_texts_come_from(wikimel):
    card = (wikimel.out_dir / "README.md").read_text(encoding="utf-8")
    assert "from GHMFC's `splits.json` (its `dev` is `validation`)" in card
    assert "1 record ids of `splits.json` have no record" in card
    assert "WikiMEL (MELBench + GHMFC layout)" in card and "zhou2021weibo" in card and "wang2022ghmfc" in card
    assert "or the name alone for an entity without a description" in card
    assert "H@1" not in card  # MIMIC's published figures are for MIMIC's splits, not these


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "json"])
def test_melbench_alone_uses_our_hash_split_and_text_only(tmp_path, zipped):
    src = write_melbench_wikimel(tmp_path / "MELBench", zipped=zipped)
    result = convert("ghmfc", src, tmp_path / "hub", ExportConfig())
    loaded = load_every_config(result.out_dir)
    assert {config for config, _ in loaded} == {"Tm-Te", "mentions", "kb"}  # no image, no entity file
    expected = expected_wikimel_rows(lambda key: split_of(f"wikimel/{key}"))
    assert {split for _, split in loaded if split != "kb"} == set(expected)  # only splits that hold rows
    for split, rows in expected.items():
        assert [(r["id"], r["mention_name"], r["gold_qid"]) for r in loaded["mentions", split]] == rows
        assert "gold_description" not in loaded["Tm-Te", split].column_names  # no qid2abs.json: no D
    kb = loaded["kb", "kb"]
    assert sorted(kb["qid"]) == sorted({gold for *_, answers in WIKIMEL.values() for gold in answers})
    assert dict(zip(kb["qid"], kb["name"], strict=True))["Q5111202"] == "Charles L. Smith (Seattle politician)"
    card = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "assigned by this conversion, not by the release" in card and "WikiMEL (MELBench layout)" in card


def test_richpedia_ghmfc_split_files_strings_and_images(tmp_path):
    src = write_ghmfc_richpedia(tmp_path / "datasets")
    result = convert("ghmfc", src, tmp_path / "hub", ExportConfig())
    loaded = load_every_config(result.out_dir)
    assert {split for _, split in loaded} == {"train", "test", "kb"}
    for split, records in RICHPEDIA.items():
        ds = loaded["ITm-Te", split]
        assert ds["id"] == [f"{split}/{qid}-000000" for qid in records]
        assert ds["gold_qid"] == list(records) and ds["mention_name"] == [m for _, m, _ in records.values()]
        assert ds["gold_description"] == [RICHPEDIA_ABSTRACTS[qid] for qid in records]
    assert loaded["ITm-Te", "train"]["candidate_texts"][2] == ["Will Rogers"]
    assert [image is None for image in loaded["Im-Te", "train"]["mention_image"]] == [False, False, True]
    assert [(p.record_id, p.status) for p in result.report.image_problems] == [("train/Q313-000000", "missing")]
    card = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "as the source files assign them" in card and "RichpediaMEL (GHMFC layout)" in card


def test_richpedia_melbench_zip(tmp_path):
    result = convert("ghmfc", write_melbench_richpedia(tmp_path / "MELBench"), tmp_path / "hub", ExportConfig())
    loaded = load_every_config(result.out_dir)
    mentions = [row for (config, _), ds in loaded.items() if config == "mentions" for row in ds]
    assert sorted(row["gold_qid"] for row in mentions) == sorted(richpedia_object())
    assert all(row["split"] == split_of(f"richpediamel/{row['gold_qid']}") for row in mentions)
    assert result.num_kb_entities == 4


def test_record_ids_are_percent_encoded_and_unique(tmp_path):
    records = wikimel_object()
    records["a.b/c"] = {**records.pop("105"), "id": "a.b/c"}
    records["a_b_c"] = {**records["103"], "id": "a_b_c"}
    write_json(tmp_path / "src" / "Wikidata-MEL.json", records)
    result = convert("ghmfc", tmp_path / "src", tmp_path / "hub", ExportConfig())
    ids = [i for (c, _), ds in load_every_config(result.out_dir).items() if c == "mentions" for i in ds["id"]]
    assert len(ids) == len(set(ids)) == 8
    assert {"Wikidata-MEL/a%2Eb%2Fc-000000", "Wikidata-MEL/a_b_c-000000"} <= set(ids)


@pytest.mark.parametrize(
    ("change", "match", "field"),
    [
        (lambda r: r["102"].update(answer=["Q5111202"]), "got 2, 1 and 2 .record id '102'", "answer"),
        (lambda r: r["103"].update(mentions=3), "record 2, field 'mentions': expected a string or a list", "mentions"),
        (lambda r: r["104"].pop("sentence"), "record 3, field 'sentence': expected a string", "sentence"),
    ],
)  # fmt: skip
def test_bad_records_are_named_and_skippable(tmp_path, change, match, field):
    records = wikimel_object()
    change(records)
    write_json(tmp_path / "src" / "Wikidata-MEL.json", records)
    with pytest.raises(ReleaseRecordError, match=match):
        convert("ghmfc", tmp_path / "src", tmp_path / "out", ExportConfig())
    assert not (tmp_path / "out").exists()
    result = convert("ghmfc", tmp_path / "src", tmp_path / "out", ExportConfig(skip_invalid=True))
    assert [(s.file, s.field) for s in result.report.skipped_records] == [("Wikidata-MEL.json", field)]


def test_layout_errors_say_what_to_do(tmp_path):
    wikimel = write_ghmfc_wikimel(tmp_path / "datasets", records_in=None)  # as cloned: no records
    with pytest.raises(FileNotFoundError, match="holds GHMFC's splits.json but no records.*Wikidata-MEL.zip"):
        convert("ghmfc", wikimel, tmp_path / "out", ExportConfig())
    write_ghmfc_richpedia(tmp_path / "datasets")
    write_melbench_wikimel(tmp_path / "datasets")
    with pytest.raises(ValueError, match="more than one set of records.*pass the folder of one dataset"):
        convert("ghmfc", tmp_path / "datasets", tmp_path / "out", ExportConfig())
    splits = json.loads((wikimel / "input_data" / "splits.json").read_text())
    splits["test"].remove("105")
    write_json(wikimel / "input_data" / "splits.json", splits)
    write_json(wikimel / "Wikidata-MEL.json", wikimel_object())
    with pytest.raises(ReleaseRecordError, match="record id '105' is in none of splits.json's lists"):
        convert("ghmfc", wikimel, tmp_path / "out", ExportConfig())
    (wikimel / "Wikidata-MEL.json").write_text('{"101": {"id": "101"}, "101": {"id": "101"}}')
    with pytest.raises(ReleaseRecordError, match="the key '101' appears twice"):
        convert("ghmfc", wikimel, tmp_path / "out", ExportConfig())
    richpedia = tmp_path / "datasets" / "Richpedia-MEL"
    write_json(richpedia / "input_data" / "splits.json", {"train": list(RICHPEDIA["train"])})
    with pytest.raises(ValueError, match=r"holds both split files \(train.json, test.json\) and .*splits.json; keep"):
        convert("ghmfc", richpedia, tmp_path / "out", ExportConfig())


@pytest.mark.parametrize("fmt", ["mimic", "wikidiverse", "wikiperson", "diffusiondb"])
def test_other_converters_name_the_ghmfc_layout(tmp_path, fmt):
    src = write_ghmfc_richpedia(tmp_path / "datasets")
    with pytest.raises(ValueError, match=r"this looks like a JSON object keyed by id \(GHMFC/MELBench layout\); "
                       "use `convert ghmfc`"):  # fmt: skip
        convert(fmt, src, tmp_path / "out", ExportConfig())


def test_a_keyed_object_read_as_mimic_mention_file_is_named(tmp_path):
    from converter_fixtures import write_mimic

    src = write_mimic(tmp_path / "mimic")
    write_json(src / "WikiMEL_train.json", wikimel_object())  # a MIMIC folder, one file in MELBench's shape
    with pytest.raises(ValueError, match=r"WikiMEL_train.json: this looks like a JSON object keyed by id"):
        convert("mimic", src, tmp_path / "out", ExportConfig())


def test_cli_convert_ghmfc(tmp_path, capsys):
    src = write_ghmfc_wikimel(tmp_path / "datasets")
    assert "ghmfc" in CONVERTERS
    assert main(["convert", "ghmfc", str(src), str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "Wrote 7 mentions (0 NIL: no gold entity; 0 whose gold entity is not among their candidates)" in printed
    assert main(["convert", "mimic", str(src), str(tmp_path / "out2")]) == 2
    assert "use `convert ghmfc`" in capsys.readouterr().err


# ------------------------------------------------------------------ the real excerpts (../shared/real-data)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-data"
needs_real = pytest.mark.skipif(not (REAL / "ghmfc").is_dir(), reason="../shared/real-data is not here")


def _check_real(result, records: dict[str, dict], split_of_record) -> dict:
    """Every declared config and split loads, and counts, labels and golds round-trip from ``records``."""
    loaded = load_every_config(result.out_dir)
    expected: Counter = Counter()
    golds = set()
    for key, record in records.items():
        answers = record["answer"] if isinstance(record["answer"], list) else [record["answer"]]
        expected[split_of_record(key)] += len(answers)
        golds.update(answers)
    mentions = {split: ds for (config, split), ds in loaded.items() if config == "mentions"}
    assert {split: len(ds) for split, ds in mentions.items()} == dict(expected)
    for (config, split), ds in loaded.items():
        assert config == "kb" or len(ds) == expected[split]
    assert all(set(ds["label"]) == {0} for ds in mentions.values())
    assert golds <= set(loaded["kb", "kb"]["qid"])
    assert Counter(q for ds in mentions.values() for q in ds["gold_qid"]) == Counter(
        a for r in records.values() for a in (r["answer"] if isinstance(r["answer"], list) else [r["answer"]])
    )
    return loaded


def _real_object(*parts: str) -> dict:
    import zipfile

    path = REAL.joinpath(*parts)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(archive.namelist()[0]))
    return json.loads(path.read_text(encoding="utf-8"))


@needs_real
def test_real_ghmfc_richpedia(tmp_path):
    result = convert("ghmfc", REAL / "ghmfc" / "Richpedia-MEL", tmp_path / "hub", ExportConfig())
    split = {key: s for s in ("train", "test") for key in _real_object("ghmfc", "Richpedia-MEL", f"{s}.json")}
    records = {**_real_object("ghmfc", "Richpedia-MEL", "train.json"), **_real_object("ghmfc", "Richpedia-MEL",
                                                                                       "test.json")}  # fmt: skip
    loaded = _check_real(result, records, split.get)
    kb = loaded["kb", "kb"]
    abstracts = _real_object("ghmfc", "Richpedia-MEL", "qid2abs.json")
    no_abstract = [text for qid, text, name in zip(kb["qid"], kb["text"], kb["name"], strict=True)
                   if not abstracts[qid].strip() and text == name]  # fmt: skip
    assert len(no_abstract) == sum(not text.strip() for text in abstracts.values()) > 0
    assert not any(text.endswith(":") for text in kb["text"])


@needs_real
def test_real_ghmfc_wikimel_with_melbench_records_and_its_14_images(tmp_path):
    src = tmp_path / "WikiMEL"
    shutil.copytree(REAL / "ghmfc" / "WikiMEL", src)  # images must lie inside the source folder
    shutil.copy(REAL / "melbench" / "Wikidata-MEL" / "Wikidata-MEL.zip", src / "input_data")
    result = convert("ghmfc", src, tmp_path / "hub", ExportConfig())
    records = _real_object("melbench", "Wikidata-MEL", "Wikidata-MEL.zip")
    splits = _real_object("ghmfc", "WikiMEL", "input_data", "splits.json")
    split = {key: SPLIT_NAMES[name] for name, keys in splits.items() for key in keys}
    _check_real(result, records, split.get)
    images = {path.stem for path in (src / "images").iterdir()}
    with_image = sum(len(records[key]["mentions"]) for key in images)
    assert result.report.images_ok == with_image and len(images) == 14
    assert len(result.report.image_problems) == result.statistics.total.mentions - with_image  # empty, reported
    assert {p.status for p in result.report.image_problems} == {"missing"}


@needs_real
def test_real_melbench_richpedia_zip(tmp_path):
    result = convert("ghmfc", REAL / "melbench" / "Richpedia-MEL", tmp_path / "hub", ExportConfig())
    records = _real_object("melbench", "Richpedia-MEL", "Richpedia-MEL.zip")
    _check_real(result, records, lambda key: split_of(f"richpediamel/{key}"))
    assert result.num_kb_entities == len({r["answer"] for r in records.values()})


@needs_real
@pytest.mark.parametrize("fmt", ["mimic", "wikidiverse"])
def test_real_melbench_given_to_another_converter(tmp_path, fmt):
    with pytest.raises(ValueError, match=r"JSON object keyed by id \(GHMFC/MELBench layout\); use `convert ghmfc`"):
        convert(fmt, REAL / "melbench" / "Wikidata-MEL", tmp_path / "out", ExportConfig())
