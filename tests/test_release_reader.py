import json
import os
from pathlib import Path

import pytest
from release_fixtures import FakeRelease, image_bytes, small_release

from m3el_dataset.images import ImageResolver, ImageStatus
from m3el_dataset.release import ReleaseRecordError, iter_release
from m3el_dataset.report import BuildReport
from m3el_dataset.rows import iter_release_rows


def test_reads_json_arrays_and_json_lines(tmp_path):
    small_release(tmp_path, per_topic=3).write()
    records = list(iter_release(tmp_path))
    assert len(records) == 15
    assert {r.source_file for r in records} == {
        "movies.json", "common.jsonl", "person.json", "books.jsonl", "sports.json"
    }  # fmt: skip
    assert [r.label for r in records if r.topic == "movies"] == [0, 1, -1]
    assert records[0].id == "books-000000"  # files are read in sorted order


def test_topic_from_image_folder_then_file_name(tmp_path):
    release = FakeRelease(tmp_path)
    release.add("books", file="part1.json")  # image folder says books
    record = release.add("books", file="sport_records.jsonl")
    record["image"][2] = "/M3EL/elsewhere/x.jpg"  # no topic folder: the file name decides
    release.write()
    assert [r.topic for r in iter_release(tmp_path)] == ["books", "sports"]


def test_record_without_topic_is_an_error(tmp_path):
    release = FakeRelease(tmp_path)
    release.add("movies", file="records.json")["image"][2] = "/M3EL/unknown/Q1.jpg"
    release.write()
    with pytest.raises(ReleaseRecordError, match=r"records.json, record 0, field 'image': no topic"):
        list(iter_release(tmp_path))


@pytest.mark.parametrize(
    "mutate, field, problem",
    [
        (lambda r: r.pop("sentence"), "sentence", "missing field"),
        (lambda r: r.update(Qid=17), "Qid", "expected str, got int"),
        (lambda r: r.update(candidates="none"), "candidates", "expected list, got str"),
        (lambda r: r.update(candidates=[]), "candidates", "no candidates"),
        (lambda r: r["candidates"][1].pop("description"), "candidates[1].description", "missing field"),
        (lambda r: r["candidates"][2].update(image=["a.jpg", "url"]), "candidates[2].image", "3 strings"),
        (lambda r: r.update(image=None), "image", "expected list, got NoneType"),
    ],
)
def test_malformed_record_names_file_record_and_field(tmp_path, mutate, field, problem):
    release = FakeRelease(tmp_path)
    release.add("movies")
    mutate(release.add("movies"))
    release.write()
    with pytest.raises(ReleaseRecordError) as error:
        list(iter_release(tmp_path))
    assert (error.value.source_file, error.value.index, error.value.field_name) == ("movies.json", 1, field)
    assert problem in str(error.value) and "--skip-invalid" in str(error.value)


def test_skip_invalid_skips_and_lists_every_skip(tmp_path):
    release = FakeRelease(tmp_path)
    release.add("movies", file="movies.jsonl")
    release.add("movies", file="movies.jsonl").pop("name")
    release.add("movies", file="movies.jsonl")
    release.write()
    with open(tmp_path / "movies.jsonl", "a") as file:
        file.write("{not json\n")
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    report = BuildReport()
    records = list(iter_release(tmp_path, skip_invalid=True, report=report))
    assert [r.index for r in records] == [0, 2]
    skips = [(s.file, s.index, s.field) for s in report.skipped_records]
    assert skips == [("broken.json", 0, None), ("movies.jsonl", 1, "name"), ("movies.jsonl", 3, None)]
    assert "the rest of the file cannot be read" in report.skipped_records[0].problem
    assert "invalid JSON" in report.skipped_records[2].problem


def test_unreadable_file_stops_the_build(tmp_path):
    (tmp_path / "movies.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReleaseRecordError, match="movies.json, record 0: invalid JSON or UTF-8"):
        list(iter_release(tmp_path))
    (tmp_path / "movies.json").write_bytes(b"[\xff\xfe]")
    with pytest.raises(ReleaseRecordError, match="movies.json: unreadable record file"):
        list(iter_release(tmp_path))


def test_a_bad_byte_in_json_lines_costs_its_record_only(tmp_path):
    release = FakeRelease(tmp_path)
    for _ in range(5):
        release.add("movies", file="movies.jsonl")
    release.write()
    lines = (tmp_path / "movies.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"Kansas", b"Kan\xffsas", 1)
    (tmp_path / "movies.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(ReleaseRecordError, match="movies.jsonl, record 2: invalid JSON or UTF-8"):
        list(iter_release(tmp_path))
    report = BuildReport()
    assert [r.index for r in iter_release(tmp_path, skip_invalid=True, report=report)] == [0, 1, 3, 4]
    assert [(s.file, s.index) for s in report.skipped_records] == [("movies.jsonl", 2)]


def test_json_arrays_stream_across_read_chunks(tmp_path, monkeypatch):
    import m3el_dataset.json_records as release_module

    small_release(tmp_path, per_topic=4).write()
    whole = [(r.id, r.candidates) for r in iter_release(tmp_path)]
    monkeypatch.setattr(release_module, "_READ_CHUNK", 5)  # every record crosses several chunk boundaries
    assert [(r.id, r.candidates) for r in iter_release(tmp_path)] == whole
    (tmp_path / "movies.json").write_text((tmp_path / "movies.json").read_text()[:-40], encoding="utf-8")
    report = BuildReport()
    kept = [r.id for r in iter_release(tmp_path, skip_invalid=True, report=report) if r.topic == "movies"]
    assert kept == ["movies-000000", "movies-000001", "movies-000002"]
    assert [(s.file, s.index) for s in report.skipped_records] == [("movies.json", 3)]


def test_hidden_files_are_ignored_but_hidden_parents_are_not(tmp_path):
    raw = tmp_path / ".cache" / "m3el"
    small_release(raw, per_topic=1).write()
    (raw / "._movies.json").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (raw / ".git").mkdir()
    (raw / ".git" / "notes.json").write_text("not records")
    assert len(list(iter_release(raw))) == 5


def test_ids_and_splits_do_not_depend_on_pointing_at_m3el_or_its_parent(tmp_path):
    small_release(tmp_path / "parent" / "M3EL", per_topic=3).write()
    inside = [(row["id"], row["split"]) for row in iter_release_rows(tmp_path / "parent" / "M3EL")]
    above = [(row["id"], row["split"]) for row in iter_release_rows(tmp_path / "parent")]
    assert inside == above and inside[0][0] == "books-000000"


def test_empty_candidate_qid_is_refused(tmp_path):
    release = FakeRelease(tmp_path)
    release.add("movies")["candidates"][1]["Qid"] = " "
    release.write()
    with pytest.raises(ReleaseRecordError, match=r"field 'candidates\[1\].Qid': empty candidate Qid"):
        list(iter_release(tmp_path))


def test_no_record_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No record files"):
        list(iter_release(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_release(tmp_path / "missing"))


def test_missing_unreadable_and_case_variant_images(tmp_path):
    release = FakeRelease(tmp_path)
    record = release.add("movies", ext=".JPG", write_images=False)
    gold, band, state = (c["image"][2] for c in record["candidates"][::-1])
    release.write_image(gold.replace(".JPG", ".jpg"), image_bytes("gold"))  # extension differs in case only
    release.write_image(band, b"this is not an image")
    release.write_image(state, image_bytes("state")[:20])  # truncated
    release.write()
    report = BuildReport()
    (row,) = iter_release_rows(tmp_path, report=report)
    assert row["mention_image"]["bytes"] == image_bytes("gold")  # the mention image is the gold file
    assert row["candidate_images"][:2] == [None, None]
    assert row["candidate_images"][2]["bytes"] == image_bytes("gold")
    gold_path = "movies_candidates_images/Kansas Saloon Smashers-Q18151305/Q18151305.jpg"
    assert row["candidate_images"][2]["path"] == gold_path
    assert report.image_problem_counts() == {"missing": 0, "unreadable": 2, "outside_folder": 0}
    assert {p.role for p in report.image_problems} == {"candidate 0", "candidate 1"}
    assert report.images_ok == 2


def test_missing_image_is_an_empty_cell_and_listed(tmp_path):
    release = FakeRelease(tmp_path)
    record = release.add("movies")
    release.path_of(record["candidates"][1]["image"][2]).unlink()
    release.write()
    report = BuildReport()
    (row,) = iter_release_rows(tmp_path, report=report)
    assert row["candidate_images"][1] is None and row["candidate_images"][0] is not None
    (problem,) = report.image_problems
    assert (problem.record_id, problem.role, problem.status) == ("movies-000000", "candidate 1", "missing")


@pytest.mark.parametrize(
    "local_path",
    ["/M3EL/../secret.png", "/M3EL/movies_candidates_images/../../secret.png", "/etc/secret.png", "../secret.png"],
)
def test_path_leaving_the_folder_is_never_opened(tmp_path, monkeypatch, local_path):
    raw = tmp_path / "raw"
    secret = tmp_path / "secret.png"
    secret.write_bytes(image_bytes("secret"))
    release = FakeRelease(raw)
    release.add("movies")["candidates"][0]["image"][2] = local_path
    release.write()
    opened = []
    real_open = os.open  # the image reader opens files with os.open (without blocking, see read_regular_file)
    monkeypatch.setattr(os, "open", lambda path, *args: opened.append(Path(path).resolve()) or real_open(path, *args))
    report = BuildReport()
    (row,) = iter_release_rows(raw, report=report)
    assert row["candidate_images"][0] is None
    assert secret.resolve() not in opened and len(opened) == 3
    assert [(p.role, p.status) for p in report.image_problems] == [("candidate 0", "outside_folder")]


def test_symlink_pointing_outside_is_refused(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(image_bytes("secret"))
    root = tmp_path / "raw"
    (root / "movies_candidates_images").mkdir(parents=True)
    (root / "movies_candidates_images" / "link.png").symlink_to(secret)
    loaded = ImageResolver(root).load("/M3EL/movies_candidates_images/link.png")
    assert loaded.status is ImageStatus.OUTSIDE_FOLDER and loaded.data is None


def test_release_nested_in_m3el_folder_is_found(tmp_path):
    small_release(tmp_path / "M3EL", per_topic=1).write()
    rows = list(iter_release_rows(tmp_path))
    assert len(rows) == 5 and all(row["mention_image"] is not None for row in rows)


def test_record_file_must_hold_objects(tmp_path):
    (tmp_path / "movies.json").write_text(json.dumps(["just a string"]), encoding="utf-8")
    with pytest.raises(ReleaseRecordError, match="movies.json, record 0: expected an object, got str"):
        list(iter_release(tmp_path))
