"""DWE+ on converted WikiMEL, RichpediaMEL and WikiDiverse (``configs/dwe.yaml``): per dataset, train a head, then
score it on that dataset's test split under the ``retrieved`` protocol, the DWE+ paper's figures beside ours.

    python -m m3el_benchmark.systems.dwe_plus.recipe --config dwe                  # every dataset of the config
    python -m m3el_benchmark.systems.dwe_plus.recipe --config dwe --only WikiMEL --dry_run

For each ``datasets`` entry ``{name, path, published, training}``:

1. train (`training.train`) with the config's ``training`` arguments (`training.DWEPlusTrainingArguments`), the
   entry's own ``training`` overrides, ``dataset`` = its path and ``output_dir`` = ``<output_dir>/<name>/dwe_plus``;
2. write ``<output_dir>/<name>/benchmark.yaml``, a benchmark config (`arguments.BenchmarkArguments`: the config's
   ``evaluation`` values) that scores ``DWE+=<that folder>`` and the ``evaluation`` models on this dataset alone,
   task ITm-Te, format M-S, so that the evaluation can be rerun with ``benchmark/run.py --config <that file>``;
3. run it: tables and ``results.json`` in ``<output_dir>/<name>/benchmark``.

``--dry_run`` checks the config and every dataset folder and writes the benchmark configs, without training or
scoring anything.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from ...arguments import bundled_config, parse_arguments
from .adapter import DWE_TASK, DWE_TEXT_FORMAT
from .training import DWEPlusTrainingArguments

logger = logging.getLogger(__name__)

RECIPE_KEYS = ("output_dir", "datasets", "training", "evaluation")
ENTRY_KEYS = ("name", "path", "published", "training")
FIXED_EVALUATION = ("datasets", "dataset", "tasks", "text_formats", "headline_task", "headline_format", "output_dir",
                    "train_tiny", "config")  # fmt: skip
"""Benchmark arguments the recipe sets itself (each dataset alone, DWE+'s task and format)."""


@dataclass
class RecipeArguments:
    """Which recipe to run, on which of its datasets."""

    config: str = field(default="dwe", metadata={"help": "A DWE+ recipe (YAML) or a bundled one's name (dwe)."})
    only: list[str] = field(default_factory=list, metadata={"help": "Names of the datasets to run (default: all)."})
    output_dir: str | None = field(default=None, metadata={"help": "Overrides the recipe's output_dir."})
    dry_run: bool = field(default=False, metadata={"help": "Check and write the configs; train and score nothing."})


@dataclass
class DatasetPlan:
    """One dataset of a recipe: its training arguments and the benchmark config that scores the trained head."""

    name: str
    training: DWEPlusTrainingArguments
    benchmark_config: Path
    benchmark: dict[str, Any]


def read_recipe(path: Path) -> dict[str, Any]:
    """The recipe's YAML mapping, its keys checked."""
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict) or not isinstance(values.get("datasets"), list) or not values["datasets"]:
        raise ValueError(f"{path} must be a DWE+ recipe: a mapping with a non-empty `datasets` list (see "
                         "m3el_benchmark/configs/dwe.yaml).")  # fmt: skip
    unknown = sorted(set(values) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"Unknown keys {unknown} in {path}; a DWE+ recipe has {', '.join(RECIPE_KEYS)}.")
    for entry in values["datasets"]:
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("path"):
            raise ValueError(f"Dataset entry {entry!r} of {path} needs a name and a path.")
        bad = sorted(set(entry) - set(ENTRY_KEYS))
        if bad:
            raise ValueError(f"Dataset entry {entry['name']!r} of {path}: unknown keys {bad}; valid: {ENTRY_KEYS}.")
    return values


def _training_arguments(values: dict[str, Any], where: str) -> DWEPlusTrainingArguments:
    known = {item.name for item in fields(DWEPlusTrainingArguments)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown DWE+ training arguments {unknown} in {where}; valid: {', '.join(sorted(known))}.")
    return DWEPlusTrainingArguments(**values)


def _check_folder(name: str, path: str, recipe: Path) -> None:
    if not Path(path).is_dir():
        raise FileNotFoundError(
            f"Dataset {name!r} of {recipe}: {path} is not a folder. Convert the dataset first (`m3el-dataset "
            "convert ghmfc|mimic|wikidiverse SRC OUT`) and set its `path` in the recipe."
        )


def plan_datasets(recipe_path: Path, only: list[str], output_dir: str | None = None) -> list[DatasetPlan]:
    """The `DatasetPlan` of each chosen dataset of the recipe (all when ``only`` is empty), checked."""
    recipe = read_recipe(recipe_path)
    entries = recipe["datasets"]
    missing = sorted(set(only) - {entry["name"] for entry in entries})
    if missing:
        raise ValueError(f"--only names {missing}, which {recipe_path} does not list; its datasets: "
                         f"{', '.join(entry['name'] for entry in entries)}.")  # fmt: skip
    evaluation = dict(recipe.get("evaluation") or {})
    fixed = sorted(set(evaluation) & set(FIXED_EVALUATION))
    if fixed:
        raise ValueError(f"`evaluation` of {recipe_path} sets {fixed}, which the recipe sets per dataset; remove "
                         "them.")  # fmt: skip
    root = Path(output_dir or recipe.get("output_dir") or "outputs/dwe")
    plans = []
    for entry in entries:
        if only and entry["name"] not in only:
            continue
        _check_folder(entry["name"], entry["path"], recipe_path)
        folder = root / entry["name"]
        values = {**(recipe.get("training") or {}), **(entry.get("training") or {})}
        training = _training_arguments({**values, "dataset": entry["path"], "output_dir": str(folder / "dwe_plus")},
                                       f"{recipe_path} (dataset {entry['name']!r})")  # fmt: skip
        spec = {"name": entry["name"], "path": entry["path"], "protocol": evaluation.get("protocol", "retrieved"),
                "task": DWE_TASK, "text_format": DWE_TEXT_FORMAT}  # fmt: skip
        if entry.get("published"):
            spec["published"] = entry["published"]
        models = [f"DWE+={training.output_dir}", *evaluation.get("models", [])]
        benchmark = {**evaluation, "protocol": spec["protocol"], "datasets": [spec], "models": models,
                     "tasks": [DWE_TASK], "text_formats": [DWE_TEXT_FORMAT], "headline_task": DWE_TASK,
                     "headline_format": DWE_TEXT_FORMAT, "output_dir": str(folder / "benchmark"),
                     "train_tiny": False}  # fmt: skip
        plans.append(DatasetPlan(entry["name"], training, folder / "benchmark.yaml", benchmark))
    return plans


def write_benchmark_config(plan: DatasetPlan) -> Path:
    """Write the plan's benchmark config and check that the benchmark accepts it."""
    plan.benchmark_config.parent.mkdir(parents=True, exist_ok=True)
    plan.benchmark_config.write_text(yaml.safe_dump(plan.benchmark, sort_keys=False), encoding="utf-8")
    parse_arguments(["--config", str(plan.benchmark_config)])  # fails early on a bad value (e.g. a published key)
    return plan.benchmark_config


def main(argv: list[str] | None = None) -> list[DatasetPlan]:
    """Parse ``argv`` (``None``: ``sys.argv``), then train and score each chosen dataset; return the plans."""
    from ...run import main as run_benchmark
    from .training import train

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(RecipeArguments).parse_args_into_dataclasses(
        args=list(sys.argv[1:] if argv is None else argv)
    )
    plans = plan_datasets(bundled_config(args.config), args.only, args.output_dir)
    for plan in plans:
        config = write_benchmark_config(plan)
        if args.dry_run:
            logger.info("DWE+ %s: would train into %s and score it with %s", plan.name, plan.training.output_dir,
                        config)  # fmt: skip
            continue
        logger.info("DWE+ %s: training into %s", plan.name, plan.training.output_dir)
        train(plan.training)
        run_benchmark(["--config", str(config)])
    return plans


if __name__ == "__main__":
    from ...cli import run_cli

    sys.exit(run_cli("dwe-plus-recipe", main))
