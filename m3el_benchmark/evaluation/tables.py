"""The tables people copy into papers, in the layouts of the M3EL paper, each figure with its n and interval.

* Table 4 (``table4_<task>``): model x mention text format, one table per task whose mention has text. The paper's
  Table 4 is ITm-ITe as we read it (`m3el_dataset.published.PAPER_TABLE4_READING`); the others use its layout.
* Table 5 (``table5``): model x dataset. In a run on several datasets each dataset has a column per task of its
  entry (one text format); a run on one dataset has one column, its headline task and format. With several
  ``table5_metrics`` (the MIMIC layout: H@1, H@3, H@5, MRR) each column is split per metric.
* Per-task (``tasks``) and per-topic (``topics``) tables, for a run on one dataset.
* ``ranking_<dataset>``: model x H@1/3/5/10/20, MRR, MR, for each dataset ranked against its whole knowledge base
  or its retrieved lists (and each dataset of a multi-dataset run). Under the ``retrieved`` protocol, Table 5 and
  these tables give each figure twice: with our ties, then with DWE's optimistic ones (``(optimistic ties)``).
* ``comparison``: each model's ACC minus the reference model's (CLIP-ND) on the same mentions, per Table 5 column,
  with the paired bootstrap interval of the difference (`figures.paired_comparisons`).

Every caption says which mentions were scored, against what (the protocol) and how a mention whose gold is absent
counts (the nil policy). Published figures (`m3el_dataset.published`) of a dataset whose spec names them are rows
after ours, labelled with their mark (``CLIP — published (paper, Table 4)``), in the column of their task and format;
in Table 5 a published figure on a task the run did not score, or whose task its source does not state, gets a
column of its own (``WIKIPerson (task not stated) — published only``). Values are percentages with two decimals (MR
in ranks, differences in points); a cell that was not evaluated or not published is ``-``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from m3el_dataset.constants import TaskSpec, parse_task
from m3el_dataset.published import PAPER_TABLE4_READING, PAPER_TABLE4_TASK, PUBLISHED_FIGURES, PublishedFigure

from .dataset_specs import DatasetSpec
from .figures import ALL_TOPICS
from .scoring import NO_FORMAT
from .table_formats import EMPTY_CELL, Cell, Row, Table, write_tables

__all__ = ["EMPTY_CELL", "TABLE_METRICS", "Table", "TableLayout", "build_tables", "conditions", "write_tables"]

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
OPTIMISTIC = "optimistic_"
"""Under the retrieved protocol each figure also has DWE's tie rule (`retrieval.with_optimistic_ties`): its column
follows ours in Table 5 and the ranking tables."""
TABLE_METRICS.update({f"{OPTIMISTIC}{metric}": f"{TABLE_METRICS[metric]} (optimistic ties)"
                      for metric in ("accuracy", *RANKING_METRICS)})  # fmt: skip
OPTIMISTIC_NOTE = (
    "; columns marked (optimistic ties) count only the entities scored strictly above the gold, as DWE's code does "
    "(an entity scored equal to the gold, e.g. one with the same text, ranks below it); the others rank such ties "
    "above the gold (pessimistic, ours)"
)
RATIO_FREE = {"mean_rank", f"{OPTIMISTIC}mean_rank"}
"""Metrics shown as they are, not as percentages."""
SAME_FIGURE = {"ACC": "H@1", "H@1": "ACC"}
"""Labels of the same figure: ACC is the share of mentions whose gold ranks first."""
PAPER_TABLE4 = "Table 4"
NOT_STATED = "(task not stated)"
NIL_POLICY_TEXT = {
    "wrong": "a mention whose gold is not among the entities it is ranked against counts as wrong",
    "exclude": "mentions whose gold is not among the entities they are ranked against are left out",
}


def conditions(*specs: DatasetSpec) -> str:
    """What the datasets' figures were measured on, in words: splits and protocol per dataset, then the nil policy
    (once when they share it)."""
    against = {"candidates": "each mention ranked against its own candidates",
               "kb": "each mention ranked against the whole knowledge base (kb protocol)",
               "retrieved": "each mention ranked among its top-100 fuzzy name matches in the knowledge base, the gold "
                            "ranked whether retrieved or not (retrieved protocol)"}  # fmt: skip
    groups: dict[tuple, list[str]] = {}
    for spec in specs:
        groups.setdefault(("+".join(spec.splits), spec.protocol, spec.nil_policy), []).append(spec.name)
    policies = {spec.nil_policy for spec in specs}
    parts = []
    for (splits, protocol, policy), names in groups.items():
        shared = "" if len(policies) == 1 else f", {NIL_POLICY_TEXT[policy]} (nil_policy: {policy})"
        parts.append(f"{', '.join(names)} {splits}: {against[protocol]}{shared}")
    if len(policies) == 1:
        (policy,) = policies
        every = "in every dataset " if len(specs) > 1 else ""
        parts.append(f"{every}{NIL_POLICY_TEXT[policy]} (nil_policy: {policy})")
    return "; ".join(parts)


def _index(records: Sequence[dict[str, Any]], dataset: str | None = None) -> dict[tuple, dict[str, Any]]:
    """Records by (model, task, format, topic), of one dataset (all of them for ``None``)."""
    chosen = [r for r in records if dataset is None or r.get("dataset", dataset) == dataset]
    return {(r["model"], r["task"], r["text_format"], r["topic"]): r for r in chosen}


def _scaled(value: float | None, metric: str) -> float | None:
    return value if value is None or metric in RATIO_FREE else 100 * value


def _cell(record: dict[str, Any] | None, metric: str) -> Cell:
    """A record's figure as printed, with its interval and n; an empty cell for a setting not evaluated."""
    if record is None:
        return Cell()
    low, high = (record.get("ci95") or {}).get(metric) or (None, None)
    bounds = (_scaled(low, metric), _scaled(high, metric))
    return Cell(_scaled(record.get(metric), metric), *bounds, record.get("num_mentions"))


def _published_cell(figure: PublishedFigure | None, metric: str) -> Cell:
    """A published figure (already a percentage, MR in ranks), or an empty cell."""
    if figure is None:
        return Cell()
    label = TABLE_METRICS[metric]
    return Cell(figure.metrics.get(label, figure.metrics.get(SAME_FIGURE.get(label, ""))))


def _format_of(task: TaskSpec, text_format: str) -> str:
    return text_format if task.mention_text else NO_FORMAT


@dataclass(frozen=True)
class Column:
    """A dataset on one task and text format (`NO_FORMAT` for image-only mentions): a column of Table 5."""

    spec: DatasetSpec
    task: str
    text_format: str

    def label(self) -> str:
        return f"{self.spec.name} {self.task}" + (f" ({self.text_format})" if self.text_format != NO_FORMAT else "")

    def matches(self, figure: PublishedFigure) -> bool:
        """Whether ``figure`` was published for this column's task and format (any format if it names none)."""
        return figure.task == self.task and figure.text_format in (None, self.text_format)


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

    def _column(self, spec: DatasetSpec, task: TaskSpec) -> Column:
        text_format = self.headline_format if self.headline_format in spec.text_formats else spec.text_formats[0]
        return Column(spec, task.name, _format_of(task, text_format))

    def table5_columns(self) -> list[Column]:
        """One dataset: its headline setting (the run's, if scored, else its first task); several: every task."""
        specs = self.columns()
        if len(specs) == 1:
            spec = specs[0]
            return [self._column(spec, self.headline_task if self.headline_task in spec.tasks else spec.tasks[0])]
        return [self._column(spec, task) for spec in specs for task in spec.tasks]


def _with_optimistic(metrics: Sequence[str], specs: Sequence[DatasetSpec]) -> list[str]:
    """``metrics``, each followed by its optimistic-ties twin when a dataset is scored under the retrieved protocol."""
    if not any(spec.protocol == "retrieved" for spec in specs):
        return list(metrics)
    twins = [(metric, OPTIMISTIC + metric) for metric in metrics]
    return list(dict.fromkeys(name for pair in twins for name in pair if name in TABLE_METRICS))


def _optimistic_note(metrics: Sequence[str]) -> str:
    return OPTIMISTIC_NOTE if any(metric.startswith(OPTIMISTIC) for metric in metrics) else ""


def _with_published(
    columns: Sequence[Column], metrics: Sequence[str], ours: list[Row], keep: Callable[[PublishedFigure], bool],
    own_columns: bool,
) -> tuple[list[Column], list[Row]]:  # fmt: skip
    """Our rows, then one row per published model and mark with its figures in the matching columns. With
    ``own_columns``, a figure no column matches gets a column of its own (returned; `NOT_STATED` for its task when
    the source names none)."""
    extra: list[Column] = []
    placed: dict[tuple[str, str], dict[int, PublishedFigure]] = {}
    for spec in dict.fromkeys(column.spec for column in columns):
        for figure in filter(keep, PUBLISHED_FIGURES.get(spec.published or "", [])):
            slots = [i for i, column in enumerate(columns) if column.spec == spec and column.matches(figure)]
            if not slots and own_columns:
                own = Column(spec, figure.task or NOT_STATED, figure.text_format or NO_FORMAT)
                extra += [own] if own not in extra else []
                slots = [len(columns) + extra.index(own)]
            for slot in slots:
                placed.setdefault((figure.model, figure.mark), {})[slot] = figure
    padding = [Cell()] * (len(extra) * len(metrics))
    rows = [Row(row.label, row.cells + padding, row.source) for row in ours]
    for (model, mark), figures in placed.items():
        cells = [_published_cell(figures.get(slot), metric) for slot in range(len(columns) + len(extra))
                 for metric in metrics]  # fmt: skip
        rows.append(Row(f"{model} — {mark}", cells, mark))
    return extra, rows


def _published_note(rows: Sequence[Row]) -> str:
    marks = sorted({row.source for row in rows if row.published})
    if not marks:
        return ""
    return f"; rows marked {' / '.join(marks)} are the sources' figures under the protocol each states, not this run's"


def build_table4(records: Sequence[dict[str, Any]], layout: TableLayout, spec: DatasetSpec, task: TaskSpec) -> Table:
    """Model x text format on ``task``, with the paper's Table 4 figures for that task below ours."""
    index, metric, label = _index(records, spec.name), layout.metric, TABLE_METRICS[layout.metric]
    columns = [Column(spec, task.name, text_format) for text_format in layout.text_formats]
    ours = [Row(model, [_cell(index.get((model, task.name, fmt, ALL_TOPICS)), metric) for fmt in layout.text_formats])
            for model in layout.models]  # fmt: skip
    _, rows = _with_published(columns, [metric], ours, lambda f: f.table == PAPER_TABLE4, own_columns=False)
    which = PAPER_TABLE4_READING if task.name == PAPER_TABLE4_TASK else f"the paper's Table 4 is {PAPER_TABLE4_TASK}"
    title = (f"Table 4 - {label} (%) on {task.name} by mention text format ({which}); {conditions(spec)}"
             f"{_published_note(rows)}")  # fmt: skip
    return Table(f"table4_{task.name}", title, ["Model", *layout.text_formats], rows, conditions(spec), f"{label} (%)")


def build_table5(records: Sequence[dict[str, Any]], layout: TableLayout) -> Table:
    """Model x dataset column (x metric), published rows after ours, published-only columns after ours."""
    columns = layout.table5_columns()
    metrics = _with_optimistic(layout.table5_metrics or [layout.metric], layout.columns())
    indexes = {spec.name: _index(records, spec.name) for spec in layout.columns()}

    def heading(text: str, metric: str) -> str:
        return text if len(metrics) == 1 else f"{text} {TABLE_METRICS[metric]}"

    ours = [Row(model, [_cell(indexes[c.spec.name].get((model, c.task, c.text_format, ALL_TOPICS)), metric)
                        for c in columns for metric in metrics]) for model in layout.models]  # fmt: skip
    extra, rows = _with_published(columns, metrics, ours, lambda f: f.table != PAPER_TABLE4, own_columns=True)
    header = ["Model"] + [heading(column.label(), metric) for column in columns for metric in metrics]
    header += [heading(f"{column.label()} — published only", metric) for column in extra for metric in metrics]
    label = " / ".join(TABLE_METRICS[metric] for metric in metrics)
    described = conditions(*dict.fromkeys(column.spec for column in columns))
    title = f"Table 5 - {label} (%) by dataset, each column on the task (and text format) it names; {described}"
    return Table("table5", title + _optimistic_note(metrics) + _published_note(rows), header, rows, described,
                 f"{label} (%)")  # fmt: skip


def build_ranking_table(records: Sequence[dict[str, Any]], layout: TableLayout, spec: DatasetSpec) -> Table:
    """Model x H@1/3/5/10/20, MRR, MR of one dataset on its headline setting, with its published rows."""
    column = next(c for c in layout.table5_columns() if c.spec == spec)
    index, metrics = _index(records, spec.name), _with_optimistic(RANKING_METRICS, [spec])
    ours = [Row(model, [_cell(index.get((model, column.task, column.text_format, ALL_TOPICS)), metric)
                        for metric in metrics]) for model in layout.models]  # fmt: skip
    _, rows = _with_published([column], metrics, ours, lambda f: f.table != PAPER_TABLE4, own_columns=False)
    title = (f"{column.label()}: H@k and MRR (%), MR (rank); {conditions(spec)}{_optimistic_note(metrics)}"
             f"{_published_note(rows)}")  # fmt: skip
    safe = "".join(char if char.isalnum() or char in "-_" else "_" for char in spec.name)
    return Table(f"ranking_{safe}", title, ["Model", *(TABLE_METRICS[m] for m in metrics)], rows,
                 conditions(spec))  # fmt: skip


def build_comparison_table(
    comparisons: Sequence[dict[str, Any]], layout: TableLayout, uncertainty: dict[str, Any]
) -> Table | None:
    """Each model's ACC minus the reference's per Table 5 column, in points, with paired intervals; `None` if none."""
    if not comparisons:
        return None
    reference = comparisons[0]["reference"]
    index = {(c["model"], c["dataset"], c["task"], c["text_format"]): c for c in comparisons}
    columns = [c for c in layout.table5_columns() if any(key[1:] == (c.spec.name, c.task, c.text_format)
                                                          for key in index)]  # fmt: skip
    rows = []
    for model in [model for model in layout.models if model != reference]:
        cells = []
        for column in columns:
            found = index.get((model, column.spec.name, column.task, column.text_format))
            low, high = found["ci95"] if found else (None, None)
            cells.append(Cell(100 * found["difference"], 100 * low, 100 * high, found["num_mentions"], signed=True)
                          if found else Cell(signed=True))  # fmt: skip
        rows.append(Row(model, cells))
    described = conditions(*dict.fromkeys(column.spec for column in columns))
    title = (f"ACC of each model minus {reference}'s on the same mentions (percentage points), with the 95 % paired "
             f"bootstrap interval over mentions ({uncertainty.get('resamples')} resamples, seed "
             f"{uncertainty.get('seed')}); {described}")  # fmt: skip
    return Table("comparison", title, ["Model", *(column.label() for column in columns)], rows, described,
                 "ACC difference (points)", show_intervals=True)  # fmt: skip


def _single_dataset_tables(records: Sequence[dict[str, Any]], layout: TableLayout, spec: DatasetSpec) -> list[Table]:
    """The per-task and per-topic tables of a run on one dataset."""
    index, metric = _index(records, spec.name), layout.metric
    label = TABLE_METRICS[metric]
    fmt = layout.headline_format
    rows = [Row(model, [_cell(index.get((model, task.name, _format_of(task, fmt), ALL_TOPICS)), metric)
                        for task in layout.tasks]) for model in layout.models]  # fmt: skip
    header = ["Model", *(task.name for task in layout.tasks)]
    tasks = Table("tasks", f"{label} (%) by task (text format {fmt}); {conditions(spec)}", header, rows,
                  conditions(spec), f"{label} (%)")  # fmt: skip
    head = (layout.headline_task.name, _format_of(layout.headline_task, fmt))
    topics = [*layout.topics, ALL_TOPICS]
    rows = [Row(model, [_cell(index.get((model, *head, topic)), metric) for topic in topics])
            for model in layout.models]  # fmt: skip
    title = f"{label} (%) on {head[0]} ({head[1]}) by topic; {conditions(spec)}"
    return [tasks, Table("topics", title, ["Model", *topics], rows, conditions(spec), f"{label} (%)")]


def build_tables(
    records: Sequence[dict[str, Any]],
    layout: TableLayout,
    comparisons: Sequence[dict[str, Any]] = (),
    uncertainty: dict[str, Any] | None = None,
) -> list[Table]:
    """Every table of a run, in the order they are printed."""
    specs = layout.columns()
    single = len(specs) == 1
    tables = []
    if single:
        tables += [build_table4(records, layout, specs[0], task) for task in layout.tasks if task.mention_text]
    tables.append(build_table5(records, layout))
    if single:
        tables += _single_dataset_tables(records, layout, specs[0])
    tables += [build_ranking_table(records, layout, spec) for spec in specs
               if spec.protocol in ("kb", "retrieved") or not single]  # fmt: skip
    comparison = build_comparison_table(comparisons, layout, uncertainty or {})
    tables += [comparison] if comparison is not None else []
    for table in tables:
        if not table.show_intervals:
            table.notes.append(interval_note(table.name))
    return tables


def interval_note(name: str) -> str:
    """The note under a table whose cells show no interval: where the intervals of table ``name`` are."""
    return f"n: mentions scored. Each figure's 95 % bootstrap interval over mentions is in {name}.csv, {name}.tex " \
           "and results.json."
