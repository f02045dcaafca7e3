"""The tables people copy into papers: Markdown and CSV in the layouts of the M3EL paper.

* Table 4: model x mention text format, one block per task whose mention has text.
* Table 5: model x dataset, each dataset on its own task and format (the headline ones by default), one column
  per dataset and metric of ``table5_metrics`` (the MIMIC layout: H@1, H@3, H@5, MRR).
* Per-task (model x task, headline format) and per-topic (model x topic, headline task and format) tables, for a
  run on one dataset.
* ``ranking_<dataset>``: model x H@1/3/5/10/20, MRR, MR, for each dataset ranked against its whole knowledge base
  (and each dataset of a multi-dataset run).

Published figures (`m3el_dataset.published`) of a dataset that names them are added as extra rows,
``<model> (published)``: they come from the source paper, not from this run. Values are percentages with two
decimals (MR in ranks); a cell that was not evaluated or not published is ``-``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m3el_dataset.constants import TaskSpec, parse_task
from m3el_dataset.published import PUBLISHED_FIGURES

from .dataset_specs import DatasetSpec
from .evaluate import ALL_TOPICS
from .scoring import NO_FORMAT

EMPTY_CELL = "-"
PUBLISHED_SUFFIX = " (published)"
TABLE_METRICS = {
    "accuracy": "ACC",
    "top_1": "H@1",
    "top_3": "H@3",
    "top_5": "H@5",
    "top_10": "H@10",
    "top_20": "H@20",
    "mrr": "MRR",
    "mean_rank": "MR",
}
"""Metrics a table can show, with their column labels (the labels `published` uses for the same figures)."""
RANKING_METRICS = ("top_1", "top_3", "top_5", "top_10", "top_20", "mrr", "mean_rank")
RATIO_FREE = {"mean_rank"}
"""Metrics shown as they are, not as percentages."""


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


def _index(records: Sequence[dict[str, Any]], dataset: str | None = None) -> dict[tuple, dict[str, Any]]:
    """Records by (model, task, format, topic), of one dataset (all of them for ``None``)."""
    chosen = [r for r in records if dataset is None or r.get("dataset", dataset) == dataset]
    return {(r["model"], r["task"], r["text_format"], r["topic"]): r for r in chosen}


def _value(value: float | None, metric: str) -> str:
    if value is None or value != value:  # not evaluated, or NaN (e.g. MR with no gold in the KB)
        return EMPTY_CELL
    return f"{value:.2f}" if metric in RATIO_FREE else f"{100 * value:.2f}"


def _cell(record: dict[str, Any] | None, metric: str) -> str:
    return EMPTY_CELL if record is None else _value(record[metric], metric)


def _published_cell(spec: DatasetSpec, model: str, metric: str) -> str:
    """A published figure (already a percentage, MR in ranks) of ``model`` on ``spec``'s dataset, or ``-``."""
    for figure in PUBLISHED_FIGURES.get(spec.published or "", []):
        if figure.model == model:
            label = "H@1" if metric == "accuracy" else TABLE_METRICS[metric]
            value = figure.metrics.get(label)
            return EMPTY_CELL if value is None else f"{value:.2f}"
    return EMPTY_CELL


def _published_models(specs: Sequence[DatasetSpec]) -> list[str]:
    models = [figure.model for spec in specs for figure in PUBLISHED_FIGURES.get(spec.published or "", [])]
    return list(dict.fromkeys(models))


def _format_of(task: TaskSpec, text_format: str) -> str:
    return text_format if task.mention_text else NO_FORMAT


@dataclass
class TableLayout:
    """What the tables show: models (row order), the evaluated names, the headline setting and the metric."""

    models: list[str]
    tasks: list[TaskSpec]
    text_formats: list[str]
    topics: list[str]
    headline_task: TaskSpec
    headline_format: str
    dataset_name: str
    metric: str = "accuracy"
    datasets: list[DatasetSpec] = field(default_factory=list)
    table5_metrics: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.tasks = [parse_task(task) for task in self.tasks]  # names accepted
        self.headline_task = parse_task(self.headline_task)

    def columns(self) -> list[DatasetSpec]:
        """The datasets of Table 5 (``dataset_name`` on the headline setting when none are given)."""
        if self.datasets:
            return list(self.datasets)
        head = ((self.headline_task,), (self.headline_format,))
        return [DatasetSpec(self.dataset_name, "", "candidates", *head, ("test",))]


def _head(spec: DatasetSpec, layout: TableLayout) -> tuple[str, str]:
    """A dataset's headline (task name, format): the run's headline ones if it was scored on them, else its first."""
    task = layout.headline_task if layout.headline_task in spec.tasks else spec.tasks[0]
    text_format = layout.headline_format if layout.headline_format in spec.text_formats else spec.text_formats[0]
    return task.name, _format_of(task, text_format)


def build_table5(records: Sequence[dict[str, Any]], layout: TableLayout) -> Table:
    """Model x dataset (x metric), each dataset on its headline setting; published rows after ours."""
    specs, metrics = layout.columns(), layout.table5_metrics or [layout.metric]
    indexes = {spec.name: _index(records, spec.name) for spec in specs}
    header = ["Model"] + [spec.name if len(metrics) == 1 else f"{spec.name} {TABLE_METRICS[metric]}"
                          for spec in specs for metric in metrics]  # fmt: skip
    rows = [[model] + [_cell(indexes[spec.name].get((model, *_head(spec, layout), ALL_TOPICS)), metric)
                       for spec in specs for metric in metrics] for model in layout.models]  # fmt: skip
    rows += [[model + PUBLISHED_SUFFIX] + [_published_cell(spec, model, metric) for spec in specs
                                           for metric in metrics] for model in _published_models(specs)]  # fmt: skip
    settings = {"{} ({})".format(*_head(spec, layout)) for spec in specs}
    label = " / ".join(TABLE_METRICS[metric] for metric in metrics)
    title = f"Table 5 - {label} (%) on {', '.join(sorted(settings))} by dataset"
    if _published_models(specs):
        title += "; rows marked (published) are the source papers' figures, not this run's"
    return Table("table5", title, header, rows)


def build_ranking_table(records: Sequence[dict[str, Any]], layout: TableLayout, spec: DatasetSpec) -> Table:
    """Model x H@1/3/5/10/20, MRR, MR of one dataset on its headline setting, with its published rows."""
    index, head = _index(records, spec.name), _head(spec, layout)
    rows = [[model] + [_cell(index.get((model, *head, ALL_TOPICS)), metric) for metric in RANKING_METRICS]
            for model in layout.models]  # fmt: skip
    rows += [[model + PUBLISHED_SUFFIX] + [_published_cell(spec, model, metric) for metric in RANKING_METRICS]
             for model in _published_models([spec])]  # fmt: skip
    against = "the whole knowledge base" if spec.protocol == "kb" else "its candidates"
    title = (f"{spec.name} - {head[0]} ({head[1]}) ranked against {against}: H@k and MRR (%), MR (rank); "
             "a mention whose gold is not in the knowledge base (NIL) counts as wrong")  # fmt: skip
    if spec.published:
        title += "; (published) rows are the source's figures, which leave NIL mentions out"
    safe = "".join(char if char.isalnum() or char in "-_" else "_" for char in spec.name)
    return Table(f"ranking_{safe}", title, ["Model", *(TABLE_METRICS[m] for m in RANKING_METRICS)], rows)


def build_tables(records: Sequence[dict[str, Any]], layout: TableLayout) -> list[Table]:
    """Every table of a run, in the order they are printed."""
    specs = layout.columns()
    single = len(specs) == 1
    index, metric = _index(records, specs[0].name if single else None), layout.metric
    label = "ACC" if metric == "accuracy" else metric
    tables = []
    if single:
        for task in [task.name for task in layout.tasks if task.mention_text]:
            rows = [[model] + [_cell(index.get((model, task, fmt, ALL_TOPICS)), metric)
                               for fmt in layout.text_formats] for model in layout.models]  # fmt: skip
            tables.append(Table(f"table4_{task}", f"Table 4 - {label} (%) on {task} by mention text format",
                                ["Model", *layout.text_formats], rows))  # fmt: skip
    tables.append(build_table5(records, layout))
    if single:
        head = (layout.headline_task.name, _format_of(layout.headline_task, layout.headline_format))
        rows = [[model] + [_cell(index.get((model, task.name, _format_of(task, layout.headline_format), ALL_TOPICS)),
                                 metric) for task in layout.tasks] for model in layout.models]  # fmt: skip
        tables.append(Table("tasks", f"{label} (%) by task (text format {layout.headline_format})",
                            ["Model", *(task.name for task in layout.tasks)], rows))  # fmt: skip
        topics = [*layout.topics, ALL_TOPICS]
        rows = [[model] + [_cell(index.get((model, *head, topic)), metric) for topic in topics]
                for model in layout.models]  # fmt: skip
        tables.append(Table("topics", f"{label} (%) on {head[0]} ({head[1]}) by topic", ["Model", *topics], rows))
    tables += [build_ranking_table(records, layout, spec) for spec in specs if spec.protocol == "kb" or not single]
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
