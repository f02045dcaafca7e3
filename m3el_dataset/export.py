"""Hub export: a raw release becomes a folder of Parquet shards (images embedded) plus its dataset card.

Layout of the folder, which ``huggingface_hub`` uploads as it is::

    README.md                                 card with the YAML configs (column projections, split globs)
    build_report.json                         every skipped record and every unusable image
    data/<topic>/<split>-NNNNN-of-MMMMM.parquet   mention rows, each stored once
    kb/kb-NNNNN-of-MMMMM.parquet              each candidate entity once
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .card import DATA_DIR, KB_DIR, render_dataset_card
from .constants import SPLITS, TOPICS
from .parquet_shards import ParquetShardWriter, ShardLimits
from .report import BuildReport
from .rows import FEATURES, KB_CONFIG, KB_FEATURES, iter_release_rows, kb_rows
from .stats import DatasetStatistics, StatisticsAccumulator

logger = logging.getLogger(__name__)


@dataclass
class ExportConfig:
    """How `export_release` builds the Hub folder.

    Args:
        skip_invalid (`bool`, defaults to `False`): skip malformed records (listed in the report) instead of stopping.
        num_proc (`int`, defaults to 1): processes reading and checking images.
        decode_check (`bool`, defaults to `True`): decode every image once to find corrupt files.
        overwrite (`bool`, defaults to `False`): replace an existing, non-empty output folder.
        repo_id (`str`): the Hub repository named in the card's examples.
        license (`str`, defaults to ``"unknown"``): the card's licence field.
        limits (`ShardLimits`): shard and row group sizes.
    """

    skip_invalid: bool = False
    num_proc: int = 1
    decode_check: bool = True
    overwrite: bool = False
    repo_id: str = "<org>/m3el"
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


def _write_shards(raw_dir: Path, staging: Path, config: ExportConfig, report: BuildReport):
    writers = {
        (topic, split): ParquetShardWriter(staging / DATA_DIR / topic, split, FEATURES, config.limits)
        for topic in TOPICS
        for split in SPLITS
    }
    kb_writer = ParquetShardWriter(staging / KB_DIR, KB_CONFIG, KB_FEATURES, config.limits)
    seen_entities: set[str] = set()
    accumulator = StatisticsAccumulator()
    rows = iter_release_rows(
        raw_dir,
        skip_invalid=config.skip_invalid,
        decode_check=config.decode_check,
        num_proc=config.num_proc,
        report=report,
    )
    ids: set[str] = set()
    for row in tqdm(rows, desc="Building M3EL shards", unit=" mentions"):
        if row["id"] in ids:
            raise ValueError(f"Two records have the id {row['id']!r}; record file names must differ beyond extension.")
        ids.add(row["id"])
        writers[row["topic"], row["split"]].write(row)
        accumulator.add(row)
        for entity in kb_rows(row):
            if entity["qid"] not in seen_entities:
                seen_entities.add(entity["qid"])
                kb_writer.write(entity)
    shards = [path for writer in writers.values() for path in writer.close()] + kb_writer.close()
    return accumulator, shards, len(seen_entities)


def export_release(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Build the Hub folder ``out_dir`` from the release in ``raw_dir``; nothing is left half-written on error."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    staging = _prepare_output(out_dir, config.overwrite)
    report = BuildReport()
    try:
        accumulator, shards, num_entities = _write_shards(raw_dir, staging, config, report)
        statistics = accumulator.result(report)
        if statistics.total.mentions == 0:
            raise ValueError(f"No usable mention record in {raw_dir}; nothing to export.")
        report.save(staging)
        render_dataset_card(statistics, repo_id=config.repo_id, license=config.license).save(staging / "README.md")
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
