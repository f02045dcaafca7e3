"""The benchmark's arguments: a dataclass read from a YAML config (``--config``), overridden by the command
line."""

from __future__ import annotations

import sys
from dataclasses import MISSING, dataclass, field
from pathlib import Path

import yaml
from transformers import HfArgumentParser

from m3el_benchmark.baselines import BASELINES
from m3el_benchmark.cli import package_version
from m3el_benchmark.evaluation.data import check_names
from m3el_benchmark.evaluation.dataset_specs import PROTOCOLS, DatasetSpec, dataset_specs
from m3el_benchmark.evaluation.figures import FigureSettings
from m3el_benchmark.evaluation.kb_ranking import BACKENDS, KBRankingSettings
from m3el_benchmark.evaluation.tables import TABLE_METRICS
from m3el_benchmark.run_logging import QUIET_HELP, VERBOSE_HELP, verbosity_from_flags
from m3el_dataset.constants import ALL_SPLITS, TASKS, TEXT_FORMATS, TOPICS

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
    kb_chunk_size: int = field(
        default=KBRankingSettings.chunk_size, metadata={"help": "KB entities per matrix product (kb protocol)."}
    )
    kb_backend: str = field(
        default=KBRankingSettings.backend,
        metadata={"choices": list(BACKENDS), "help": (
            f"How the kb protocol counts each gold's rank, of {', '.join(BACKENDS)} (default "
            f"{KBRankingSettings.backend}); every backend gives the same figures. 'faiss' (pip install 'm3el[faiss]') "
            "lists each mention's top-k entities first; it is not the default because ranks are counted, never "
            "sorted: an exact MR/MRR needs every score of a mention the top-k leaves undecided, and on CPU FAISS's "
            "search costs about as much as the whole count (benchmark/perf/perf_kb.py)."
        )},
    )  # fmt: skip
    kb_mention_batch: int = field(
        default=KBRankingSettings.mention_batch,
        metadata={"help": f"Mentions per kb ranking tile (kb protocol; default {KBRankingSettings.mention_batch}): "
                  "larger matrix products run faster per score; memory is one mentions x kb_chunk_size tile."},
    )  # fmt: skip
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
    verbose: bool = field(default=False, metadata={"aliases": ["-v"], "help": VERBOSE_HELP})
    quiet: bool = field(default=False, metadata={"aliases": ["-q"], "help": QUIET_HELP})

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
        self.kb_settings()  # fail early on a bad value, or on --kb_backend faiss without FAISS
        self.dataset_specs()  # fail early on a bad entry
        self.verbosity  # noqa: B018 - refuses -v with -q

    def kb_settings(self) -> KBRankingSettings:
        """The kb protocol's settings, from ``--kb_chunk_size``, ``--kb_backend`` and ``--kb_mention_batch``."""
        try:
            return KBRankingSettings(
                chunk_size=self.kb_chunk_size, backend=self.kb_backend, mention_batch=self.kb_mention_batch
            )
        except ValueError as error:
            raise ValueError(f"{error} (arguments --kb_chunk_size, --kb_backend, --kb_mention_batch)") from error

    @property
    def verbosity(self) -> int:
        """The run's logging verbosity (`m3el_benchmark.run_logging`), from ``--verbose``/``--quiet``."""
        return verbosity_from_flags(self.verbose, self.quiet)

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
    if unknown and {"training", "evaluation"} <= set(values):  # configs/dwe.yaml and its copies
        raise ValueError(f"{config_path} is a DWE+ recipe, not a benchmark config; run it with `python -m "
                         f"m3el_benchmark.systems.dwe_plus.recipe --config {config_path}`.")  # fmt: skip
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
