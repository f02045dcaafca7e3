"""Faults of a build or conversion (issue 14): the input is never destroyed, nothing is dropped unreported, and
every split and config the card declares loads."""

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import yaml
from release_fixtures import FakeRelease, small_release

from m3el_dataset.card import M3EL_LAYOUT
from m3el_dataset.cli import main
from m3el_dataset.export import ExportConfig, export_release, export_rows
from m3el_dataset.rows import iter_release_rows

REPO = Path(__file__).resolve().parents[1]


def _digests(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "out, relation",
    [(".", "is the input"), ("hub", "is inside the input"), ("..", "contains the input")],
)
def test_build_refuses_an_output_that_is_contains_or_is_inside_the_input(tmp_path, capsys, out, relation):
    raw = tmp_path / "raw"
    small_release(raw, per_topic=1).write()
    before = _digests(tmp_path)
    assert main(["build", str(raw), str(raw / out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"Output folder {raw / out} {relation} {raw}; nothing was written or deleted" in err
    assert _digests(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_convert_refuses_to_write_over_its_source(tmp_path, capsys):
    from converter_fixtures import write_mimic

    source = write_mimic(tmp_path / "WikiMEL")
    before = _digests(source)
    assert main(["convert", "mimic", str(source), str(source), "--overwrite"]) == 2
    assert f"Output folder {source} is the input {source}" in capsys.readouterr().err
    assert _digests(source) == before


def test_overwrite_refuses_an_output_path_that_is_a_file(tmp_path, capsys):
    small_release(tmp_path / "raw", per_topic=1).write()
    (tmp_path / "hub").write_text("my notes")
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub"), "--overwrite"]) == 2
    assert f"Output path {tmp_path / 'hub'} is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "hub").read_text() == "my notes"


def _build_in_another_process(raw: Path, out: Path) -> subprocess.Popen:
    """A build in another process that stops after its first row, prints "ready", and is SIGKILLed (by itself)
    once its stdin closes: a build still running, then a killed one."""
    script = (
        "import os, signal, sys\n"
        "from m3el_dataset.card import M3EL_LAYOUT\n"
        "from m3el_dataset.export import ExportConfig, export_rows\n"
        "from m3el_dataset.rows import iter_release_rows\n"
        "def rows():\n"
        "    for row in iter_release_rows(sys.argv[1]):\n"
        "        yield row\n"
        "        print('ready', flush=True)\n"
        "        sys.stdin.read()\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "export_rows(rows(), sys.argv[2], M3EL_LAYOUT, ExportConfig(), source=sys.argv[1])\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(raw), str(out)], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline() == "ready\n"
    return process


def test_staging_folders_of_a_killed_build_are_removed_by_the_next(tmp_path):
    small_release(tmp_path / "raw", per_topic=1).write()
    other = _build_in_another_process(tmp_path / "raw", tmp_path / "hub")
    try:
        (staging,) = [p for p in tmp_path.iterdir() if p.name.startswith(".hub.")]
        export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
        assert staging.is_dir()  # the other build is still running: its folder stays
    finally:
        other.stdin.close()
        assert other.wait(timeout=60) == -9
    (tmp_path / ".hub.notes").mkdir()  # a folder of the user's that only looks alike stays
    export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig(overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hub.notes", "hub", "raw"]


def _duplicated_release(root):
    release = small_release(root, per_topic=2)
    copy = json.loads(json.dumps(release.files["movies.json"][0]))
    release.files.setdefault("movies_more.json", []).append(copy)  # the same mention, another file and id
    release.write()
    return release


def test_duplicates_are_reported_and_dropped_on_request(tmp_path, capsys):
    _duplicated_release(tmp_path / "raw")
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")]) == 0
    out = capsys.readouterr().out
    assert "Wrote 11 mentions" in out and "duplicate: movies_more-000000 (" in out and "repeats movies-000000" in out
    assert "1 duplicate mention(s) kept; pass --drop-duplicates" in out
    (entry,) = json.loads((tmp_path / "hub" / "build_report.json").read_text())["duplicates"]
    assert (entry["id"], entry["duplicate_of"], entry["dropped"]) == ("movies_more-000000", "movies-000000", False)
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub"), "--overwrite", "--drop-duplicates"]) == 0
    out = capsys.readouterr().out
    assert "Wrote 10 mentions" in out and "repeats movies-000000 (" in out and ", dropped" in out
    report = json.loads((tmp_path / "hub" / "build_report.json").read_text())
    assert [d["dropped"] for d in report["duplicates"]] == [True]
    assert main(["stats", str(tmp_path / "raw"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicate_mentions"] == 1


def test_a_mention_with_another_image_is_no_duplicate(tmp_path):
    release = _duplicated_release(tmp_path / "raw")
    copy = release.files["movies_more.json"][0]
    copy["image"][2] = copy["image"][2].replace(".jpg", "-other.jpg")
    release.write_image(copy["image"][2], b"\x89PNG other bytes")
    release.write()
    assert export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig()).report.duplicates == []


def test_all_records_bad_with_skip_invalid_lists_and_saves_every_reason(tmp_path, capsys):
    release = FakeRelease(tmp_path / "raw")
    release.add("movies").pop("sentence")
    release.add("movies")["Qid"] = "nope"
    release.write()
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub"), "--skip-invalid"]) == 2
    captured = capsys.readouterr()
    assert "skipped: movies.json, record 0, field sentence: missing field" in captured.out
    assert "skipped: movies.json, record 1, field Qid: 'nope' is not a Wikidata item id" in captured.out
    saved = tmp_path / "hub.build_report.json"
    assert f"No usable mention record in {tmp_path / 'raw'} (2 record(s) or file(s) skipped" in captured.err
    assert f"Every reason is listed in {saved}" in captured.err
    assert [s["index"] for s in json.loads(saved.read_text())["skipped_records"]] == [0, 1]
    assert not (tmp_path / "hub").exists()
    release.files["movies.json"][0]["sentence"] = "fixed"
    release.write()
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub"), "--skip-invalid"]) == 0
    assert not saved.exists()  # the failed build's report no longer applies


def test_empty_file_and_wrapper_object_are_named_by_the_build(tmp_path, capsys):
    release = small_release(tmp_path / "raw", per_topic=1)
    release.write()
    (tmp_path / "raw" / "extra.jsonl").write_bytes(b"")
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")]) == 0
    assert "empty file: extra.jsonl holds no record" in capsys.readouterr().out
    assert json.loads((tmp_path / "hub" / "build_report.json").read_text())["empty_files"] == ["extra.jsonl"]
    (tmp_path / "raw" / "extra.jsonl").write_text(json.dumps({"data": release.files["movies.json"]}))
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub2")]) == 2
    assert "extra.jsonl, record 0: expected a JSON array or JSON Lines" in capsys.readouterr().err


def test_data_after_the_array_fails_the_build_instead_of_dropping_records(tmp_path, capsys):
    release = FakeRelease(tmp_path / "raw")
    records = [release.add("movies", name=f"Film {i}") for i in range(3)]
    release.files.clear()
    (tmp_path / "raw" / "movies.json").write_text(json.dumps(records[:1]) + json.dumps(records[1:]))
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")]) == 2
    assert "movies.json: data after the end of the JSON array at character" in capsys.readouterr().err


def _declared(folder):
    meta = yaml.safe_load((folder / "README.md").read_text(encoding="utf-8").split("---")[1])
    return {c["config_name"]: [f["split"] for f in c["data_files"]] for c in meta["configs"]}


def _assert_everything_declared_loads(folder, mentions):
    declared = _declared(folder)
    for config, splits in declared.items():
        for split in splits:
            assert len(datasets.load_dataset(str(folder), config, split=split)) > 0, (config, split)
    learning = [s for s in declared["mentions"] if s in ("train", "validation", "test")]
    assert sum(len(datasets.load_dataset(str(folder), "mentions", split=s)) for s in learning) == mentions
    return declared


def test_a_13_mention_release_declares_only_splits_that_load(tmp_path):
    release = FakeRelease(tmp_path / "raw")
    for i in range(13):
        release.add(("movies", "books", "sports")[i % 3], name=f"Entity {i}", qid=f"Q{7000 + i}")
    release.write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
    declared = _assert_everything_declared_loads(result.out_dir, 13)
    assert set(declared["Tm-Te"]) >= {"movies", "books", "sports"} and "person" not in declared["Tm-Te"]
    assert 0 in result.statistics.total.splits.values()  # this release has an empty learning split


def test_a_one_topic_release_declares_its_topic_only(tmp_path):
    release = FakeRelease(tmp_path / "raw")
    for i in range(3):
        release.add("person", name=f"Person {i}", qid=f"Q{8000 + i}")
    release.write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
    declared = _assert_everything_declared_loads(result.out_dir, 3)
    assert [s for s in declared["ITm-ITe"] if s not in ("train", "validation", "test")] == ["person"]


def test_an_empty_knowledge_base_is_not_declared(tmp_path):
    small_release(tmp_path / "raw", per_topic=1).write()
    rows = iter_release_rows(tmp_path / "raw")
    result = export_rows(rows, tmp_path / "hub", M3EL_LAYOUT, ExportConfig(), kb_entities=[], source=tmp_path / "raw")
    assert "kb" not in _declared(result.out_dir) and result.num_kb_entities == 0
    assert not list(result.out_dir.rglob("kb-*.parquet"))


def test_deeply_nested_mimic_records_are_named_and_skippable(tmp_path, capsys):
    from converter_fixtures import write_mimic

    source = write_mimic(tmp_path / "WikiMEL")
    path = source / "WikiMEL_train.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(records)[:-1] + ", " + "[" * 100_000 + "]" * 100_000 + "]", encoding="utf-8")
    assert main(["convert", "mimic", str(source), str(tmp_path / "hub")]) == 2
    assert "WikiMEL_train.json, record 3: nested too deeply" in capsys.readouterr().err
    assert main(["convert", "mimic", str(source), str(tmp_path / "hub"), "--skip-invalid"]) == 0
    assert "skipped: WikiMEL_train.json, record 3: nested too deeply" in capsys.readouterr().out


def test_normalised_qids_are_printed_and_saved(tmp_path, capsys):
    release = FakeRelease(tmp_path / "raw")
    release.add("movies", qid="q18151305")
    release.write()
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")]) == 0
    assert "normalised: movies.json, record 0, field Qid: 'q18151305' read as 'Q18151305'" in capsys.readouterr().out
    (value,) = json.loads((tmp_path / "hub" / "build_report.json").read_text())["normalised_values"]
    assert (value["original"], value["value"]) == ("q18151305", "Q18151305")
    assert datasets.load_dataset(str(tmp_path / "hub"), "mentions", split="movies")[0]["label"] == 2
