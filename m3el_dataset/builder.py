"""A `datasets` builder over a local copy of the raw release, for users who do not want to export first.

    from m3el_dataset import M3ELBuilder

    builder = M3ELBuilder(config_name="Tm-Ie", data_dir="/path/to/M3EL")
    builder.download_and_prepare()
    validation = builder.as_dataset(split="validation")

It offers the same configs, splits and rows as the exported folder, because both go through `iter_release_rows`
and `config_columns`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import datasets

from .card import release_layout
from .constants import SPLITS, TOPICS, parse_task
from .hub_folder import check_m3el_layout, holds_a_dataset
from .release import find_release_files, iter_release
from .report import BuildReport
from .rows import (
    CONFIG_NAMES,
    KB_CONFIG,
    KB_SPLIT,
    MENTIONS_CONFIG,
    KnowledgeBaseCollector,
    config_features,
    iter_release_rows,
)
from .splits import split_of

logger = logging.getLogger(__name__)

_DESCRIPTION = "M3EL: multi-modal entity linking over nine modality tasks and five topics (read from the release)."


@dataclass
class M3ELConfig(datasets.BuilderConfig):
    """BuilderConfig for M3EL.

    Args:
        skip_invalid (`bool`, defaults to `False`): skip malformed records (logged) instead of raising.
        decode_check (`bool`, defaults to `True`): check each image once (`images.IMAGE_CHECKS["verify"]`); corrupt
            ones become empty cells.
    """

    skip_invalid: bool = False
    decode_check: bool = True


def _description(name: str) -> str:
    if name == KB_CONFIG:
        return "Every candidate entity once (qid, name, description, text, image)."
    if name == MENTIONS_CONFIG:
        return "All columns of every mention."
    parse_task(name)
    return f"Task {name}: the columns its mention and entity modalities need."


class M3ELBuilder(datasets.GeneratorBasedBuilder):
    """Builds any M3EL config from the raw release folder given as ``data_dir``."""

    BUILDER_CONFIG_CLASS = M3ELConfig
    BUILDER_CONFIGS = [M3ELConfig(name=name, description=_description(name)) for name in CONFIG_NAMES]
    DEFAULT_CONFIG_NAME = MENTIONS_CONFIG

    def _info(self) -> datasets.DatasetInfo:
        if self.config.data_dir:  # a DifFMEL release adds its difficulty column
            features = release_layout(self.config.data_dir).config_features(self.config.name)
        else:  # _split_generators says that the folder is needed
            features = config_features(self.config.name)
        return datasets.DatasetInfo(description=_DESCRIPTION, features=features)

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError(
                "M3ELBuilder needs the release folder: pass data_dir=PATH (the folder the archive unpacks to)."
            )
        data_dir = self.config.data_dir
        if holds_a_dataset(data_dir):
            check_m3el_layout(data_dir)  # another dataset's folder is refused as such
            raise ValueError(f"{data_dir} is an exported M3EL folder, not a raw release: load it with "
                             f"datasets.load_dataset({str(data_dir)!r}, {self.config.name!r}).")  # fmt: skip
        files = find_release_files(data_dir)
        splits = self._splits_with_rows(files)  # also refuses a release without a usable record
        if self.config.name == KB_CONFIG:
            # One shard: an entity is deduplicated across the whole release, which processes cannot split.
            return [datasets.SplitGenerator(name=KB_SPLIT, gen_kwargs={"files": None, "split": KB_SPLIT})]
        return [datasets.SplitGenerator(name=name, gen_kwargs={"files": [str(path) for path in files], "split": name})
                for name in splits]  # fmt: skip

    def _splits_with_rows(self, files: list[Path]) -> list[str]:
        """The learning and topic splits holding a record: `datasets` cannot load a split without rows, so none
        is declared (one pass over the records, images unread, stopping once every split has one)."""
        present: set[str] = set()
        for record in iter_release(self.config.data_dir, skip_invalid=self.config.skip_invalid, files=files):
            present.update((split_of(record.id), record.topic))
            if len(present) == len(SPLITS) + len(TOPICS):
                break
        if not present:
            raise ValueError(f"No usable mention record in {self.config.data_dir}; nothing to load.")
        return [name for name in (*SPLITS, *TOPICS) if name in present]

    def _generate_examples(self, files: list[str] | None, split: str):
        report = BuildReport()
        rows = iter_release_rows(
            self.config.data_dir,
            skip_invalid=self.config.skip_invalid,
            decode_check=self.config.decode_check,
            report=report,
            files=None if files is None else [Path(file) for file in files],
            keep=_split_filter(split),
        )
        if self.config.name == KB_CONFIG:
            yield from _kb_examples(rows)
        else:
            keep = self.info.features
            for row in rows:
                yield row["id"], {column: row[column] for column in keep}
        _log_report(split, report)


def _kb_examples(rows):
    collector = KnowledgeBaseCollector()
    for row in rows:
        for entity in collector.add(row):
            yield entity["qid"], entity
    for entity in collector.finish():
        yield entity["qid"], entity


def _split_filter(split: str):
    """Which records a split holds, decided before their images are read."""
    if split == KB_SPLIT:
        return None
    if split in TOPICS:
        return lambda record: record.topic == split
    return lambda record: split_of(record.id) == split


def _log_report(split: str, report: BuildReport) -> None:
    for skip in report.skipped_records:
        logger.warning("Skipped %s record %s (field %s): %s", skip.file, skip.index, skip.field, skip.problem)
    for problem in report.image_problems:
        logger.warning("Empty image cell in %s (%s): %s %s", problem.record_id, problem.role, problem.status,
                       problem.detail)  # fmt: skip
    for entry in report.ignored_fields:
        logger.warning("Field %s of %d record(s), the first %s, has no column and is not kept.", entry.field,
                       entry.records, entry.first)  # fmt: skip
    if report.skipped_records or report.image_problems:
        logger.warning("Split %s: %d records skipped, image problems %s", split, len(report.skipped_records),
                       report.image_problem_counts())  # fmt: skip
