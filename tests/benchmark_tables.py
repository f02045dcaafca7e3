"""Test helpers: the benchmark's table files read back (CSV, LaTeX), and the paper's Tables 4 and 5 typed by hand.

The paper's numbers are typed here from the paper's text (``../shared/papers/000_*.txt``), independently of
``m3el_dataset/published.py``, so that a test can check what the tables print against the paper itself.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

PAPER_TEXT = Path(__file__).resolve().parents[1] / ".." / "shared" / "papers" / "000_f420c5a22cb4aabd.txt"

PAPER_TABLE4_FORMATS = ["S1", "S", "M-S1", "M-S", "S1-M", "S-M", "S1-M-D", "S-M-D"]
PAPER_TABLE4 = {
    "ALIGN": [0.674, 0.675, 0.683, 0.683, 0.680, 0.681, 0.701, 0.697],
    "BLIP-2": [0.738, 0.739, 0.745, 0.746, 0.743, 0.744, 0.759, 0.753],
    "CLIP": [0.742, 0.748, 0.754, 0.758, 0.749, 0.753, 0.771, 0.763],
    "FLAVA": [0.654, 0.649, 0.661, 0.655, 0.659, 0.653, 0.681, 0.699],
    "OWL-ViT": [0.487, 0.487, 0.495, 0.494, 0.489, 0.488, 0.490, 0.492],
    "SigLIP": [0.711, 0.714, 0.722, 0.724, 0.715, 0.717, 0.736, 0.726],
    "CLIP-ND": [0.885, 0.882, 0.899, 0.897, 0.890, 0.888, 0.902, 0.898],
}
PAPER_TABLE5_DATASETS = ["DiffusionDB", "WIKIPerson", "WikiDiverse", "M3EL"]
PAPER_TABLE5 = {
    "ALIGN": [0.468, 0.826, 0.707, 0.683],
    "BLIP-2": [0.552, 0.652, 0.677, 0.746],
    "CLIP": [0.517, 0.873, 0.762, 0.758],
    "FLAVA": [0.582, 0.529, 0.718, 0.655],
    "OWL-ViT": [0.421, 0.348, 0.609, 0.494],
    "SigLIP": [0.539, 0.771, 0.743, 0.724],
    "CLIP-ND": [0.724, 0.916, 0.796, 0.897],
}


def parse_paper_table(text: str, caption: str) -> dict[str, list[float]]:
    """The model rows (name, then fractions) of the tab-separated table printed just before ``caption``."""
    block = text[: text.index(caption)].rstrip().split("\n\n")[-1]
    rows = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.split("\t") if cell.strip()]
        if cells and re.fullmatch(r"(?:<u>)?0\.\d{3}(?:</u>)?", cells[-1]):
            name = "CLIP-ND" if "CLIP_{ND}" in cells[0] else cells[0]
            rows[name] = [float(re.sub(r"</?u>", "", cell)) for cell in cells[1:]]
    return rows


def value_columns(header: list[str]) -> list[str]:
    """The columns of a table's CSV header that hold figures (not their intervals, n, source or conditions)."""
    return [name for name in header[:-2] if not name.endswith((" ci95 low", " ci95 high", " n"))]


def read_values(path: str | Path) -> tuple[list[str], dict[str, list[str]]]:
    """A table's CSV as (header of the figure columns, {row label: its figures as printed})."""
    with Path(path).open(encoding="utf-8") as stream:
        header, *rows = list(csv.reader(stream))
    keep = [index for index, name in enumerate(header) if name in value_columns(header)]
    return [header[i] for i in keep], {row[0]: [row[i] for i in keep[1:]] for row in rows}


UNESCAPED_AMPERSAND = re.compile(r"(?<!\\)&")


def parse_tabular(latex: str) -> tuple[str, list[list[str]]]:
    """The column spec and the cell rows of the one booktabs tabular in ``latex``; fails on a malformed one."""
    assert latex.count(r"\begin{tabular}") == 1 and latex.count(r"\end{tabular}") == 1
    spec, body = re.search(r"\\begin\{tabular\}\{([lrc]+)\}\n(.*)\n\\end\{tabular\}", latex, re.S).groups()
    lines = body.splitlines()
    assert lines[0] == r"\toprule" and lines[-1] == r"\bottomrule" and r"\midrule" in lines
    rows = []
    for line in lines[1:-1]:
        if line == r"\midrule":
            continue
        assert line.endswith(r" \\"), line
        rows.append(UNESCAPED_AMPERSAND.split(line[: -len(r" \\")]))
    assert latex.count("{") - latex.count(r"\{") == latex.count("}") - latex.count(r"\}")
    return spec, rows
