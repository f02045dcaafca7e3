"""``report.html`` and the gallery's sample of mistakes, on tiny hand-made inputs (the sample run's report is rendered
in headless Chromium in test_benchmark_run.py)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from m3el_benchmark.evaluation.mistakes import (
    THUMBNAIL_PIXELS,
    GalleryCandidate,
    GalleryEntry,
    MistakeSample,
    thumbnail_uri,
)
from m3el_benchmark.evaluation.report_gallery import compared, entry_html
from m3el_benchmark.evaluation.report_html import render_report, write_report
from m3el_benchmark.evaluation.table_formats import Cell, Row, Table
from m3el_benchmark.m3el_accuracy.ranking_metrics import NO_GOLD

EVIL = "<script>alert('x')</script> & \"quoted\""


def _offered(ranks: np.ndarray, batch_size: int, order: np.ndarray, include_absent: bool) -> MistakeSample:
    sample = MistakeSample.for_mentions(len(ranks), num_settings=1, seed=7, include_absent=include_absent)
    for start in range(0, len(order), batch_size):
        batch = torch.from_numpy(order[start : start + batch_size])
        sample.offer(0, batch, torch.from_numpy(ranks[batch.numpy()]), torch.rand(len(batch), 3))
    return sample


@pytest.mark.parametrize("include_absent", [True, False])
def test_mistake_sample_keeps_the_first_mistakes_in_seeded_order_whatever_the_batches(include_absent):
    ranks = np.random.default_rng(0).choice([1, 1, 2, 3, NO_GOLD], size=40)
    one_go = _offered(ranks, 40, np.arange(40), include_absent)
    shuffled = _offered(ranks, 3, np.random.default_rng(1).permutation(40), include_absent)
    kept = [row for row, _, _ in one_go.mistakes(0)]
    assert kept == [row for row, _, _ in shuffled.mistakes(0)]
    wrong = [row for row in range(40) if ranks[row] != 1 and (include_absent or ranks[row] != NO_GOLD)]
    assert kept == sorted(wrong, key=lambda row: one_go.priorities[row])[: one_go.size]
    assert all(rank == ranks[row] for row, rank, _ in one_go.mistakes(0))
    again = MistakeSample.for_mentions(40, 1, seed=7, include_absent=True)
    assert (again.priorities == one_go.priorities).all()
    assert not (MistakeSample.for_mentions(40, 1, seed=8, include_absent=True).priorities == one_go.priorities).all()


def test_thumbnails_are_small_jpegs_and_a_missing_or_unreadable_image_says_why():
    stream = io.BytesIO()
    Image.new("RGB", (1000, 400), (200, 30, 30)).save(stream, format="PNG")
    uri, note = thumbnail_uri(stream.getvalue())
    assert note == "" and uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        assert image.format == "JPEG" and max(image.size) == THUMBNAIL_PIXELS
    assert thumbnail_uri(None) == (None, "no image")
    uri, note = thumbnail_uri(b"not an image")
    assert uri is None and note.startswith("image not shown: not a readable image")


def _entry(gold_rank: int, scores: list[float | None], gold: int | None) -> GalleryEntry:
    candidates = [GalleryCandidate(f"Q{i}", f"{EVIL} {i}", EVIL, score, i == gold, None, "no image")
                  for i, score in enumerate(scores)]  # fmt: skip
    return GalleryEntry(EVIL, "DS", "Tm-Ie", "M-S1", "m-1", "movies", EVIL, None, gold_rank, candidates)


def test_a_mistake_shows_the_gold_its_rank_and_ties_without_naming_a_choice():
    shown = entry_html(_entry(2, [0.9, 0.5, None], gold=1))
    assert "gold ranked 2 of 3" in shown and shown.count('class="badge gold"') == 1
    assert "model's choice" in shown and "no score (an input is missing)" in shown
    absent = entry_html(_entry(NO_GOLD, [0.9, 0.5], gold=None))
    assert "gold not among candidates" in absent and 'class="badge gold"' not in absent
    tied = entry_html(_entry(2, [0.7, 0.7], gold=1))
    assert tied.count("tied top score") == 2 and "model's choice" not in tied
    unscored = entry_html(_entry(3, [None, None], gold=0))
    assert "lacks an input this task needs" in unscored
    assert compared("Tm-Ie") == "the mention's text against each candidate's image"
    assert compared("ITm-ITe") == "the mention's text and image against each candidate's text and image"


def test_report_escapes_every_text_and_loads_nothing_from_elsewhere(tmp_path):
    rows = [Row(EVIL, [Cell(50.0, 40.0, 60.0, 27)]), Row("CLIP — published (paper)", [Cell(61.0)], "published")]
    table = Table("tasks", f"ACC {EVIL}", ["Model", "Tm-Ie"], rows, value_label="ACC (%)")
    results = {"date": "2026-01-01", "run": {"seed": 3, "headline_format": "M-S1"}, "versions": {},
               "datasets": [{"name": "DS", "protocol": "candidates", "splits": ["test"], "num_mentions": 27}],
               "models": [{"name": EVIL}], "skipped_models": {"X": EVIL},
               "results": [{"model": EVIL, "dataset": "DS", "task": "Tm-Te", "text_format": "M-S1"}]}  # fmt: skip
    path = write_report(tmp_path / "report.html", results, [table], [_entry(2, [0.9, 0.5], gold=1)])
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted" in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)
    assert '<span class="ci">[40.00, 60.00]</span>' in text and '<tr class="published">' in text
    assert "<svg" in text and 'id="chart-tasks"' in text  # the per-task chart, inline
    assert "No mistake to show in DS · Tm-Te" in text  # a task without a sampled mistake is named, not dropped
    assert render_report(results, [table], []).count('class="mistake"') == 0
