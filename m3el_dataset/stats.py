"""Statistics of M3EL in the layout of the paper's Table 3, plus gold positions and a data-quality section.

The same `StatisticsAccumulator` runs over rows during the Hub export (the card's figures) and over a raw
release or an exported folder (``m3el-dataset stats PATH``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .constants import SPLITS, TOPICS
from .duplicates import DuplicateFinder
from .parquet_shards import iter_parquet_batches
from .report import BuildReport
from .rows import iter_release_rows
from .text_formats import collapse_whitespace

STATS_COLUMNS = (
    "topic", "split", "mention_name", "sentence", "label", "candidate_qids", "candidate_names",
    "mention_image", "candidate_images",
)  # fmt: skip


@dataclass
class TopicStatistics:
    """Counts for one topic (or for all of them); ``documents`` is None (n/a) where no mention has a text context."""

    documents: int | None = 0
    mentions: int = 0
    candidates: int = 0
    images: int = 0
    gold_first: int = 0
    gold_elsewhere: int = 0
    gold_absent: int = 0
    surface_differs: int = 0
    surface_compared: int = 0
    mention_image_is_gold_image: int = 0
    images_compared: int = 0
    splits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))


@dataclass
class DatasetStatistics:
    """Per-topic and overall statistics, with the data-quality counts of the build report."""

    topics: dict[str, TopicStatistics]
    total: TopicStatistics
    quality: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"topics": {k: asdict(v) for k, v in self.topics.items()}, "all": asdict(self.total), **self.quality}


class StatisticsAccumulator:
    """Adds rows (dicts with at least `STATS_COLUMNS`) one at a time; memory grows with documents, not images.

    ``groups`` are the values of the rows' ``topic`` column: M3EL's topics, or a peer dataset's groups.
    """

    def __init__(self, groups: tuple[str, ...] = TOPICS) -> None:
        self.topics = {group: TopicStatistics() for group in groups}
        self._documents: dict[str, set[bytes]] = {group: set() for group in groups}

    def add(self, row: dict[str, Any]) -> None:
        """Count one mention row."""
        stats = self.topics[row["topic"]]
        stats.mentions += 1
        stats.splits[row["split"]] = stats.splits.get(row["split"], 0) + 1
        stats.candidates += len(row["candidate_qids"])
        stats.images += sum(cell is not None for cell in [row["mention_image"], *row["candidate_images"]])
        # A document is a distinct context: several mentions of the paper's Table 3 share one. An image-only
        # mention has none (its empty sentence is no document), so an image-only dataset counts n/a, not 1.
        if row["sentence"]:
            self._documents[row["topic"]].add(hashlib.blake2b(row["sentence"].encode(), digest_size=12).digest())
        label = row["label"]
        if label < 0:
            stats.gold_absent += 1
            return
        stats.gold_first += label == 0
        stats.gold_elsewhere += label > 0
        # A peer dataset without mention names (or images) has nothing to compare: its shares are n/a, not 0%.
        surface, gold_name = row["mention_name"] or "", collapse_whitespace(row["candidate_names"][label] or "")
        if surface and gold_name:
            stats.surface_compared += 1
            stats.surface_differs += surface != gold_name
        mention_image, gold_image = row["mention_image"], row["candidate_images"][label]
        if mention_image is not None and gold_image is not None:
            stats.images_compared += 1
            stats.mention_image_is_gold_image += mention_image["bytes"] == gold_image["bytes"]

    def result(self, report: BuildReport | None) -> DatasetStatistics:
        """The statistics so far, with the quality counts of ``report`` (``-1`` where no report is known)."""
        total = TopicStatistics()
        for topic, stats in self.topics.items():
            stats.documents = _documents(len(self._documents[topic]), stats.mentions)
            for name, value in asdict(stats).items():
                if name == "splits":
                    for split, count in value.items():
                        total.splits[split] = total.splits.get(split, 0) + count
                elif name != "documents":
                    setattr(total, name, getattr(total, name) + value)
        total.documents = _documents(sum(map(len, self._documents.values())), total.mentions)
        if report is None:
            quality = {"missing_images": -1, "unreadable_images": -1, "outside_folder_images": -1}
            quality.update(skipped_records=-1, duplicate_mentions=-1)
        else:
            counts = report.image_problem_counts()
            quality = {f"{status}_images": count for status, count in counts.items()}
            quality.update(skipped_records=len(report.skipped_records), duplicate_mentions=len(report.duplicates))
        return DatasetStatistics(topics=dict(self.topics), total=total, quality=quality)


def iter_exported_rows(folder: str | os.PathLike, columns: Iterable[str] = STATS_COLUMNS) -> Iterator[dict]:
    """Stream the mention rows of an exported folder (``data/<group>/<split>-*.parquet``), batch by batch; a
    folder of another layout raises `NotM3ELLayoutError`, a damaged shard ``ValueError`` naming it."""
    from .hub_folder import check_m3el_layout  # it reads the card module, which imports this one

    for shard in check_m3el_layout(folder):
        for batch in iter_parquet_batches(shard, columns):
            yield from batch.to_pylist()


def compute_statistics(path: str | os.PathLike, *, skip_invalid: bool = False) -> DatasetStatistics:
    """Statistics of an exported folder (it has ``data/``) or of a raw release folder.

    A raw release gets the build's checks: skipped records, image problems and duplicates are counted.
    """
    from .hub_folder import check_m3el_layout, holds_a_dataset  # see iter_exported_rows

    path = Path(path)
    if holds_a_dataset(path):
        folders = {shard.parent.name for shard in check_m3el_layout(path)}
        # M3EL's topics in the paper's order; a converted peer dataset's groups as found.
        accumulator = StatisticsAccumulator(TOPICS if folders <= set(TOPICS) else tuple(sorted(folders)))
        for row in iter_exported_rows(path):
            accumulator.add(row)
        return accumulator.result(BuildReport.load(path))
    report = BuildReport()
    accumulator = StatisticsAccumulator()
    duplicates = DuplicateFinder(report)
    for row in iter_release_rows(path, skip_invalid=skip_invalid, report=report):
        duplicates.keep(row)  # counted, as the build counts them
        accumulator.add(row)
    return accumulator.result(report)


def _documents(distinct_contexts: int, mentions: int) -> int | None:
    """The documents of mentions with ``distinct_contexts`` non-empty contexts: None (n/a) when mentions have none."""
    return None if mentions and not distinct_contexts else distinct_contexts


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def format_statistics(stats: DatasetStatistics) -> str:
    """Markdown tables: the paper's Table 3 layout, gold positions and data quality."""
    rows = [*stats.topics.items(), ("all", stats.total)]
    lines = [
        "| Topic | Documents | Mentions | Candidates | Images | Train | Validation | Test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, topic in rows:
        counts = [topic.documents, topic.mentions, topic.candidates, topic.images, *topic.splits.values()]
        lines.append(f"| {name} | " + " | ".join(map(_count, counts)) + " |")
    lines += ["", "| Topic | Gold first | Gold elsewhere | Gold absent | Surface ≠ gold name | Image = gold's |"]
    lines.append("|---|---|---|---|---|---|")
    for name, topic in rows:
        shares = [
            _percent(topic.gold_first, topic.mentions),
            _percent(topic.gold_elsewhere, topic.mentions),
            _percent(topic.gold_absent, topic.mentions),
            _percent(topic.surface_differs, topic.surface_compared),
            _percent(topic.mention_image_is_gold_image, topic.images_compared),
        ]
        lines.append(f"| {name} | " + " | ".join(shares) + " |")
    lines += ["", "Data quality: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.quality.items())]
    lines.append(
        "(documents are distinct mention contexts, n/a when no mention has one, as in an image-only dataset; "
        "surface and image shares are among mentions whose gold is a candidate and that have both names, or both "
        "images; n/a: none has; -1: no build report found)"
    )
    return "\n".join(lines)
