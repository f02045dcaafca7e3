"""Atomic commits and the resumable stage runner."""

from __future__ import annotations

import json
import os
import stat

import pytest
from pipeline_server import write_tiny_sources

from m3el_dataset.pipeline import run_pipeline
from m3el_dataset.pipeline.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
    remove_stale_tmp,
)
from m3el_dataset.pipeline.config import PipelineConfig, StageSettings
from m3el_dataset.pipeline.stage import ItemFailure, StageRunner, StageSettingsChanged, key_to_filename


def test_failed_write_keeps_old_file_and_leaves_no_tmp(tmp_path, monkeypatch):
    path = tmp_path / "item.json"
    atomic_write_json(path, {"v": 1})

    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(path, {"v": 2})
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["item.json"]


def test_stale_tmp_files_are_removed(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / ".tmp-abc").write_text("half")
    atomic_write_text(tmp_path / "done" / "a.json", "{}")
    assert remove_stale_tmp(tmp_path) == 1
    assert [p.name for p in (tmp_path / "done").iterdir()] == ["a.json"]


def test_read_json_names_broken_file(tmp_path):
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ValueError, match=r"x\.json is not valid JSON"):
        read_json(tmp_path / "x.json")


def _process(payload):
    if payload == "bad":
        raise ItemFailure("dead link")
    if payload == "bug":
        raise KeyError("oops")
    return {"value": payload.upper()}


def test_runner_skips_done_and_retries_failed_up_to_limit(tmp_path):
    runner = StageRunner("demo", tmp_path, StageSettings(max_attempts=2, workers=2))
    items = [("a", "a"), ("b", "bad"), ("c", "c"), ("d", "bug")]
    first = runner.run(items, _process)
    assert (first.done, first.failed, first.skipped, first.given_up) == (2, 2, 0, 0)
    assert runner.load("a") == {"value": "A"} and runner.load("b") is None
    second = runner.run(items, _process)
    assert (second.done, second.failed, second.skipped, second.given_up) == (0, 2, 2, 0)
    third = runner.run(items, _process)
    assert (third.done, third.failed, third.skipped, third.given_up) == (0, 0, 2, 2)
    report = json.loads((tmp_path / "report.json").read_text())
    assert {(r["key"], r["attempts"], r["given_up"]) for r in report["failures"]} == {("b", 2, True), ("d", 2, True)}
    assert {r["error"] for r in report["failures"]} == {"ItemFailure: dead link", "KeyError: 'oops'"}
    fixed = runner.run([("b", "b")], _process)  # once fixed upstream, a given-up item runs if attempts are raised
    assert fixed.given_up == 1
    StageRunner("demo", tmp_path, StageSettings(max_attempts=3)).run([("b", "b")], _process)
    assert runner.load("b") == {"value": "B"} and not (tmp_path / "failed" / "b.json").exists()


def test_interrupt_keeps_committed_items(tmp_path):
    committed = []

    def interrupt(key):
        committed.append(key)
        if len(committed) == 2:
            raise KeyboardInterrupt

    items = [(str(i), str(i)) for i in range(20)]
    with pytest.raises(KeyboardInterrupt):
        StageRunner("demo", tmp_path, StageSettings(workers=1), on_commit=interrupt).run(items, _process)
    again = StageRunner("demo", tmp_path, StageSettings(workers=3)).run(items, _process)
    assert again.skipped == 2 and again.done == 18
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(f"{i}.json" for i in range(20))


def test_unsafe_keys_get_safe_distinct_file_names():
    names = {key_to_filename(k) for k in ["a/b", "a_b", "../x", "Ç"]}
    assert len(names) == 4 and all("/" not in n and not n.startswith(".") for n in names)
    assert key_to_filename("movies-000001-000") == "movies-000001-000.json"


def test_a_rerun_with_other_result_settings_is_refused_naming_the_change(tmp_path):
    settings, fingerprint = StageSettings(workers=1), {"candidates.k": 3, "path": tmp_path}
    StageRunner("demo", tmp_path, settings, fingerprint=fingerprint).run([("a", "a")], _process)
    again = StageRunner("demo", tmp_path, StageSettings(workers=2), fingerprint=fingerprint)
    assert again.run([("a", "a"), ("b", "b")], _process).done == 1  # same settings: resumes
    changed = StageRunner("demo", tmp_path, settings, fingerprint={"candidates.k": 5, "path": tmp_path})
    with pytest.raises(StageSettingsChanged, match=r"other settings \(candidates\.k: 3 -> 5\)\. Delete .* to redo"):
        changed.run([("c", "c")], _process)
    assert not (tmp_path / "done" / "c.json").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_committed_files_have_the_umask_mode_not_0600(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "images" / "Q1.png", b"\x89PNG")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "images" / "Q1.png").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("release_inside_work", [True, False])
def test_a_resumed_run_removes_stale_tmp_files_of_the_release_folder(tmp_path, release_inside_work):
    sources = write_tiny_sources(tmp_path / "raw")
    work = tmp_path / "work"
    release = work / "M3EL" if release_inside_work else tmp_path / "release"
    config = PipelineConfig(work_dir=work, sources={"movies": sources["movies"]}, release_dir=release)
    stale = [release / "movies_candidates_images" / "Kansas-Q1" / ".tmp-3f2a", release / ".tmp-9c1d",
             work / "records" / ".tmp-77aa"]  # killed between the temporary write and the rename
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half an image")
    kept = release / "movies_candidates_images" / "Kansas-Q1" / "Q1.jpg"
    kept.write_bytes(b"a finished image")
    run_pipeline(config, stages=("sources",))
    assert not any(path.exists() for path in stale) and kept.read_bytes() == b"a finished image"
