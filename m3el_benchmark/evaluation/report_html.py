"""``report.html``: a run in one self-contained page to look at, written beside ``results.json``.

The page holds the run's facts (datasets, models, how the intervals were drawn), every table of the run with the
same figures and captions as the printed ones (`tables.build_tables`; each value with its n and its 95 % interval),
the charts of the per-task and per-topic tables (inline SVG, `plots.chart_svg`), per-task and per-topic views, and
an error-analysis gallery (`report_gallery`). Everything is inline: no script, no stylesheet, font or image from
elsewhere, so the file can be mailed or archived as it is. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .mistakes import GalleryEntry
from .plots import chart_svg
from .report_gallery import esc, gallery_html
from .table_formats import Table

REPORT_FILE = "report.html"
CHARTED_TABLES = ("tasks", "topics")
"""The tables drawn as bar charts (their values are percentages); in a multi-dataset run, Table 5 instead."""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;
 padding:1rem 2rem;color:#1f2328;background:#fff}
h1{font-size:1.6rem;margin:.2rem 0}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
h3{margin-top:1.4rem}nav a{margin-right:1rem}code{background:#f6f8fa;padding:0 .2rem}
table.figures{border-collapse:collapse;margin:.6rem 0 .2rem;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}figure.table figcaption{font-size:.85rem;color:#57606a;max-width:1100px}
table.figures th,table.figures td{border-bottom:1px solid #eaeef2;padding:.2rem .6rem;text-align:right;
 vertical-align:top}
table.figures th:first-child,table.figures td:first-child{text-align:left}
table.figures thead th{background:#f6f8fa}tr.n td{font-style:italic;color:#57606a}
tr.published td{background:#fff8e6;color:#6e5a1e}tr.published td:first-child{font-style:italic}
.ci{display:block;font-size:.72rem;color:#6e7781;white-space:nowrap}
.note{font-size:.8rem;color:#57606a;margin:.1rem 0 1rem}.chart svg{max-width:100%;height:auto}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dl.facts dt{font-weight:600}
details>summary{cursor:pointer;font-weight:600}
"""


def table_html(table: Table) -> str:
    """A `Table` as an HTML table: its title as caption, the n row, each value with its interval under it."""
    head = "".join(f"<th>{esc(name)}</th>" for name in table.header)
    lines = [f'<figure class="table" id="table-{esc(table.name)}"><figcaption>{esc(table.title)}</figcaption>',
             f'<table class="figures"><thead><tr>{head}</tr></thead><tbody>',
             '<tr class="n"><td>n (mentions scored)</td>' + "".join(f"<td>{esc(n)}</td>" for n in table.n_row())
             + "</tr>"]  # fmt: skip
    for row in table.rows:
        cells = []
        for cell in row.cells:
            interval = cell.interval()
            shown = f'<span class="ci">{esc(interval)}</span>' if interval else ""
            cells.append(f"<td>{esc(cell.text())}{shown}</td>")
        css = ' class="published"' if row.published else ""
        lines.append(f"<tr{css}><td>{esc(row.label)}</td>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    lines += [f'<p class="note">{esc(note)}</p>' for note in table.notes]
    return "\n".join([*lines, "</figure>"])


def chart_html(table: Table) -> str:
    """The bar chart of ``table`` as inline SVG, with a line saying which table it draws."""
    caption = f"Chart of the table above ({table.value_label}, whiskers: 95 % bootstrap intervals)."
    return f'<figure class="chart" id="chart-{esc(table.name)}">{chart_svg(table)}' \
           f'<figcaption class="note">{esc(caption)}</figcaption></figure>'  # fmt: skip


def _section(anchor: str, title: str, body: Sequence[str]) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n' + "\n".join(body) + "\n</section>"


def _facts(results: dict[str, Any]) -> str:
    """Date, datasets, models, skipped models and how the intervals were drawn."""
    datasets = "; ".join(f"{d['name']} ({'+'.join(d.get('splits') or [])}, {d.get('protocol')} protocol, "
                         f"{d.get('num_mentions')} mentions, nil_policy {d.get('nil_policy')})"
                         for d in results.get("datasets", []))  # fmt: skip
    models = "; ".join(f"{m['name']} ({m.get('source')}, fusion {m.get('fusion')}, {m.get('dtype')})"
                       for m in results.get("models", []))  # fmt: skip
    skipped = "; ".join(f"{name}: {reason}" for name, reason in results.get("skipped_models", {}).items())
    uncertainty = results.get("uncertainty") or {}
    intervals = "-" if not uncertainty else (f"{uncertainty.get('method')}; {uncertainty.get('resamples')} "
                                             f"resamples, confidence {uncertainty.get('confidence')}, seed "
                                             f"{uncertainty.get('seed')}")  # fmt: skip
    versions = ", ".join(f"{name} {version}" for name, version in results.get("versions", {}).items())
    facts = [("Date", results.get("date", "")), ("Datasets", datasets), ("Models", models),
             ("Skipped models", skipped or "none"), ("Intervals", intervals), ("Versions", versions)]  # fmt: skip
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts) + "</dl>"


def _tables_with_charts(tables: Sequence[Table], charted: Sequence[str]) -> list[str]:
    body = []
    for table in tables:
        body.append(table_html(table))
        if table.name in charted and any(not row.published for row in table.rows):
            body.append(chart_html(table))
    return body


def render_report(results: dict[str, Any], tables: Sequence[Table], gallery: Sequence[GalleryEntry]) -> str:
    """The whole page of a run from its ``results.json`` content, its tables and its gallery entries."""
    by_name = {table.name: table for table in tables}
    single = "tasks" in by_name  # per-task and per-topic tables exist for a run on one dataset only
    headline = [by_name[name] for name in ("table5", "comparison") if name in by_name]
    per_task = [by_name["tasks"]] if single else []
    per_task += [table for table in tables if table.name.startswith("table4_")]
    per_topic = [by_name["topics"]] if "topics" in by_name else []
    ranking = [table for table in tables if table.name.startswith("ranking_")]
    one_dataset_only = ["<p>Per-task and per-topic tables are made for a run on one dataset; this run's figures per "
                        "dataset and task are in Table 5 above.</p>"]  # fmt: skip
    sections = [
        ("headline", "Headline figures", _tables_with_charts(headline, () if single else ("table5",))),
        ("per-task", "Per task", _tables_with_charts(per_task, CHARTED_TABLES) if single else one_dataset_only),
        ("per-topic", "Per topic", _tables_with_charts(per_topic, CHARTED_TABLES) if single else one_dataset_only),
    ]
    if ranking:
        sections.append(("ranking", "Ranking against the knowledge base", _tables_with_charts(ranking, ())))
    sections.append(("gallery", "Error analysis: a sample of mistakes", [gallery_html(gallery, results)]))
    nav = "<nav>" + "".join(f'<a href="#{esc(anchor)}">{esc(title)}</a>' for anchor, title, _ in sections) + "</nav>"
    intro = ("<p>Each value is the figure the run printed, with its 95 % bootstrap interval under it; the "
             "<i>n</i> row counts the mentions scored. Rows on a yellow ground are published figures copied from "
             "their sources, not this run's.</p>")  # fmt: skip
    body = "\n".join(_section(anchor, title, content) for anchor, title, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>M3EL benchmark report</title><style>{CSS}</style></head>\n<body>\n"
            f"<h1>M3EL benchmark report</h1>\n{_facts(results)}\n{nav}\n{intro}\n{body}\n"
            "</body></html>\n")  # fmt: skip


def write_report(
    path: str | Path, results: dict[str, Any], tables: Sequence[Table], gallery: Sequence[GalleryEntry]
) -> Path:
    """Write `render_report`'s page to ``path``."""
    path = Path(path)
    path.write_text(render_report(results, tables, gallery), encoding="utf-8")
    return path
