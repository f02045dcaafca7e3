"""Hub export: rows of our schema become a folder of Parquet shards (images embedded) plus the dataset card.

`export_rows` writes any stream of rows (M3EL's or a converted peer dataset's) in a `HubLayout`;
`export_release` is M3EL's: the raw release read by `iter_release_rows`, in `M3EL_LAYOUT` (with DifFMEL's extra
column when the release has it, see `card.release_layout`).

Layout of the folder, which ``huggingface_hub`` uploads as it is::

    README.md                                 card with the YAML configs (column projections, split globs)
    build_report.json                         every skipped record and every unusable image
    data/<group>/<split>-NNNNN-of-MMMMM.parquet   mention rows, each stored once (M3EL's groups are its topics)
    kb/kb-NNNNN-of-MMMMM.parquet              each knowledge-base entity once
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets.utils.tqdm import tqdm  # governed by datasets.disable_progress_bars(), as `m3el-benchmark -q` does

from .card import DATA_DIR, KB_DIR, HubLayout, release_layout, render_dataset_card, split_sizes
from .duplicates import DuplicateFinder
from .images import DEFAULT_MAX_IMAGE_BYTES, described_check
from .parquet_shards import ParquetShardWriter, ShardLimits
from .report import REPORT_FILE_NAME, BuildReport
from .rows import KB_CONFIG, KB_FEATURES, KnowledgeBaseCollector, iter_release_rows
from .stats import DatasetStatistics, StatisticsAccumulator

logger = logging.getLogger(__name__)


@dataclass
class ExportConfig:
    """How `export_release` builds the Hub folder.

    Args:
        skip_invalid (`bool`, defaults to `False`): skip malformed records (listed in the report) instead of stopping.
        num_proc (`int`, defaults to 1): processes reading and checking images.
        decode_check (`bool`, defaults to `True`): check every image once to find corrupt files.
        image_check (`str`, defaults to ``"verify"``): how (`images.IMAGE_CHECKS`): ``"verify"`` reads each image's
            structure to its end without decoding its pixels where the format allows; ``"full"`` decodes them all.
            The build report names the check that ran.
        max_pixels (`int`, *optional*): images with more pixels become empty cells, listed in the report (default:
            PIL's ``Image.MAX_IMAGE_PIXELS``, about 89 M; checked from the header even without ``decode_check``).
        max_image_bytes (`int`, defaults to 100 MB): image files larger than this are not read (empty cells, listed).
        overwrite (`bool`, defaults to `False`): replace an existing, non-empty output folder.
        drop_duplicates (`bool`, defaults to `False`): leave out the later copies of a duplicated mention (see
            `duplicates.duplicate_key`); either way every copy is listed in the report.
        repo_id (`str`, *optional*): the Hub repository named in the card's examples (default:
            ``<org>/<name>``, the dataset's name, e.g. ``<org>/m3el`` or ``<org>/wikimel``).
        license (`str`, defaults to ``"unknown"``): the card's licence field.
        limits (`ShardLimits`): shard and row group sizes.
    """

    skip_invalid: bool = False
    num_proc: int = 1
    decode_check: bool = True
    image_check: str = "verify"
    max_pixels: int | None = None
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    overwrite: bool = False
    drop_duplicates: bool = False
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


class NothingToExportError(ValueError):
    """No mention row was left to export; ``report`` says why each record was left out, and was saved as
    ``report_path`` beside the output folder (which is not written)."""

    def __init__(self, message: str, report: BuildReport, report_path: Path):
        super().__init__(message)
        self.report, self.report_path = report, report_path


def failed_report_path(out_dir: Path) -> Path:
    """Where a build that wrote nothing saves its report: ``<out_dir>.build_report.json``, beside ``out_dir``."""
    return out_dir.parent / f"{out_dir.name}.{REPORT_FILE_NAME}"


def _check_not_the_input(out_dir: Path, source: str | os.PathLike | None) -> None:
    """Refuse an output folder that is, contains or lies inside the input: replacing it would delete the input,
    and a later build would read the output as input."""
    if source is None:
        return
    out, src = out_dir.resolve(), Path(source).resolve()
    if out == src:
        relation = "is"
    elif out.is_relative_to(src):
        relation = "is inside"
    elif src.is_relative_to(out):
        relation = "contains"
    else:
        return
    raise ValueError(f"Output folder {out_dir} {relation} the input {source}; nothing was written or deleted. "
                     f"Choose an output folder outside {source}.")  # fmt: skip


def _staging_prefix(out_dir: Path) -> str:
    """The name a staging folder of ``out_dir`` starts with; it ends with this machine's tag and the process id."""
    host = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]
    return f".{out_dir.name}.staging-{host}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _remove_stale_staging(out_dir: Path) -> None:
    """Remove the staging folders that killed builds of ``out_dir`` left beside it.

    Only this machine's are considered, and only those whose process is gone: another build running at the same
    time, or one on another machine sharing the disk, keeps its folder.
    """
    if os.name != "posix":  # os.kill(pid, 0) probes a process on POSIX only
        return
    pattern = re.compile(re.escape(_staging_prefix(out_dir)) + r"(\d+)-")
    for entry in out_dir.parent.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not _process_alive(int(match.group(1))):
            logger.warning("Removing %s, left by a build of %s that was killed.", entry, out_dir)
            shutil.rmtree(entry, ignore_errors=True)


def _prepare_output(out_dir: Path, overwrite: bool, source: str | os.PathLike | None) -> Path:
    """Check ``out_dir`` and return a fresh staging folder beside it (renamed into place once complete)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"Output path {out_dir} is a file, not a folder; remove it or choose another output "
                              "folder (--overwrite replaces a folder only).")  # fmt: skip
    _check_not_the_input(out_dir, source)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"Output folder {out_dir} exists and is not empty; pass --overwrite to replace it.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out_dir)
    return Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(out_dir)}{os.getpid()}-", dir=out_dir.parent))


def _check_row(row: dict[str, Any], layout: HubLayout, ids: set[str], columns: set[str], report: BuildReport) -> None:
    if row["id"] in ids:
        raise ValueError(f"Two records have the id {row['id']!r}; record file names must differ beyond extension.")
    ids.add(row["id"])
    if row["topic"] not in layout.groups or row["split"] not in layout.splits:
        raise ValueError(f"Row {row['id']!r} has group {row['topic']!r} and split {row['split']!r}; {layout.name} "
                         f"has groups {layout.groups} and splits {layout.splits}.")  # fmt: skip
    for name in row.keys() - columns:  # a field the layout has no column for (a DifFMEL level) is counted
        report.add_ignored_field(name, row["id"])


@dataclass
class _Written:
    """What `_write_shards` wrote: statistics, shards, KB size and the rows of each (group, split)."""

    accumulator: StatisticsAccumulator
    shards: list[Path]
    num_entities: int
    rows: dict[tuple[str, str], int]


def _write_shards(
    rows: Iterable[dict[str, Any]], kb_entities: Iterable[dict[str, Any]] | None, staging: Path, layout: HubLayout,
    config: ExportConfig, report: BuildReport,
) -> _Written:  # fmt: skip
    writers = {
        (group, split): ParquetShardWriter(staging / DATA_DIR / group, split, layout.mention_features, config.limits)
        for group in layout.groups
        for split in layout.splits
    }
    kb_writer = ParquetShardWriter(staging / KB_DIR, KB_CONFIG, KB_FEATURES, config.limits)
    candidates_kb = KnowledgeBaseCollector(report)
    accumulator = StatisticsAccumulator(layout.groups)
    ids: set[str] = set()
    columns = set(layout.mention_features)
    duplicates = DuplicateFinder(report, drop=config.drop_duplicates)
    for row in tqdm(rows, desc=f"Building {layout.name} shards", unit=" mentions"):
        _check_row(row, layout, ids, columns, report)
        if not duplicates.keep(row):
            continue  # a dropped copy's candidates are the kept copy's: the KB loses nothing
        writers[row["topic"], row["split"]].write(row)
        accumulator.add(row)
        if kb_entities is None:  # M3EL: the knowledge base is every candidate entity
            for entity in candidates_kb.add(row):
                kb_writer.write(entity)
    for entity in candidates_kb.finish():
        kb_writer.write(entity)
    num_entities = len(candidates_kb)
    if kb_entities is not None:  # a converter's own knowledge base: each entity once, conflicting copies listed
        given_kb = KnowledgeBaseCollector(report)
        entities = tqdm(kb_entities, desc=f"Building {layout.name} knowledge base", unit=" entities")
        for index, entity in enumerate(entities):
            for ready in given_kb.add_entities([entity], f"knowledge-base entry {index}"):
                kb_writer.write(ready)
        for entity in given_kb.finish():
            kb_writer.write(entity)
        num_entities = len(given_kb)
    shards = [path for writer in writers.values() for path in writer.close()] + kb_writer.close()
    return _Written(accumulator, shards, num_entities, {key: writer.num_rows for key, writer in writers.items()})


def _declared_layout(layout: HubLayout, written: _Written) -> HubLayout:
    """``layout`` narrowed to what holds rows, so that every split and config the card declares loads.

    `datasets` refuses a split without rows (``Instruction "test" corresponds to no data!``): a learning split,
    a group split or the ``kb`` config left empty (a small or one-topic release, a peer with an empty KB) is not
    declared, and the warning says which.
    """
    splits = tuple(s for s in layout.splits if any(written.rows[g, s] for g in layout.groups))
    groups = tuple(g for g in layout.groups if any(written.rows[g, s] for s in layout.splits))
    groups = groups if layout.group_splits else layout.groups  # without group splits, a group is no split
    left_out = [s for s in layout.splits if s not in splits] + [g for g in layout.groups if g not in groups]
    left_out += [] if written.num_entities else [f"the {KB_CONFIG} config"]
    if left_out:
        logger.warning("No row in %s of %s: left out of the card (a split without rows cannot be loaded).",
                       ", ".join(left_out), layout.name)  # fmt: skip
    return dataclasses.replace(layout, splits=splits, groups=groups, has_kb=written.num_entities > 0)


def _nothing_to_export(report: BuildReport, out_dir: Path, source: str | os.PathLike) -> NothingToExportError:
    """The error of a build left with no mention row, its report saved beside ``out_dir`` for the reasons."""
    path = report.save(out_dir.parent, failed_report_path(out_dir).name)
    causes = f"{len(report.skipped_records)} record(s) or file(s) skipped, {len(report.empty_files)} empty file(s)"
    if report.duplicates:
        causes += f", {sum(d.dropped for d in report.duplicates)} duplicate(s) dropped"
    return NothingToExportError(f"No usable mention record in {source} ({causes}); nothing was exported. Every "
                                f"reason is listed in {path}.", report, path)  # fmt: skip


def export_rows(
    rows: Iterable[dict[str, Any]],
    out_dir: str | os.PathLike,
    layout: HubLayout,
    config: ExportConfig,
    *,
    report: BuildReport | None = None,
    kb_entities: Iterable[dict[str, Any]] | None = None,
    source: str | os.PathLike | None = None,
) -> ExportResult:
    """Write rows of `FEATURES` to the Hub folder ``out_dir`` in ``layout``; nothing is left half-written on error.

    Args:
        rows: the mention rows; each row's ``topic`` is one of ``layout.groups`` and its ``split`` one of
            ``layout.splits``. They are consumed once, as they come.
        out_dir: the folder to write; it may not be, contain or lie inside ``source``.
        layout: the dataset's groups, splits, configs and card (`M3EL_LAYOUT` for M3EL).
        config: output options (shard sizes, overwrite, duplicates, the card's repository and licence).
        report: the `BuildReport` the row producer fills (saved as ``build_report.json``; when no row is left,
            saved beside ``out_dir`` and raised with `NothingToExportError`).
        kb_entities: rows of `KB_FEATURES` for the ``kb`` config (the whole knowledge base); by default, every
            candidate entity of the mention rows once.
        source: the folder the rows are read from, for the check above and error messages.
    """
    out_dir = Path(out_dir)
    staging = _prepare_output(out_dir, config.overwrite, source)
    report = report if report is not None else BuildReport()
    report.image_check = described_check(config.decode_check, config.image_check)
    try:
        written = _write_shards(rows, kb_entities, staging, layout, config, report)
        statistics = written.accumulator.result(report)
        if statistics.total.mentions == 0:
            raise _nothing_to_export(report, out_dir, source or "the input")
        layout = _declared_layout(layout, written)
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
    failed_report_path(out_dir).unlink(missing_ok=True)  # a failed earlier build's report no longer applies
    shards = [out_dir / path.relative_to(staging) for path in written.shards]
    logger.info("Wrote %d mentions in %d shards and %d KB entities to %s", statistics.total.mentions, len(shards),
                written.num_entities, out_dir)  # fmt: skip
    return ExportResult(out_dir, statistics, report, shards, written.num_entities)


def export_release(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Build the Hub folder ``out_dir`` from the M3EL (or DifFMEL) release in ``raw_dir``; nothing is left
    half-written on error."""
    report = BuildReport()
    rows = iter_release_rows(
        raw_dir,
        skip_invalid=config.skip_invalid,
        decode_check=config.decode_check,
        image_check=config.image_check,
        max_pixels=config.max_pixels,
        max_image_bytes=config.max_image_bytes,
        num_proc=config.num_proc,
        report=report,
    )
    return export_rows(rows, out_dir, release_layout(raw_dir), config, report=report, source=raw_dir)
