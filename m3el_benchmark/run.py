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
from dataclasses import MISSING, asdict, dataclass, field, replace
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import HfArgumentParser

from m3el_benchmark.baselines import (
    BASELINES,
    ModelNotAvailableError,
    ModelRequest,
    is_available_locally,
    load_adapter,
    not_available_message,
    parse_model_spec,
)
from m3el_benchmark.cli import package_version, run_cli
from m3el_benchmark.evaluation.data import (
    KnowledgeBase,
    MentionTable,
    check_names,
    check_supported,
    load_kb,
    load_mentions,
)
from m3el_benchmark.evaluation.dataset_specs import PROTOCOLS, DatasetSpec, dataset_specs
from m3el_benchmark.evaluation.encoding import EncodingSettings, evaluation_precision
from m3el_benchmark.evaluation.evaluate import ModelEvaluation, evaluate_model, merge_evaluations
from m3el_benchmark.evaluation.figures import FigureSettings
from m3el_benchmark.evaluation.kb_ranking import KBRankingSettings
from m3el_benchmark.evaluation.outputs import summary, write_outputs
from m3el_benchmark.evaluation.scoring import Setting, settings_for
from m3el_benchmark.evaluation.tables import TABLE_METRICS, TableLayout
from m3el_benchmark.tiny_clip_nd import train_tiny_clip_nd
from m3el_dataset import loading
from m3el_dataset.constants import ALL_SPLITS, TASKS, TEXT_FORMATS, TOPICS

logger = logging.getLogger("m3el_benchmark.run")

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "sample.yaml"
PRECISIONS = ("auto", "no", "bf16")


@dataclass
class BenchmarkArguments:
    """What to evaluate and how. Every field can be set in the YAML ``--config`` and on the command line."""

    config: str = field(
        default=str(DEFAULT_CONFIG),
        metadata={"help": "YAML file of arguments (CLI overrides) or a bundled config: sample, paper, table5, mimic."},
    )
    dataset: str = field(
        default="sample",
        metadata={"help": "Exported M3EL folder, raw release folder, Hub dataset id, or 'sample' (bundled)."},
    )
    dataset_name: str = field(default="M3EL", metadata={"help": "Column name of the dataset in Table 5."})
    protocol: str = field(
        default="candidates",
        metadata={"help": f"Ranking protocol: {', '.join(PROTOCOLS)} (every entity of the dataset's kb config)."},
    )
    datasets: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Several datasets instead of --dataset, each on its task(s) (Table 5): NAME=PATH, or in the YAML "
            "mappings {name, path, protocol, task or tasks, text_format, splits, published, drop_nil, nil_policy}; "
            "see evaluation/dataset_specs.py."
        },
    )
    nil_policy: str = field(
        default="wrong",
        metadata={"help": "A mention whose gold is not among the entities it is ranked against: 'wrong' (scored, "
                  "wrong at every k) or 'exclude' (left out of the figures); per dataset in a `datasets` entry."},
    )
    published: str | None = field(
        default=None,
        metadata={"help": "Published figures printed beside ours for --dataset (a key of m3el_dataset.published, "
                  "e.g. m3el); a `datasets` entry names its own."},
    )
    kb_chunk_size: int = field(default=16384, metadata={"help": "KB entities per matrix product (kb protocol)."})
    table5_metrics: list[str] = field(
        default_factory=lambda: ["accuracy"],
        metadata={"help": f"Table 5 columns per dataset, of {', '.join(TABLE_METRICS)}."},
    )
    models: list[str] = field(
        default_factory=lambda: list(BASELINES),
        metadata={"help": f"Baselines ({', '.join(BASELINES)}), Hub ids, folders, or '<label>=<source>'."},
    )
    skip_unavailable: bool = field(
        default=False, metadata={"help": "Skip (and list) Hub models that are not in the local cache."}
    )
    train_tiny: bool = field(
        default=False, metadata={"help": "Train a tiny CLIP-ND on the dataset first and add it, trained and not."}
    )
    train_max_steps: int = field(default=60, metadata={"help": "Steps of the tiny CLIP-ND training."})
    train_task: str = field(default="ITm-ITe", metadata={"help": "Task of the tiny CLIP-ND training."})
    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={"help": f"Of {', '.join(TASKS)}."})
    text_formats: list[str] = field(default_factory=lambda: list(TEXT_FORMATS), metadata={"help": "Mention formats."})
    splits: list[str] = field(default_factory=lambda: ["test"], metadata={"help": "Splits (or topic splits)."})
    topics: list[str] = field(default_factory=lambda: list(TOPICS), metadata={"help": f"Of {', '.join(TOPICS)}."})
    headline_task: str = field(default="ITm-ITe", metadata={"help": "Task of Table 5 and the per-topic table."})
    headline_format: str = field(default="M-S1", metadata={"help": "Text format of Table 5 and per-task tables."})
    output_dir: str = field(default="outputs/benchmark", metadata={"help": "Where results and tables go."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Embedding and dataset cache (default: $HF_HOME/m3el_benchmark)."}
    )
    no_cache: bool = field(default=False, metadata={"help": "Do not read or write cached embeddings."})
    model_cache_dir: str | None = field(default=None, metadata={"help": "Hugging Face Hub cache for the models."})
    keep_mention: bool = field(
        default=False,
        metadata={
            "help": "Fit the mention texts of the -M formats so that the mention survives truncation, for every "
            "model alike; default: every text is cut at the end at the model's length, as in the paper."
        },
    )
    text_tokens: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Per-model text length overrides, LABEL=TOKENS (e.g. BLIP-2=35); a model not named reads its "
            "own length (its config, tokenizer or processor). The length used is in the work table and results."
        },
    )
    batch_size: int = field(default=64, metadata={"help": "Inputs per encoder batch and mentions per score batch."})
    num_workers: int = field(default=2, metadata={"help": "DataLoader workers decoding images."})
    mixed_precision: str = field(
        default="auto",
        metadata={"help": "'auto' (bf16 on GPU, fp32 on CPU), 'no' (fp32 end to end, TF32 off) or 'bf16'."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of the run (tiny CLIP-ND training, bootstrap resamples)."})

    def __post_init__(self):
        check_names(self.tasks, TASKS, "task")
        check_names(self.text_formats, TEXT_FORMATS, "text format")
        check_names(self.topics, TOPICS, "topic")
        check_names(self.splits, ALL_SPLITS, "split")
        check_names([self.protocol], PROTOCOLS, "protocol")
        FigureSettings(self.nil_policy, seed=self.seed)  # fail early on a bad policy or seed
        check_names([self.mixed_precision], PRECISIONS, "mixed precision")
        check_names([self.headline_task], self.tasks, "headline task (it must be among --tasks)")
        check_names([self.headline_format], self.text_formats, "headline format (it must be among --text_formats)")
        check_names(self.table5_metrics, list(TABLE_METRICS), "table metric")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}.")
        self.text_token_overrides()  # fail early on a bad entry
        KBRankingSettings(chunk_size=self.kb_chunk_size)
        self.dataset_specs()  # fail early on a bad entry

    def text_token_overrides(self) -> dict[str, int]:
        """``text_tokens`` as ``{model label: tokens}``."""
        overrides = {}
        for entry in self.text_tokens:
            label, _, tokens = entry.rpartition("=")
            if not label.strip() or not tokens.strip().isdigit():
                raise ValueError(f"--text_tokens entry {entry!r} must read LABEL=TOKENS, e.g. 'BLIP-2=35'.")
            overrides[label.strip()] = int(tokens)
        return overrides

    def dataset_specs(self) -> list[DatasetSpec]:
        """The evaluated datasets: the ``datasets`` entries, or else ``dataset`` with every chosen name."""
        if self.datasets:
            return dataset_specs(self.datasets, protocol=self.protocol, task=self.headline_task,
                                 text_format=self.headline_format, splits=self.splits,
                                 nil_policy=self.nil_policy)  # fmt: skip
        chosen = (tuple(self.tasks), tuple(self.text_formats), tuple(self.splits), tuple(self.topics))
        return [DatasetSpec(self.dataset_name, self.dataset, self.protocol, *chosen, published=self.published,
                            nil_policy=self.nil_policy)]  # fmt: skip


def bundled_config(config: str) -> Path:
    """The YAML file ``config`` names: a path, or a bundled config's name (``paper`` for ``configs/paper.yaml``)."""
    path = Path(config)
    if path.is_file():
        return path
    bundled = CONFIG_DIR / f"{config}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"Config file {config} not found; pass a YAML file or a bundled config's name ({names}).")


def parse_arguments(argv: list[str] | None) -> BenchmarkArguments:
    """Read ``--config`` (YAML; the sample's by default), then let the other command-line arguments override it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known, _ = HfArgumentParser(BenchmarkArguments, add_help=False).parse_known_args(argv)
    config_path = bundled_config(known.config)
    values = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{config_path} must be a YAML mapping of argument names to values, got {values!r}.")
    fields = BenchmarkArguments.__dataclass_fields__
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"Unknown keys {unknown} in {config_path}; valid keys: {', '.join(sorted(fields))}.")
    for name, value in values.items():  # `tasks: ITm-ITe` means the list [ITm-ITe], not its characters
        if isinstance(value, str) and fields[name].default_factory is not MISSING:
            values[name] = [value]
    parser = HfArgumentParser(BenchmarkArguments)  # --help shows the defaults of this run: the config's values
    parser.add_argument("--version", action="version", version=f"m3el {package_version()}")
    parser.set_defaults(**values)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


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
    kb_settings = KBRankingSettings(chunk_size=args.kb_chunk_size)
    evaluations = []
    for data in loaded:
        check_model_supports(adapter, data.spec)
        scored = (data.mentions, data.settings, accelerator, encoding, cache_root, data.spec.mention_text_formats)
        figures = FigureSettings(data.spec.nil_policy, seed=args.seed)
        evaluations.append(evaluate_model(adapter, *scored, data.spec.name, data.kb, kb_settings, figures,
                                          data.spec.protocol))  # fmt: skip
    del adapter
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return merge_evaluations(evaluations)


def main(argv: list[str] | None = None) -> BenchmarkResult:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv``, ``[]``: the sample default)."""
    # 1. Arguments, processes, logging and seed.
    args = parse_arguments(argv)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if accelerator.is_main_process else logging.WARNING)  # fmt: skip
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
    for label, reason in skipped.items():
        logger.warning("Skipping %s: %s", label, reason)

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
