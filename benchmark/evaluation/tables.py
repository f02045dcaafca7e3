"""The tables people copy into papers: Markdown and CSV in the layouts of the M3EL paper.

* Table 4: model x mention text format, one block per task whose mention has text.
* Table 5: model x dataset, on the headline task and format.
* Per-task (model x task, headline format) and per-topic (model x topic, headline task and format) tables.

Values are percentages with two decimals; a cell that was not evaluated is ``-``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m3el_dataset.constants import parse_task

from .evaluate import ALL_TOPICS
from .scoring import NO_FORMAT

EMPTY_CELL = "-"


@dataclass
class Table:
    """One table: a title, a header (first column: the model) and rows of formatted cells."""

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(self.header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


def _index(records: Sequence[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    return {(r["model"], r["task"], r["text_format"], r["topic"]): r for r in records}


def _cell(record: dict[str, Any] | None, metric: str) -> str:
    return EMPTY_CELL if record is None else f"{100 * record[metric]:.2f}"


def _format_of(task: str, text_format: str) -> str:
    return text_format if parse_task(task).mention_text else NO_FORMAT


@dataclass
class TableLayout:
    """What the tables show: models (row order), the evaluated names, the headline setting and the metric."""

    models: list[str]
    tasks: list[str]
    text_formats: list[str]
    topics: list[str]
    headline_task: str
    headline_format: str
    dataset_name: str
    metric: str = "accuracy"


def build_tables(records: Sequence[dict[str, Any]], layout: TableLayout) -> list[Table]:
    """Every table of a run, in the order they are printed."""
    index, metric = _index(records), layout.metric
    label = "ACC" if metric == "accuracy" else metric
    tables = []
    for task in [task for task in layout.tasks if parse_task(task).mention_text]:
        rows = [[model] + [_cell(index.get((model, task, fmt, ALL_TOPICS)), metric) for fmt in layout.text_formats]
                for model in layout.models]  # fmt: skip
        tables.append(Table(f"table4_{task}", f"Table 4 - {label} (%) on {task} by mention text format",
                            ["Model", *layout.text_formats], rows))  # fmt: skip
    head_format = _format_of(layout.headline_task, layout.headline_format)
    head = (layout.headline_task, head_format)
    rows = [[model, _cell(index.get((model, *head, ALL_TOPICS)), metric)] for model in layout.models]
    tables.append(Table("table5", f"Table 5 - {label} (%) on {head[0]} ({head[1]}) by dataset",
                        ["Model", layout.dataset_name], rows))  # fmt: skip
    rows = [[model] + [_cell(index.get((model, task, _format_of(task, layout.headline_format), ALL_TOPICS)), metric)
                       for task in layout.tasks] for model in layout.models]  # fmt: skip
    tables.append(Table("tasks", f"{label} (%) by task (text format {layout.headline_format})",
                        ["Model", *layout.tasks], rows))  # fmt: skip
    topics = [*layout.topics, ALL_TOPICS]
    rows = [[model] + [_cell(index.get((model, *head, topic)), metric) for topic in topics] for model in layout.models]
    tables.append(Table("topics", f"{label} (%) on {head[0]} ({head[1]}) by topic", ["Model", *topics], rows))
    return tables


def write_tables(tables: Sequence[Table], folder: str | Path) -> list[Path]:
    """Write each table as ``<name>.md`` and ``<name>.csv``, plus ``tables.md`` with all of them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        (folder / f"{table.name}.md").write_text(table.to_markdown(), encoding="utf-8")
        with (folder / f"{table.name}.csv").open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows([table.header, *table.rows])
        written += [folder / f"{table.name}.md", folder / f"{table.name}.csv"]
    (folder / "tables.md").write_text("\n".join(table.to_markdown() for table in tables), encoding="utf-8")
    return [*written, folder / "tables.md"]
