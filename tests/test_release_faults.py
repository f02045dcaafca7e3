"""Faults of a release's record files (issue 14): each ends in an error naming the file, or a reported skip."""

import json

import pytest
from release_fixtures import FakeRelease

from m3el_dataset.release import ReleaseRecordError, iter_release
from m3el_dataset.report import BuildReport


def _three_records(root, file="movies.json"):
    release = FakeRelease(root)
    for i in range(3):
        release.add("movies", name=f"Film {i}", file=file)
    return release


@pytest.mark.parametrize("tail", ['[{"Qid": "Q1"}]', "junk", "]"])
def test_data_after_the_json_array_is_an_error_naming_file_and_offset(tmp_path, tail):
    release = _three_records(tmp_path)
    records = release.files.pop("movies.json")
    release.write()
    head = json.dumps(records[:1])
    (tmp_path / "movies.json").write_text(f"{head}\n{tail}", encoding="utf-8")  # 1 record, then more data
    with pytest.raises(ReleaseRecordError, match=rf"movies.json: data after the end of the JSON array at character "
                       rf"{len(head) + 1}"):  # fmt: skip
        list(iter_release(tmp_path))
    report = BuildReport()
    assert len(list(iter_release(tmp_path, skip_invalid=True, report=report))) == 1
    (skip,) = report.skipped_records
    assert (skip.file, skip.index) == ("movies.json", None) and "nothing after it was read" in skip.problem


def test_second_array_across_read_chunks_is_found(tmp_path, monkeypatch):
    import m3el_dataset.json_records as json_records

    release = _three_records(tmp_path)
    release.write()
    text = (tmp_path / "movies.json").read_text(encoding="utf-8")
    (tmp_path / "movies.json").write_text(text + text, encoding="utf-8")
    monkeypatch.setattr(json_records, "_READ_CHUNK", 7)
    with pytest.raises(ReleaseRecordError, match=f"at character {len(text)} "):
        list(iter_release(tmp_path))


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_deeply_nested_json_names_the_file_and_can_be_skipped(tmp_path, suffix):
    release = _three_records(tmp_path, file=f"movies{suffix}")
    release.write()
    path = tmp_path / f"movies{suffix}"
    nested = "[" * 100_000 + "]" * 100_000
    if suffix == ".json":
        path.write_text(path.read_text(encoding="utf-8").rstrip()[:-1] + f", {nested}]", encoding="utf-8")
    else:
        path.write_text(path.read_text(encoding="utf-8") + nested + "\n", encoding="utf-8")
    with pytest.raises(ReleaseRecordError, match=rf"movies{suffix}, record 3: nested too deeply"):
        list(iter_release(tmp_path))
    report = BuildReport()
    assert len(list(iter_release(tmp_path, skip_invalid=True, report=report))) == 3
    assert [(s.file, s.index) for s in report.skipped_records] == [(f"movies{suffix}", 3)]


@pytest.mark.parametrize("indent", [None, 1])
def test_a_top_level_object_is_not_read_as_a_record(tmp_path, indent):
    records = _three_records(tmp_path).files["movies.json"]
    (tmp_path / "movies.json").write_text(json.dumps({"data": records}, indent=indent), encoding="utf-8")
    with pytest.raises(ReleaseRecordError, match=r"movies.json, record 0: expected a JSON array or JSON Lines of "
                       r"mention records, found an object with keys 'data'"):  # fmt: skip
        list(iter_release(tmp_path))


def test_an_empty_records_file_is_warned_and_reported(tmp_path, caplog):
    _three_records(tmp_path).write()
    (tmp_path / "books.jsonl").write_bytes(b"")
    (tmp_path / "sports.json").write_text("[]\n", encoding="utf-8")
    report = BuildReport()
    assert len(list(iter_release(tmp_path, report=report))) == 3
    assert report.empty_files == ["books.jsonl", "sports.json"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("books.jsonl holds no record" in message for message in warned)


def test_qids_are_normalised_when_unambiguous_and_reported(tmp_path):
    release = FakeRelease(tmp_path)
    record = release.add("movies", qid=" Q18151305 ")
    record["candidates"][0]["Qid"] = "q1558"
    release.write()
    report = BuildReport()
    (parsed,) = iter_release(tmp_path, report=report)
    assert parsed.qid == "Q18151305" and parsed.candidates[0].qid == "Q1558" and parsed.label == 2
    changes = [(v.file, v.index, v.field, v.original, v.value) for v in report.normalised_values]
    assert changes == [
        ("movies.json", 0, "Qid", " Q18151305 ", "Q18151305"),
        ("movies.json", 0, "candidates[0].Qid", "q1558", "Q1558"),
    ]


@pytest.mark.parametrize(
    "mutate, field, problem",
    [
        (lambda r: r.update(Qid="Q 12"), "Qid", "'Q 12' is not a Wikidata item id"),
        (lambda r: r["candidates"][1].update(Qid="P31"), "candidates[1].Qid", "'P31' is not a Wikidata item id"),
        (lambda r: r["candidates"][2].update(Qid="q1558"), "candidates[2].Qid", "Q1558 is already candidates[0]"),
    ],
)
def test_ambiguous_or_repeated_qids_are_refused(tmp_path, mutate, field, problem):
    release = FakeRelease(tmp_path)
    mutate(release.add("movies"))
    release.write()
    with pytest.raises(ReleaseRecordError) as error:
        list(iter_release(tmp_path))
    assert (error.value.source_file, error.value.index, error.value.field_name) == ("movies.json", 0, field)
    assert problem in str(error.value)
    report = BuildReport()
    assert list(iter_release(tmp_path, skip_invalid=True, report=report)) == []
    assert [s.field for s in report.skipped_records] == [field]


def test_a_records_file_linked_from_outside_is_refused_like_an_image(tmp_path):
    outside = _three_records(tmp_path / "elsewhere")
    outside.write()
    raw = tmp_path / "raw"
    _three_records(raw, file="books.json").write()
    (raw / "movies.json").symlink_to(tmp_path / "elsewhere" / "movies.json")
    with pytest.raises(ReleaseRecordError, match=r"movies.json: a link to .*elsewhere/movies.json, outside the "
                       r"release folder"):  # fmt: skip
        list(iter_release(raw))
    report = BuildReport()
    assert [r.source_file for r in iter_release(raw, skip_invalid=True, report=report)] == ["books.json"] * 3
    assert [(s.file, s.index) for s in report.skipped_records] == [("movies.json", None)]
    (raw / "movies.json").unlink()
    (raw / "inside.json").symlink_to(raw / "books.json")  # a link that stays inside is read
    assert [r.source_file for r in iter_release(raw)] == ["books.json"] * 3 + ["inside.json"] * 3
