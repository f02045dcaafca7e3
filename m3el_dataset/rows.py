"""The row schema of M3EL on the Hub, and the one function that turns a release record into a row.

Every path to the data (the Parquet export and the `datasets` builder) goes through `record_to_row`, and every
config is a projection of the same columns (`config_columns`).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import datasets

from .constants import TASKS, TEXT_FORMATS, parse_task
from .images import DEFAULT_MAX_IMAGE_BYTES, ImageResolver, release_image_root
from .release import EXTRA_FIELDS, MentionRecord, iter_release
from .report import BuildReport, KBConflict
from .splits import split_of
from .text_formats import entity_text, format_mention_texts, mention_parts

logger = logging.getLogger(__name__)

MENTIONS_CONFIG = "mentions"
KB_CONFIG = "kb"
KB_SPLIT = "kb"
CONFIG_NAMES: tuple[str, ...] = (*TASKS, MENTIONS_CONFIG, KB_CONFIG)


def text_column(text_format: str) -> str:
    """The column holding the mention text in ``text_format`` (e.g. ``text_M-S1``)."""
    return f"text_{text_format}"


TEXT_COLUMNS: tuple[str, ...] = tuple(text_column(name) for name in TEXT_FORMATS)
PART_COLUMNS: dict[str, str] = {"M": "mention_name", "S": "sentence", "S1": "sentence1", "D": "gold_description"}
"""The column of each part of a mention text template (``{S1} {M}: {D}``)."""
MENTION_TEXT_COLUMNS: tuple[str, ...] = (*PART_COLUMNS.values(), *TEXT_COLUMNS)
ENTITY_TEXT_COLUMNS: tuple[str, ...] = ("candidate_names", "candidate_descriptions", "candidate_texts")
COMMON_COLUMNS: tuple[str, ...] = ("id", "topic", "split", "gold_qid", "candidate_qids", "label")

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "topic": datasets.Value("string"),
        "split": datasets.Value("string"),
        "mention_name": datasets.Value("string"),
        "sentence": datasets.Value("string"),
        "sentence1": datasets.Value("string"),
        "gold_description": datasets.Value("string"),
        **{column: datasets.Value("string") for column in TEXT_COLUMNS},
        "mention_image": datasets.Image(),
        "gold_qid": datasets.Value("string"),
        "candidate_qids": datasets.List(datasets.Value("string")),
        "candidate_names": datasets.List(datasets.Value("string")),
        "candidate_descriptions": datasets.List(datasets.Value("string")),
        "candidate_texts": datasets.List(datasets.Value("string")),
        "candidate_images": datasets.List(datasets.Image()),
        "label": datasets.Value("int32"),
    }
)
"""All columns of a mention row (the ``mentions`` config). Empty image cells are ``None``."""

KB_FEATURES = datasets.Features(
    {
        "qid": datasets.Value("string"),
        "name": datasets.Value("string"),
        "description": datasets.Value("string"),
        "text": datasets.Value("string"),
        "image": datasets.Image(),
    }
)
"""The ``kb`` config: each candidate entity once (first occurrence in release order)."""

_VALUE_TYPES = {int: "int64", float: "float64", str: "string"}
EXTRA_COLUMNS: dict[str, str] = {name: _VALUE_TYPES[kind] for name, kind in EXTRA_FIELDS.items()}
"""The column type of each record field kept beyond `FEATURES` (`release.EXTRA_FIELDS`: DifFMEL's ``difficulty``)."""


def config_columns(config_name: str) -> list[str]:
    """The columns of a config, in schema order: a task keeps only what its modalities need."""
    if config_name == KB_CONFIG:
        return list(KB_FEATURES)
    if config_name == MENTIONS_CONFIG:
        return list(FEATURES)
    spec = parse_task(config_name) if config_name in TASKS else None
    if spec is None:
        raise ValueError(f"Unknown config {config_name!r}; choose one of {', '.join(CONFIG_NAMES)}.")
    wanted = set(COMMON_COLUMNS)
    if spec.mention_text:
        wanted.update(MENTION_TEXT_COLUMNS)
    if spec.mention_image:
        wanted.add("mention_image")
    if spec.entity_text:
        wanted.update(ENTITY_TEXT_COLUMNS)
    if spec.entity_image:
        wanted.add("candidate_images")
    return [column for column in FEATURES if column in wanted]


def undecoded_images(table: datasets.Dataset) -> datasets.Dataset:
    """``table`` with each image column it has (an image, or a list of them) read as undecoded ``{"bytes", "path"}``
    cells, so that the reader decodes them itself and an undecodable image does not stop iteration."""
    for name, feature in list(table.features.items()):
        if isinstance(feature, datasets.Image):
            table = table.cast_column(name, datasets.Image(decode=False))
        elif isinstance(feature, datasets.List) and isinstance(feature.feature, datasets.Image):
            table = table.cast_column(name, datasets.List(datasets.Image(decode=False)))
    return table


def config_features(config_name: str) -> datasets.Features:
    """The `datasets.Features` of a config."""
    source = KB_FEATURES if config_name == KB_CONFIG else FEATURES
    return datasets.Features({column: source[column] for column in config_columns(config_name)})


def record_to_row(record: MentionRecord, images: ImageResolver, report: BuildReport | None = None) -> dict[str, Any]:
    """Turn a validated record into a row of `FEATURES` (plus its `EXTRA_COLUMNS`), reading its images (bytes as
    stored, never re-encoded).

    Images that are missing, unreadable or outside the release folder become ``None`` cells and are listed in
    ``report``.
    """
    parts = mention_parts(record.name, record.sentence, record.description)
    texts = format_mention_texts(parts)
    mention_image = images.load(record.image.local_path)
    candidate_images = [images.load(candidate.image.local_path) for candidate in record.candidates]
    if report is not None:
        report.add_image(record.id, "mention", mention_image)
        for position, image in enumerate(candidate_images):
            report.add_image(record.id, f"candidate {position}", image)
    return {
        "id": record.id,
        "topic": record.topic,
        "split": split_of(record.id),
        "mention_name": parts["M"],
        "sentence": parts["S"],
        "sentence1": parts["S1"],
        "gold_description": parts["D"],
        **{text_column(name): text for name, text in texts.items()},
        "mention_image": mention_image.to_cell(),
        "gold_qid": record.qid,
        "candidate_qids": [candidate.qid for candidate in record.candidates],
        "candidate_names": [candidate.name for candidate in record.candidates],
        "candidate_descriptions": [candidate.description for candidate in record.candidates],
        "candidate_texts": [entity_text(candidate.name, candidate.description) for candidate in record.candidates],
        "candidate_images": [image.to_cell() for image in candidate_images],
        "label": record.label,
        **record.extra,
    }


def kb_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The `KB_FEATURES` rows of a mention row's candidates (deduplication is the caller's job)."""
    return [
        {"qid": qid, "name": name, "description": description, "text": text, "image": image}
        for qid, name, description, text, image in zip(
            row["candidate_qids"],
            row["candidate_names"],
            row["candidate_descriptions"],
            row["candidate_texts"],
            row["candidate_images"],
            strict=True,
        )
    ]


@dataclass(frozen=True)
class _KeptEntity:
    """What the knowledge base holds (or will hold) for an entity, and which record it came from."""

    record: str
    name: str
    description: str
    image: bytes | None  # a digest of the image bytes; None: no usable image yet


class KnowledgeBaseCollector:
    """Each entity once, from the candidates of streamed mention rows (or from a converter's own knowledge base).

    The release stores a copy of every candidate image per mention folder, and a user's copy can lack some of
    them: an entity is emitted at its first occurrence with a usable image, and only if it never has one, at the
    end, from its first occurrence (with an empty image cell). An occurrence whose name, description or image bytes
    differ from the kept copy is listed in ``report.kb_conflicts`` (logged when there is no report). Memory holds,
    per entity, its texts and a digest of its image, and the image-less entries.

    Args:
        report (`BuildReport`, *optional*): where conflicting occurrences are listed.
    """

    def __init__(self, report: BuildReport | None = None) -> None:
        self.report = report
        self._kept: dict[str, _KeptEntity] = {}
        self._without_image: dict[str, dict[str, Any]] = {}
        self._conflicts = 0

    def add(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The entities of ``row``'s candidates to write now."""
        return self.add_entities(kb_rows(row), row["id"])

    def add_entities(self, entities: Iterable[dict[str, Any]], record: str) -> list[dict[str, Any]]:
        """The entities (rows of `KB_FEATURES`, read from ``record``) to write now."""
        ready = []
        for entity in entities:
            qid = entity["qid"]
            image = hashlib.sha256(entity["image"]["bytes"]).digest() if entity["image"] is not None else None
            seen = _KeptEntity(record, entity["name"], entity["description"], image)
            kept = self._kept.setdefault(qid, seen)
            if kept is seen or (qid in self._without_image and image is not None):
                # First occurrence, or the first one with a usable image, which replaces the image-less copy.
                self._kept[qid] = seen
                self._without_image.pop(qid, None)
                if kept is not seen:
                    self._check(qid, seen, kept)
                if image is None:
                    self._without_image[qid] = entity
                else:
                    ready.append(entity)
            else:
                self._check(qid, kept, seen)
        return ready

    def _check(self, qid: str, kept: _KeptEntity, other: _KeptEntity) -> None:
        fields = [name for name in ("name", "description") if getattr(kept, name) != getattr(other, name)]
        if kept.image is not None and other.image is not None and kept.image != other.image:
            fields.append("image")
        if not fields:
            return
        self._conflicts += 1
        if self.report is not None:
            self.report.kb_conflicts.append(KBConflict(qid, fields, kept.record, other.record))
        else:
            logger.warning("Entity %s has another %s in record %s than in record %s, whose copy the kb keeps.", qid,
                           " and ".join(fields), other.record, kept.record)  # fmt: skip

    def finish(self) -> list[dict[str, Any]]:
        """The entities that never had a usable image, in order of first appearance."""
        remaining = list(self._without_image.values())
        self._without_image = {}
        if self._conflicts:
            logger.warning("%d occurrences of knowledge-base entities differ from the copy kept (the first with an "
                           "image); see the build report's kb_conflicts, or the warnings above.",
                           self._conflicts)  # fmt: skip
        return remaining

    def __len__(self) -> int:
        return len(self._kept)


_WORKER_IMAGES: ImageResolver | None = None


def _init_worker(images: ImageResolver) -> None:
    global _WORKER_IMAGES
    _WORKER_IMAGES = images


def _worker_row(record: MentionRecord) -> tuple[dict[str, Any], BuildReport]:
    report = BuildReport()
    return record_to_row(record, _WORKER_IMAGES, report), report


def iter_release_rows(
    raw_dir: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    decode_check: bool = True,
    image_check: str = "verify",
    max_pixels: int | None = None,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    num_proc: int = 1,
    report: BuildReport | None = None,
    files: list[Path] | None = None,
    keep: Callable[[MentionRecord], bool] | None = None,
    window: int = 256,
) -> Iterator[dict[str, Any]]:
    """Stream the rows of a raw release in release order; with ``num_proc`` > 1, images are read in parallel.

    ``decode_check``, ``image_check``, ``max_pixels`` and ``max_image_bytes`` are the `ImageResolver`'s
    checks. ``keep`` selects records before their images are read. Records are handed to the worker processes
    ``window`` at a time, so memory stays bounded whatever the size of the release.
    """
    images = ImageResolver(release_image_root(raw_dir), decode_check=decode_check, max_pixels=max_pixels,
                           max_bytes=max_image_bytes, image_check=image_check)
    records = iter_release(raw_dir, skip_invalid=skip_invalid, report=report, files=files)
    if keep is not None:
        records = filter(keep, records)
    if num_proc <= 1:
        for record in records:
            yield record_to_row(record, images, report)
        return
    with multiprocessing.Pool(num_proc, initializer=_init_worker, initargs=(images,)) as pool:
        while chunk := list(islice(records, window)):
            for row, row_report in pool.map(_worker_row, chunk, chunksize=max(1, len(chunk) // (4 * num_proc))):
                if report is not None:
                    report.merge(row_report)
                yield row
