"""Writing a run's outputs and the summary printed at its end.

``<output_dir>/``: ``results.json`` (every figure with its n, interval and nil policy; the paired comparisons);
``tables/`` (``table4_<task>``, ``table5``, ``tasks``, ``topics``, ``ranking_<dataset>`` for whole-knowledge-base
ranking and multi-dataset runs, and ``comparison`` when a CLIP-ND model ran beside others, each as ``.md``, ``.csv``
and ``.tex``, and ``tables.md``); ``accuracy_by_task.png`` and ``.pdf``; ``report.html`` (tables, charts and a
gallery of mistakes in one self-contained page, `report_html`); ``model_index.json`` (per model and dataset,
the task config and the ``{task: {metric: value}}`` that ``m3el_benchmark.model_card.build_model_card(results=...)``
turns into the card's ``model-index``). A run's outputs replace the previous run's as a whole (they are written to a
staging folder first), so a re-run with fewer tasks or models never leaves the earlier run's files beside its own.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import ModelEvaluation
from .figures import FigureSettings, paired_comparisons
from .micro_f1_table import build_micro_f1_table
from .plots import CHART_FORMATS, plot_task_table
from .report_html import REPORT_FILE, write_report
from .results import build_results, model_index_results, write_results
from .tables import Table, TableLayout, build_tables, write_tables

RESULTS_FILE, TABLES_DIR, MODEL_INDEX_FILE = "results.json", "tables", "model_index.json"
CHART_STEM = "accuracy_by_task"
CHART_FILE = f"{CHART_STEM}.png"
RUN_OUTPUTS = (RESULTS_FILE, TABLES_DIR, *(f"{CHART_STEM}.{suffix}" for suffix in CHART_FORMATS), MODEL_INDEX_FILE,
               REPORT_FILE)
"""What one run writes into ``output_dir`` (the tiny CLIP-ND's ``models/`` folder is reused across runs)."""
REFERENCE_FAMILY = "clip-nd"
"""The paired comparisons compare every model with the first model of this family (CLIP-ND)."""


def reference_model(evaluations: Sequence[ModelEvaluation]) -> str | None:
    """The model every other is compared with: the first CLIP-ND, or `None` when none ran."""
    return next((e.info.name for e in evaluations if e.info.family == REFERENCE_FAMILY), None)


def _comparisons(evaluations: Sequence[ModelEvaluation], layout: TableLayout, figures: FigureSettings) -> list[dict]:
    reference = reference_model(evaluations)
    if reference is None or len(evaluations) < 2:
        return []
    columns = [(column.spec.name, column.task, column.text_format) for column in layout.table5_columns()]
    return paired_comparisons({e.info.name: e.ranks for e in evaluations}, reference, columns, figures)


def _model_index(evaluations: Sequence[ModelEvaluation], layout: TableLayout) -> dict[str, dict[str, Any]]:
    """Per model and dataset: the task config and figures of ``model_index_results``."""
    specs = layout.columns()
    formats = {spec.name: layout.headline_format if layout.headline_format in spec.text_formats
               else spec.text_formats[0] for spec in specs}  # fmt: skip
    return {e.info.name: {spec.name: model_index_results(e, spec, formats[spec.name]) for spec in specs}
            for e in evaluations}  # fmt: skip


def write_outputs(
    output_dir: str | Path,
    evaluations: Sequence[ModelEvaluation],
    skipped: dict[str, str],
    run: dict[str, Any],
    datasets: Sequence[dict[str, Any]],
    layout: TableLayout,
    figures: FigureSettings | None = None,
) -> tuple[dict[str, Any], list[Table]]:
    """Write every output file of a run, replacing those of an earlier run; return the results and the tables.

    ``figures`` sets the bootstrap of the paired comparisons (each dataset's own nil policy applies)."""
    output_dir = Path(output_dir)
    figures = figures or FigureSettings(seed=int(run.get("seed", 0)))
    staging = output_dir / ".staging-outputs"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    comparisons = _comparisons(evaluations, layout, figures)
    results = build_results(evaluations, skipped, run, datasets, figures.describe(), comparisons)
    write_results(results, staging / RESULTS_FILE)
    tables = build_tables(results["results"], layout, results["comparisons"], results["uncertainty"])
    tables += [table for table in [build_micro_f1_table(results["results"], layout)] if table is not None]
    _add_system_notes(results["models"], tables)
    write_tables(tables, staging / TABLES_DIR)
    task_tables = [table for table in tables if table.name == "tasks"]  # one-dataset runs only
    if evaluations and task_tables:
        plot_task_table(task_tables[0], staging / CHART_STEM)
    write_report(staging / REPORT_FILE, results, tables, [entry for e in evaluations for entry in e.gallery])
    model_index = _model_index(evaluations, layout)
    (staging / MODEL_INDEX_FILE).write_text(json.dumps(model_index, indent=2) + "\n", encoding="utf-8")
    _replace_outputs(staging, output_dir)
    return results, tables


def _add_system_notes(models: Sequence[dict[str, Any]], tables: Sequence[Table]) -> None:
    """Under each table with a row of a document-level system, that system's ``note`` per dataset (Gan21-OT: its
    weights and where they were chosen), from the model's ``system`` entry of ``results.json``."""
    for model in models:
        systems = model.get("system", {}).items()
        notes = [f"{model['name']} on {dataset}: {entry['note']}." for dataset, entry in systems if entry.get("note")]
        for table in tables:
            if any(row.label == model["name"] for row in table.rows):
                table.notes += notes


def _replace_outputs(staging: Path, output_dir: Path) -> None:
    """Remove every output of an earlier run, then move this run's in from ``staging``."""
    for name in RUN_OUTPUTS:
        path = output_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for path in staging.iterdir():
        os.replace(path, output_dir / path.name)
    staging.rmdir()


def mention_text_rule(run: dict[str, Any]) -> str:
    """How the run read mention texts (its ``keep_mention``), as the work table says it."""
    if run.get("keep_mention"):
        return "in the -M formats, a text too long for the model has its sentence shortened so the mention is kept"
    return "cut at the end at each model's text length (as in the paper)"


def summary(results: dict[str, Any], tables: Sequence[Table], layout: TableLayout, output_dir: str | Path) -> str:
    """The text printed at the end of a run: headline tables, the work done per model, skipped models."""
    shown = {f"table4_{layout.headline_task}", "table5", "tasks", "topics", "comparison", "micro_f1"}
    lines = [table.to_markdown() for table in tables if table.name in shown or table.name.startswith("ranking_")]
    lines.append("**Work per model** (each unique input is encoded once: pass ratio 1.0)\n")
    lines.append(f"Mention texts, every model alike: {mention_text_rule(results['run'])}.\n")
    lines.append("| Model | Fusion | Text tokens | Dtype | Unique inputs | Encoder passes | Cache hits | Pass ratio "
                 "| Undecodable images | s |")  # fmt: skip
    lines.append("|:---|:---|---:|:---|---:|---:|---:|---:|---:|---:|")
    for model in results["models"]:
        kinds = model["encoding"].values()
        unique, passes = sum(k["unique_inputs"] for k in kinds), sum(k["encoder_passes"] for k in kinds)
        hits = sum(k["cache_hits"] for k in kinds)
        cells = [model["name"], model["fusion"], model["text_tokens"], model["dtype"], unique, passes, hits,
                 f"{model['pass_ratio']:.2f}", model["undecodable_images"], f"{model['seconds']:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    for model in results["models"]:
        if model["non_finite_embeddings"]:
            lines.append(f"\n{model['name']} returned {model['non_finite_embeddings']} NaN or infinite embeddings; "
                         "those inputs scored as missing (see the log).")  # fmt: skip
    if results["skipped_models"]:
        lines.append("\nSkipped models:")
        lines += [f"- {name}: {reason}" for name, reason in results["skipped_models"].items()]
    lines.append(f"\nAll tables (Markdown, CSV, LaTeX), results.json and the chart are in {output_dir}; "
                 f"{REPORT_FILE} shows them with a gallery of mistakes")
    return "\n".join(lines)
