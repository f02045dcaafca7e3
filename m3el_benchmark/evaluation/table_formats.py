"""A table of figures and its three written forms: Markdown (values and n), CSV and LaTeX (values, intervals, n).

A `Table` holds a caption (its ``title``, which says what the figures are, on which mentions, under which protocol
and nil policy), a header and `Row`s of `Cell`s: this run's rows first, then published ones, each labelled with its
mark (``CLIP — published (paper, Table 4)``) so that no published figure reads as ours.

* Markdown: the values, with an ``n`` row (mentions scored per column) under the header; a table of differences
  (``show_intervals``) shows each interval in its cell.
* CSV: per column its value, the bounds of its 95 % interval and its n; then the row's source (``this run`` or the
  published mark) and the conditions (protocol, nil policy) of the table.
* LaTeX: a ``booktabs`` tabular (``\\toprule``, ``\\midrule``, ``\\bottomrule``; ``\\usepackage{booktabs}``) in a
  ``table`` float whose caption is the title; each of our values with its interval, the ``n`` row first.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

EMPTY_CELL = "-"
THIS_RUN = "this run"
LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---"}  # fmt: skip


def _number(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):  # not evaluated, or NaN (e.g. MR with no gold present)
        return EMPTY_CELL
    return f"{value:+.2f}" if signed else f"{value:.2f}"


@dataclass(frozen=True)
class Cell:
    """One figure as printed (a percentage, a rank or a difference in points), its interval and its n."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    signed: bool = False

    def text(self) -> str:
        return _number(self.value, self.signed)

    def interval(self) -> str:
        """``[low, high]``, or ``""`` without an interval."""
        if self.low is None or self.high is None or math.isnan(self.low) or math.isnan(self.high):
            return ""
        return f"[{_number(self.low, self.signed)}, {_number(self.high, self.signed)}]"


@dataclass
class Row:
    """A labelled row of cells; ``source`` is `THIS_RUN` or the published mark of its figures."""

    label: str
    cells: list[Cell]
    source: str = THIS_RUN

    @property
    def published(self) -> bool:
        return self.source != THIS_RUN


@dataclass
class Table:
    """One table: ``name`` (its file name), ``title`` (its caption), ``header`` (first: the row labels) and rows.

    ``conditions`` says how our figures were obtained (protocol and nil policy), for the CSV; ``value_label`` names
    the figures (``ACC (%)``) for a chart; ``show_intervals`` prints intervals in the Markdown cells too.
    """

    name: str
    title: str
    header: list[str]
    rows: list[Row]
    conditions: str = ""
    value_label: str = ""
    show_intervals: bool = False
    notes: list[str] = field(default_factory=list)

    def n_row(self) -> list[str]:
        """Per column, the mentions scored (from this run's cells; ``a/b`` if models differ, ``-`` if none)."""
        cells = []
        for column in range(len(self.header) - 1):
            counts = dict.fromkeys(row.cells[column].n for row in self.rows if not row.published)
            counts.pop(None, None)
            cells.append("/".join(map(str, counts)) or EMPTY_CELL)
        return cells

    def _shown(self, cell: Cell) -> str:
        interval = cell.interval() if self.show_intervals else ""
        return f"{cell.text()} {interval}" if interval else cell.text()

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(self.header) - 1)) + "|")
        lines.append("| *n (mentions scored)* | " + " | ".join(self.n_row()) + " |")
        lines += ["| " + " | ".join([row.label, *map(self._shown, row.cells)]) + " |" for row in self.rows]
        return "\n".join([*lines, *([""] + self.notes if self.notes else [])]) + "\n"

    def csv_rows(self) -> list[list[str]]:
        """The header, then one line per row: each value with its interval's bounds and n, its source, conditions."""
        header = [self.header[0]]
        for name in self.header[1:]:
            header += [name, f"{name} ci95 low", f"{name} ci95 high", f"{name} n"]
        lines = [[*header, "source", "conditions"]]
        for row in self.rows:
            line = [row.label]
            for cell in row.cells:
                line += [cell.text(), _number(cell.low, cell.signed) if cell.low is not None else "",
                         _number(cell.high, cell.signed) if cell.high is not None else "",
                         "" if cell.n is None else str(cell.n)]  # fmt: skip
            lines.append([*line, row.source, "as published" if row.published else self.conditions])
        return lines

    def to_latex(self) -> str:
        """A booktabs ``tabular`` in a ``table`` float, captioned with the title."""
        columns = len(self.header)
        body = [" & ".join(map(latex_escape, self.header)) + r" \\", r"\midrule",
                " & ".join(["$n$", *map(latex_escape, self.n_row())]) + r" \\", r"\midrule"]  # fmt: skip
        published_started = False
        for row in self.rows:
            if row.published and not published_started:
                body.append(r"\midrule")
                published_started = True
            cells = [latex_escape(row.label)]
            for cell in row.cells:
                interval = cell.interval()
                cells.append(cell.text() + (rf" {{\scriptsize {interval}}}" if interval else ""))
            body.append(" & ".join(cells) + r" \\")
        return "\n".join([
            "% Needs \\usepackage{booktabs}. Generated by the M3EL benchmark: " + self.name,
            r"\begin{table}[ht]", r"\centering", rf"\caption{{{latex_escape(self.title)}}}",
            rf"\label{{tab:{self.name}}}", rf"\begin{{tabular}}{{l{'r' * (columns - 1)}}}", r"\toprule",
            *body, r"\bottomrule", r"\end{tabular}", r"\end{table}", "",
        ])  # fmt: skip


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(LATEX_SPECIALS.get(char, char) for char in text)


def write_tables(tables: Sequence[Table], folder: str | Path) -> list[Path]:
    """Write each table as ``<name>.md``, ``<name>.csv`` and ``<name>.tex``, plus ``tables.md`` with all of them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        paths = [folder / f"{table.name}.{suffix}" for suffix in ("md", "csv", "tex")]
        paths[0].write_text(table.to_markdown(), encoding="utf-8")
        with paths[1].open("w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows(table.csv_rows())
        paths[2].write_text(table.to_latex(), encoding="utf-8")
        written += paths
    (folder / "tables.md").write_text("\n".join(table.to_markdown() for table in tables), encoding="utf-8")
    return [*written, folder / "tables.md"]
