"""The paper's Tables 4 and 5 as published figures: the same numbers as the paper, always marked as published."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from benchmark_tables import PAPER_TABLE4, PAPER_TABLE4_FORMATS, PAPER_TABLE5, PAPER_TEXT, parse_paper_table

import m3el_dataset
from m3el_dataset import hub_cards
from m3el_dataset.published import DWE_PLUS_FIGURES, PUBLISHED_FIGURES, published_rows


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
    dwe_plus = [f"{name}{texts} (DWE+ paper)" for texts in ("", "-S", "-D") for name in ("Wiki", "Rich", "Diverse")]
    datasets = ("wikimel", "richpediamel", "wikidiverse", "m3el", "diffusiondb", "wikiperson", *dwe_plus)
    assert len(published_rows()) == sum(len(published_rows(name)) for name in datasets)


def test_no_card_or_module_says_the_papers_figures_are_cited_by_reference_only():
    package = Path(m3el_dataset.__file__).parent
    files = [package / "published.py", *Path(hub_cards.template_path("model_card.md")).parent.glob("*.md")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "by reference only" not in text and "does not reproduce" not in text, path


DWE_PAPER = Path(__file__).resolve().parents[1] / ".." / "shared" / "papers" / "003_4f91a089572e6d51.txt"


def _dwe_paper_table(text: str, caption: str) -> dict[str, list[float | None]]:
    """The model rows of the tab-separated table printed after ``caption`` ("-" as `None`, bold marks removed)."""
    block = text[text.index(caption) :].split("\n\n")[1]
    rows = {}
    for line in block.splitlines():
        cells = [re.sub(r"</?b>", "", cell).strip() for cell in line.split("\t")]
        if len(cells) > 4 and re.fullmatch(r"[\d.]+|-", cells[-1]):
            rows[cells[0]] = [None if cell == "-" else float(cell) for cell in cells[1:]]
    return rows


def _dwe_figures(table: str) -> dict[str, list[float | None]]:
    """Our copy of a DWE+ table: per model, T@1/5/10/20 of each column of the table, in the paper's order."""
    rows: dict[str, list[float | None]] = {}
    for key in DWE_PLUS_FIGURES:  # dict order: the paper's columns (Wiki, Rich, Diverse)
        for figure in DWE_PLUS_FIGURES[key]:
            if figure.table == table:
                rows.setdefault(figure.model, []).extend(figure.metrics.get(k) for k in ("H@1", "H@5", "H@10", "H@20"))
    return rows


def test_dwe_plus_figures_are_the_papers_tables_3_to_7():
    if not DWE_PAPER.is_file():
        pytest.skip(f"{DWE_PAPER} is not here")
    text = DWE_PAPER.read_text(encoding="utf-8")
    for number in range(3, 8):
        assert _dwe_figures(f"Table {number}") == _dwe_paper_table(text, f"Table {number}. "), number


def test_dwe_plus_figures_carry_their_protocol_and_are_marked_published():
    # typed from the paper: Table 3 DWE+ Wiki, Table 6 DWE+ Wiki-S, Table 5 GHMFC ("-" at T@10/T@20)
    (dwe_plus,) = [f for f in PUBLISHED_FIGURES["dwe-wikimel"] if f.model == "DWE+"]
    assert dwe_plus.metrics == {"H@1": 44.9, "H@5": 67.2, "H@10": 81.8, "H@20": 93.8}
    (static,) = [f for f in PUBLISHED_FIGURES["dwe-wikimel-s"] if f.model == "DWE+"]
    assert static.metrics["H@1"] == 73.0 and static.table == "Table 6"
    (ghmfc,) = [f for f in PUBLISHED_FIGURES["dwe-wikidiverse"] if f.model == "GHMFC"]
    assert ghmfc.metrics == {"H@1": 46.0, "H@5": 77.5}
    for figures in DWE_PLUS_FIGURES.values():
        for figure in figures:
            assert figure.mark == f"published (DWE+ paper, {figure.table})" and figure.task == "ITm-Te"
            for words in ("not ours", "gold entities", "λ = 100", "best dev evaluation", "ties optimistic"):
                assert words in figure.protocol, (figure, words)
    assert "static entity texts" in static.protocol and "original entity texts" in dwe_plus.protocol
    # they print beside a dataset that names them, never in a card of MIMIC's WikiMEL or of CLIP-ND
    assert not [row for row in published_rows("wikimel") if "DWE+" in row["source"]]
