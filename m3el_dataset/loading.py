"""The one way training and the benchmark get data: resolve a source, open a config's split, tell the tasks it allows.

A source is ``"sample"`` (the bundled release), a raw release folder, an exported M3EL folder (with ``data/``) or a
Hub dataset id (``org/name``). A raw release is exported once to Parquet under a cache folder, keyed by a
fingerprint of its files, and read from there like any exported folder, so that training and the benchmark read
the same rows whatever they are given.

    split = open_split("sample", "mentions", "test")           # images left undecoded
    supported_tasks(["M-S1"], split.column_names)              # the nine tasks
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

import datasets
from huggingface_hub import constants as hub_constants

from .constants import TASKS, TaskSpec, parse_task
from .export import ExportConfig, export_release
from .hub_folder import check_m3el_layout
from .rows import COMMON_COLUMNS, ENTITY_TEXT_COLUMNS, KB_CONFIG, PART_COLUMNS, text_column, undecoded_images
from .sample import SAMPLE_NAME, resolve_sample
from .text_formats import template_parts

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = COMMON_COLUMNS
"""Columns every ``mentions`` config has; the others belong to a modality a converted peer dataset may lack."""

REQUIRED_KB_COLUMNS = ("qid",)
"""Columns every ``kb`` config has (a peer's KB may lack the text or the image side)."""


class MissingSplitError(ValueError):
    """The dataset has no such split; a caller may add which of its arguments chooses the split."""


def default_cache_dir() -> Path:
    """Where raw releases are exported by default: ``$HF_HOME/m3el/datasets``."""
    return Path(hub_constants.HF_HOME) / "m3el" / "datasets"


def _fingerprint(folder: Path) -> str:
    """A short hash of every file's relative path, size and modification time: a changed release is exported anew."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:12]


def resolve_source(source: str, cache_dir: str | Path | None = None) -> str:
    """Return a path or Hub id that ``datasets.load_dataset`` reads, exporting a raw release first if needed.

    ``source`` is ``"sample"`` (the bundled release), a raw release folder (``*.json``/``*.jsonl`` records), an
    exported M3EL folder, or a Hub dataset id. A raw release is exported to ``cache_dir`` (default
    `default_cache_dir`) under a fingerprint of its files, so an unchanged release is exported once.
    """
    raw = Path(resolve_sample(source))  # the sample is a raw release too
    if not raw.is_dir():
        if source.count("/") != 1:
            raise FileNotFoundError(
                f"Dataset {source!r} is neither a folder nor a Hub id ('org/name'); pass an exported M3EL folder, "
                f"a raw release folder, a Hub dataset id, or {SAMPLE_NAME!r} for the bundled sample."
            )
        return source
    if (raw / "data").is_dir():
        check_m3el_layout(raw)  # another dataset's folder is named as such, not as a missing config
        return str(raw)
    if not any(raw.glob("*.json")) and not any(raw.glob("*.jsonl")):
        raise FileNotFoundError(
            f"Folder {raw} holds neither an exported M3EL dataset (a data/ folder) nor a raw release (*.json or "
            "*.jsonl records); build one with `m3el-dataset build RAW OUT`."
        )
    out_dir = Path(cache_dir or default_cache_dir()) / f"{raw.resolve().name}-{_fingerprint(raw)}"
    if not (out_dir / "README.md").is_file():  # the export writes its card last
        logger.info("Exporting the raw release %s to %s", raw, out_dir)
        export_release(raw, out_dir, ExportConfig(overwrite=True))
    return str(out_dir)


def keep_columns(table: datasets.Dataset, columns: Sequence[str]) -> datasets.Dataset:
    """``table`` restricted to those of ``columns`` it has, in that order (a peer dataset lacks some)."""
    return table.select_columns([name for name in columns if name in table.column_names])


def open_split(
    source: str,
    config: str,
    split: str,
    *,
    columns: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
) -> datasets.Dataset:
    """One split of one config of ``source`` (see `resolve_source`), images left undecoded.

    With ``columns``, the table keeps those of them it has; callers that need to know which columns the dataset
    has read ``column_names`` of an unrestricted open. Raises `MissingSplitError` for a split the dataset lacks and
    ``ValueError`` for a folder whose config lacks the columns every M3EL config has.
    """
    path = resolve_source(source, cache_dir)
    try:
        table = datasets.load_dataset(path, config, split=split)
    except ValueError as error:
        if "split" not in str(error).lower():
            raise
        raise MissingSplitError(
            f"Dataset {source} has no split {split!r} in its {config!r} config: {error} Pass one of its splits."
        ) from error
    required = REQUIRED_KB_COLUMNS if config == KB_CONFIG else REQUIRED_COLUMNS
    lacking = [name for name in required if name not in table.column_names]
    if lacking:
        raise ValueError(
            f"The {config!r} config of {path} (split {split!r}) has no column {lacking}: it is not in M3EL's layout. "
            "Export a release with `m3el-dataset build` or convert a peer dataset with `m3el-dataset convert`."
        )
    return undecoded_images(table if columns is None else keep_columns(table, columns))


def _absent(names: Sequence[str], columns: Collection[str]) -> list[str]:
    return [name for name in names if name not in columns]


class KBModalities(Protocol):
    """What the kb protocol ranks against: whether the knowledge base's entities have a text and an image."""

    has_text: bool
    has_image: bool


def missing_inputs(
    task: str | TaskSpec, text_formats: Sequence[str], columns: Collection[str], kb: KBModalities | None = None
) -> dict[str, list[str]]:
    """What a dataset lacks for ``task``: each absent input, named as messages name it (``"mention text 'M-S1'"``,
    ``"mention image"``, ``"entity text"``, ``"entity image"``), with the absent columns that would hold it.

    ``columns`` are those of the ``mentions`` config. A mention text is there when its ``text_<format>`` column is;
    the columns named are the parts it is rendered from (training reads them, and its message names them), or the
    text column when those are all there. The entities
    are the candidates (``candidate_texts``, ``candidate_images``: converters write names, descriptions and texts
    together), or with ``kb`` the knowledge base's entities (no column named). Empty: nothing lacks.
    """
    spec = parse_task(task)
    lacking: dict[str, list[str]] = {}
    if spec.mention_text:
        for name in text_formats:
            if text_column(name) not in columns:
                parts = _absent([PART_COLUMNS[part] for part in template_parts(name)], columns)
                lacking[f"mention text {name!r}"] = parts or [text_column(name)]
        if not text_formats:
            lacking["mention text"] = []
    if spec.mention_image and "mention_image" not in columns:
        lacking["mention image"] = ["mention_image"]
    has_text = kb.has_text if kb is not None else "candidate_texts" in columns
    has_image = kb.has_image if kb is not None else "candidate_images" in columns
    if spec.entity_text and not has_text:
        lacking["entity text"] = [] if kb is not None else _absent(ENTITY_TEXT_COLUMNS, columns)
    if spec.entity_image and not has_image:
        lacking["entity image"] = [] if kb is not None else ["candidate_images"]
    return lacking


def supported_tasks(
    text_formats: Sequence[str], columns: Collection[str], kb: KBModalities | None = None
) -> list[str]:
    """The `TASKS` (in their order) that a dataset with these ``mentions`` columns (and ``kb``) supports in every one
    of ``text_formats``; with no format, only the tasks without a mention text. Training and the benchmark ask it."""
    return [task for task in TASKS if not missing_inputs(task, text_formats, columns, kb)]
