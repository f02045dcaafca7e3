"""Hub export: rows of our schema become a folder of Parquet shards (images embedded) plus the dataset card.

`export_rows` writes any stream of rows (M3EL's or a converted peer dataset's) in a `HubLayout`;
`export_release` is M3EL's: the raw release read by `iter_release_rows`, in `M3EL_LAYOUT`.

Layout of the folder, which ``huggingface_hub`` uploads as it is::

    README.md                                 card with the YAML configs (column projections, split globs)
    build_report.json                         every skipped record and every unusable image
    data/<group>/<split>-NNNNN-of-MMMMM.parquet   mention rows, each stored once (M3EL's groups are its topics)
    kb/kb-NNNNN-of-MMMMM.parquet              each knowledge-base entity once
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .card import DATA_DIR, KB_DIR, M3EL_LAYOUT, HubLayout, render_dataset_card, split_sizes
from .images import DEFAULT_MAX_IMAGE_BYTES
from .parquet_shards import ParquetShardWriter, ShardLimits
from .report import BuildReport
from .rows import FEATURES, KB_CONFIG, KB_FEATURES, KnowledgeBaseCollector, iter_release_rows
from .stats import DatasetStatistics, StatisticsAccumulator

logger = logging.getLogger(__name__)


@dataclass
class ExportConfig:
    """How `export_release` builds the Hub folder.

    Args:
        skip_invalid (`bool`, defaults to `False`): skip malformed records (listed in the report) instead of stopping.
        num_proc (`int`, defaults to 1): processes reading and checking images.
        decode_check (`bool`, defaults to `True`): decode every image once to find corrupt files.
        max_pixels (`int`, *optional*): images with more pixels become empty cells, listed in the report (default:
            PIL's ``Image.MAX_IMAGE_PIXELS``, about 89 M; checked from the header even without ``decode_check``).
        max_image_bytes (`int`, defaults to 100 MB): image files larger than this are not read (empty cells, listed).
        overwrite (`bool`, defaults to `False`): replace an existing, non-empty output folder.
        repo_id (`str`, *optional*): the Hub repository named in the card's examples (default:
            ``<org>/<name>``, the dataset's name, e.g. ``<org>/m3el`` or ``<org>/wikimel``).
        license (`str`, defaults to ``"unknown"``): the card's licence field.
        limits (`ShardLimits`): shard and row group sizes.
    """

    skip_invalid: bool = False
    num_proc: int = 1
    decode_check: bool = True
    max_pixels: int | None = None
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    overwrite: bool = False
    repo_id: str | None = None
    license: str = "unknown"
    limits: ShardLimits = field(default_factory=ShardLimits)


@dataclass
class ExportResult:
    """What `export_release` wrote."""

    out_dir: Path
    statistics: DatasetStatistics
    report: BuildReport
    shards: list[Path]
    num_kb_entities: int


def _prepare_output(out_dir: Path, overwrite: bool) -> Path:
    """Check ``out_dir`` and return a fresh staging folder beside it (renamed into place once complete)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"Output folder {out_dir} exists and is not empty; pass --overwrite to replace it.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))


def _check_row(row: dict[str, Any], layout: HubLayout, ids: set[str]) -> None:
    if row["id"] in ids:
        raise ValueError(f"Two records have the id {row['id']!r}; record file names must differ beyond extension.")
    ids.add(row["id"])
    if row["topic"] not in layout.groups or row["split"] not in layout.splits:
        raise ValueError(f"Row {row['id']!r} has group {row['topic']!r} and split {row['split']!r}; {layout.name} "
                         f"has groups {layout.groups} and splits {layout.splits}.")  # fmt: skip


def _write_shards(
    rows: Iterable[dict[str, Any]], kb_entities: Iterable[dict[str, Any]] | None, staging: Path, layout: HubLayout,
    config: ExportConfig, report: BuildReport,
):  # fmt: skip
    writers = {
        (group, split): ParquetShardWriter(staging / DATA_DIR / group, split, FEATURES, config.limits)
        for group in layout.groups
        for split in layout.splits
    }
    kb_writer = ParquetShardWriter(staging / KB_DIR, KB_CONFIG, KB_FEATURES, config.limits)
    candidates_kb = KnowledgeBaseCollector(report)
    accumulator = StatisticsAccumulator(layout.groups)
    ids: set[str] = set()
    for row in tqdm(rows, desc=f"Building {layout.name} shards", unit=" mentions"):
        _check_row(row, layout, ids)
        writers[row["topic"], row["split"]].write(row)
        accumulator.add(row)
        if kb_entities is None:  # M3EL: the knowledge base is every candidate entity
            for entity in candidates_kb.add(row):
                kb_writer.write(entity)
    for entity in candidates_kb.finish():
        kb_writer.write(entity)
    num_entities = len(candidates_kb)
    if kb_entities is not None:
        seen: set[str] = set()
        for entity in tqdm(kb_entities, desc=f"Building {layout.name} knowledge base", unit=" entities"):
            if entity["qid"] not in seen:
                seen.add(entity["qid"])
                kb_writer.write(entity)
        num_entities = len(seen)
    shards = [path for writer in writers.values() for path in writer.close()] + kb_writer.close()
    filled = tuple(split for split in layout.splits if any(writers[g, split].num_rows for g in layout.groups))
    return accumulator, shards, num_entities, filled


def export_rows(
    rows: Iterable[dict[str, Any]],
    out_dir: str | os.PathLike,
    layout: HubLayout,
    config: ExportConfig,
    *,
    report: BuildReport | None = None,
    kb_entities: Iterable[dict[str, Any]] | None = None,
    source: str | os.PathLike = "the input",
) -> ExportResult:
    """Write rows of `FEATURES` to the Hub folder ``out_dir`` in ``layout``; nothing is left half-written on error.

    Args:
        rows: the mention rows; each row's ``topic`` is one of ``layout.groups`` and its ``split`` one of
            ``layout.splits``. They are consumed once, as they come.
        out_dir: the folder to write.
        layout: the dataset's groups, splits, configs and card (`M3EL_LAYOUT` for M3EL).
        config: output options (shard sizes, overwrite, the card's repository and licence).
        report: the `BuildReport` the row producer fills (saved as ``build_report.json``).
        kb_entities: rows of `KB_FEATURES` for the ``kb`` config (the whole knowledge base); by default, every
            candidate entity of the mention rows once.
        source: what the rows were read from, for error messages.
    """
    out_dir = Path(out_dir)
    staging = _prepare_output(out_dir, config.overwrite)
    report = report if report is not None else BuildReport()
    try:
        accumulator, shards, num_entities, filled = _write_shards(rows, kb_entities, staging, layout, config, report)
        statistics = accumulator.result(report)
        if statistics.total.mentions == 0:
            raise ValueError(f"No usable mention record in {source}; nothing to export.")
        if filled != layout.splits and not layout.group_splits:
            # A split left with no shard cannot be loaded: it leaves the card (its skipped records are reported).
            logger.warning("No mention left in split(s) %s of %s; they are left out of the card.",
                           ", ".join(s for s in layout.splits if s not in filled), layout.name)  # fmt: skip
            layout = dataclasses.replace(layout, splits=filled)
        report.save(staging)
        sizes = split_sizes(staging, layout)
        repo_id = config.repo_id or f"<org>/{layout.name}"
        card = render_dataset_card(statistics, repo_id, config.license, layout=layout, sizes=sizes)
        card.save(staging / "README.md")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shards = [out_dir / path.relative_to(staging) for path in shards]
    logger.info("Wrote %d mentions in %d shards and %d KB entities to %s", statistics.total.mentions, len(shards),
                num_entities, out_dir)  # fmt: skip
    return ExportResult(out_dir, statistics, report, shards, num_entities)


def export_release(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Build the Hub folder ``out_dir`` from the M3EL release in ``raw_dir``; nothing is left half-written on error."""
    report = BuildReport()
    rows = iter_release_rows(
        raw_dir,
        skip_invalid=config.skip_invalid,
        decode_check=config.decode_check,
        max_pixels=config.max_pixels,
        max_image_bytes=config.max_image_bytes,
        num_proc=config.num_proc,
        report=report,
    )
    return export_rows(rows, out_dir, M3EL_LAYOUT, config, report=report, source=raw_dir)
