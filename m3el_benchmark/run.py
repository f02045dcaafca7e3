# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""The M3EL benchmark: every chosen model x task x text format x topic, on one or several processes.

    accelerate launch benchmark/run.py                                  # the bundled sample (configs/sample.yaml)
    accelerate launch benchmark/run.py --config paper   # the paper's Tables 4 and 5
    python benchmark/run.py --models CLIP "CLIP-ND=outputs/clip_nd" --tasks ITm-ITe --text_formats M-S1
    python benchmark/run.py --config mimic       # WikiMEL, RichpediaMEL, WikiDiverse (kb)

For each model it encodes every unique text and image of the chosen mentions once (through an on-disk cache keyed
by model revision and content hash), scores each mention's candidates (``protocol: candidates``) or every entity of
the dataset's knowledge base (``protocol: kb``) in every task and format, and computes ACC, Top-k, MRR and mean
rank per topic with the ``m3el_accuracy`` core. A ``datasets`` list evaluates several datasets in one run (Table 5).
Every figure carries its n and a seeded bootstrap interval, and says how mentions whose gold is absent were counted
(``--nil_policy``). It writes ``results.json``, Markdown, CSV and LaTeX tables, a bar chart (PNG and PDF) and the
model-index block of the CLIP-ND model card to ``--output_dir``, and prints the tables.

Arguments come from a YAML file (``--config``, by default the sample's), overridden by the command line.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from m3el_benchmark.arguments import CONFIG_DIR, BenchmarkArguments, parse_arguments
from m3el_benchmark.baselines import (
    ModelNotAvailableError,
    ModelRequest,
    is_available_locally,
    load_adapter,
    not_available_message,
    parse_model_spec,
)
from m3el_benchmark.cli import run_cli
from m3el_benchmark.evaluation.data import (
    KnowledgeBase,
    MentionTable,
    check_supported,
    load_kb,
    load_mentions,
)
from m3el_benchmark.evaluation.dataset_specs import DatasetSpec
from m3el_benchmark.evaluation.encoding import EncodingSettings, evaluation_precision
from m3el_benchmark.evaluation.evaluate import ModelEvaluation, evaluate_model, merge_evaluations
from m3el_benchmark.evaluation.figures import FigureSettings
from m3el_benchmark.evaluation.outputs import summary, write_outputs
from m3el_benchmark.evaluation.scoring import Setting, settings_for
from m3el_benchmark.evaluation.tables import TableLayout
from m3el_benchmark.run_logging import run_logging
from m3el_benchmark.systems.gan21.selection import select_on_validation
from m3el_benchmark.tiny_clip_nd import train_tiny_clip_nd
from m3el_dataset import loading

__all__ = ["CONFIG_DIR", "BenchmarkArguments", "BenchmarkResult", "cli", "main", "parse_arguments"]

logger = logging.getLogger("m3el_benchmark.run")

@dataclass
class BenchmarkResult:
    """What `main` returns: where the outputs are, each model's evaluation, the skipped models and the results."""

    output_dir: Path
    evaluations: list[ModelEvaluation]
    skipped: dict[str, str]
    results: dict | None = None


def _dtype(args: BenchmarkArguments, accelerator: Accelerator) -> torch.dtype:
    """The dtype every model is loaded and run in: bf16 for ``bf16``, and for ``auto`` on a GPU; else float32."""
    use_bf16 = args.mixed_precision == "bf16" or (args.mixed_precision == "auto" and accelerator.device.type == "cuda")
    return torch.bfloat16 if use_bf16 else torch.float32


def _cache_root(args: BenchmarkArguments) -> Path:
    if args.cache_dir:
        return Path(args.cache_dir)
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "m3el_benchmark"


def with_text_tokens(
    requests: list[ModelRequest], args: BenchmarkArguments, skipped: dict[str, str]
) -> list[ModelRequest]:
    """``requests`` with the run's per-model text length overrides; ``ValueError`` for one that names no model of
    the run (``skipped`` models count: a config may name one that is not downloaded)."""
    overrides = args.text_token_overrides()
    labels = [request.label for request in requests] + list(skipped)
    unknown = sorted(set(overrides) - set(labels))
    if unknown:
        raise ValueError(f"--text_tokens names {unknown}, which are not models of this run; use their labels: "
                         f"{', '.join(labels)}.")  # fmt: skip
    return [replace(request, text_tokens=overrides.get(request.label)) for request in requests]


def select_models(args: BenchmarkArguments) -> tuple[list[ModelRequest], dict[str, str]]:
    """The models to run, and those skipped (not in the local cache) with the reason."""
    requests, skipped = [parse_model_spec(spec) for spec in args.models], {}
    if not args.skip_unavailable:
        return requests, skipped
    available = []
    for request in requests:
        if is_available_locally(request, args.model_cache_dir):
            available.append(request)
        else:
            skipped[request.label] = f"not downloaded: `hf download {request.source}` to include it"
    return available, skipped


@dataclass
class LoadedDataset:
    """A dataset ready to score: its spec, resolved path, mentions, settings and (kb protocol) knowledge base."""

    spec: DatasetSpec
    path: str
    mentions: MentionTable
    settings: list[Setting]
    kb: KnowledgeBase | None = None

    def describe(self) -> dict:
        """What ``results.json`` records about it."""
        kb_size = len(self.kb) if self.kb is not None else None
        return {"name": self.spec.name, "source": self.spec.path, "path": self.path, "protocol": self.spec.protocol,
                "num_mentions": len(self.mentions), "kb_entities": kb_size, "splits": list(self.spec.splits),
                "nil_mentions_dropped": self.mentions.dropped_nil if self.spec.drop_nil else None,
                "nil_policy": self.spec.nil_policy}  # fmt: skip


def load_dataset_spec(spec: DatasetSpec, work_dir: Path) -> LoadedDataset:
    """Resolve (export a raw release once), read the mentions and, for the kb protocol, the knowledge base."""
    path = loading.resolve_source(spec.path, work_dir)
    formats = spec.mention_text_formats
    mentions = load_mentions(path, spec.splits, spec.topics, formats, drop_nil=spec.drop_nil)
    kb = load_kb(path, mentions.inputs) if spec.protocol in ("kb", "retrieved") else None
    check_supported(spec.name, spec.tasks, formats, mentions, kb)
    return LoadedDataset(spec, path, mentions, settings_for(spec.tasks, spec.text_formats), kb)


def check_model_supports(adapter, spec: DatasetSpec) -> None:
    """Raise ``ValueError`` when a model cannot be scored on a task or format of ``spec`` (DWE+: ITm-Te, M-S)."""
    for what, chosen, supported in (("task", [str(task) for task in spec.tasks], adapter.supported_tasks),
                                    ("text format", spec.mention_text_formats, adapter.supported_text_formats)):
        unsupported = [name for name in chosen if supported is not None and name not in supported]
        if unsupported:
            raise ValueError(
                f"Model {adapter.info.name!r} can only be scored on the {what}s {', '.join(supported)}, not "
                f"{', '.join(unsupported)} (dataset {spec.name!r}); run it with --tasks/--text_formats (or the "
                "`task:`/`text_format:` of its `datasets` entry) set to those."
            )


def run_model(request, loaded: list[LoadedDataset], accelerator, args) -> ModelEvaluation:
    """Load one model, evaluate it on every dataset, and free its memory."""
    dtype, keep_mention = _dtype(args, accelerator), args.keep_mention
    adapter = load_adapter(request, accelerator.device, dtype, args.model_cache_dir, keep_mention)
    encoding = EncodingSettings(batch_size=args.batch_size, num_workers=args.num_workers)
    cache_root = None if args.no_cache else _cache_root(args) / "embeddings"
    kb_settings = args.kb_settings()
    evaluations = []
    for data in loaded:
        check_model_supports(adapter, data.spec)
        scored = (data.mentions, data.settings, accelerator, encoding, cache_root, data.spec.mention_text_formats)
        select_on_validation(adapter, data, scored[2:], kb_settings)  # Gan21-OT: its weights, chosen on validation
        figures = FigureSettings(data.spec.nil_policy, seed=args.seed)
        evaluations.append(evaluate_model(adapter, *scored, data.spec.name, data.kb, kb_settings, figures,
                                          data.spec.protocol))  # fmt: skip
    del adapter
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return merge_evaluations(evaluations)


def main(argv: list[str] | None = None) -> BenchmarkResult:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv``, ``[]``: the sample default)."""
    args = parse_arguments(argv)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    with run_logging(args.verbosity, accelerator.is_main_process, accelerator.process_index):
        return run_benchmark(args, accelerator)


def run_benchmark(args: BenchmarkArguments, accelerator: Accelerator) -> BenchmarkResult:
    """The run of `main`, inside its logging (`run_logging`): data, models, evaluations, outputs."""
    # 1. Seed.
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 2. The datasets: export a raw release once (main process first), then read the mentions (and the KB).
    specs = args.dataset_specs()
    with accelerator.main_process_first():
        loaded = [load_dataset_spec(spec, _cache_root(args) / "datasets") for spec in specs]

    # 3. The models: the sample trains a tiny CLIP-ND first; Hub models missing from the cache may be skipped.
    requests, skipped = select_models(args)
    if args.train_tiny:
        requests = train_tiny_clip_nd(args, loaded[0].path, output_dir, accelerator) + requests
    requests = with_text_tokens(requests, args, skipped)
    if skipped:  # one line: the end of the run lists each with the command that downloads it
        logger.warning("Skipping %d models not in the local cache (listed at the end): %s", len(skipped),
                       ", ".join(skipped))  # fmt: skip

    # 4. Each model: encode each unique input once, score every dataset and setting, compute the figures.
    evaluations = []
    with evaluation_precision(_dtype(args, accelerator)) as precision:
        for request in requests:
            try:
                evaluations.append(run_model(request, loaded, accelerator, args))
            except ModelNotAvailableError:
                if not args.skip_unavailable:
                    raise
                skipped[request.label] = not_available_message(request, args.model_cache_dir)

    # 5. Outputs (main process): results.json, tables, chart, model index; print the tables.
    result = BenchmarkResult(output_dir, evaluations, skipped)
    if accelerator.is_main_process:
        run = {**asdict(args), "num_processes": accelerator.num_processes, "device": str(accelerator.device),
               "precision": precision}  # fmt: skip
        layout = TableLayout(
            models=[evaluation.info.name for evaluation in evaluations],
            tasks=args.tasks,
            text_formats=args.text_formats,
            topics=args.topics,
            headline_task=args.headline_task,
            headline_format=args.headline_format,
            dataset_name=specs[0].name,
            datasets=specs,
            table5_metrics=args.table5_metrics,
        )
        described = [data.describe() for data in loaded]
        figures = FigureSettings(seed=args.seed)  # the bootstrap of the paired comparisons
        result.results, tables = write_outputs(output_dir, evaluations, skipped, run, described, layout, figures)
        print(summary(result.results, tables, layout, output_dir))
    accelerator.wait_for_everyone()
    return result


def cli(argv: list[str] | None = None) -> int:
    """The ``m3el-benchmark`` console script: `main`, with a user's mistake printed as one line (exit status 2)."""
    return run_cli("m3el-benchmark", main, argv)


if __name__ == "__main__":
    sys.exit(cli())
