"""Gan et al. (2021)'s Table 3 layout: micro-F1 of the textual and of the visual mentions, per dataset.

Printed when a run scores a document-level system (``Gan21-OT(<model>)``, ``Gan21-Naive(<model>)``), with every
model of the run as a row, so that the plain adapter stands beside the systems built on it. Textual mentions are
the Tm-Te figures (mention text in the headline format, else the first scored), visual mentions the Im-Ie ones
(Im-Te where Im-Ie was not scored). Every mention is linked, so micro-F1 is Top-1 accuracy (``micro_f1`` of the
metric core, in each record); a mention whose gold is absent counts as the dataset's nil policy says. Gan et
al.'s own figures are on their Movie-MEL dataset, not comparable, and are named in a note, never put in a column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from m3el_dataset.published import GAN21_FIGURES

from ..systems.gan21 import SYSTEMS
from .figures import ALL_TOPICS
from .scoring import NO_FORMAT
from .table_formats import Row, Table
from .tables import TableLayout, _cell, _index, conditions, interval_note

TEXTUAL_TASK, VISUAL_TASKS = "Tm-Te", ("Im-Ie", "Im-Te")


def _settings(index: dict[tuple, dict[str, Any]], layout: TableLayout) -> list[tuple[str, str, str]]:
    """The (label, task, text format) of the textual and the visual column, among the scored settings."""
    scored = {(task, text_format) for _, task, text_format, _ in index}
    formats = [layout.headline_format, *layout.text_formats]
    chosen = []
    text_format = next((name for name in formats if (TEXTUAL_TASK, name) in scored), None)
    text_format = text_format or next((fmt for task, fmt in sorted(scored) if task == TEXTUAL_TASK), None)
    if text_format is not None:
        chosen.append((f"textual ({TEXTUAL_TASK}, {text_format})", TEXTUAL_TASK, text_format))
    visual = next((task for task in VISUAL_TASKS if (task, NO_FORMAT) in scored), None)
    if visual is not None:
        chosen.append((f"visual ({visual})", visual, NO_FORMAT))
    return chosen


def build_micro_f1_table(records: Sequence[dict[str, Any]], layout: TableLayout) -> Table | None:
    """Model x (dataset, textual / visual mentions) micro-F1; `None` when no Gan21 system ran or nothing fits."""
    prefixes = tuple(f"{name}(" for name in SYSTEMS)
    if not any(model.startswith(prefixes) for model in layout.models):
        return None
    columns, header = [], ["Model"]
    for spec in layout.columns():
        index = _index(records, spec.name)
        for label, task, text_format in _settings(index, layout):
            columns.append((index, task, text_format))
            header.append(f"{spec.name} {label}")
    if not columns:
        return None
    rows = [Row(model, [_cell(index.get((model, task, fmt, ALL_TOPICS)), "micro_f1") for index, task, fmt in columns])
            for model in layout.models]  # fmt: skip
    described = conditions(*layout.columns())
    excluded = any(spec.nil_policy == "exclude" for spec in layout.columns())
    left_out = " (mentions whose gold is absent are left out; Gan et al.'s recall counts them)" if excluded else ""
    title = ("Micro-F1 (%) of textual and of visual mentions, as Gan et al. (2021) report it; every mention gets a "
             f"link, so it equals Top-1 accuracy{left_out}; {described}")  # fmt: skip
    table = Table("micro_f1", title, header, rows, described, "micro-F1 (%)")
    test = {f.model: f.metrics for f in GAN21_FIGURES if f.source.endswith("Table 3")}
    table.notes.append(
        "Gan et al. (2021) publish, on their own Movie-MEL test set (English Wikipedia KB, 7 candidates), micro-F1 "
        + ", ".join(f"{model} {m['test textual']} textual / {m['test visual']} visual" for model, m in test.items())
        + " (published, Table 3): another dataset and protocol, not comparable with this run's figures."
    )  # fmt: skip
    table.notes.append(interval_note(table.name))
    return table
