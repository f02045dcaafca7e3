"""The paper's Tables 4 and 5 as published figures: the same numbers as the paper, always marked as published."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_tables import PAPER_TABLE4, PAPER_TABLE4_FORMATS, PAPER_TABLE5, PAPER_TEXT, parse_paper_table

import m3el_dataset
from m3el_dataset import hub_cards
from m3el_dataset.published import PUBLISHED_FIGURES, published_rows


def test_the_hand_copied_tables_are_the_papers():
    if not PAPER_TEXT.is_file():
        pytest.skip(f"{PAPER_TEXT} is not here")
    text = PAPER_TEXT.read_text(encoding="utf-8")
    assert parse_paper_table(text, "Table 4: Experimental results") == PAPER_TABLE4
    assert parse_paper_table(text, "Table 5: Experimental results") == PAPER_TABLE5


def test_published_figures_hold_the_papers_tables_4_and_5_for_all_seven_models():
    table4 = {(f.model, f.text_format): f.metrics["ACC"] for f in PUBLISHED_FIGURES["m3el"] if f.table == "Table 4"}
    assert table4 == {(model, fmt): pytest.approx(100 * value) for model, values in PAPER_TABLE4.items()
                      for fmt, value in zip(PAPER_TABLE4_FORMATS, values, strict=True)}  # fmt: skip
    keys = {"DiffusionDB": "diffusiondb", "WIKIPerson": "wikiperson", "WikiDiverse": "wikidiverse-release",
            "M3EL": "m3el"}  # fmt: skip
    for column, (dataset, key) in enumerate(keys.items()):
        figures = [f for f in PUBLISHED_FIGURES[key] if f.table == "Table 5"]
        assert {f.dataset for f in figures} == {dataset}
        assert {f.model: f.metrics["ACC"] for f in figures} == {
            model: pytest.approx(100 * values[column]) for model, values in PAPER_TABLE5.items()
        }
    settings = {f.dataset: (f.task, f.text_format) for key in keys.values() for f in PUBLISHED_FIGURES[key]
                if f.table == "Table 5"}  # fmt: skip
    # The paper names Im-Te for DiffusionDB, several tasks for WIKIPerson and WikiDiverse, and Table 5's M3EL
    # column is Table 4's M-S column.
    assert settings == {"DiffusionDB": ("Im-Te", None), "WIKIPerson": (None, None), "WikiDiverse": (None, None),
                        "M3EL": ("ITm-ITe", "M-S")}  # fmt: skip


def test_every_published_figure_is_marked_with_its_source():
    for figures in PUBLISHED_FIGURES.values():
        for figure in figures:
            assert figure.mark.startswith("published (") and figure.table in figure.mark
    rows = published_rows("diffusiondb")
    assert len(rows) == 7 and {row["mark"] for row in rows} == {"published (paper, Table 5)"}
    assert all(row["source"].endswith("arXiv:2410.18096, Table 5") for row in rows)
    clip_nd = next(row for row in published_rows("m3el") if row["model"] == "CLIP-ND" and "Table 4" in row["mark"])
    assert clip_nd["figures"].startswith("ITm-ITe ACC: S1 88.50 / S 88.20 / M-S1 89.90")
    datasets = ("wikimel", "richpediamel", "wikidiverse", "m3el", "diffusiondb", "wikiperson")
    assert len(published_rows()) == sum(len(published_rows(name)) for name in datasets)


def test_no_card_or_module_says_the_papers_figures_are_cited_by_reference_only():
    package = Path(m3el_dataset.__file__).parent
    files = [package / "published.py", *Path(hub_cards.template_path("model_card.md")).parent.glob("*.md")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "by reference only" not in text and "does not reproduce" not in text, path
