"""The whole construction pipeline against the local fake Wikidata/Commons: records, failures, resumption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from pipeline_server import FakeWikimedia, pipeline_settings, populate_world, write_tiny_sources

from m3el_dataset.constants import TOPICS
from m3el_dataset.pipeline import run_pipeline
from m3el_dataset.pipeline.config import config_from_dict

REPO_ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {  # topic -> [(name, gold Qid, candidate Qids)]
    "movies": [
        ("Kansas Saloon Smashers", "Q18151305", ["Q18151305", "Q1558", "Q204328"]),
        ("Kansas", "Q1700479", ["Q1558", "Q204328", "Q1700479"]),
        ("The Lost Reel", "Q5000001", ["Q5000003", "Q5000004", "Q5000005"]),
    ],
    "common": [("Pancake", "Q44541", ["Q7130806", "Q44541"])],
    "person": [("Digby Morrell", "Q5275869", ["Q5275869", "Q9990001"])],
    "books": [("Dune", "Q190192", ["Q3041974", "Q190192"])],
    "sports": [("Germany", "Q183", ["Q183", "Q43287"]), ("Bonn", "Q586", ["Q586"])],
}


@pytest.fixture
def world(tmp_path):
    with FakeWikimedia() as fake:
        populate_world(fake)
        yield fake, write_tiny_sources(tmp_path / "raw")


def _run(fake, sources, work_dir, **kwargs):
    config = config_from_dict(pipeline_settings(fake, work_dir, sources))
    return config, run_pipeline(config, **kwargs)


def _snapshot(release_dir: Path) -> dict[str, bytes]:
    """Every file of a release folder (records and images) by relative path, for exact comparisons."""
    return {str(p.relative_to(release_dir)): p.read_bytes() for p in sorted(release_dir.rglob("*")) if p.is_file()}


def _check_release_format(release_dir: Path) -> None:
    """Check the published format without the reader: fields, image triples, files inside the folder."""
    for topic in TOPICS:
        for record in json.loads((release_dir / f"{topic}.json").read_text(encoding="utf-8")):
            assert set(record) == {"Qid", "name", "description", "sentence", "image", "candidates"}
            for image in [record["image"]] + [c["image"] for c in record["candidates"]]:
                name, url, local = image
                assert local.startswith(f"/M3EL/{topic}_candidates_images/") and "Special:FilePath/" in url
                with Image.open(release_dir / local.removeprefix("/M3EL/")) as im:
                    im.load()
            for candidate in record["candidates"]:
                assert set(candidate) == {"Qid", "name", "description", "image"}


def test_pipeline_builds_expected_records(world, tmp_path):
    fake, sources = world
    config, report = _run(fake, sources, tmp_path / "work")
    for topic, expected in EXPECTED.items():
        records = json.loads((config.release_dir / f"{topic}.json").read_text(encoding="utf-8"))
        assert [(r["name"], r["Qid"], [c["Qid"] for c in r["candidates"]]) for r in records] == expected
    _check_release_format(config.release_dir)
    smashers = json.loads((config.release_dir / "movies.json").read_text(encoding="utf-8"))[0]
    assert smashers["image"] == [
        "KansasSaloonSmashers1901.jpg", fake.file_path + "KansasSaloonSmashers1901.jpg",
        "/M3EL/movies_candidates_images/Kansas Saloon Smashers-Q18151305/Q18151305.jpg"]
    assert smashers["candidates"][2]["image"][2].endswith("/Q204328.JPG")  # original extension case kept
    person = json.loads((config.release_dir / "person.json").read_text(encoding="utf-8"))[0]
    assert person["image"][0] == "Digby Morrell.jpg"  # the oversized first P18 file was refused
    # Failures are reported with their reasons; faults were retried and overcome.
    failures = {row["key"]: row["error"] for rows in report["failures"].values() for row in rows}
    assert set(failures) == {"movies-000003-000", "movies-000004-000"}
    assert "gold entity Q6000001" in failures["movies-000003-000"]
    assert "no known raster image" in failures["movies-000003-000"]
    assert "Missing Page" in failures["movies-000004-000"]
    assert fake.count("search=Kansas&") == 2 and fake.count("ids=Q5275869") == 3 and fake.count("titles=Bonn") == 2
    provenance = [json.loads(line) for line in (config.work_dir / "records/movies.provenance.jsonl").open()]
    assert [p["gold_placement"] for p in provenance] == ["first", "elsewhere", "absent"]
    assert provenance[2]["dropped"][0]["qid"] == "Q5000002" and "404" in provenance[2]["dropped"][0]["reason"]
    books = json.loads((config.work_dir / "records/books.provenance.jsonl").read_text())
    assert books["gold_chosen_by"] == "description-similarity"


def test_output_reads_with_release_reader_and_exports(world, tmp_path):
    from m3el_dataset.export import ExportConfig, export_release
    from m3el_dataset.images import ImageResolver, ImageStatus
    from m3el_dataset.release import iter_release

    fake, sources = world
    config, _ = _run(fake, sources, tmp_path / "work")
    records = list(iter_release(config.release_dir))
    got = {(r.topic, r.name, r.qid, tuple(c.qid for c in r.candidates)) for r in records}
    assert got == {(t, n, q, tuple(c)) for t, rows in EXPECTED.items() for n, q, c in rows}
    assert [r.label for r in records if r.topic == "movies"] == [0, 2, -1]  # first, elsewhere, absent
    resolver = ImageResolver(config.release_dir)
    for record in records:
        for image in [record.image] + [c.image for c in record.candidates]:
            assert resolver.load(image.local_path).status == ImageStatus.OK
    result = export_release(config.release_dir, tmp_path / "hub", ExportConfig())
    assert result.statistics.total.mentions == 8
    assert not result.report.image_problems and not result.report.skipped_records


def test_rerun_skips_finished_and_retries_failed_up_to_limit(world, tmp_path):
    fake, sources = world
    config, first = _run(fake, sources, tmp_path / "work")
    before = _snapshot(config.release_dir)
    requests = len(fake.requests)
    _, second = _run(fake, sources, tmp_path / "work")
    assert _snapshot(config.release_dir) == before
    assert second["stages"]["candidates"] == {"done": 0, "skipped": 9, "failed": 1, "given_up": 0}
    assert second["stages"]["images"] == {"done": 0, "skipped": 8, "failed": 1, "given_up": 0}
    assert len(fake.requests) > requests  # only the failed items went back to the network
    _, third = _run(fake, sources, tmp_path / "work")  # max_attempts=2: now both are given up
    assert third["stages"]["candidates"]["given_up"] == 1 and third["stages"]["images"]["given_up"] == 1
    assert all(row["given_up"] for rows in third["failures"].values() for row in rows)


def test_changed_candidate_settings_are_refused_instead_of_mixing_old_and_new_results(world, tmp_path):
    fake, sources = world
    _run(fake, sources, tmp_path / "work", stages=("sources", "candidates"))
    settings = pipeline_settings(fake, tmp_path / "work", sources)
    settings["candidates"] = {"k": 2}
    with pytest.raises(ValueError, match=r"Stage 'candidates' in .* other settings \(candidates\.k: 3 -> 2\)"):
        run_pipeline(config_from_dict(settings), stages=("candidates",))
    settings["candidates"] = {"k": 3}
    settings["images"]["max_images_per_entity"] = 1
    config = config_from_dict(settings)
    run_pipeline(config, stages=("images",))  # first images run: records its settings
    settings["images"]["max_images_per_entity"] = 2
    with pytest.raises(ValueError, match=r"Stage 'images' .* \(images\.max_images_per_entity: 1 -> 2\)"):
        run_pipeline(config_from_dict(settings), stages=("images",))


def test_interrupted_run_resumes_to_identical_output(world, tmp_path):
    fake, sources = world
    clean, _ = _run(fake, sources, tmp_path / "clean")
    commits = []

    def crash_after_three(key: str) -> None:
        commits.append(key)
        if len(commits) == 3:
            raise KeyboardInterrupt  # what Ctrl-C does in the main thread

    with pytest.raises(KeyboardInterrupt):
        _run(fake, sources, tmp_path / "resumed", on_commit=crash_after_three)
    resumed, report = _run(fake, sources, tmp_path / "resumed")
    assert report["stages"]["candidates"]["skipped"] >= 3
    assert _snapshot(resumed.release_dir) == _snapshot(clean.release_dir)
    assert not list((tmp_path / "resumed").rglob(".tmp-*"))


def test_sigkilled_run_resumes_to_identical_output(world, tmp_path):
    fake, sources = world
    clean, _ = _run(fake, sources, tmp_path / "clean")
    settings = pipeline_settings(fake, tmp_path / "killed", sources)
    settings["stage"]["workers"] = 1
    settings_path = tmp_path / "settings.json"
    settings_path.write_text(json.dumps(settings))
    fake.delay_s = 0.05  # slow enough that the kill lands mid-stage
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "m3el_dataset.pipeline.cli", "run", "--settings",
                                str(settings_path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = tmp_path / "killed" / "candidates" / "done"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(done.glob("*.json"))) < 3 and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the pipeline finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    fake.delay_s = 0.0
    for path in done.glob("*.json"):  # every committed item is whole JSON
        json.loads(path.read_text())
    resumed, _ = _run(fake, sources, tmp_path / "killed")
    assert _snapshot(resumed.release_dir) == _snapshot(clean.release_dir)
