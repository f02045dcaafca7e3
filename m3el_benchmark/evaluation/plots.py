"""A PNG bar chart of a run: the metric of each model on each task, at the headline text format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .tables import EMPTY_CELL, Table


def plot_task_table(table: Table, path: str | Path) -> Path:
    """Draw the per-task `Table` as grouped bars (one group per task, one bar per model) and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    from matplotlib import pyplot as plt

    tasks: Sequence[str] = table.header[1:]
    positions = np.arange(len(tasks))
    width = 0.8 / max(len(table.rows), 1)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(tasks) + 2), 4.0))
    for number, row in enumerate(table.rows):
        values = [float(cell) if cell != EMPTY_CELL else np.nan for cell in row[1:]]
        axes.bar(positions + (number - (len(table.rows) - 1) / 2) * width, values, width, label=row[0])
    axes.set_xticks(positions, tasks, rotation=30, ha="right")
    axes.set_ylabel(table.title.split(" by ")[0])
    axes.set_ylim(0, 100)
    axes.set_title(table.title)
    axes.legend(fontsize="small", ncols=2)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
