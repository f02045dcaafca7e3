"""Writing a run's outputs and the summary printed at its end.

``<output_dir>/``: ``results.json``; ``tables/`` (``table4_<task>``, ``table5``, ``tasks``, ``topics``, and
``ranking_<dataset>`` for whole-knowledge-base ranking and multi-dataset runs, as ``.md`` and ``.csv``, and
``tables.md``); ``accuracy_by_task.png``; ``model_index.json`` (per model, the
``{task: {metric: value}}`` that ``m3el_benchmark.model_card.build_model_card(results=...)`` turns into the card's
``model-index``). A run's outputs replace the previous run's as a whole (they are written to a staging folder
first), so a re-run with fewer tasks or models never leaves the earlier run's files beside its own.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import ModelEvaluation
from .plots import plot_task_table
from .results import build_results, model_index_results, write_results
from .tables import Table, TableLayout, build_tables, write_tables

RESULTS_FILE, TABLES_DIR = "results.json", "tables"
CHART_FILE, MODEL_INDEX_FILE = "accuracy_by_task.png", "model_index.json"
RUN_OUTPUTS = (RESULTS_FILE, TABLES_DIR, CHART_FILE, MODEL_INDEX_FILE)
"""What one run writes into ``output_dir`` (the tiny CLIP-ND's ``models/`` folder is reused across runs)."""


def write_outputs(
    output_dir: str | Path,
    evaluations: Sequence[ModelEvaluation],
    skipped: dict[str, str],
    run: dict[str, Any],
    datasets: Sequence[dict[str, Any]],
    layout: TableLayout,
) -> tuple[dict[str, Any], list[Table]]:
    """Write every output file of a run, replacing those of an earlier run; return the results and the tables."""
    output_dir = Path(output_dir)
    staging = output_dir / ".staging-outputs"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    results = build_results(evaluations, skipped, run, datasets)
    write_results(results, staging / RESULTS_FILE)
    records = results["results"]
    tables = build_tables(records, layout)
    write_tables(tables, staging / TABLES_DIR)
    task_tables = [table for table in tables if table.name == "tasks"]  # one-dataset runs only
    if evaluations and task_tables:
        plot_task_table(task_tables[0], staging / CHART_FILE)
    first = layout.columns()[0].name
    model_index = {e.info.name: model_index_results(e, layout.headline_format, first) for e in evaluations}
    (staging / MODEL_INDEX_FILE).write_text(json.dumps(model_index, indent=2) + "\n", encoding="utf-8")
    _replace_outputs(staging, output_dir)
    return results, tables


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
    shown = {f"table4_{layout.headline_task}", "table5", "tasks", "topics"}
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
    lines.append(f"\nAll tables, results.json and the chart are in {output_dir}")
    return "\n".join(lines)
