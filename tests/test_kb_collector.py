"""The knowledge base keeps each entity once and reports every occurrence whose content differs from that copy."""

from __future__ import annotations

import json
import logging

from release_fixtures import DEFAULT_CANDIDATES, FakeRelease, image_bytes

from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.report import BuildReport, KBConflict
from m3el_dataset.rows import KnowledgeBaseCollector


def _row(record_id: str, *entities: tuple[str, str, str, bytes | None]) -> dict:
    return {
        "id": record_id,
        "candidate_qids": [qid for qid, *_ in entities],
        "candidate_names": [name for _, name, _, _ in entities],
        "candidate_descriptions": [description for _, _, description, _ in entities],
        "candidate_texts": [f"{name}: {description}" for _, name, description, _ in entities],
        "candidate_images": [{"bytes": data, "path": "x.png"} if data else None for *_, data in entities],
    }


def test_conflicting_occurrences_are_reported_and_the_kept_copy_named():
    report = BuildReport()
    collector = KnowledgeBaseCollector(report)
    first = collector.add(_row("r0", ("Q1", "One", "first", b"a"), ("Q2", "Two", "", None)))
    assert [entity["qid"] for entity in first] == ["Q1"]  # Q2 waits for a usable image
    assert collector.add(_row("r1", ("Q1", "One", "first", b"a"))) == []  # an identical copy: nothing to say
    assert collector.add(_row("r2", ("Q1", "One", "other", b"b"), ("Q2", "Two", "", None))) == []
    (two,) = collector.add(_row("r3", ("Q2", "Deux", "", b"c")))  # first usable image: kept from r3
    assert (two["name"], collector.finish(), len(collector)) == ("Deux", [], 2)
    assert report.kb_conflicts == [
        KBConflict("Q1", ["description", "image"], "r0", "r2"),
        KBConflict("Q2", ["name"], "r3", "r0"),
    ]


def test_without_a_report_conflicts_are_logged(caplog):
    collector = KnowledgeBaseCollector()
    collector.add(_row("r0", ("Q1", "One", "", b"a")))
    with caplog.at_level(logging.WARNING, logger="m3el_dataset.rows"):
        collector.add(_row("r1", ("Q1", "Uno", "", b"a")))
        collector.finish()
    assert "Entity Q1 has another name in record r1 than in record r0" in caplog.text
    assert "1 occurrences of knowledge-base entities differ" in caplog.text


def test_build_report_lists_kb_conflicts(tmp_path):
    release = FakeRelease(tmp_path / "raw")
    release.add("movies")
    kansas, band, film = DEFAULT_CANDIDATES
    second = release.add("movies", name="Kansas", qid="Q1558",
                         candidates=((kansas[0], kansas[1], "a U.S. state"), band, film))  # fmt: skip
    release.write_image(second["candidates"][1]["image"][2], image_bytes("another picture of the band"))
    release.write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig())
    saved = json.loads((tmp_path / "hub" / "build_report.json").read_text(encoding="utf-8"))
    assert saved["kb_conflicts"] == [
        {"qid": "Q1558", "fields": ["description"], "kept_record": "movies-000000", "record_id": "movies-000001"},
        {"qid": "Q204328", "fields": ["image"], "kept_record": "movies-000000", "record_id": "movies-000001"},
    ]
    assert result.num_kb_entities == 3


def test_a_converters_own_knowledge_base_lists_conflicting_copies(tmp_path):
    """A knowledge base a converter gives (MIMIC, WIKIPerson) goes through the same collector: nothing is dropped
    silently."""
    from m3el_dataset.card import M3EL_LAYOUT
    from m3el_dataset.export import export_rows
    from m3el_dataset.rows import iter_release_rows

    release = FakeRelease(tmp_path / "raw")
    release.add("movies")
    release.write()
    entity = {"qid": "Q1", "name": "One", "description": "first", "text": "One: first", "image": None}
    kb = [entity, {**entity, "description": "second", "text": "One: second"}, {**entity, "qid": "Q2"}]
    report = BuildReport()
    result = export_rows(iter_release_rows(tmp_path / "raw"), tmp_path / "hub", M3EL_LAYOUT, ExportConfig(),
                         report=report, kb_entities=kb, source=tmp_path / "raw")  # fmt: skip
    assert result.num_kb_entities == 2
    entries = ("knowledge-base entry 0", "knowledge-base entry 1")
    assert report.kb_conflicts == [KBConflict("Q1", ["description"], *entries)]
