"""A bar chart of a run, as PNG and PDF: the metric of each model on each task at the headline text format, each
bar with its 95 % bootstrap interval."""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import numpy as np

from .table_formats import Table

CHART_FORMATS = ("png", "pdf")
"""The chart's files: PNG to look at, PDF (vector) for a paper."""


def _draw(table: Table):
    """The grouped bar chart of ``table`` (a group per column, a bar per row of this run) as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    from matplotlib import pyplot as plt

    tasks = table.header[1:]
    positions = np.arange(len(tasks))
    ours = [row for row in table.rows if not row.published]
    width = 0.8 / max(len(ours), 1)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(tasks) + 2), 4.4))
    for number, row in enumerate(ours):
        values = np.array([np.nan if cell.value is None else cell.value for cell in row.cells], dtype=float)
        bounds = np.array([[np.nan if b is None else b for b in (cell.low, cell.high)] for cell in row.cells], float)
        errors = np.abs(np.nan_to_num(bounds.T - values, nan=0.0))
        axes.bar(positions + (number - (len(ours) - 1) / 2) * width, values, width, yerr=errors, capsize=2,
                 label=row.label, error_kw={"elinewidth": 0.8})  # fmt: skip
    axes.set_xticks(positions, tasks, rotation=30, ha="right")
    axes.set_ylabel(f"{table.value_label}; whiskers: 95 % bootstrap interval", fontsize="small")
    axes.set_ylim(0, 100)
    axes.set_title(textwrap.fill(table.title, 110), fontsize="x-small")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never on them
    figure.tight_layout()
    return figure


def plot_task_table(table: Table, stem: str | Path) -> list[Path]:
    """Draw the per-task `Table` as grouped bars (one group per task, one bar per model, intervals as error bars)
    and save it as ``<stem>.png`` and ``<stem>.pdf``."""
    from matplotlib import pyplot as plt

    figure = _draw(table)
    paths = [Path(f"{stem}.{suffix}") for suffix in CHART_FORMATS]
    for path in paths:
        figure.savefig(path, dpi=120, metadata={"CreationDate": None} if path.suffix == ".pdf" else None,
                       bbox_inches="tight")
    plt.close(figure)
    return paths


def chart_svg(table: Table) -> str:
    """The same chart of any `Table` of percentages as an ``<svg>`` element to inline in HTML (text kept as text,
    element ids salted with the table's name so that several charts can share a page)."""
    import matplotlib
    from matplotlib import pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": table.name}):
        figure = _draw(table)
        stream = io.StringIO()
        figure.savefig(stream, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    text = stream.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.DOTALL)
